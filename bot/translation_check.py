"""Checks that a rendering of an English source sentence says no more (and no less) than it.

A rendering passes when it keeps every number and code (5, B6, vitamin D), names the same named
things as the English (vitamins, foods, tests, specialists, medicines, diseases: the reviewable
lexicon bot/locales/terms.<lang>.tsv, checked both ways), keeps or omits a negation as the English
does, is written in the target language's script, holds no citation marker or bracket of its own,
has no more sentences than the English, and is of a plausible length. The checks cannot see a
wrong relation between two kept terms; the shipped renderings are reviewed by reading for that.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from bot.citations import split_sentences
from bot.errors import ConfigError
from corpus.tsv import tsv_rows

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
_COLUMNS = ["english", "russian", "say", "check", "note"]
# Letters of each language's script: a rendering is mostly in them (as the input guard decides a
# question's language by counting letters).
_SCRIPTS = {"ru": re.compile(r"[а-яё]", re.IGNORECASE)}
_LATIN = re.compile(r"[a-z]", re.IGNORECASE)
_DIGITS = re.compile(r"\d+(?:[.,]\d+)?")
# "B6", "B1" anywhere; a bare capital after "vitamin(s)" ("vitamin D"). Cyrillic look-alikes
# ("В6", "витамин Д") count as the Latin letter.
_EN_CODES = re.compile(r"\b([A-Z])(\d{1,2})\b|\b[Vv]itamins?\s+([A-Z])\b")
_LOCAL_CODES = re.compile(r"(?<![\w])([A-ZА-Я])(\d{1,2})\b|[Вв]итамин\w*\s+([A-ZА-Я])(?![\w])")
_LOOKALIKES = str.maketrans("АВСДЕКМНОРТХ", "ABCDEKMHOPTX")
_NEGATION = {
    "en": re.compile(r"\b(?:not|no|never|cannot|without|nor|neither|none)\b|n't\b", re.IGNORECASE),
    "ru": re.compile(r"(?<![а-яё])(?:не|нет|ни|нельзя|без|никогда|невозможно)(?![а-яё])",
                     re.IGNORECASE),
}
_BRACKETS = re.compile(r"[\[\]{}<>]")
_MIN_LENGTH_RATIO, _MAX_LENGTH_RATIO = 0.5, 2.5


@dataclass(frozen=True)
class Term:
    """One named thing: its English and local forms, the local word to use, checked both ways?"""

    english: tuple[str, ...]
    local: tuple[str, ...]
    say: str
    both_ways: bool


@dataclass(frozen=True)
class TermLexicon:
    terms: tuple[Term, ...]

    def named(self, text: str, side: str) -> set[int]:
        """Indexes of the terms `text` names (side "english" or "local"); at each place the
        longest form wins, so "травма" is trauma, not herbs, and "spinal cord" not "spine"."""
        lowered = text.lower().replace("ё", "е")
        found = [(match.start(), match.start() + length, index)
                 for pattern, length, index in _patterns(self, side)
                 for match in pattern.finditer(lowered)]
        taken: list[tuple[int, int]] = []
        named: set[int] = set()
        for start, end, index in sorted(found, key=lambda f: f[0] - f[1]):  # longest first
            if any(start < other_end and other_start < end for other_start, other_end in taken):
                continue
            taken.append((start, end))
            named.add(index)
        return named

    def hints(self, english: str) -> list[tuple[str, str]]:
        """(English word, the local word to use) for each term the sentence names."""
        return [(self.terms[i].english[0].rstrip("-"), self.terms[i].say)
                for i in sorted(self.named(english, "english"))]


@functools.lru_cache(maxsize=16)
def _patterns(lexicon: TermLexicon, side: str) -> list[tuple[re.Pattern[str], int, int]]:
    """(pattern, length of the form, term index) per form: a form ending in "-" is a stem."""
    letters = "a-z" if side == "english" else "а-яеa-z"
    patterns = []
    for index, term in enumerate(lexicon.terms):
        for form in (term.english if side == "english" else term.local):
            body = form.rstrip("-")
            tail = f"[{letters}]*" if form.endswith("-") else f"(?![{letters}])"
            patterns.append((re.compile(f"(?<![{letters}]){re.escape(body)}{tail}"), len(body), index))
    return patterns


def load_terms(lang: str) -> TermLexicon:
    """The named-things lexicon of `lang` (an empty one when the language has none)."""
    path = LOCALES_DIR / f"terms.{lang}.tsv"
    if not path.is_file():
        return TermLexicon(())
    return _load(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load(path: Path, mtime_ns: int) -> TermLexicon:
    terms = []
    for number, row in tsv_rows(path, _COLUMNS, ConfigError):
        if len(row) < 4 or not all(c.strip() for c in row[:4]) or row[3].strip() not in ("both", "en"):
            raise ConfigError(f"{path.name} line {number}: expected english, local forms, the "
                              "word to say and 'both' or 'en', tab-separated.")
        english = tuple(f.strip().lower() for f in row[0].split("|") if f.strip())
        local = tuple(f.strip().lower().replace("ё", "е") for f in row[1].split(",") if f.strip())
        terms.append(Term(english, local, row[2].strip(), row[3].strip() == "both"))
    return TermLexicon(tuple(terms))


def _codes(text: str, pattern: re.Pattern[str]) -> list[str]:
    codes = []
    for match in pattern.finditer(text):
        letter, digits, bare = match.group(1), match.group(2), match.group(3)
        codes.append((letter + digits if letter else bare).translate(_LOOKALIKES).upper())
    return sorted(codes)


def rendering_problems(english: str, rendered: str, lang: str) -> list[str]:
    """What is wrong with `rendered` as the `lang` rendering of `english` ([] when it passes)."""
    rendered = rendered.strip()
    if not rendered:
        return ["empty"]
    problems = []
    script = _SCRIPTS.get(lang)
    if script is not None:
        local = len(script.findall(rendered))
        if local <= len(_LATIN.findall(rendered)) or local < 3:
            problems.append("not in the language's script")
    # Numbers outside codes: a code's digits are the code check's ("B6" is not the number 6).
    if (sorted(_DIGITS.findall(_EN_CODES.sub(" ", english)))
            != sorted(_DIGITS.findall(_LOCAL_CODES.sub(" ", rendered)))):
        problems.append("numbers differ")
    if _codes(english, _EN_CODES) != _codes(rendered, _LOCAL_CODES):
        problems.append("codes (vitamins) differ")
    lexicon = load_terms(lang)
    said, named = lexicon.named(english, "english"), lexicon.named(rendered, "local")
    missing = [lexicon.terms[i].english[0] for i in sorted(said - named)]
    added = [lexicon.terms[i].local[0] for i in sorted(named - said) if lexicon.terms[i].both_ways]
    if missing:
        problems.append(f"leaves out {', '.join(missing)}")
    if added:
        problems.append(f"adds {', '.join(added)}")
    negation = _NEGATION.get(lang)
    if negation is not None and bool(_NEGATION["en"].search(english)) != bool(negation.search(rendered)):
        problems.append("negation differs")
    if _BRACKETS.search(rendered):
        problems.append("brackets or markers")
    if len(split_sentences(rendered)) > max(1, len(split_sentences(english))):
        problems.append("more sentences")
    ratio = len(rendered) / max(len(english), 1)
    if not _MIN_LENGTH_RATIO <= ratio <= _MAX_LENGTH_RATIO:
        problems.append(f"length ratio {ratio:.2f}")
    return problems
