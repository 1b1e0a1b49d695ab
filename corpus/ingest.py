"""The corpus stage's entry points: all passages of the corpus, and a fingerprint of what made them.

Run `python -m corpus.ingest` to print the passages for review.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

from corpus.chunking import chunk_source
from corpus.cleaning import clean_text
from corpus.errors import CorpusError
from corpus.library import SourceLibrary
from corpus.passage import Passage
from corpus.sections import display_heading, split_sections
from corpus.settings import CorpusSettings
from corpus.sources import (SourceInfo, SourceText, discover_sources, load_manifest,
                            read_sources, warn_about_missing)

# Bump when a code change in cleaning, sections or chunking changes the passages, so every index
# built from the old passages is rebuilt (the data files are fingerprinted by content).
PASSAGE_FORMAT_VERSION = 1
_PASSAGE_SETTINGS = ("clean", "section_aware", "chunk_size", "chunk_overlap", "min_passage_chars")


def load_passages(settings: CorpusSettings) -> list[Passage]:
    """Every passage of every source in `settings.raw_dir`, in file order, then those of the
    sources added with `crampbot sources add` (`settings.library_dir`), by id."""
    sources = read_sources(settings.raw_dir)
    manifest = load_manifest(settings.sources_file)
    warn_about_missing(manifest, sources)
    passages: list[Passage] = []
    for source in sources:
        passages += chunk_source(source, source_title(source, manifest.get(source.name), settings),
                                 settings)
    if settings.library_dir is not None:
        passages += SourceLibrary(settings.library_dir).passages(settings)
    if not passages:
        raise CorpusError(f"The files in {settings.raw_dir} contain no text to answer from.")
    return passages


def source_title(source: SourceText, info: SourceInfo | None, settings: CorpusSettings) -> str:
    """The manifest's title, else the file's first heading, else its file name in words."""
    if info is not None:
        return info.title
    headed = [s.heading for s in split_sections(source.text) if s.heading]
    if headed:
        title = display_heading(headed[0])
        return clean_text(title, settings) if settings.clean else title
    words = re.sub(r"[_\-.]+", " ", source.stem).strip()
    return words[:1].upper() + words[1:] or source.name


def corpus_files(settings: CorpusSettings) -> list[tuple[str, Path | None]]:
    """Every file that decides the passages, labelled, in a fixed order (None: a setting left
    empty). The fingerprint reads them; `corpus_stamp` only looks at their size and time."""
    files: list[tuple[str, Path | None]] = []
    for path in discover_sources(settings.raw_dir):
        files.append((f"source:{path.name}", path))
    files.append(("manifest", settings.sources_file))
    # Nothing is added for an empty library, so the shipped corpus keeps its fingerprint.
    if settings.library_dir is not None:
        files += SourceLibrary(settings.library_dir).fingerprint_files()
    if settings.clean:  # the glossary changes nothing when cleaning is off
        files.append(("glossary", settings.glossary_file))
    return files


def corpus_fingerprint(settings: CorpusSettings) -> str:
    """sha256 over everything that decides the passages: files, manifest, glossary, settings."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        # Length-prefixed fields, so moving bytes from one field to the next changes the hash.
        digest.update(f"{label}:{len(data)}:".encode())
        digest.update(data)

    add("format", str(PASSAGE_FORMAT_VERSION).encode())
    add("settings", json.dumps(settings.model_dump(include=set(_PASSAGE_SETTINGS)),
                               sort_keys=True).encode())
    for label, path in corpus_files(settings):
        if label.startswith("source:"):
            add("source", label.removeprefix("source:").encode())
            add("bytes", path.read_bytes())
        else:
            add(label, _optional_bytes(path))
    return digest.hexdigest()


def corpus_stamp(settings: CorpusSettings) -> tuple:
    """A cheap key that changes whenever the fingerprint may have: each file's path, size and
    modification time, without reading any of them (asked on every question)."""
    stamp: list = [PASSAGE_FORMAT_VERSION,
                   json.dumps(settings.model_dump(include=set(_PASSAGE_SETTINGS)), sort_keys=True)]
    for label, path in corpus_files(settings):
        if path is not None and path.is_file():
            stat = path.stat()
            stamp.append((label, str(path), stat.st_size, stat.st_mtime_ns))
        else:
            stamp.append((label, None))
    return tuple(stamp)


def chunker_settings(settings: CorpusSettings) -> dict:
    """The settings an index records as its chunker's (what bot/retrieval.py passes too)."""
    return settings.model_dump(mode="json", exclude={"raw_dir", "sources_file", "glossary_file"})


def _optional_bytes(path: Path | None) -> bytes:
    return path.read_bytes() if path is not None and path.is_file() else b""


def _print_review(passages: list[Passage]) -> None:
    lengths = sorted(len(p.text) for p in passages)
    print(f"{len(passages)} passages; text length min {lengths[0]}, "
          f"median {lengths[len(lengths) // 2]}, max {lengths[-1]}")
    for p in passages:
        print(f"\n[{p.id}] ({p.section}) raw {p.raw_start}-{p.raw_end}, {len(p.text)} chars\n{p.text}")


if __name__ == "__main__":
    try:
        _print_review(load_passages(CorpusSettings()))
    except CorpusError as error:
        sys.exit(str(error))
