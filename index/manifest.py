"""What a built index records about how it was made, and how to tell whether it is still valid.

A manifest has two parts: the `IndexRecipe` (every input that changes the vectors or the index
structure; a loaded index must match it exactly) and facts about the build (paths, versions,
timings, file checksums) that are kept for people and for corruption checks but never compared.
"""
from __future__ import annotations

import json
from importlib import metadata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from index.settings import IndexSettings

# Bump when the on-disk layout changes, so indexes written by older code are rebuilt.
FORMAT_VERSION = 1

# Libraries whose versions are recorded with each build (for reproducing it, not for matching).
_RECORDED_LIBRARIES = ("faiss-cpu", "sentence-transformers", "torch")


class IndexRecipe(BaseModel):
    """Everything that decides the contents of an index; two equal recipes give the same index."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = Field(FORMAT_VERSION, description="On-disk layout version.")
    embedding_model: str = Field(description="Embedding model as configured (name or path).")
    dimension: int = Field(description="Length of each embedding vector.")
    include_section_title: bool = Field(description="Section title prefixed before embedding.")
    index_kind: str = Field(description="FAISS index type: flat, hnsw or ivf.")
    index_params: dict[str, int] = Field(description="Build-time parameters of that index type.")
    chunker: dict[str, Any] = Field(description="Chunker settings the passages were made with.")
    corpus_fingerprint: str = Field(description="Fingerprint of the raw corpus and its cleaning.")


# Recipe fields as a person would name them in a mismatch message.
_FIELD_LABELS = {
    "format_version": "index file format",
    "embedding_model": "embedding model",
    "dimension": "embedding dimension",
    "include_section_title": "section-title setting",
    "index_kind": "index kind",
    "index_params": "index parameters",
    "chunker": "chunker settings",
    "corpus_fingerprint": "corpus",
}


class IndexManifest(BaseModel):
    """The `manifest.json` written beside every index."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipe: IndexRecipe
    embedding_model_path: str = Field(description="Folder the embedding weights were read from.")
    passage_count: int = Field(ge=0)
    effective_params: dict[str, int] = Field(
        description="Parameters actually used (e.g. IVF lists after capping by corpus size)."
    )
    library_versions: dict[str, str]
    built_at: str = Field(description="UTC time the build finished, ISO 8601.")
    build_seconds: float = Field(ge=0)
    file_sha256: dict[str, str] = Field(description="Checksum of each data file, to detect damage.")
    # Defaults, so manifests written before incremental updates still read (and get rebuilt once
    # when a source changes, since they have no digests to compare).
    source_digests: dict[str, str] = Field(
        default_factory=dict,
        description="Source file -> sha256 of the texts its passages embed; an update embeds "
                    "only the sources whose digest changed.",
    )
    last_change: dict[str, int] = Field(
        default_factory=dict,
        description="Passages embedded, removed and kept by the build or update that wrote this.",
    )


def build_params(settings: IndexSettings) -> dict[str, int]:
    """The build-time parameters of the configured index kind.

    Search-time knobs (hnsw_ef_search, ivf_nprobe) are left out on purpose: they are applied when
    the index is opened, so changing them never forces a rebuild.
    """
    if settings.kind == "hnsw":
        return {"hnsw_m": settings.hnsw_m}
    if settings.kind == "ivf":
        return {"ivf_nlist": settings.ivf_nlist}
    return {}


def json_normalized(value: dict[str, Any]) -> dict[str, Any]:
    """The dict as it reads back from JSON (paths become strings, tuples lists), for comparing."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def library_versions() -> dict[str, str]:
    versions = {}
    for name in _RECORDED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def describe_differences(built: IndexRecipe, wanted: IndexRecipe) -> str:
    """One clause naming what differs, with old and new values where they are short."""
    parts = []
    for name, label in _FIELD_LABELS.items():
        old, new = getattr(built, name), getattr(wanted, name)
        if old == new:
            continue
        if isinstance(old, (str, int, bool)) and len(str(old)) + len(str(new)) <= 80:
            parts.append(f"{label} ({old!r} -> {new!r})")
        else:
            parts.append(label)
    return ", ".join(parts)
