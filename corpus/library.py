"""A clinic's own sources: originals kept byte for byte, their converted text, one manifest.

Layout of the library folder (`corpus.library_dir`, by default `<data_dir>/sources`):
`originals/<id><suffix>` (the file as given), `text/<id>.txt` (the converted text, which the
passages' character spans index) and `manifest.json` (one `LibrarySource` per id). Every file
is written to a temporary name and renamed into place, the manifest last, under a lock.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

import filelock
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from corpus.chunking import chunk_source
from bot import texts
from corpus.convert import Converted, page_at
from corpus.errors import CorpusError
from corpus.files import write_atomic
from corpus.passage import Passage
from corpus.sections import display_heading, heading_text, split_sections
from corpus.settings import CorpusSettings
from corpus.sources import SourceText

MANIFEST = "manifest.json"
_ID_CHARS = re.compile(r"[^a-z0-9]+")



class LibrarySource(BaseModel):
    """What the library's manifest records about one added source."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Stable id: the file name in lower case, words joined by '-'.")
    file: str = Field(description="Name of the stored original in originals/.")
    original_name: str = Field(description="File name as it was added.")
    title: str = Field(min_length=1, description="Shown with every citation.")
    url: str = Field("", description="Where the clinic publishes it; linked from citations.")
    language: str = Field("en", description="Language of the text (ISO 639-1).")
    reviewed_by: str = Field("", description="Who last reviewed the content.")
    reviewed_on: date | None = Field(None, description="When it was last reviewed.")
    sha256: str = Field(description="Checksum of the original file.")
    converter: str = Field(description="Library that converted it.")
    converter_version: str
    added_at: str = Field(description="UTC time it was added or last replaced, ISO 8601.")
    page_starts: list[int] = Field(default_factory=list,
                                   description="Offset in the text where each page begins (PDF).")

    @field_validator("url")
    @classmethod
    def _web_address(cls, url: str) -> str:
        # Cards link to it: anything but http(s) (javascript:, data:) must never become a link.
        if url and not re.match(r"https?://[^\s/]+", url, flags=re.IGNORECASE):
            raise ValueError(f"'{url}' is not a web address; give it as https://...")
        return url

    def page_at(self, offset: int) -> int | None:
        return page_at(self.page_starts, offset)

    def review_age_days(self, today: date) -> int | None:
        return None if self.reviewed_on is None else (today - self.reviewed_on).days


def card_page(passage: Passage, lang: str = "en") -> str:
    """"page 2" for a passage of a PDF, else ""."""
    return texts.t("CARD_PAGE", lang).format(page=passage.page) if passage.page else ""


def card_review(passage: Passage, lang: str = "en") -> str:
    """"Reviewed by Dr A. Patel on 1 March 2026", or as much of it as is known, else ""."""
    when = ""
    if passage.reviewed_on:
        day = date.fromisoformat(passage.reviewed_on)
        # English spells the month; every other language gets the numeric date, which needs no
        # month names in its catalog.
        when = f"{day.day} {day:%B %Y}" if texts.language(lang) == "en" else f"{day:%d.%m.%Y}"
    if passage.reviewed_by and when:
        return texts.t("CARD_REVIEWED_BY_ON", lang).format(reviewer=passage.reviewed_by, date=when)
    if when:
        return texts.t("CARD_REVIEWED_ON", lang).format(date=when)
    return (texts.t("CARD_REVIEWED_BY", lang).format(reviewer=passage.reviewed_by)
            if passage.reviewed_by else "")


def card_link(passage: Passage) -> str:
    """The passage's web address when it is one a card may link to, else ""."""
    return passage.url if re.match(r"https?://", passage.url, flags=re.IGNORECASE) else ""


def source_id(file_name: str) -> str:
    """'Leg Cramps (2026).PDF' -> 'leg-cramps-2026'."""
    stem = Path(file_name).stem.lower()
    return _ID_CHARS.sub("-", stem).strip("-")[:60] or "source"


class SourceLibrary:
    """The added sources of one library folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def sources(self) -> list[LibrarySource]:
        """Every added source, by id."""
        return sorted(self._read_manifest().values(), key=lambda source: source.id)

    def get(self, source: str) -> LibrarySource:
        found = self._read_manifest().get(source)
        if found is None:
            raise CorpusError(f"There is no added source '{source}'; `crampbot sources list` "
                              "shows the ids.")
        return found

    def text(self, source: LibrarySource) -> str:
        return (self.folder / "text" / f"{source.id}.txt").read_text(encoding="utf-8")

    def original(self, source: LibrarySource) -> Path:
        return self.folder / "originals" / source.file

    def add(self, path: Path, converted: Converted, *, title: str | None = None, url: str = "",
            language: str = "en", reviewed_by: str = "", reviewed_on: date | None = None,
            taken_ids: frozenset[str] = frozenset()) -> tuple[LibrarySource, str]:
        """Store `path` and its converted text; returns the entry and "added", "replaced" or
        "unchanged" (same bytes and details as the stored source of that id)."""
        data = path.read_bytes()
        new_id = source_id(path.name)
        if new_id in taken_ids:
            raise CorpusError(f"A shipped source is already called '{new_id}'; rename "
                              f"{path.name} and add it again.")
        try:
            entry = LibrarySource(
                id=new_id, file=f"{new_id}{path.suffix.lower()}", original_name=path.name,
                title=title or _title_from(converted, path), url=url, language=language,
                reviewed_by=reviewed_by, reviewed_on=reviewed_on,
                sha256=hashlib.sha256(data).hexdigest(), converter=converted.converter,
                converter_version=converted.converter_version,
                added_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                page_starts=list(converted.page_starts),
            )
        except ValidationError as error:
            problem = error.errors()[0]
            raise CorpusError(f"{path.name}: bad {problem['loc'][0]}: "
                              f"{problem['msg'].removeprefix('Value error, ')}") from None
        with self._locked():
            manifest = self._read_manifest()
            old = manifest.get(new_id)
            if old is not None:
                # A new version keeps its link; its review carries over only to the same bytes.
                keep = {"url": url or old.url}
                if old.sha256 == entry.sha256 and not reviewed_by and reviewed_on is None:
                    keep |= {"reviewed_by": old.reviewed_by, "reviewed_on": old.reviewed_on}
                entry = entry.model_copy(update=keep)
            if old is not None and old.model_dump(exclude={"added_at"}) == entry.model_dump(
                    exclude={"added_at"}):
                return old, "unchanged"
            write_atomic(self.folder / "originals" / entry.file, data)
            write_atomic(self.folder / "text" / f"{new_id}.txt", converted.text.encode("utf-8"))
            if old is not None and old.file != entry.file:  # replaced by another format
                (self.folder / "originals" / old.file).unlink(missing_ok=True)
            manifest[new_id] = entry
            self._write_manifest(manifest)
        return entry, "added" if old is None else "replaced"

    def remove(self, source: str) -> LibrarySource:
        with self._locked():
            manifest = self._read_manifest()
            entry = manifest.pop(source, None)
            if entry is None:
                raise CorpusError(f"There is no added source '{source}'; `crampbot sources "
                                  "list` shows the ids.")
            self._write_manifest(manifest)  # first: a crash after it leaves only stray files
            (self.folder / "originals" / entry.file).unlink(missing_ok=True)
            (self.folder / "text" / f"{entry.id}.txt").unlink(missing_ok=True)
        return entry

    def passages(self, settings: CorpusSettings) -> list[Passage]:
        """The passages of every added source, each with its page, link and review."""
        passages = []
        for source in self.sources():
            text = SourceText(name=source.file, text=self.text(source))
            reviewed_on = source.reviewed_on.isoformat() if source.reviewed_on else ""
            passages += [
                replace(p, page=source.page_at(p.raw_start), url=source.url,
                        reviewed_by=source.reviewed_by, reviewed_on=reviewed_on)
                for p in chunk_source(text, source.title, settings)
            ]
        return passages

    def fingerprint_files(self) -> list[tuple[str, Path]]:
        """What decides the library's passages: the manifest and every converted text."""
        manifest = self.folder / MANIFEST
        if not manifest.is_file():
            return []
        return [("library-manifest", manifest)] + [
            ("library-text", self.folder / "text" / f"{source.id}.txt") for source in self.sources()]

    def _read_manifest(self) -> dict[str, LibrarySource]:
        path = self.folder / MANIFEST
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return {key: LibrarySource.model_validate(value) for key, value in data.items()}
        except (OSError, ValueError, AttributeError, ValidationError) as error:
            raise CorpusError(f"The sources manifest {path} cannot be read "
                              f"({type(error).__name__}); restore it from a backup.") from None

    def _write_manifest(self, manifest: dict[str, LibrarySource]) -> None:
        data = {key: manifest[key].model_dump(mode="json") for key in sorted(manifest)}
        write_atomic(self.folder / MANIFEST,
                      json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8"))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(self.folder / ".lock"), timeout=60):
            yield


def _title_from(converted: Converted, path: Path) -> str:
    """The text's Markdown title (it may have no body of its own), else the document's own
    title, else its first heading, else the file name in words."""
    first_line = next((line for line in converted.text.splitlines() if line.strip()), "")
    if first_line.lstrip().startswith("#"):
        return display_heading(heading_text(first_line, None, None) or first_line.strip("# "))
    if converted.title:
        return converted.title
    headed = [s.heading for s in split_sections(converted.text) if s.heading]
    if headed:
        return display_heading(headed[0])
    words = re.sub(r"[_\-.]+", " ", path.stem).strip()
    return words[:1].upper() + words[1:] or path.name
