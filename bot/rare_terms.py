"""Words a question names that the sources never use and that are rare in the language itself.

The focus lexicon (bot/focus_terms.tsv) names what the sources may not cover, but only what its
reviewers thought of: "Is Benadryl safe for night cramps?" names a medicine no row lists, passes
the relevance gate on "night cramps", and was answered with the sentences nearest to it. A word
that is rare in everyday language (a drug, a diagnosis, a brand: wordfreq's Zipf frequency below
`retrieval.rare_term_zipf_en`, 3.0 = once per million words) and that no source uses is what
such a question is about, so the question is declined naming it.

Not treated as unknown: words the sources use (compared by retrieval's stems), words the query
lexicons know (lay terms, the Russian gloss), misspellings of a corpus word (the query's spelling
corrector bends them into it), short words and numbers. Word frequencies come from wordfreq, a
maintained library with its word lists bundled (nothing is downloaded).

A Russian word is a topic only when it names a thing: a rare verb or adverb is how Russian
speakers talk ("замучалась", "дрыгаюсь": fed up, I jerk), and declining it as a subject the
sources miss turned colloquial questions away. pymorphy3 (its dictionary bundled) tells the part
of speech, and guesses it for words it does not know.
"""
from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable

from wordfreq import top_n_list, zipf_frequency

from bot.retrieval import bm25_tokens
from bot.russian_morphology import analyzer

_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]")
_CYRILLIC_WORD = re.compile(r"[А-Яа-яЁё]+(?:-[А-Яа-яЁё]+)?")
_MIN_LETTERS = 4
# A rare word this close to a common one is a slip of the keyboard ("conected", "efects",
# "pian"), not a name: difflib's ratio, against the language's most frequent words.
_TYPO_SIMILARITY = 0.8
_COMMON_WORDS = 30000
# A message most of whose words are rare is in another language or a transliteration
# ("svodit ikry..."), not a question naming one unknown thing.
_MAX_RARE_SHARE = 0.5


class RareTerms:
    """Finds the rare words of a question that the sources do not use."""

    def __init__(self, passage_texts: Iterable[str], known_words: Iterable[str] = (),
                 is_misspelling: Callable[[str], bool] | None = None, *,
                 max_zipf_en: float = 3.0, max_zipf_ru: float = 2.0) -> None:
        self._corpus_stems = {stem for text in passage_texts for stem in bm25_tokens(text)}
        self._known = {w.lower() for w in known_words}
        self._is_misspelling = is_misspelling or (lambda word: False)
        self._max_zipf = {"en": max_zipf_en, "ru": max_zipf_ru}

    def find(self, text: str, russian_known: Callable[[str], bool] | None = None) -> list[str]:
        """The rare unknown words of `text`, once each, in their order. `russian_known` tells
        whether the Russian lexicon glosses a Cyrillic word (it is then a known term)."""
        found: list[str] = []
        latin = _LATIN_WORD.findall(text)
        rare = [word for word in latin if self._unknown_latin(word)]
        if rare and len(rare) > _MAX_RARE_SHARE * len(latin):
            rare = []
        for word in rare:
            if not _misspelt_common_word(word.lower()) and word.lower() not in map(str.lower, found):
                found.append(word)  # as typed: "My sources don't cover Benadryl"
        for word in _CYRILLIC_WORD.findall(text):
            lower = word.lower().replace("ё", "е")
            if (len(lower) >= _MIN_LETTERS + 1 and not (russian_known and russian_known(lower))
                    and zipf_frequency(lower, "ru") < self._max_zipf["ru"]
                    and _names_a_thing_ru(lower) and word not in found):
                found.append(word)
        return found

    def _unknown_latin(self, word: str) -> bool:
        if "-" in word:  # "mid-WOD", "non-stop": judged by its parts, "co-codamol" by "codamol"
            return any(self._unknown_latin(part) for part in word.split("-") if part)
        lower = word.lower()
        if len(lower) < _MIN_LETTERS or lower in self._known:
            return False
        if set(bm25_tokens(lower)) & self._corpus_stems:
            return False
        if zipf_frequency(lower, "en") >= self._max_zipf["en"]:
            return False
        return not self._is_misspelling(word)


# Parts of speech that say what happens or how, never what a question is about.
_VERBAL = {"VERB", "INFN", "PRTF", "PRTS", "GRND", "ADVB", "ADJS", "PRED", "COMP"}
_REFLEXIVE = ("ся", "сь")


def _names_a_thing_ru(word: str) -> bool:
    """Whether a Russian word is a noun or an adjective (a known word's likeliest reading, an
    unknown word's guess), and not a reflexive verb form the guesser takes for a noun."""
    if word.endswith(_REFLEXIVE):
        return False
    return analyzer().parse(word)[0].tag.POS not in _VERBAL


@functools.lru_cache(maxsize=1)
def _common_by_length() -> dict[int, list[str]]:
    by_length: dict[int, list[str]] = {}
    for word in top_n_list("en", _COMMON_WORDS):
        if word.isalpha():
            by_length.setdefault(len(word), []).append(word)
    return by_length


def _misspelt_common_word(word: str) -> bool:
    """Whether `word` is within a slip of one of the common English words ("erly" ~ "early")."""
    by_length = _common_by_length()
    nearby = [w for n in range(len(word) - 2, len(word) + 3) for w in by_length.get(n, ())]
    return bool(difflib.get_close_matches(word, nearby, n=1, cutoff=_TYPO_SIMILARITY))
