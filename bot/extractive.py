"""The fallback answer when too little of a generated one survives verification: the source
sentences most relevant to the question, each cited, so every sentence shown is sourced.

A sentence's relevance = embedding cosine to the question + 0.5 * the share of the question's
content words it contains; passages earlier in the retrieval ranking get a small bonus, and
sentences that lean on the one before ("It helps...", "This is...") a small penalty.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from bot.answer import Citation
from bot.citations import renumber, split_sentences, with_markers
from bot.grounding import COMMON_WORDS as _COMMON
from bot.grounding import GroundedAnswer, SentenceCheck, content_words, lexical_recall
from bot.texts import CANNOT_ANSWER
from corpus.passage import Passage

if TYPE_CHECKING:
    from index.embedding import Embedder

_LEXICAL_WEIGHT = 0.5
_RANK_BONUS = 0.03  # per rank: a tie goes to the passage retrieval trusted more
_MIN_WORDS = 4  # shorter "sentences" are headings or fragments
_MIN_NEW_WORDS = 2  # content words beyond the question's and the topic's own
# Below this cosine a sentence is not about the question, however high it ranks.
_MIN_RELEVANCE = 0.25
_DUPLICATE_COSINE = 0.9  # neighbouring passages overlap, so the same sentence can appear twice
# "It helps to absorb calcium." means little without the sentence before it.
_ANAPHORIC_STARTS = frozenset("it its this these that those they their such both and but so then".split())
_ANAPHORA_PENALTY = 0.15


def _candidates(shown: list[Passage], question_words: set[str]) -> list[tuple[int, str]]:
    """(passage number, sentence) for every whole, informative sentence of the shown passages."""
    candidates = []
    for number, passage in enumerate(shown, start=1):
        for sentence in split_sentences(passage.text):
            sentence = sentence.strip()
            # Chunks can start or end mid-sentence; a fragment reads badly on its own.
            if not sentence[:1].isupper() or not re.search(r"[.!]['\"”’)]*$", sentence):
                continue
            words = content_words(sentence)
            if len(words) < _MIN_WORDS or sentence.lower().startswith(("let's", "let us")):
                continue
            # "The causes of night cramps can be different." restates the question, no more.
            if len(words - question_words - _COMMON) < _MIN_NEW_WORDS:
                continue
            candidates.append((number, sentence))
    return candidates


def extractive_answer(
    question: str, shown: list[Passage], embedder: "Embedder", max_sentences: int = 3
) -> GroundedAnswer:
    """Up to `max_sentences` of the most relevant passage sentences, each followed by its [n].

    `shown[n - 1]` is the passage numbered [n] before renumbering. Declines when no sentence of
    the passages is about the question.
    """
    question_words = content_words(question)
    candidates = _candidates(shown, question_words)
    if not candidates:
        return GroundedAnswer(CANNOT_ANSWER, [], 0.0, [], declined=True, extractive=True)
    vectors = embedder.embed([question] + [sentence for _, sentence in candidates])
    cosines = vectors[1:] @ vectors[0]
    scores = [
        float(cosine)
        + _LEXICAL_WEIGHT * lexical_recall(question_words, content_words(sentence))
        - _RANK_BONUS * (number - 1)
        - _ANAPHORA_PENALTY * (sentence.split()[0].lower().strip(",") in _ANAPHORIC_STARTS)
        for (number, sentence), cosine in zip(candidates, cosines)
    ]
    chosen: list[int] = []
    for index in np.argsort(scores)[::-1]:
        if len(chosen) == max_sentences or cosines[index] < _MIN_RELEVANCE:
            break
        if any(float(vectors[1 + index] @ vectors[1 + other]) > _DUPLICATE_COSINE for other in chosen):
            continue
        chosen.append(int(index))
    if not chosen:
        return GroundedAnswer(CANNOT_ANSWER, [], 0.0, [], declined=True, extractive=True)
    return _assemble(chosen, candidates, scores, shown)


def _assemble(chosen: list[int], candidates: list[tuple[int, str]], scores: list[float],
              shown: list[Passage]) -> GroundedAnswer:
    text = " ".join(with_markers(candidates[i][1], [candidates[i][0]]) for i in chosen)
    final = renumber(text)
    new_number = {old: k + 1 for k, old in enumerate(final.order)}
    sentences = [
        SentenceCheck(
            text=candidates[i][1],
            cited=[new_number[candidates[i][0]]],
            support=round(scores[i], 3),
            supported=True,
            best_passage_sentence=candidates[i][1],
            model_cited=[candidates[i][0]],
        )
        for i in chosen
    ]
    citations = []
    for old in final.order:
        best = max((i for i in chosen if candidates[i][0] == old), key=lambda i: scores[i])
        citations.append(
            Citation(new_number[old], shown[old - 1], round(scores[best], 3), candidates[best][1])
        )
    return GroundedAnswer(
        text=final.text,
        sentences=sentences,
        verified_fraction=1.0,
        used_passages=[shown[old - 1] for old in final.order],
        citations=citations,
        extractive=True,
    )
