"""Typed settings for cleaning and chunking the corpus."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

CORPUS_DIR = Path(__file__).resolve().parent


class CorpusSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    raw_dir: Path = Field(CORPUS_DIR / "raw", description="Folder of source .txt/.md files.")
    sources_file: Path = Field(
        CORPUS_DIR / "sources.json", description="Manifest: title, origin and notes per file."
    )
    glossary_file: Path = Field(
        CORPUS_DIR / "glossary.tsv",
        description="Machine-translation repairs: phrase -> plain-English replacement.",
    )
    clean: bool = Field(
        True, description="Normalize and repair the text; False indexes the raw text as is."
    )
    section_aware: bool = Field(
        True, description="Split at detected headings and carry the heading with each passage."
    )
    chunk_size: int = Field(450, ge=50, description="Target passage length in characters.")
    chunk_overlap: int = Field(80, ge=0, description="Characters shared by neighbouring passages.")
    min_passage_chars: int = Field(60, ge=0, description="Shorter passages are merged or dropped.")
    # Neither field below decides how text is cut into passages, so both are left out of
    # model_dump (exclude=True), which is what an index's chunker settings are made from: moving
    # the data folder or changing the review age must not force a rebuild. The library's
    # contents are in the corpus fingerprint instead.
    library_dir: Path | None = Field(
        None, exclude=True,
        description="Folder of the sources added with `crampbot sources add` (originals, "
                    "converted text, manifest.json); None: <data_dir>/sources.",
    )
    review_after_days: int = Field(
        365, ge=1, exclude=True,
        description="`crampbot sources list` flags sources last reviewed longer ago than this.",
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "CorpusSettings":
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return self
