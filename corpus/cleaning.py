"""Turning machine-translated source text (and user questions) into plain, searchable English.

Two steps, always in this order: `normalize` (Unicode, whitespace, missing sentence spaces), then
`apply_glossary` (the reviewed phrase repairs in corpus/glossary.tsv). The retrieval stage applies
the same two steps to questions, so a question and the passages meet in the same wording.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from corpus.errors import CorpusError
from corpus.settings import CorpusSettings
from corpus.tsv import tsv_rows

_DEFAULT_GLOSSARY = CorpusSettings.model_fields["glossary_file"].default
_GLOSSARY_COLUMNS = ["phrase", "replacement", "note"]

# Sentence end glued to the next sentence ("honey.In addition"): a lower-case letter, digit or
# bracket, the full stop, then a capitalised word. Requiring "Xx" after the stop keeps
# abbreviations such as "U.S.A" and decimals such as "1.5" intact. The chunker splits on it too.
GLUED_SENTENCE_END = r"(?<=[a-z0-9)][.!?])(?=[A-Z][a-z])"

# NFKC leaves typographic quotes alone; straight ones let glossary phrases and queries match.
_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'",
                         "“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"'})
_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff\u00ad]")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+(?=[,.;:!?](?:\s|$))")


def normalize(text: str) -> str:
    """NFKC, straight quotes, no invisible characters, single spaces, a space after each sentence."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = _INVISIBLE.sub("", text)
    # Line breaks inside a passage are wrapping, not structure (sections are found before this).
    text = " ".join(text.split())
    text = _SPACE_BEFORE_PUNCTUATION.sub("", text)
    return re.sub(GLUED_SENTENCE_END, " ", text)


@dataclass(frozen=True)
class GlossaryEntry:
    phrase: str
    replacement: str
    note: str
    line: int  # line number in the glossary file, for error messages and review


class Glossary:
    """Case-insensitive whole-phrase repairs, longest phrase first, in a single pass.

    A single regex alternation (rather than one `re.sub` per entry) means a replacement is never
    re-matched by a shorter entry, and at each position the longest phrase wins.
    """

    def __init__(self, entries: list[GlossaryEntry]) -> None:
        self.entries = entries
        self._replacements = {_key(e.phrase): e.replacement for e in entries}
        ordered = sorted(entries, key=lambda e: len(e.phrase), reverse=True)
        alternatives = "|".join(_phrase_pattern(e.phrase) for e in ordered)
        self._pattern = re.compile(alternatives, re.IGNORECASE) if entries else None

    def apply(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        found = match.group(0)
        replacement = self._replacements[_key(found)]
        if found[0].isupper():
            return replacement[0].upper() + replacement[1:]
        return replacement


def _key(phrase: str) -> str:
    return " ".join(phrase.lower().split())


def _phrase_pattern(phrase: str) -> str:
    """Words of the phrase separated by any whitespace, not glued to neighbouring words."""
    body = r"\s+".join(re.escape(word) for word in phrase.split())
    start = r"(?<!\w)" if re.match(r"\w", phrase) else ""
    end = r"(?!\w)" if re.search(r"\w$", phrase) else ""
    return f"{start}{body}{end}"


def load_glossary(path: Path) -> Glossary:
    """The glossary in `path`, re-read only when the file changes."""
    try:
        stat = path.stat()
    except OSError:
        raise CorpusError(f"The glossary {path} cannot be read; check corpus.glossary_file.") from None
    return _load_glossary(path.resolve(), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _load_glossary(path: Path, mtime_ns: int, size: int) -> Glossary:
    return Glossary(_read_entries(path))


def _read_entries(path: Path) -> list[GlossaryEntry]:
    """Rows of a tab-separated file with a header; '#' lines name the sections for reviewers."""
    entries: list[GlossaryEntry] = []
    seen: dict[str, int] = {}
    for number, row in tsv_rows(path, _GLOSSARY_COLUMNS, CorpusError):
        if len(row) != 3 or not all(cell.strip() for cell in row):
            raise CorpusError(f"{path.name} line {number}: expected three non-empty tab-separated "
                              "columns (phrase, replacement, note); fix the row and re-run ingest.")
        phrase, replacement, note = (unicodedata.normalize("NFKC", c.strip()) for c in row)
        if _key(phrase) in seen:
            raise CorpusError(f"{path.name} line {number}: the phrase '{phrase}' is already on "
                              f"line {seen[_key(phrase)]}; keep one of them.")
        seen[_key(phrase)] = number
        entries.append(GlossaryEntry(phrase, replacement, note, number))
    return entries


def apply_glossary(text: str, glossary_file: Path | None = None) -> str:
    """`text` with every glossary phrase replaced (a leading capital is kept)."""
    return load_glossary(glossary_file or _DEFAULT_GLOSSARY).apply(text)


def clean_text(text: str, settings: CorpusSettings | None = None) -> str:
    """Normalize, then repair with the glossary of `settings` (the default one when None)."""
    glossary_file = settings.glossary_file if settings is not None else None
    return apply_glossary(normalize(text), glossary_file)
