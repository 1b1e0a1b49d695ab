"""Does the corpus cover what a question is about? A question about leg cramps can still ask
about something no source covers: another body part's cramp, another kind of cramp, a medicine,
a dose, a child, a pet, a sports product, an injury. Their word "cramp" carries them past the
relevance gate (a cosine on which that word dominates), and the sentences closest to them are
then about something else. So before answering, the question's focus terms, from the reviewable
lexicon bot/focus_terms.tsv, are checked against the indexed passages' own text: a term the
passages never mention is not covered, and the question is declined naming it.

Coverage comes from the passages, not from this code: a clinic that adds a leaflet about
children's cramps makes "children" covered. A term is covered when it, or its name without the
generic words ("hand cramps" -> "hand"), occurs as a whole word or phrase in the passages.
"""
from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ConfigError

TERMS_PATH = Path(__file__).with_name("focus_terms.tsv")
KINDS = frozenset(
    "body_part cramp_kind condition medicine dose population animal product injury treatment "
    "cost word".split())
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_GENERIC = re.compile(r"\b(cramps?|problems?|disease|syndrome|twitching)\b", re.IGNORECASE)


class FocusTermsError(ConfigError):
    """The focus-terms file is missing or malformed."""


@dataclass(frozen=True)
class FocusTerm:
    term: str
    name: str  # shown in the decline
    kind: str
    pattern: re.Pattern[str]
    unless: tuple[re.Pattern[str], ...] = ()  # context in which the term is only said in passing


def _regex(term: str) -> re.Pattern[str]:
    """The lexicon's term syntax as a whole-word, case-insensitive regular expression."""
    words = [re.escape(w.replace("ё", "е")) for w in term.split()]
    body = r"[\s-]+".join(words).replace(r"\*", r"\w*")
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def _normalize(text: str) -> str:
    return text.replace("ё", "е").replace("Ё", "Е").replace("\u2019", "'")


@functools.lru_cache(maxsize=4)
def load_terms(path: Path = TERMS_PATH) -> tuple[FocusTerm, ...]:
    """The lexicon, validated: every row has a term, a name and a known kind."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip() and not line.startswith("#")]
    except OSError as error:
        raise FocusTermsError(f"Cannot read the focus terms {path}: {error}.") from error
    rows = list(csv.reader(lines, delimiter="\t"))
    if not rows or rows[0] != ["term", "name", "kind", "unless"]:
        raise FocusTermsError(
            f"{path}: the first row must be the header 'term<TAB>name<TAB>kind<TAB>unless'.")
    terms = []
    for number, row in enumerate(rows[1:], start=2):
        row = row + [""] * (4 - len(row))  # the unless column is optional
        if (len(row) != 4 or not all(cell.strip() for cell in row[:3]) or row[2].strip() not in KINDS):
            raise FocusTermsError(f"{path}, row {number}: expected term, name, one of "
                                  f"{sorted(KINDS)} and optionally unless, got {row!r}.")
        term, name, kind, unless = (cell.strip() for cell in row)
        context = tuple(_regex(t.strip()) for t in unless.split(",") if t.strip())
        terms.append(FocusTerm(term, name, kind, _regex(term), context))
    return tuple(terms)


class ScopeChecker:
    """The focus terms a question names that the passages do not cover."""

    def __init__(self, passage_texts: Iterable[str], terms: tuple[FocusTerm, ...] | None = None):
        corpus = _normalize(" ".join(passage_texts))
        self._uncovered = [t for t in (terms if terms is not None else load_terms())
                           if not self._covered(t, corpus)]

    def kind_of(self, name: str) -> str:
        """The kind of an uncovered topic by its name ("" for one no focus term names)."""
        return next((t.kind for t in self._uncovered if t.name == name), "")

    @staticmethod
    def _covered(term: FocusTerm, corpus: str) -> bool:
        core = _GENERIC.sub(" ", term.name).split()
        named = _regex(" ".join(core)) if core else None
        return bool(term.pattern.search(corpus) or (named is not None and named.search(corpus)))

    def uncovered(self, english: str, original: str = "") -> list[str]:
        """Names of the uncovered focus terms, once each, in the order they occur: English terms
        in the message as written and in its English search text (the spelling corrector may
        have turned an unknown "gout" into "out"; a Russian message's gloss may name "hand"),
        Russian ones in the message as written."""
        found: dict[str, int] = {}
        english, original = _normalize(english or ""), _normalize(original or "")
        both = f"{original} \n {english}"
        for term in self._uncovered:
            match = term.pattern.search(original if _CYRILLIC.search(term.term) else both)
            if match and any(c.search(both) for c in term.unless):
                continue  # "the baby pressing on the veins" in a question about pregnancy
            if match and term.name not in found:
                found[term.name] = match.start()
        return sorted(found, key=found.get)

