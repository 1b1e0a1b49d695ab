"""The retrieval benchmark: its quick run end to end, and the pieces its numbers rest on."""
from __future__ import annotations

import argparse
import json

import faiss
import numpy as np
import pytest
import torch

from bench import retrieval as bench
from corpus.passage import Passage
from index.settings import EmbeddingSettings, IndexSettings
from index.store import INDEX_FILE, build_index

RUN_KEYS = {"passages", "build_s", "vectors_per_s", "p50_ms", "p95_ms", "search_p50_ms",
            "search_p95_ms", "recall_at_10", "params"}


def test_quick_run_writes_every_number_and_the_plot(tmp_path):
    # --quick with fewer queries and throughput passages, so the test stays well under a minute.
    code = bench.main(["--quick", "--queries", "12", "--embed-passages", "8", "--out", str(tmp_path)])

    assert code == 0
    report = json.loads((tmp_path / "retrieval.json").read_text())
    assert report["command"].startswith("python -m bench.retrieval --quick")
    assert report["machine"]["cpus"] >= 1
    assert {"faiss-cpu", "torch"} <= set(report["machine"]["versions"])
    assert report["machine"]["started"][:2] == "20" and len(report["machine"]["load_average_at_end"]) == 3
    assert report["embedding"]["passages"] == 8 and report["embedding"]["passages_per_s"] > 0
    estimate = report["single_core_estimate"]
    assert estimate["threads"] == 1 and estimate["embedding_p50_ms"] > 0 and estimate["retrieval_p50_ms"] > 0
    assert torch.get_num_threads() == 2 and faiss.omp_get_max_threads() == 2  # restored after it
    assert list(report["results"]) == ["real", "10000"]
    for label, kinds in report["results"].items():
        for kind in bench.KINDS:
            run = kinds[kind]
            assert RUN_KEYS <= set(run), (label, kind)
            assert 0 < run["p50_ms"] <= run["p95_ms"]
            assert 0.0 <= run["recall_at_10"] <= 1.0
            assert run["vectors_per_s"] > 0
        assert kinds["flat"]["recall_at_10"] == 1.0  # the reference agrees with itself
    assert report["results"]["10000"]["hnsw"]["params"]["efSearch"] in bench.EF_SEARCH_SWEEP
    assert report["results"]["10000"]["ivf"]["params"]["nlist"] == 256  # 1024 capped by 10000 // 39
    assert report["results"]["real"]["flat"]["params"]["mode"] == "hybrid"
    assert (tmp_path / "retrieval_latency.png").read_bytes()[:4] == b"\x89PNG"
    block = bench.readme_block(report)
    assert block.startswith(f"`{report['command']}`") and block.count("\n| ") == 2 + 2 * 3


class RandomEmbedder:
    """Unit vectors from a seeded generator: the index structure, not the content, is under test."""

    name = "random"
    dim = 16

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = np.random.default_rng(len(texts)).standard_normal((len(texts), self.dim), dtype=np.float32)
        faiss.normalize_L2(vectors)
        return vectors


@pytest.mark.parametrize("settings", [IndexSettings(kind="flat"), IndexSettings(kind="hnsw", hnsw_m=12),
                                      IndexSettings(kind="ivf", ivf_nlist=2)])
def test_benchmark_builds_the_index_the_store_ships(tmp_path, settings):
    passages = [Passage(f"p#{n}", "p.txt", "P", "", f"passage {n}", 0, 1, "x") for n in range(100)]
    build_index(tmp_path / "index", passages=passages, corpus_fingerprint="f", chunker_settings={},
                embedder=RandomEmbedder(), embedding=EmbeddingSettings(), index=settings)
    shipped = faiss.read_index(str(tmp_path / "index" / INDEX_FILE))

    params = bench.build_params(settings.kind, 100, settings, bench.HNSW_EF_CONSTRUCTION)
    ours = bench.build_faiss_index(RandomEmbedder().embed(["x"] * 100), settings.kind, params)

    assert type(ours) is type(shipped)
    assert ours.metric_type == shipped.metric_type == faiss.METRIC_INNER_PRODUCT
    assert ours.ntotal == shipped.ntotal == 100
    if settings.kind == "hnsw":
        assert ours.hnsw.nb_neighbors(1) == shipped.hnsw.nb_neighbors(1)  # same M
        assert ours.hnsw.efConstruction == shipped.hnsw.efConstruction
    if settings.kind == "ivf":
        assert ours.nlist == shipped.nlist == 2


def test_recall_counts_true_neighbours_found_and_ignores_padding():
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[4, 3, 2, 1], [5, 9, -1, -1]])

    assert bench.recall_at_k(found, truth) == pytest.approx((4 + 1) / 8)


def test_synthetic_vectors_are_seeded_unit_vectors_near_their_anchors():
    rng = np.random.default_rng(0)
    anchors = bench._normalized(rng.standard_normal((30, 32), dtype=np.float32) + 3 * np.eye(1, 32, 0))
    spec = bench.SyntheticSpec()
    noise = bench.NoiseShape(anchors)

    first = bench.synthetic_vectors(anchors, 500, spec, noise, np.random.default_rng(1))
    again = bench.synthetic_vectors(anchors, 500, spec, noise, np.random.default_rng(1))
    other = bench.synthetic_vectors(anchors, 500, spec, noise, np.random.default_rng(2))

    assert first.shape == (500, 32) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # Two noise levels of spread 0.6 and 0.7 leave each vector well inside its anchor's cone.
    assert float((first @ anchors.T).max(axis=1).mean()) > 0.6


def test_queries_mix_real_questions_with_perturbed_corpus_vectors():
    rng = np.random.default_rng(0)
    corpus = bench._normalized(rng.standard_normal((200, 16), dtype=np.float32))
    questions = bench._normalized(rng.standard_normal((5, 16), dtype=np.float32))

    queries = bench.synthetic_queries(corpus, questions, 12, bench.SyntheticSpec(),
                                      bench.NoiseShape(corpus), rng)

    assert queries.shape == (12, 16)
    np.testing.assert_array_equal(queries[:5], questions)
    closest = (queries[5:] @ corpus.T).max(axis=1)
    assert np.all(closest < 0.999) and np.all(closest > 0.5)  # near a passage, never a copy of one


def test_sizes_accept_real_and_numbers_and_refuse_nonsense():
    assert bench.parse_sizes("real, 10000,1e6") == ["real", "10000", "1000000"]
    with pytest.raises(argparse.ArgumentTypeError):
        bench.parse_sizes("real,lots")
    with pytest.raises(argparse.ArgumentTypeError):
        bench.parse_sizes("5")
