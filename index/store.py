"""The FAISS index of passages: built atomically, reopened only while its manifest still matches.

On disk an index is one folder with `index.faiss` (FAISS's own format), `passages.jsonl` and
`manifest.json`; nothing is pickled. A build writes into a hidden sibling folder and renames it
into place, under a lock file, so a crash or a second builder never leaves a half-written index.
When only some sources changed, `update_index` (and `open_index`) embed just those (see
index/incremental.py) and write the result the same way.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import faiss
import filelock
import numpy as np
from pydantic import ValidationError
from tqdm import tqdm

from corpus.errors import CorpusError, CrampbotError
from corpus.passage import Passage
from index.embedding import Embedder
from index.errors import IndexMismatch
from index.incremental import apply_changes, position_of_labels, source_digests
from index.manifest import (
    IndexManifest,
    IndexRecipe,
    build_params,
    describe_differences,
    json_normalized,
    library_versions,
)
from index.settings import EmbeddingSettings, IndexSettings

INDEX_FILE = "index.faiss"
PASSAGES_FILE = "passages.jsonl"
MANIFEST_FILE = "manifest.json"
_DATA_FILES = (INDEX_FILE, PASSAGES_FILE)

# A build of the real corpus takes well under a minute; waiting longer means something is stuck.
_LOCK_TIMEOUT_SECONDS = 15 * 60

# FAISS's k-means warns (and clusters poorly) with fewer than 39 training points per list.
_MIN_POINTS_PER_IVF_LIST = 39

# What reading a damaged or half-copied index folder can raise; such a folder counts as missing.
_UNREADABLE = (OSError, ValueError, RuntimeError, TypeError, KeyError, ValidationError)


class IndexBusy(CrampbotError):
    """Another process holds the index lock for too long."""


class PassageIndex:
    """Passages and the FAISS inner-product index over their normalized embeddings."""

    def __init__(self, faiss_index: faiss.Index, passages: list[Passage], manifest: IndexManifest):
        self._faiss = faiss_index
        self.passages = passages
        self.manifest = manifest
        # An updated index answers with its own ids; None: ids are positions.
        self._positions = position_of_labels(faiss_index)

    def __len__(self) -> int:
        return len(self.passages)

    @property
    def dim(self) -> int:
        return self._faiss.d

    def search(self, query_vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """For each query row, up to `k` (passage position, cosine similarity), best first."""
        queries = np.array(np.atleast_2d(query_vectors), dtype=np.float32, order="C", copy=True)
        if queries.shape[1] != self.dim:
            raise ValueError(f"Queries have {queries.shape[1]} dimensions, the index {self.dim}.")
        k = min(k, self._faiss.ntotal)
        if k <= 0:
            return [[] for _ in queries]
        # Scores are cosines only if both sides are unit length; re-normalizing costs nothing.
        faiss.normalize_L2(queries)
        scores, labels = self._faiss.search(queries, k)
        position = (lambda label: label) if self._positions is None else self._positions.__getitem__
        # FAISS pads with -1 when an approximate index finds fewer than k neighbours.
        return [
            [(position(int(p)), float(s)) for p, s in zip(row_labels, row_scores) if p >= 0]
            for row_labels, row_scores in zip(labels, scores)
        ]


def embedding_text(passage: Passage, include_section_title: bool) -> str:
    """The text embedded for a passage: "<section>: <text>", or the text alone."""
    if include_section_title and passage.section.strip():
        return f"{passage.section.strip()}: {passage.text}"
    return passage.text


def open_index(
    directory: Path,
    *,
    passages: Callable[[], list[Passage]],
    corpus_fingerprint: str,
    chunker_settings: dict,
    embedder: Embedder,
    embedding: EmbeddingSettings,
    index: IndexSettings,
    progress: bool = False,
) -> PassageIndex:
    """The index in `directory` if it matches the current settings; else rebuild or refuse.

    `passages` is only called when a rebuild is needed. A missing, partial or damaged folder is
    rebuilt too; with `index.auto_rebuild` off every such case raises `IndexMismatch` instead.
    """
    directory = Path(directory)
    recipe = _recipe(embedder, chunker_settings, corpus_fingerprint, embedding, index)
    with _exclusive(directory):
        manifest = _read_manifest(directory)
        if manifest is not None and manifest.recipe == recipe:
            loaded = _load(directory, manifest, index)
            if loaded is not None:
                return loaded
            problem = f"The index in {directory} is damaged"
        elif manifest is None:
            problem = f"There is no usable index in {directory}"
        else:
            differences = describe_differences(manifest.recipe, recipe)
            problem = f"The index in {directory} was built with a different {differences}"
        if not index.auto_rebuild:
            raise IndexMismatch(
                f"{problem}; run `crampbot ingest` to rebuild it (or set index.auto_rebuild)."
            )
        return _update_locked(directory, passages(), recipe, embedder, embedding, index, progress)


def update_index(
    directory: Path,
    *,
    passages: list[Passage],
    corpus_fingerprint: str,
    chunker_settings: dict,
    embedder: Embedder,
    embedding: EmbeddingSettings,
    index: IndexSettings,
    progress: bool = False,
) -> PassageIndex:
    """The index in `directory` made to match `passages`, embedding only the sources that were
    added or changed since it was written; a full build when that is not possible (no index,
    other settings, or an index kind that cannot remove vectors)."""
    directory = Path(directory)
    recipe = _recipe(embedder, chunker_settings, corpus_fingerprint, embedding, index)
    with _exclusive(directory):
        return _update_locked(directory, passages, recipe, embedder, embedding, index, progress)


def build_index(
    directory: Path,
    *,
    passages: list[Passage],
    corpus_fingerprint: str,
    chunker_settings: dict,
    embedder: Embedder,
    embedding: EmbeddingSettings,
    index: IndexSettings,
    progress: bool = False,
) -> PassageIndex:
    """Embed `passages` and (re)write the index in `directory`, whatever is there now."""
    directory = Path(directory)
    recipe = _recipe(embedder, chunker_settings, corpus_fingerprint, embedding, index)
    with _exclusive(directory):
        return _build_locked(directory, passages, recipe, embedder, embedding, index, progress)


def _recipe(
    embedder: Embedder,
    chunker_settings: dict,
    corpus_fingerprint: str,
    embedding: EmbeddingSettings,
    index: IndexSettings,
) -> IndexRecipe:
    return IndexRecipe(
        embedding_model=embedder.name,
        dimension=embedder.dim,
        include_section_title=embedding.include_section_title,
        index_kind=index.kind,
        index_params=build_params(index),
        # Compared with what a manifest reads back, so it must look the way JSON returns it.
        chunker=json_normalized(chunker_settings),
        corpus_fingerprint=corpus_fingerprint,
    )


@contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """Hold the index's lock file: one process at a time checks, builds or swaps this index."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    lock_path = directory.with_name(f".{directory.name}.lock")
    # An OS-level lock (flock): it is released when its holder dies, so it never goes stale.
    lock = filelock.FileLock(str(lock_path), timeout=_LOCK_TIMEOUT_SECONDS)
    try:
        lock.acquire()
    except filelock.Timeout as error:
        raise IndexBusy(
            f"Another crampbot process has been building the index in {directory} for over "
            f"{_LOCK_TIMEOUT_SECONDS // 60} minutes; wait for it to finish and try again."
        ) from error
    try:
        yield
    finally:
        lock.release()


def _read_manifest(directory: Path) -> IndexManifest | None:
    try:
        return IndexManifest.model_validate_json((directory / MANIFEST_FILE).read_bytes())
    except _UNREADABLE:
        return None


def _load(directory: Path, manifest: IndexManifest, settings: IndexSettings) -> PassageIndex | None:
    """The index in `directory`, or None when its files are missing, damaged or inconsistent."""
    try:
        if _checksums(directory) != manifest.file_sha256:
            return None
        faiss_index = faiss.read_index(str(directory / INDEX_FILE))
        with (directory / PASSAGES_FILE).open(encoding="utf-8") as lines:
            passages = [Passage.from_dict(json.loads(line)) for line in lines]
        counts = {faiss_index.ntotal, len(passages), manifest.passage_count}
        if len(counts) != 1 or faiss_index.d != manifest.recipe.dimension:
            return None
        _apply_search_params(faiss_index, manifest, settings)
    except _UNREADABLE:
        return None
    return PassageIndex(faiss_index, passages, manifest)


def _apply_search_params(
    faiss_index: faiss.Index, manifest: IndexManifest, settings: IndexSettings
) -> None:
    """Set search-time breadth, which is not stored in the index and never needs a rebuild."""
    space = faiss.ParameterSpace()
    if manifest.recipe.index_kind == "hnsw":
        space.set_index_parameter(faiss_index, "efSearch", settings.hnsw_ef_search)
    elif manifest.recipe.index_kind == "ivf":
        nlist = manifest.effective_params["ivf_nlist"]
        space.set_index_parameter(faiss_index, "nprobe", min(settings.ivf_nprobe, nlist))


def _build_locked(
    directory: Path,
    passages: list[Passage],
    recipe: IndexRecipe,
    embedder: Embedder,
    embedding: EmbeddingSettings,
    settings: IndexSettings,
    progress: bool,
) -> PassageIndex:
    """Build and swap in a new index; the caller holds the lock."""
    if not passages:
        raise CorpusError("The corpus gave no passages to index; check corpus.raw_dir.")
    started = time.perf_counter()
    vectors = _embed_passages(passages, embedder, embedding, progress)
    faiss_index, effective_params = _new_faiss_index(vectors, settings)
    change = {"embedded": len(passages), "removed": 0, "kept": 0}
    return _write_locked(directory, faiss_index, list(passages), recipe, embedder, embedding,
                         settings, effective_params, change, started)


def _update_locked(
    directory: Path,
    passages: list[Passage],
    recipe: IndexRecipe,
    embedder: Embedder,
    embedding: EmbeddingSettings,
    settings: IndexSettings,
    progress: bool,
) -> PassageIndex:
    """Embed only what changed when the index on disk differs from `recipe` in its corpus
    alone; otherwise build. The caller holds the lock."""
    if not passages:
        raise CorpusError("The corpus gave no passages to index; check corpus.raw_dir.")
    manifest = _read_manifest(directory)
    same_but_corpus = manifest is not None and manifest.recipe.model_copy(
        update={"corpus_fingerprint": recipe.corpus_fingerprint}) == recipe
    current = _load(directory, manifest, settings) if same_but_corpus else None
    if current is None:
        return _build_locked(directory, passages, recipe, embedder, embedding, settings, progress)
    if manifest.recipe == recipe:
        return current
    started = time.perf_counter()

    def text_of(passage: Passage) -> str:
        return embedding_text(passage, embedding.include_section_title)

    update = apply_changes(
        current._faiss, current.passages, manifest.source_digests, passages,
        source_digests(passages, text_of),
        lambda fresh: _embed_passages(fresh, embedder, embedding, progress))
    if update is None:
        return _build_locked(directory, passages, recipe, embedder, embedding, settings, progress)
    change = {"embedded": update.embedded, "removed": update.removed, "kept": update.kept}
    return _write_locked(directory, update.faiss_index, update.passages, recipe, embedder,
                         embedding, settings, manifest.effective_params, change, started)


def _write_locked(
    directory: Path,
    faiss_index: faiss.Index,
    passages: list[Passage],
    recipe: IndexRecipe,
    embedder: Embedder,
    embedding: EmbeddingSettings,
    settings: IndexSettings,
    effective_params: dict[str, int],
    change: dict[str, int],
    started: float,
) -> PassageIndex:
    """Write the index into a work folder and swap it in; the caller holds the lock."""
    _remove_leftovers(directory)
    workspace = Path(tempfile.mkdtemp(prefix=f".{directory.name}.building-", dir=directory.parent))
    try:
        faiss.write_index(faiss_index, str(workspace / INDEX_FILE))
        _write_passages(workspace / PASSAGES_FILE, passages)
        manifest = IndexManifest(
            recipe=recipe,
            # Fakes in tests have no weights on disk, hence no path.
            embedding_model_path=str(getattr(embedder, "path", "")),
            passage_count=len(passages),
            effective_params=effective_params,
            library_versions=library_versions(),
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            build_seconds=round(time.perf_counter() - started, 3),
            file_sha256=_checksums(workspace),
            source_digests=source_digests(
                passages, lambda p: embedding_text(p, embedding.include_section_title)),
            last_change=change,
        )
        # Written last: a folder without a manifest is never mistaken for a finished index.
        (workspace / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        # mkdtemp makes the folder private (0700); an index is as readable as any other data file.
        os.chmod(workspace, 0o755)
        _swap_in(workspace, directory)
    except BaseException:
        shutil.rmtree(workspace, ignore_errors=True)
        raise
    _apply_search_params(faiss_index, manifest, settings)
    return PassageIndex(faiss_index, passages, manifest)


def _embed_passages(
    passages: list[Passage], embedder: Embedder, embedding: EmbeddingSettings, progress: bool
) -> np.ndarray:
    texts = [embedding_text(p, embedding.include_section_title) for p in passages]
    size = embedding.batch_size
    batches = []
    bar = tqdm(total=len(texts), desc="Embedding passages", unit="passage", disable=not progress)
    with bar:
        for start in range(0, len(texts), size):
            batches.append(embedder.embed(texts[start : start + size]))
            bar.update(len(batches[-1]))
    vectors = np.ascontiguousarray(np.vstack(batches), dtype=np.float32)
    # Inner product equals cosine only on unit vectors; do not rely on every Embedder for that.
    faiss.normalize_L2(vectors)
    return vectors


def _new_faiss_index(
    vectors: np.ndarray, settings: IndexSettings
) -> tuple[faiss.Index, dict[str, int]]:
    """A FAISS inner-product index of the configured kind, trained if needed and filled."""
    count, dim = vectors.shape
    if settings.kind == "hnsw":
        faiss_index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        params = {"hnsw_m": settings.hnsw_m}
    elif settings.kind == "ivf":
        nlist = max(1, min(settings.ivf_nlist, count // _MIN_POINTS_PER_IVF_LIST))
        quantizer = faiss.IndexFlatIP(dim)
        faiss_index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        faiss_index.train(vectors)
        params = {"ivf_nlist": nlist}
    else:
        faiss_index = faiss.IndexFlatIP(dim)
        params = {}
    faiss_index.add(vectors)
    return faiss_index, params


def _write_passages(path: Path, passages: list[Passage]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for passage in passages:
            out.write(json.dumps(passage.to_dict(), ensure_ascii=False) + "\n")


def _checksums(directory: Path) -> dict[str, str]:
    sums = {}
    for name in _DATA_FILES:
        with (directory / name).open("rb") as data:
            sums[name] = hashlib.file_digest(data, "sha256").hexdigest()
    return sums


def _swap_in(built: Path, directory: Path) -> None:
    """Put the finished folder `built` at `directory`, replacing any older index.

    A non-empty folder cannot be renamed over another, so the old one is first renamed aside;
    both renames are atomic, and the lock keeps every other process out of the gap between them.
    """
    if directory.exists():
        retired = directory.with_name(f".{directory.name}.retired-{uuid.uuid4().hex[:8]}")
        os.replace(directory, retired)
        os.replace(built, directory)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(built, directory)


def _remove_leftovers(directory: Path) -> None:
    """Delete work folders of builds that were killed; under the lock no live build owns any."""
    for pattern in (f".{directory.name}.building-*", f".{directory.name}.retired-*"):
        for leftover in directory.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)
