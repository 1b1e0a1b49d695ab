"""Updating a built index in place of a rebuild: only the sources whose passages changed are embedded.

Each manifest records a digest per source (of the texts its passages embed). An update compares
them with the current passages: a source that is gone or changed has its vectors removed, a new
or changed one is embedded and added, the rest keep their vectors. The removing and adding are
FAISS's own (`IndexIDMap2.remove_ids` / `add_with_ids`: ids stay with their vectors, and the
kept vectors keep their order, which `passages.jsonl` follows). Only flat indexes are updated so;
HNSW cannot remove vectors and IVF would drift from its training, so those are rebuilt.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import faiss
import numpy as np

from corpus.passage import Passage


@dataclass(frozen=True)
class IndexUpdate:
    """The result of an update: the new FAISS index and passages (in the index's order)."""

    faiss_index: faiss.Index
    passages: list[Passage]
    embedded: int  # passages embedded now
    removed: int  # passages whose vectors were dropped
    kept: int  # passages whose vectors were reused


def source_digests(passages: list[Passage], text_of: Callable[[Passage], str]) -> dict[str, str]:
    """Source file -> sha256 of the embedded texts of its passages, in order."""
    digests: dict[str, hashlib._Hash] = {}
    for passage in passages:
        digest = digests.setdefault(passage.source, hashlib.sha256())
        data = text_of(passage).encode("utf-8")
        digest.update(f"{len(data)}:".encode())  # length-prefixed: no two lists hash alike
        digest.update(data)
    return {source: digest.hexdigest() for source, digest in digests.items()}


def with_ids(faiss_index: faiss.Index) -> faiss.IndexIDMap2 | None:
    """The index as an IndexIDMap2 (a plain flat index gets ids 0..n-1, its positions), or
    None when its kind cannot remove vectors."""
    if isinstance(faiss_index, faiss.IndexIDMap2):
        return faiss.clone_index(faiss_index)  # a copy: a failed update leaves the loaded one
    if not isinstance(faiss_index, faiss.IndexFlat):
        return None
    mapped = faiss.IndexIDMap2(faiss.IndexFlatIP(faiss_index.d))
    if faiss_index.ntotal:
        mapped.add_with_ids(faiss_index.reconstruct_n(0, faiss_index.ntotal),
                            np.arange(faiss_index.ntotal, dtype=np.int64))
    return mapped


def position_of_labels(faiss_index: faiss.Index) -> dict[int, int] | None:
    """Label FAISS returns -> position in the passages list, for an index with its own ids."""
    if not isinstance(faiss_index, faiss.IndexIDMap):
        return None
    return {int(label): i for i, label in enumerate(faiss.vector_to_array(faiss_index.id_map))}


def apply_changes(
    faiss_index: faiss.Index,
    old_passages: list[Passage],
    old_digests: dict[str, str],
    new_passages: list[Passage],
    new_digests: dict[str, str],
    embed: Callable[[list[Passage]], np.ndarray],
) -> IndexUpdate | None:
    """The index with stale sources' vectors removed and new sources' added; None when this
    index cannot be updated so (another kind, or a manifest without digests)."""
    mapped = with_ids(faiss_index)
    if mapped is None or not old_digests or set(old_digests) != {p.source for p in old_passages}:
        return None
    stale = {s for s, digest in old_digests.items() if new_digests.get(s) != digest}
    fresh = [p for p in new_passages if old_digests.get(p.source) != new_digests[p.source]]
    labels = faiss.vector_to_array(mapped.id_map)
    drop = [i for i, p in enumerate(old_passages) if p.source in stale]
    if drop:
        mapped.remove_ids(labels[drop].astype(np.int64))
    # Kept sources embed the same texts, but their passages may carry new details (a title or
    # review date), so the new Passage objects take the old ones' places, in order.
    replacement: dict[str, list[Passage]] = {}
    for passage in new_passages:
        replacement.setdefault(passage.source, []).append(passage)
    queues = {source: iter(group) for source, group in replacement.items()}
    kept = [next(queues[p.source]) for p in old_passages if p.source not in stale]
    if fresh:
        vectors = embed(fresh)
        next_label = int(labels.max()) + 1 if len(labels) else 0
        mapped.add_with_ids(vectors, np.arange(next_label, next_label + len(fresh), dtype=np.int64))
    return IndexUpdate(mapped, kept + fresh, embedded=len(fresh), removed=len(drop),
                       kept=len(kept))
