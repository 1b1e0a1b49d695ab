"""Offline judge of whether an answer sentence is supported by the passage it cites.

Method (no LLM, deterministic, runs on CPU in milliseconds per sentence):
1. Content-word recall: the share of the sentence's content words (stop words and citation
   markers removed, words compared by a crude stem so "cramps"/"cramping" match) that occur
   anywhere in the cited passage. A model that copies or lightly rewords its source scores
   high; one that brings in outside facts ("quinine", "statins") scores low.
2. Embedding cosine: the best cosine between the sentence and the passage or any one of its
   sentences, with the project's own embedder (normalized rows). It catches paraphrases that
   share few words with the source ("not drinking enough" ~ "dehydration").
A sentence is supported when recall alone is high, or the mean of recall and cosine is high
(thresholds below, chosen on the hand-made sentences in tests/test_evals_judge.py). Without an
embedder only the recall rule applies, which is stricter. Known blind spots: negation ("X does
not cause cramps" against "X causes cramps") and paraphrases that need world knowledge ("not
drinking enough water" for "dehydration") both land near the threshold; a plausible on-topic
invention sharing the passage's words ("cramps while swimming come from eating too soon") can
score as high as such a paraphrase.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# Stop words of English plus words every answer about cramps uses; they carry no evidence.
_STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    me more most my no nor not of off on once only or other our out over own same she should so
    some such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your
    yours may might must often usually sometimes many much one two help helps people person
    someone something things thing like get gets make makes way ways yes""".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)
_MARKER = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
# Sentence ends: punctuation then space, or a line break (lists). Hand-written because no
# sentence tokenizer is installed and answers are short, plain English.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_MARKER_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[\d+(?:\s*,\s*\d+)*\])+)")
_STEM_LETTERS = 5
_SUFFIXES = ("ing", "ed", "es", "s", "e")

# Thresholds, chosen on the hand-made sentences in tests/test_evals_judge.py.
# On them, supported sentences scored a mean of 0.71 or more, unsupported ones 0.62 or less.
RECALL_ALONE = 0.75  # most content words come from the passage
MEAN_MIN = 0.65  # mean of recall and best cosine: a reworded sentence of the passage


class Embedder(Protocol):
    """What the judge needs from index.embedding's embedder: normalized rows, one per text."""

    def embed(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Judgement:
    supported: bool
    recall: float  # share of the sentence's content words found in the passage
    cosine: float | None  # best sentence-to-passage cosine; None without an embedder


def split_sentences(text: str) -> list[str]:
    """Sentences of an answer, each keeping the citation markers that close it."""
    # A marker written after the full stop ("... cramps. [1]") belongs to the sentence before it.
    text = _MARKER_AFTER_STOP.sub(r"\2\1", text)
    return [sentence.strip() for sentence in _SENTENCE_END.split(text) if sentence.strip()]


def stem(word: str) -> str:
    """A crude stem: one common suffix off, then the first letters ("legs"~"leg", "tired"~"tire").

    Hand-written: no stemmer is installed, and matching words of one source is all it is for.
    """
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:_STEM_LETTERS]


def content_words(text: str) -> list[str]:
    """Lower-cased word stems of `text` without stop words and citation markers."""
    words = _WORD.findall(_MARKER.sub(" ", text).lower())
    return [stem(word) for word in words if word not in _STOP_WORDS and len(word) > 1]


class GroundingJudge:
    """Decides, for one answer sentence, whether any of its cited passages supports it."""

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}  # passages repeat across sentences and cases

    def judge(self, sentence: str, passages: list[str]) -> Judgement:
        """Best judgement of `sentence` against each of `passages` (no passage: unsupported)."""
        words = content_words(sentence)
        if not words:
            return Judgement(True, 1.0, None)  # nothing to check ("Yes.", a bare marker)
        if not passages:
            return Judgement(False, 0.0, None)
        best: Judgement | None = None
        for passage in passages:
            judgement = self._judge_one(sentence, words, passage)
            if best is None or (judgement.supported, judgement.recall) > (best.supported, best.recall):
                best = judgement
        return best

    def _judge_one(self, sentence: str, words: list[str], passage: str) -> Judgement:
        passage_words = set(content_words(passage))
        recall = sum(word in passage_words for word in words) / len(words)
        cosine = self._best_cosine(sentence, passage) if self.embedder is not None else None
        return Judgement(is_supported(recall, cosine), recall, cosine)

    def _best_cosine(self, sentence: str, passage: str) -> float:
        pieces = [passage] + split_sentences(passage)
        query = self._embed([_MARKER.sub("", sentence).strip()])[0]
        return float(np.max(self._embed(pieces) @ query))

    def _embed(self, texts: list[str]) -> np.ndarray:
        missing = [text for text in dict.fromkeys(texts) if text not in self._vectors]
        if missing:
            for text, vector in zip(missing, self.embedder.embed(missing)):
                self._vectors[text] = np.asarray(vector, dtype=np.float32)
        return np.stack([self._vectors[text] for text in texts])


def is_supported(recall: float, cosine: float | None) -> bool:
    """The decision rule, on its own so that its thresholds can be read and tested."""
    if recall >= RECALL_ALONE:
        return True
    return cosine is not None and (recall + cosine) / 2 >= MEAN_MIN
