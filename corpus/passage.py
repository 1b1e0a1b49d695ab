"""The unit everything downstream works on: a cleaned passage tied to its raw source span."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Passage:
    """A few sentences of one section of one source, cleaned for reading and retrieval.

    `raw_start`/`raw_end` index the ORIGINAL bytes-decoded text of `corpus/raw/<source>`, or
    for a source added with `crampbot sources add` its converted text (`<library>/text/`);
    `original` is exactly that slice, so the UI can show the source wording and evaluation can
    match gold quotes against it. The governance fields are empty for the shipped sources.
    """

    id: str  # stable: "<source stem>#<n>"
    source: str  # file name inside corpus/raw/
    title: str  # human title of the source (from corpus/sources.json)
    section: str  # section heading; text before the first heading files under the source title ("" only when section_aware is off)
    text: str  # cleaned, glossary-repaired text shown to users and the model
    raw_start: int
    raw_end: int
    original: str  # raw_text[raw_start:raw_end]
    page: int | None = None  # 1-based page of raw_start, for PDF sources
    url: str = ""  # where the clinic publishes the source
    reviewed_by: str = ""  # who last reviewed the source's content
    reviewed_on: str = ""  # when, ISO 8601 date ("2026-03-01")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Passage":
        return cls(**data)
