"""Checking a generated answer against the passages it was shown: each sentence keeps only the
citations that support it, uncited or wrongly cited facts get the passage that supports them,
unsupported sentences are dropped (or tagged), and markers are renumbered 1..k.

How well passage P supports answer sentence S (`support`, 0..1):
  lexical  = recall of S's content words in P (and P's section title): words lower-cased,
             stemmed, stop words dropped, domain synonyms merged ("spasm" = "cramp", "lack" =
             "deficiency"); words nearly every passage shares ("cramp", "calf", "muscle", "cause")
             weigh a quarter, so a sentence cannot pass on topic words alone;
  semantic = the highest embedding cosine between S and one sentence of P, or two adjacent ones
             (a claim often joins two source sentences);
  support  = (lexical + semantic) / 2, halved once for each kind of conflict with P:
             a number, dose or vitamin in S that P does not contain ("400 mg", "B12");
             a negation ("not", "never") in S that P's best-matching sentence lacks;
             an antonym of a word of that sentence ("warm" for "cold", "first" for "last").
S is supported when support >= MIN_SUPPORT. The threshold is calibrated on hand-made supported and
unsupported sentences against passages cut from corpus/raw (tests/test_grounding.py, run with
`pytest tests/test_grounding.py -s -k "calibration or held_out"`): see MIN_SUPPORT for the numbers.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from bot.answer import Citation
from bot.citations import (
    AnswerSentence,
    join_sentences,
    parse_citations,
    renumber,
    split_answer,
    split_sentences,
    with_markers,
)
from bot.safety.input_guard import detect_language
from bot.texts import CANNOT_ANSWER, UNVERIFIED_TAG
from corpus.passage import Passage

if TYPE_CHECKING:
    from index.embedding import Embedder

# Calibrated in tests/test_grounding.py with all-MiniLM-L6-v2: 25 supported sentences scored
# 0.626..0.989, 20 unsupported ones 0.000..0.498, so 0.55 keeps 100% and rejects 100%; on 22
# held-out sentences written afterwards it keeps 10/10 and rejects 9/12. Recalibrate with
# another embedding model.
MIN_SUPPORT = 0.55
_CONFLICT_FACTOR = 0.5
_COMMON_WEIGHT = 0.25

_WORD = re.compile(r"\d+(?:[.,]\d+)?|[a-z]+\d*")
_NUMBER_WORDS = dict(
    zip("one two three four five six seven eight nine ten eleven twelve".split(), map(str, range(1, 13)))
)
_SYNONYM_GROUPS = {
    "cramp": "cramp spasm seizure convulsion myoclonia",
    "calf": "calf calves shin",
    "lack": "lack deficiency deficient deficit shortage insufficient insufficiency",
    "doctor": "doctor physician specialist",
    "pregnan": "pregnant pregnancy expectant",
    "exercise": "exercise workout training sport",
    "coffee": "coffee caffeine",
    "sweat": "sweat perspiration",
    "eat": "eat diet food meal menu",
    "swim": "swim swimmer",  # "when swimming" asks what "Why do swimmers...?" answers
    "old": "old elderly senior",  # "elderly people" asks what "Old age. Slow metabolism..." answers
}
COMMON_WORDS = {"cramp", "calf", "leg", "muscl", "pain", "caus", "help", "lead", "occur", "result"}
_NEGATIONS = {"not", "no", "never", "cannot", "nor", "none"}
_ANTONYM_PAIRS = [
    ("warm", "cold"), ("hot", "cold"), ("first", "last"), ("early", "late"), ("more", "less"),
    ("much", "little"), ("high", "low"), ("increase", "decrease"), ("excess", "lack"),
    ("rare", "common"), ("harmless", "dangerous"), ("worse", "better"),
]

_BOILERPLATE = re.compile(
    r"\bhope (?:this|that|it) helps|\blet me know\b|\bfeel free\b|\bmedical advice\b"
    r"|\b(?:consult|see|talk to|speak (?:to|with)|contact|ask|visit)\s+(?:a|your|with a)\s+"
    r"(?:doctor|physician|health ?care|medical|gp|specialist|professional)"
    r"|\bI(?:'m| am) (?:not a doctor|an ai|a language model)|\b(?:stay safe|take care)\b"
    r"|^(?:sure|certainly|of course|great question|good question|i hope)\b",
    re.IGNORECASE,
)
_DECLINE = re.compile(
    r"\b(?:sources?|passages?|documents?|context|texts?)\b[^.]{0,40}?\b(?:do|does|did)\s*(?:not|n't)\s+"
    r"(?:mention|cover|contain|include|provide|say|discuss|address|specify|state|give|describe|"
    r"answer|explain|talk|have|offer)"
    r"|\b(?:no|not enough|insufficient)\s+information\b"
    r"|\bI (?:cannot|can't|can not|am unable to|am not able to) (?:answer|say|tell|find)"
    r"|\b(?:not|isn't|aren't) (?:mentioned|covered|addressed|discussed|specified|described) in\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SentenceCheck:
    """One answer sentence and what verification found for it."""

    text: str  # the sentence as written, without markers
    cited: list[int]  # citations it keeps, numbered as the user sees them (used_passages[n - 1])
    support: float  # support by its best cited (or best shown) passage, 0..1
    supported: bool
    best_passage_sentence: str  # sentence of that passage to highlight on the source card
    model_cited: list[int] = field(default_factory=list)  # what the model cited (shown order)
    kind: str = "claim"  # claim | boilerplate | decline | lead-in | quote: only claims are verified


@dataclass(frozen=True)
class GroundedAnswer:
    """The verified answer: final text with markers 1..k, and the evidence behind it."""

    text: str  # "" when nothing survived; CANNOT_ANSWER when declined
    sentences: list[SentenceCheck]
    verified_fraction: float  # supported claims / all claims (0.0 with no claims or a decline)
    used_passages: list[Passage]  # passage of citation [k] is used_passages[k - 1]
    declined: bool = False
    citations: list[Citation] = field(default_factory=list)
    extractive: bool = False


# Suffix -> replacement, tried in order; the first that fits is stripped.
_SUFFIXES = (("ies", "y"), ("ied", "y"), ("sses", "ss"), ("ness", ""), ("ment", ""), ("ings", ""),
             ("ing", ""), ("edly", ""), ("ed", ""), ("es", ""), ("ly", ""), ("s", ""))


@lru_cache(maxsize=4096)
def stem(word: str) -> str:
    """A light suffix stripper (no stemmer is installed; matching, not linguistics, is the goal)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, replacement in _SUFFIXES:
        shortest = 4 if suffix == "ly" else 3  # "early", "daily" stay whole
        if word.endswith(suffix) and len(word) - len(suffix) >= shortest:
            if not word.endswith(("ss", "us", "is")):  # "stress", "virus", "thesis"
                word = word[: len(word) - len(suffix)] + replacement
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    if len(word) > 4 and word[-1] == word[-2] and word[-1] not in "lsz":
        word = word[:-1]  # "stopp" -> "stop"
    return word


_SYNONYMS = {stem(w): key for key, words in _SYNONYM_GROUPS.items() for w in words.split()}
_ANTONYMS: dict[str, set[str]] = {}
for _a, _b in _ANTONYM_PAIRS:
    _ANTONYMS.setdefault(stem(_a), set()).add(stem(_b))
    _ANTONYMS.setdefault(stem(_b), set()).add(stem(_a))


def _words(text: str) -> list[str]:
    text = text.lower().replace("n't", " not").replace("’", "'")
    text = re.sub(r"\bvitamins?\s+([a-z]\d*)\b", r"vitamin vitamin_\1", text)
    words = re.findall(r"vitamin_[a-z]\d*|" + _WORD.pattern, text)
    return [_NUMBER_WORDS.get(w, w.replace(",", ".")) for w in words]


def content_words(text: str) -> set[str]:
    """Stemmed, synonym-merged content words of `text` (no stop words, no single letters)."""
    stems = set()
    for word in _words(text):
        if word in ENGLISH_STOP_WORDS or (len(word) < 2 and not word.isdigit()):
            continue
        stemmed = stem(word)
        stems.add(_SYNONYMS.get(stemmed, stemmed))
    return stems


def _specific(words: set[str]) -> set[str]:
    """Numbers, doses and named vitamins: a sentence must not bring its own."""
    return {w for w in words if w.startswith("vitamin_") or any(c.isdigit() for c in w)}


def lexical_recall(sentence_words: set[str], evidence_words: set[str]) -> float:
    """Weighted share of the sentence's content words found in the evidence."""
    weight = {w: _COMMON_WEIGHT if w in COMMON_WORDS else 1.0 for w in sentence_words}
    total = sum(weight.values())
    return sum(weight[w] for w in sentence_words & evidence_words) / total if total else 0.0


def _raw_stems(text: str) -> set[str]:
    return {stem(w) for w in _words(text)}


def _conflicts(sentence: str, sentence_words: set[str], evidence_words: set[str], best: str) -> int:
    """Kinds of conflict between a sentence and its evidence (see the module docstring)."""
    raw, best_raw = _raw_stems(sentence), _raw_stems(best)
    count = int(bool(_specific(sentence_words) - evidence_words))
    # Only a negation the passage lacks: passages often negate what a faithful paraphrase
    # states positively ("when the muscles were not prepared" -> "prepare the muscles").
    count += int(bool(raw & _NEGATIONS) and not best_raw & _NEGATIONS)
    count += int(any(_ANTONYMS.get(w, set()) & best_raw and w not in best_raw for w in raw))
    return count


@dataclass
class _Evidence:
    """One shown passage prepared for checking: its sentences, their vectors, its words."""

    sentences: list[str]
    unit_vectors: np.ndarray  # sentences, then adjacent pairs
    words: set[str]


def _prepare(shown: list[Passage], claims: list[str], embedder: "Embedder"):
    """Evidence per passage and claim vectors, from a single call to the embedder."""
    units_per_passage = []
    for passage in shown:
        sentences = split_sentences(passage.text) or [passage.text]
        pairs = [f"{a} {b}" for a, b in zip(sentences, sentences[1:])]
        units_per_passage.append((sentences, sentences + pairs))
    texts = list(claims) + [u for _, units in units_per_passage for u in units]
    vectors = embedder.embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)
    claim_vectors, offset, evidence = vectors[: len(claims)], len(claims), []
    for passage, (sentences, units) in zip(shown, units_per_passage):
        evidence.append(
            _Evidence(
                sentences,
                vectors[offset : offset + len(units)],
                content_words(f"{passage.section} {passage.text}"),
            )
        )
        offset += len(units)
    return evidence, claim_vectors


def _support(claim: str, vector: np.ndarray, evidence: _Evidence) -> tuple[float, str]:
    """(support of `claim` by one passage, the passage sentence that supports it best)."""
    cosines = evidence.unit_vectors @ vector
    n = len(evidence.sentences)
    best_sentence = evidence.sentences[int(np.argmax(cosines[:n]))]
    if detect_language(claim) != "en":
        # The sources and the embedder are English: a Russian sentence cannot be checked against
        # them, and a shared Latin word ("caffeine") must not make it look supported.
        return 0.0, best_sentence
    words = content_words(claim)
    score = (lexical_recall(words, evidence.words) + float(np.clip(cosines.max(), 0.0, 1.0))) / 2
    score *= _CONFLICT_FACTOR ** _conflicts(claim, words, evidence.words, best_sentence)
    return score, best_sentence


def support_score(sentence: str, passage: Passage, embedder: "Embedder") -> float:
    """How well `passage` supports `sentence` (0..1), as `verify_answer` measures it."""
    core, _ = parse_citations(sentence)
    evidence, vectors = _prepare([passage], [core], embedder)
    return _support(core, vectors[0], evidence[0])[0]


def is_decline(text: str) -> bool:
    """Whether `text` says the sources do not answer (CANNOT_ANSWER or a close paraphrase)."""
    core = parse_citations(text)[0].lower()
    ratio = difflib.SequenceMatcher(None, core, CANNOT_ANSWER.lower()).ratio()
    return ratio > 0.75 or bool(_DECLINE.search(core))


def _kind(core: str, cited: list[int]) -> str:
    if not content_words(core):
        return "boilerplate"
    if core.rstrip().endswith(":"):
        return "lead-in"
    if not cited and is_decline(core):
        return "decline"
    if _BOILERPLATE.search(core):
        return "boilerplate"
    return "claim"


@dataclass
class _Checked:
    sentence: AnswerSentence
    core: str
    kind: str
    model_cited: list[int]
    keep: list[int] = field(default_factory=list)  # shown-passage numbers it keeps
    support: float = 0.0
    best: str = ""
    best_per_passage: dict[int, tuple[float, str]] = field(default_factory=dict)

    @property
    def supported(self) -> bool:
        return bool(self.keep)


def _check_claim(item: _Checked, vector, evidence: list[_Evidence], min_support: float) -> None:
    scores = {n: _support(item.core, vector, evidence[n - 1]) for n in range(1, len(evidence) + 1)}
    item.best_per_passage = scores
    cited = [n for n in item.model_cited if scores[n][0] >= min_support]
    joint = _joint_support(item, vector, evidence, min_support) if len(item.model_cited) > 1 else None
    if joint is not None and len(joint[0]) > len(cited):
        cited, (item.support, item.best) = joint[0], joint[1]
        item.keep = cited
        return
    if not cited:
        # Uncited, or cited wrongly: the shown passage that supports it best, if any does.
        best = max(scores, key=lambda n: scores[n][0], default=None)
        cited = [best] if best is not None and scores[best][0] >= min_support else []
    pool = cited or item.model_cited or list(scores)
    top = max(pool, key=lambda n: scores[n][0], default=None)
    if top is not None:
        item.support, item.best = scores[top]
    item.keep = cited


def _joint_support(item: _Checked, vector, evidence: list[_Evidence], min_support: float):
    """For "A [1] and B [2]": (the cited passages that together support it, (support, best
    sentence)) when they do; each kept passage supports it alone or adds words the others lack."""
    parts = [evidence[n - 1] for n in item.model_cited]
    sentences = [s for part in parts for s in part.sentences]
    singles = [part.unit_vectors[: len(part.sentences)] for part in parts]
    pairs = [part.unit_vectors[len(part.sentences) :] for part in parts]
    union = _Evidence(sentences, np.vstack(singles + pairs), set().union(*(p.words for p in parts)))
    support = _support(item.core, vector, union)
    if support[0] < min_support:
        return None
    words, covered, kept = content_words(item.core) - COMMON_WORDS, set(), []
    for n in sorted(item.model_cited, key=lambda n: -item.best_per_passage[n][0]):
        new = (words & evidence[n - 1].words) - covered
        if new or item.best_per_passage[n][0] >= min_support:
            kept.append(n)
            covered |= new
    return sorted(kept, key=item.model_cited.index), support


def verify_answer(
    text: str,
    shown: list[Passage],
    embedder: "Embedder",
    *,
    min_support: float = MIN_SUPPORT,
    keep_unverified: bool = False,
) -> GroundedAnswer:
    """Check every sentence of a generated answer against the passages shown to the model.

    `shown[n - 1]` is the passage the model saw as [n]. Supported sentences keep the citations
    that support them; unsupported ones are dropped, or kept with an "(unverified)" tag and no
    citation when `keep_unverified`; boilerplate (a disclaimer of its own, "I hope this helps")
    is dropped silently, since the code appends the real disclaimer.
    """
    items = []
    for sentence in split_answer(text):
        core, numbers = parse_citations(sentence.text)
        model_cited = [n for n in numbers if 1 <= n <= len(shown)]
        items.append(_Checked(sentence, core, _kind(core, model_cited), model_cited))
    # Cited advice such as "See a doctor if cramps come every night [2]" may be the source's own:
    # checked like a claim, kept if supported, otherwise dropped as boilerplate.
    checked = [i for i in items if i.kind == "claim" or (i.kind == "boilerplate" and i.model_cited)]
    if is_decline(text) and not any(item.model_cited for item in checked):
        checked = []  # "The sources do not cover X; in general Y." is a decline, not an answer
    if checked and shown:
        evidence, vectors = _prepare(shown, [item.core for item in checked], embedder)
        for item, vector in zip(checked, vectors):
            _check_claim(item, vector, evidence, min_support)
            if item.kind == "boilerplate" and item.supported:
                item.kind = "claim"
    claims = [item for item in items if item.kind == "claim"]
    kept = [item for item in claims if item.supported]
    if not kept and (any(item.kind == "decline" for item in items) or is_decline(text)):
        checks = [_to_check(item, {}) for item in items]
        return GroundedAnswer(CANNOT_ANSWER, checks, 0.0, [], declined=True)
    return _assemble(items, claims, shown, keep_unverified)


def _assemble(items: list[_Checked], claims: list[_Checked], shown: list[Passage],
              keep_unverified: bool) -> GroundedAnswer:
    """The final text from the surviving sentences, with citations renumbered 1..k."""
    out: list[AnswerSentence] = []
    for index, item in enumerate(items):
        if item.kind == "claim" and item.supported:
            out.append(_replace(item.sentence, with_markers(item.core, item.keep)))
        elif item.kind == "claim" and keep_unverified:
            out.append(_replace(item.sentence, _tag_unverified(item.core)))
        elif item.kind == "lead-in" and _list_follows(items, index, keep_unverified):
            out.append(_replace(item.sentence, item.core))
    final = renumber(join_sentences(out))
    new_number = {old: k + 1 for k, old in enumerate(final.order)}
    citations = []
    for old in final.order:
        backers = [item for item in claims if old in item.keep]
        score, sentence = max(item.best_per_passage[old] for item in backers)
        citations.append(Citation(new_number[old], shown[old - 1], round(score, 3), sentence))
    fraction = sum(item.supported for item in claims) / len(claims) if claims else 0.0
    return GroundedAnswer(
        text=final.text,
        sentences=[_to_check(item, new_number) for item in items],
        verified_fraction=fraction,
        used_passages=[shown[old - 1] for old in final.order],
        citations=citations,
    )


def _list_follows(items: list[_Checked], index: int, keep_unverified: bool) -> bool:
    """A lead-in ("Common causes include:") stays only if a list item after it stays."""
    for item in items[index + 1 :]:
        if not item.sentence.bullet:
            return False
        if item.kind == "claim" and (item.supported or keep_unverified):
            return True
    return False


def _replace(sentence: AnswerSentence, text: str) -> AnswerSentence:
    return AnswerSentence(text, sentence.bullet, sentence.new_paragraph)


def _tag_unverified(core: str) -> str:
    match = re.search(r"[.!?…]+['\"”’)]*\s*$", core)
    if not match:
        return f"{core} {UNVERIFIED_TAG}"
    return f"{core[: match.start()]} {UNVERIFIED_TAG}{match.group(0).strip()}"


def _to_check(item: _Checked, new_number: dict[int, int]) -> SentenceCheck:
    return SentenceCheck(
        text=item.core,
        cited=[new_number[n] for n in item.keep if n in new_number],
        support=round(item.support, 3),
        supported=item.supported,
        best_passage_sentence=item.best,
        model_cited=item.model_cited,
        kind=item.kind,
    )
