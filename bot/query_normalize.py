"""Put a question in the sources' words: the corpus glossary, lay terms, then spelling.

People write "my calfs seize up at nite"; the passages say "the calves cramp at night". Three
steps, each from reviewable data, none tuned to a particular question:
1. the corpus glossary (corpus/glossary.tsv), so a question meets the same repairs as the text;
2. bot/query_terms.tsv: lay words and text-speak -> the corpus's terms;
3. spelling: a word that is neither in the corpus nor a known English word is replaced by the
   closest corpus word, if one is close enough (difflib's ratio).
"""
from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from pathlib import Path

from corpus.cleaning import clean_text, load_glossary
from corpus.settings import CorpusSettings

QUERY_TERMS_FILE = Path(__file__).resolve().parent / "query_terms.tsv"

_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
# difflib's ratio 2*matches/len: 0.8 accepts one slip in a 5-letter word ("crams" -> "cramps",
# "coffe" -> "coffee") and two in a 10-letter one, and rejects unrelated words of similar shape.
_MIN_SIMILARITY = 0.8
# Shorter words are left alone: at 3 letters one edit turns most words into another real word.
_MIN_CORRECTED_LENGTH = 4


class SpellingCorrector:
    """Nearest-word correction against a vocabulary (the corpus's words).

    difflib's get_close_matches does the ranking; the only logic here is which words to leave
    alone: words the corpus uses, words a general English vocabulary knows (so "cholesterol" is
    not bent into a corpus word) and short words.
    """

    def __init__(self, vocabulary: Iterable[str], known_words: Iterable[str] = ()) -> None:
        self.vocabulary = sorted({w.lower() for w in vocabulary if len(w) >= 3})
        self._vocabulary_set = set(self.vocabulary)
        self._known = {w.lower() for w in known_words}
        # Known words by length: a ratio >= 0.8 needs lengths within a quarter of each other, so
        # only a few buckets are compared instead of all ~20k words.
        self._known_by_length: dict[int, list[str]] = {}
        for known in sorted(self._known - self._vocabulary_set):
            self._known_by_length.setdefault(len(known), []).append(known)

    def correct_word(self, word: str) -> str:
        lower = word.lower()
        if (len(lower) < _MIN_CORRECTED_LENGTH or lower in self._vocabulary_set
                or lower in self._known):
            return word
        return self._closest(lower) or word

    @functools.lru_cache(maxsize=4096)
    def _closest(self, word: str) -> str | None:
        """The most similar corpus word, unless a known non-corpus word is more similar.

        "conection" is nearer "connection" than the corpus's "contraction", so it is left alone
        rather than bent into a corpus word it does not mean.
        """
        matches = difflib.get_close_matches(word, self.vocabulary, n=1, cutoff=_MIN_SIMILARITY)
        if not matches:
            return None
        ratio = difflib.SequenceMatcher(None, word, matches[0]).ratio()
        slack = int(len(word) * (1 - _MIN_SIMILARITY)) + 1
        nearby = [w for n in range(len(word) - slack, len(word) + slack + 1)
                  for w in self._known_by_length.get(n, ())]
        rival = difflib.get_close_matches(word, nearby, n=1, cutoff=ratio)
        if rival and difflib.SequenceMatcher(None, word, rival[0]).ratio() > ratio:
            return None
        return matches[0]

    def correct(self, text: str) -> str:
        return _WORD.sub(lambda m: self.correct_word(m.group(0)), text)


class QueryNormalizer:
    """The three steps above, in order; `normalize` is what retrieval searches for."""

    def __init__(self, corpus: CorpusSettings, corrector: SpellingCorrector | None,
                 terms_file: Path = QUERY_TERMS_FILE) -> None:
        self.corpus = corpus
        self.corrector = corrector
        self.terms = load_glossary(terms_file)

    def normalize(self, text: str) -> str:
        text = clean_text(text, self.corpus)
        # Spelling first, so a misspelled lay phrase ("sieze up") still meets its entry.
        if self.corrector is not None:
            text = self.corrector.correct(text)
        return self.terms.apply(text)


# "I'm 72", "72 years old", "she's 80", "мне 72 года": an age the sources' list item "Old age:
# slow metabolism..." is about, which no phrase row can match (it is a number).
_OLD_AGE = 60
_STATED_AGE = re.compile(
    r"\b(?:i'?m|i am|she'?s|he'?s|aged?|turned|turning)\s+(\d{2,3})\b"
    r"(?!\s*(?:%|cups?|mg|min|hours?|times|kg|lbs?|km|miles))"
    r"|\b(\d{2,3})\s*(?:-?\s*years?[- ]old|y/?o\b|yrs? old|[MF]\b)"
    r"|\b(\d{2,3})\s*(?:год|лет)", re.IGNORECASE)


def states_old_age(text: str) -> bool:
    """Whether the message gives someone's age as 60 or more (English or Russian)."""
    return any(int(next(g for g in m.groups() if g)) >= _OLD_AGE
               for m in _STATED_AGE.finditer(text))


def term_words(terms_file: Path = QUERY_TERMS_FILE) -> set[str]:
    """Every word that the lay-term replacements can produce (part of the spelling vocabulary)."""
    glossary = load_glossary(terms_file)
    return {w.lower() for e in glossary.entries for w in _WORD.findall(e.replacement)}


def phrase_words(terms_file: Path = QUERY_TERMS_FILE) -> set[str]:
    """Every word of the lay phrases, so the corrector does not "fix" them into corpus words."""
    glossary = load_glossary(terms_file)
    return {w.lower() for e in glossary.entries for w in _WORD.findall(e.phrase)}


def known_english_words(embedding_model: str) -> set[str]:
    """Whole words of the embedding model's WordPiece vocabulary: ~20k common English words.

    A word the tokenizer knows whole is almost surely spelled right ("cholesterol", "right",
    "could"), so the corrector leaves it alone; misspellings ("coffe", "musle") are not in it.
    Empty (correct everything not in the corpus) for a model without a vocab.txt.
    """
    from index.embedding import EmbeddingModelMissing, resolve_model_path

    try:
        vocab_file = resolve_model_path(embedding_model) / "vocab.txt"
    except EmbeddingModelMissing:
        return set()
    if not vocab_file.is_file():
        return set()
    lines = vocab_file.read_text(encoding="utf-8").splitlines()
    return {w for w in lines if w.isalpha() and w.islower() and len(w) >= 2}
