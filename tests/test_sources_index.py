"""Incremental index updates: one source added, changed or removed embeds only that source.

The real embedding model, wrapped to count what it is asked to embed, and real FAISS indexes.
"""
from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from corpus.passage import Passage
from index.settings import EmbeddingSettings, IndexSettings
from index.store import MANIFEST_FILE, build_index, open_index, update_index

FACTS = {
    "cramps.txt": ["During a cramp, straighten the leg and pull the toes up to stretch the calf.",
                   "Night cramps wake people from sleep and become more common with age."],
    "fluids.txt": ["Heavy sweating, vomiting or diarrhoea lose salt and make cramps more likely."],
    "clots.txt": ["A swollen, warm and red calf may be a deep vein thrombosis: seek urgent care."],
}
VEINS = ["The Riverside vein clinic runs every Tuesday morning from eight until noon.",
         "Compression stockings squeeze the ankle more than the calf."]


class CountingEmbedder:
    """The real embedder, counting the texts it embeds."""

    def __init__(self, real):
        self.real, self.name, self.dim = real, real.name, real.dim
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts += texts
        return self.real.embed(texts)


def passages_of(sources: dict[str, list[str]]) -> list[Passage]:
    return [Passage(f"{name.split('.')[0]}#{n}", name, name, "", text, 0, len(text), text)
            for name, texts in sources.items() for n, text in enumerate(texts)]


def update(directory, embedder, sources, *, fingerprint, **index):
    return update_index(directory, passages=passages_of(sources), corpus_fingerprint=fingerprint,
                        chunker_settings={"chunk_size": 450}, embedder=embedder,
                        embedding=EmbeddingSettings(), index=IndexSettings(**index))


def top(index, embedder, question: str) -> str:
    [[(position, _)]] = index.search(embedder.embed([question]), 1)
    return index.passages[position].text


@pytest.fixture
def counting(embedder):
    return CountingEmbedder(embedder)


def test_adding_changing_and_removing_a_source_embeds_only_that_source(tmp_path, counting):
    directory = tmp_path / "index"
    update(directory, counting, FACTS, fingerprint="v1")
    assert len(counting.texts) == 4
    counting.texts.clear()

    added = update(directory, counting, {**FACTS, "veins.pdf": VEINS}, fingerprint="v2")
    assert counting.texts == VEINS  # the other sources' vectors were kept
    assert len(added) == 6 and added.manifest.last_change == {"embedded": 2, "removed": 0, "kept": 4}
    assert top(added, counting.real, "When is the vein clinic open?") == VEINS[0]

    counting.texts.clear()
    changed = {**FACTS, "veins.pdf": [VEINS[0].replace("Tuesday", "Thursday")]}
    replaced = update(directory, counting, changed, fingerprint="v3")
    assert counting.texts == changed["veins.pdf"]
    assert top(replaced, counting.real, "When is the vein clinic open?").count("Thursday") == 1

    counting.texts.clear()
    removed = update(directory, counting, FACTS, fingerprint="v4")
    assert counting.texts == [] and len(removed) == 4
    assert all(p.source != "veins.pdf" for p in removed.passages)
    # Every other passage is still found by its own wording, through FAISS's own ids.
    for texts in FACTS.values():
        for text in texts:
            assert top(removed, counting.real, text) == text


def test_an_updated_index_reopens_as_is_and_a_mismatch_is_still_detected(tmp_path, counting):
    directory = tmp_path / "index"
    update(directory, counting, FACTS, fingerprint="v1")
    update(directory, counting, {**FACTS, "veins.pdf": VEINS}, fingerprint="v2")
    counting.texts.clear()
    kwargs = dict(passages=lambda: pytest.fail("no rebuild expected"), chunker_settings={"chunk_size": 450},
                  embedder=counting, embedding=EmbeddingSettings(), index=IndexSettings())
    reopened = open_index(directory, corpus_fingerprint="v2", **kwargs)
    assert len(reopened) == 6 and counting.texts == []
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    assert set(manifest["source_digests"]) == {*FACTS, "veins.pdf"}
    # Another fingerprint with auto_rebuild off is refused, as before.
    from index.errors import IndexMismatch

    with pytest.raises(IndexMismatch, match="corpus"):
        open_index(directory, corpus_fingerprint="v3",
                   **{**kwargs, "index": IndexSettings(auto_rebuild=False)})
    # With it on, open_index updates incrementally: only the new source is embedded.
    more = {**FACTS, "veins.pdf": VEINS, "extra.txt": ["Magnesium is often tried for cramps."]}
    kwargs["passages"] = lambda: passages_of(more)
    assert len(open_index(directory, corpus_fingerprint="v3", **kwargs)) == 7
    assert counting.texts == more["extra.txt"]


def test_an_update_that_fails_leaves_the_index_as_it_was(tmp_path, counting, monkeypatch):
    directory = tmp_path / "index"
    update(directory, counting, FACTS, fingerprint="v1")
    before = {p.name: p.read_bytes() for p in directory.iterdir()}

    def broken(texts):
        raise RuntimeError("embedding failed half-way")

    monkeypatch.setattr(counting, "embed", broken)
    with pytest.raises(RuntimeError):
        update(directory, counting, {**FACTS, "veins.pdf": VEINS}, fingerprint="v2")
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".index.building")] == []


def test_other_index_kinds_and_old_plain_flat_indexes_are_handled(tmp_path, counting):
    hnsw = tmp_path / "hnsw"
    update(hnsw, counting, FACTS, fingerprint="v1", kind="hnsw")
    counting.texts.clear()
    rebuilt = update(hnsw, counting, {**FACTS, "veins.pdf": VEINS}, fingerprint="v2", kind="hnsw")
    assert len(counting.texts) == 6 and len(rebuilt) == 6  # HNSW cannot remove: rebuilt whole
    # A flat index written by a full build is a plain IndexFlatIP; its first update maps it to ids.
    flat = tmp_path / "flat"
    build_index(flat, passages=passages_of(FACTS), corpus_fingerprint="v1",
                chunker_settings={"chunk_size": 450}, embedder=counting,
                embedding=EmbeddingSettings(), index=IndexSettings())
    assert type(faiss.read_index(str(flat / "index.faiss"))) is faiss.IndexFlatIP
    counting.texts.clear()
    updated = update(flat, counting, {**FACTS, "veins.pdf": VEINS}, fingerprint="v2")
    assert counting.texts == VEINS
    assert isinstance(faiss.read_index(str(flat / "index.faiss")), faiss.IndexIDMap2)
    assert top(updated, counting.real, FACTS["clots.txt"][0]) == FACTS["clots.txt"][0]
    assert np.isclose(updated.search(counting.real.embed([VEINS[1]]), 1)[0][0][1], 1, atol=1e-4)
