"""Russian questions in English words: a lexicon gloss that needs no model.

The sources are English machine translations of Russian texts, so a Russian question has to be
searched in English. With the language model available the question is translated by it
(bot/query.py); this gloss is the fallback and the model-free path (retrieval-only evaluation):
each Russian word the lexicon (bot/query_ru.tsv) knows becomes its English term, in order, and
the rest are dropped. "почему сводит икры ночью" -> "why cramp calf night".
"""
from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from wordfreq import zipf_frequency

from bot.errors import ConfigError
from corpus.tsv import tsv_rows

RUSSIAN_LEXICON_FILE = Path(__file__).resolve().parent / "query_ru.tsv"
_COLUMNS = ["russian", "english", "note"]
_CYRILLIC_WORD = re.compile(r"[а-яё]+(?:-[а-яё]+)?")
# Words are glossed one by one, so "я ничем не болею" (I am not ill at all) came out as "pain":
# not being ill is being healthy, which the sources' "can occur in healthy people" answers.
_NOT_ILL = re.compile(r"\b(?:ничем\s+)?не\s+бол(?:ею|еет|еем|еют|ел[аи]?|ен|ьна|ьны)\b")
# A word this close to a known word or stem (difflib's ratio) is taken as a slip of the keyboard
# ("судорга" -> "судорог-"); only for words and stems long enough that one slip cannot turn
# one real word into another, and only for words Russian itself does not use (wordfreq's Zipf
# frequency below _UNUSED_ZIPF: "установить" is not a misspelling of "устал-").
_MIN_NEAR_LETTERS = 6
_NEAR_SIMILARITY = 0.85
_UNUSED_ZIPF = 0.5


@dataclass(frozen=True)
class RussianLexicon:
    words: dict[str, str]  # whole word -> English
    stems: dict[str, str]  # stem (a word's beginning) -> English

    def gloss(self, text: str) -> str:
        """The English terms of the Russian words the lexicon knows, in their order."""
        english = []
        text = _NOT_ILL.sub("здоров", text.lower().replace("ё", "е"))
        for word in _CYRILLIC_WORD.findall(text):
            term = self.words.get(word) or self._by_stem(word) or self._near(word)
            if term and (not english or english[-1] != term):
                english.append(term)
        return " ".join(english)

    def _by_stem(self, word: str) -> str | None:
        # Longest stem first, so a specific entry beats a general one ("травм-" over "трав-").
        for end in range(len(word), 1, -1):
            term = self.stems.get(word[:end])
            if term:
                return term
        return None

    def _near(self, word: str) -> str | None:
        """The term of the known word or stem this word is a misspelling of, if any."""
        if len(word) < _MIN_NEAR_LETTERS or zipf_frequency(word, "ru") >= _UNUSED_ZIPF:
            return None
        close = difflib.get_close_matches(word, self.words, n=1, cutoff=_NEAR_SIMILARITY)
        if close:
            return self.words[close[0]]
        # A stem is compared with the word's beginning of its length, a letter lost or added.
        ratio, term = max(((difflib.SequenceMatcher(None, word[:end], stem).ratio(), english)
                           for stem, english in self.stems.items()
                           if len(stem) >= _MIN_NEAR_LETTERS - 1
                           for end in (len(stem) - 1, len(stem), len(stem) + 1)),
                          key=lambda scored: scored[0], default=(0.0, None))
        return term if ratio >= _NEAR_SIMILARITY else None

    def english_words(self) -> set[str]:
        return {w.lower() for term in (*self.words.values(), *self.stems.values())
                for w in term.split()}


def load_russian_lexicon(path: Path = RUSSIAN_LEXICON_FILE) -> RussianLexicon:
    stat = path.stat() if path.is_file() else None
    if stat is None:
        raise ConfigError(f"The Russian lexicon {path} is missing; restore bot/query_ru.tsv.")
    return _load(path.resolve(), stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int) -> RussianLexicon:
    words: dict[str, str] = {}
    stems: dict[str, str] = {}
    for number, row in tsv_rows(path, _COLUMNS, ConfigError):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise ConfigError(f"{path.name} line {number}: expected a Russian word or stem and "
                              "its English term, tab-separated.")
        russian = row[0].strip().lower().replace("ё", "е")
        table, key = (stems, russian[:-1]) if russian.endswith("-") else (words, russian)
        if key in table:
            raise ConfigError(f"{path.name} line {number}: '{row[0].strip()}' is listed twice.")
        table[key] = row[1].strip()
    return RussianLexicon(words, stems)
