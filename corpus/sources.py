"""Finding and reading the source files in corpus/raw, and the manifest that describes them.

Every `.txt`/`.md` file in the raw folder is a source, whether or not the manifest names it: a clinic
can drop its own file in and re-run ingest. The manifest only adds what a file cannot say itself.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from corpus.errors import CorpusError

log = logging.getLogger(__name__)

SOURCE_SUFFIXES = (".txt", ".md")


class SourceInfo(BaseModel):
    """What the manifest (corpus/sources.json) says about one source file."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, description="Human title shown with every citation.")
    language: str = Field("en", description="Language the text was written in (ISO 639-1).")
    machine_translated: bool = Field(
        False, description="True when the English text is a machine translation."
    )
    notes: str = Field("", description="Provenance and known problems, for reviewers.")


@dataclass(frozen=True)
class SourceText:
    """One source file: its name in the raw folder and its decoded text (offsets index this)."""

    name: str
    text: str

    @property
    def stem(self) -> str:
        return Path(self.name).stem


def discover_sources(raw_dir: Path) -> list[Path]:
    """The source files of `raw_dir`, sorted by name."""
    if not raw_dir.is_dir():
        raise CorpusError(f"The corpus folder {raw_dir} does not exist; check corpus.raw_dir.")
    paths = sorted(
        path for path in raw_dir.iterdir()
        # Dot files include editor swap files and macOS "._name.txt" forks, which are binary.
        if path.is_file() and path.suffix.lower() in SOURCE_SUFFIXES and not path.name.startswith(".")
    )
    if not paths:
        raise CorpusError(f"The corpus folder {raw_dir} has no .txt or .md files; add sources "
                          "and re-run ingest.")
    return paths


def read_source(path: Path) -> SourceText:
    """The text of one source file, decoded as UTF-8 (a byte-order mark is dropped)."""
    data = path.read_bytes()
    if b"\x00" in data:
        raise CorpusError(f"{path.name} looks like a binary file, not text; save it as UTF-8 "
                          "text or remove it from the corpus folder.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CorpusError(f"{path.name} is not UTF-8 text (bad byte at position {error.start}); "
                          "save it as UTF-8 and re-run ingest.") from None
    return SourceText(name=path.name, text=text)


def read_sources(raw_dir: Path) -> list[SourceText]:
    return [read_source(path) for path in discover_sources(raw_dir)]


def load_manifest(path: Path) -> dict[str, SourceInfo]:
    """File name -> SourceInfo; an absent manifest is empty (titles then come from the files)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorpusError(f"The sources manifest {path.name} cannot be read ({error}); "
                          "fix the JSON and re-run ingest.") from None
    if not isinstance(data, dict):
        raise CorpusError(f"The sources manifest {path.name} must map file names to entries.")
    manifest = {}
    for name, entry in data.items():
        try:
            manifest[name] = SourceInfo.model_validate(entry)
        except ValidationError as error:
            problem = error.errors()[0]
            field = ".".join(str(part) for part in problem["loc"]) or "entry"
            raise CorpusError(f"The sources manifest entry '{name}' has a bad '{field}': "
                              f"{problem['msg']}.") from None
    return manifest


def warn_about_missing(manifest: dict[str, SourceInfo], sources: list[SourceText]) -> None:
    """Log manifest entries whose file is gone: harmless, but usually a renamed file."""
    present = {source.name for source in sources}
    for name in sorted(set(manifest) - present):
        log.warning("sources manifest names %s, which is not in the corpus folder", name)
