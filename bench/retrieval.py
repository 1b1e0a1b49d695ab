"""Retrieval benchmark: query latency, build throughput and recall@10 of flat, HNSW and IVF indexes.

    .venv/bin/python -m bench.retrieval            # sizes real,10000,100000,1000000
    .venv/bin/python -m bench.retrieval --quick    # sizes real,10000 (under a minute)

Writes bench/results/retrieval.json and bench/results/retrieval_latency.png and prints the README
table. The real corpus runs the shipped hybrid retriever (`bot.retrieval.PassageRetriever`:
query embedding + FAISS + BM25 + rank fusion). Larger corpora are synthetic vectors drawn around
real passage embeddings (see `synthetic_vectors`); each of their queries still embeds a real
question with the packaged model before searching, so latency includes the embedding.
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

import faiss
import numpy as np

from bench.tables import RESULTS_DIR, load_average, machine, update_readme, write_json
from bot.retrieval import PassageRetriever
from bot.settings import load_settings
from corpus.ingest import load_passages
from corpus.passage import Passage
from corpus.settings import CorpusSettings
from index.embedding import Embedder, load_embedder
from index.settings import EmbeddingSettings, IndexSettings
from index.store import PassageIndex, embedding_text

README_BLOCK = "retrieval-table"
KINDS = ("flat", "hnsw", "ivf")
TOP_K = 10
RECALL_TARGET = 0.95
FULL_SIZES = "real,10000,100000,1000000"
QUICK_SIZES = "real,10000"
# The targets: p50 on the real corpus and at one million passages.
TARGET_P50_MS = {"real": 20.0, "1000000": 50.0}

# Search breadth tried per approximate index; the smallest value reaching RECALL_TARGET is kept.
EF_SEARCH_SWEEP = (16, 32, 64, 128, 256)
NPROBE_SWEEP = (4, 8, 16, 32, 64, 128)
SEARCH_PARAMETERS = {"hnsw": ("efSearch", EF_SEARCH_SWEEP), "ivf": ("nprobe", NPROBE_SWEEP)}
# FAISS's default, which index.store uses (it has no setting for it); higher only slows builds here.
HNSW_EF_CONSTRUCTION = 40
# index.store caps IVF lists so k-means gets enough training points per list; mirrored here.
MIN_POINTS_PER_IVF_LIST = 39

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_GENERATION_CHUNK = 100_000  # synthetic rows drawn at once: bounds temporary memory to ~150 MB

# Questions a patient might type, used as real query embeddings at every size.
QUESTIONS = (
    "Why do my calves cramp at night?",
    "What causes sudden calf cramps while sleeping?",
    "How do I stop a leg cramp quickly?",
    "Can magnesium help with leg cramps?",
    "Is potassium deficiency a cause of muscle cramps?",
    "Why do I get cramps in my legs during pregnancy?",
    "Are night cramps a sign of something serious?",
    "What stretches prevent calf cramps?",
    "Does dehydration cause muscle cramps?",
    "Can statins give me leg cramps?",
    "Why does my calf muscle twitch when I wake up?",
    "What should I do if my calf cramps while swimming?",
    "Do diuretics make cramps more likely?",
    "How long does a calf cramp usually last?",
    "Should I see a doctor about frequent leg cramps?",
    "Can varicose veins cause cramps in the calves?",
    "Why do elderly people get more leg cramps?",
    "Does standing all day at work cause cramps?",
    "Can sitting for a long time lead to calf spasms?",
    "Is it normal to have cramps after running?",
    "What vitamins help with muscle cramps?",
    "Can low blood sugar cause leg cramps?",
    "Does stress make leg cramps worse?",
    "Is a massage good for a calf cramp?",
    "Should I use heat or ice after a cramp?",
    "What is the difference between a cramp and a seizure?",
    "Can flat feet cause calf cramps?",
    "Why do my toes curl during a leg cramp?",
    "Does drinking coffee cause cramps?",
    "Can alcohol cause night cramps in the legs?",
    "Are leg cramps related to diabetes?",
    "What does myoclonia mean?",
    "Can thyroid problems cause muscle cramps?",
    "Why does my calf hurt the day after a cramp?",
    "Is calcium deficiency a reason for cramps?",
    "Can tight shoes cause cramps in the calf?",
    "How can I prevent cramps when exercising?",
    "Is quinine safe for leg cramps?",
    "What foods help prevent muscle cramps?",
    "Why does my leg cramp when I point my toes?",
    "Could my calf pain be a blood clot instead of a cramp?",
    "My calf is swollen, red and warm - is that a cramp?",
    "Do cramps in the legs mean poor circulation?",
    "Why do cramps happen more often in summer?",
    "Can children get night leg cramps?",
    "What exercises strengthen calf muscles against cramps?",
    "Is it bad to walk on a leg right after a cramp?",
    "Which medicines can cause cramps as a side effect?",
    "Do electrolytes drinks help with cramps?",
    "How are recurring calf cramps diagnosed?",
)


@dataclass(frozen=True)
class SyntheticSpec:
    """How synthetic passage vectors are drawn around real embeddings (see `synthetic_vectors`).

    Spreads are noise norms relative to unit vectors: a point lies at cosine about
    1/sqrt(1 + spread**2) from the centre it was drawn around.
    """

    passages_per_topic: int = 100
    topic_spread: float = 0.6
    passage_spread: float = 0.7
    query_spread: float = 0.5
    seed: int = 7


class NoiseShape:
    """Gaussian noise with the covariance of real embeddings, scaled to unit expected norm.

    Real embeddings vary along a few dominant directions; isotropic noise in 384 dimensions would
    make all neighbours nearly equidistant, an unrealistically hard case for approximate search.
    """

    def __init__(self, anchors: np.ndarray):
        centered = anchors - anchors.mean(axis=0)
        variances, directions = np.linalg.eigh(centered.T @ centered / len(anchors))
        variances = np.clip(variances, 0.0, None)
        self._transform = ((directions * np.sqrt(variances)).T / np.sqrt(variances.sum())).astype(np.float32)

    def sample(self, count: int, rng: np.random.Generator) -> np.ndarray:
        white = rng.standard_normal((count, self._transform.shape[0]), dtype=np.float32)
        return white @ self._transform


def _normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    faiss.normalize_L2(vectors)
    return vectors


def real_looking_texts(passages: list[Passage], count: int, seed: int) -> list[str]:
    """`count` passage-like texts: runs of 2 to 5 consecutive sentences of the real corpus.

    Real sentences give the embedder texts of the corpus's length and vocabulary (throughput
    depends on token count) and give the synthetic data real directions to spread from.
    """
    sentences = [s for p in passages for s in _SENTENCE_END.split(p.text) if s.strip()]
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        start = rng.randrange(len(sentences))
        texts.append(" ".join(sentences[start : start + rng.randint(2, 5)]))
    return texts


def synthetic_vectors(anchors: np.ndarray, count: int, spec: SyntheticSpec, noise: NoiseShape,
                      rng: np.random.Generator) -> np.ndarray:
    """`count` unit vectors from a two-level Gaussian mixture around real embeddings.

    Topics are drawn around the anchors (real passage embeddings) and passages around topics, so
    the data has clusters within clusters, as a large corpus of many documents would. There is at
    least one topic per anchor, and one per `passages_per_topic` passages in large corpora.
    """
    topic_count = max(len(anchors), count // spec.passages_per_topic)
    topics = anchors[rng.integers(len(anchors), size=topic_count)]
    topics = _normalized(topics + spec.topic_spread * noise.sample(topic_count, rng))
    vectors = np.empty((count, anchors.shape[1]), dtype=np.float32)
    for start in range(0, count, _GENERATION_CHUNK):
        rows = min(_GENERATION_CHUNK, count - start)
        centres = topics[rng.integers(topic_count, size=rows)]
        vectors[start : start + rows] = _normalized(centres + spec.passage_spread * noise.sample(rows, rng))
    return vectors


def synthetic_queries(corpus: np.ndarray, question_vectors: np.ndarray, count: int,
                      spec: SyntheticSpec, noise: NoiseShape, rng: np.random.Generator) -> np.ndarray:
    """The question embeddings given, then perturbed corpus vectors up to `count` queries."""
    real = question_vectors[:count]
    picks = corpus[rng.integers(len(corpus), size=count - len(real))]
    perturbed = _normalized(picks + spec.query_spread * noise.sample(len(picks), rng))
    return np.vstack([real, perturbed])


def build_params(kind: str, size: int, settings: IndexSettings, ef_construction: int) -> dict[str, int]:
    """Build-time parameters: the shipped settings, with IVF lists capped as index.store caps them."""
    if kind == "hnsw":
        return {"M": settings.hnsw_m, "efConstruction": ef_construction}
    if kind == "ivf":
        return {"nlist": max(1, min(settings.ivf_nlist, size // MIN_POINTS_PER_IVF_LIST))}
    return {}


def build_faiss_index(vectors: np.ndarray, kind: str, params: dict[str, int]) -> faiss.Index:
    """The FAISS index `index.store` builds for `kind`: same classes, metric and training.

    Mirrored rather than calling the store's private builder, which has no efConstruction knob;
    tests/test_bench_retrieval.py checks that both still build the same index.
    """
    dim = vectors.shape[1]
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params["efConstruction"]
    elif kind == "ivf":
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, params["nlist"], faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
    else:
        index = faiss.IndexFlatIP(dim)
    index.add(vectors)
    return index


def _percentiles(milliseconds: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(milliseconds, 50)), 3),
            "p95_ms": round(float(np.percentile(milliseconds, 95)), 3)}


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true top-k that the approximate search returned."""
    hits = [len(set(row[row >= 0]) & set(true_row)) for row, true_row in zip(found, truth)]
    return round(float(np.mean(hits)) / truth.shape[1], 4)


def timed_searches(index: faiss.Index, queries: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """One query at a time, as the chat asks them: positions of the top k, and milliseconds each."""
    found, milliseconds = [], []
    for row in range(len(queries)):
        started = time.perf_counter()
        _, positions = index.search(queries[row : row + 1], TOP_K)
        milliseconds.append((time.perf_counter() - started) * 1000)
        found.append(positions[0])
    return np.array(found), milliseconds


def search_point(index: faiss.Index, queries: np.ndarray, truth: np.ndarray) -> dict:
    """Recall@10 and search-only latency of the index as currently set."""
    found, milliseconds = timed_searches(index, queries)
    return {"recall_at_10": recall_at_k(found, truth),
            **{f"search_{key}": ms for key, ms in _percentiles(milliseconds).items()}}


def tune_search(index: faiss.Index, kind: str, queries: np.ndarray, truth: np.ndarray,
                nlist: int | None) -> tuple[dict, list[dict]]:
    """Sweep the search breadth; keep the smallest value that reaches RECALL_TARGET (else the best).

    Returns the kept point (with its parameter) and the whole sweep; the index is left set to it.
    """
    name, values = SEARCH_PARAMETERS[kind]
    if nlist is not None:  # probing more lists than exist changes nothing
        values = sorted({min(value, nlist) for value in values})
    sweep = []
    for value in values:
        faiss.ParameterSpace().set_index_parameter(index, name, value)
        sweep.append({name: value, **search_point(index, queries, truth)})
    good = [point for point in sweep if point["recall_at_10"] >= RECALL_TARGET]
    chosen = good[0] if good else max(sweep, key=lambda point: point["recall_at_10"])
    faiss.ParameterSpace().set_index_parameter(index, name, chosen[name])
    return dict(chosen), sweep


def end_to_end_latency(embedder: Embedder, index: faiss.Index, texts: list[str],
                       queries: np.ndarray) -> dict[str, float]:
    """Embed a real question, then search; the synthetic query vector stands in for its vector."""
    milliseconds = []
    for row, text in enumerate(texts):
        started = time.perf_counter()
        embedder.embed([text])
        index.search(queries[row : row + 1], TOP_K)
        milliseconds.append((time.perf_counter() - started) * 1000)
    return _percentiles(milliseconds)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _timed_build(vectors: np.ndarray, kind: str, params: dict[str, int]) -> tuple[faiss.Index, dict]:
    started = time.perf_counter()
    index = build_faiss_index(vectors, kind, params)
    seconds = time.perf_counter() - started
    return index, {"build_s": round(seconds, 3), "vectors_per_s": round(len(vectors) / seconds, 1)}


def question_count(queries: int) -> int:
    """How many of `queries` are the real questions: up to half, the rest come from the corpus."""
    return min(len(QUESTIONS), max(1, queries // 2))


def bench_synthetic(size: int, anchors: np.ndarray, question_vectors: np.ndarray,
                    embedder: Embedder, options: argparse.Namespace) -> dict:
    """Every index kind on `size` synthetic vectors, recall measured against exact (flat) search."""
    spec = SyntheticSpec()
    noise = NoiseShape(anchors)
    rng = np.random.default_rng([spec.seed, size])
    corpus = synthetic_vectors(anchors, size, spec, noise, rng)
    questions = question_vectors[: question_count(options.queries)]
    queries = synthetic_queries(corpus, questions, options.queries, spec, noise, rng)
    texts = [QUESTIONS[row % len(QUESTIONS)] for row in range(len(queries))]
    results, truth = {}, None
    for kind in KINDS:
        params = build_params(kind, size, IndexSettings(), options.hnsw_ef_construction)
        _log(f"{size:>8} {kind}: building with {params}")
        index, build = _timed_build(corpus, kind, params)
        if kind == "flat":
            scores, truth = index.search(queries, TOP_K)  # exact and batched: the reference
            results["data"] = _neighbour_stats(scores, len(questions))
            point, sweep = search_point(index, queries, truth), []
        else:
            point, sweep = tune_search(index, kind, queries, truth, params.get("nlist"))
            name = SEARCH_PARAMETERS[kind][0]
            params[name] = point.pop(name)
        results[kind] = {"passages": size, **build, **end_to_end_latency(embedder, index, texts, queries),
                         **point, "params": params, "sweep": sweep}
        _log(f"{size:>8} {kind}: p50 {results[kind]['p50_ms']} ms, recall@10 {point['recall_at_10']}")
        del index
        gc.collect()
    return results


def _neighbour_stats(scores: np.ndarray, real_questions: int) -> dict:
    """How close the true neighbours are, so readers can judge how realistic the data is."""
    def stats(block: np.ndarray) -> dict:
        if not len(block):
            return {}
        return {"top1_cosine": round(float(block[:, 0].mean()), 3),
                "top10_cosine": round(float(block[:, -1].mean()), 3)}

    return {"question_queries": stats(scores[:real_questions]),
            "perturbed_queries": stats(scores[real_questions:])}


def real_query_texts(passages: list[Passage], count: int, seed: int) -> list[str]:
    """The questions, then single corpus sentences (as a short, on-topic query) up to `count`."""
    questions = list(QUESTIONS[: question_count(count)])
    sentences = [s for p in passages for s in _SENTENCE_END.split(p.text) if len(s) > 20]
    rng = random.Random(seed)
    return questions + [rng.choice(sentences) for _ in range(count - len(questions))]


def bench_real(passages: list[Passage], embedder: Embedder, options: argparse.Namespace) -> dict:
    """The shipped hybrid retriever on the real corpus, one index kind at a time."""
    texts = real_query_texts(passages, options.queries, seed=SyntheticSpec().seed)
    query_vectors = embedder.embed(texts)
    results, truth, vectors = {}, None, None
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as data_dir:
        for kind in KINDS:
            # The default preset with this index kind, built by the shipped code in a scratch folder.
            settings = load_settings("default", data_dir=Path(data_dir) / kind, index={"kind": kind})
            retriever = PassageRetriever(settings, embedder=embedder)
            shipped = retriever.load()
            if vectors is None:  # the same passages for every kind; embed them once
                vectors = embedder.embed([embedding_text(p, settings.embedding.include_section_title)
                                          for p in shipped.passages])
            params = build_params(kind, len(vectors), settings.index, options.hnsw_ef_construction)
            _, build = _timed_build(vectors, kind, params)
            found, search_ms = _real_searches(shipped, query_vectors)
            truth = found if truth is None else truth  # flat comes first
            params.update(_shipped_search_params(settings.index, params), mode=settings.retrieval.mode)
            results[kind] = {"passages": len(shipped), **build, **_real_latency(retriever, texts),
                             **search_ms, "recall_at_10": recall_at_k(found, truth), "params": params}
            _log(f"    real {kind}: p50 {results[kind]['p50_ms']} ms ({settings.retrieval.mode})")
    return results


def _real_searches(shipped: PassageIndex, query_vectors: np.ndarray) -> tuple[np.ndarray, dict]:
    """Dense top-k positions of each query through `PassageIndex.search`, and its latency alone."""
    found, milliseconds = [], []
    for vector in query_vectors:
        started = time.perf_counter()
        hits = shipped.search(vector, TOP_K)[0]
        milliseconds.append((time.perf_counter() - started) * 1000)
        found.append([position for position, _ in hits] + [-1] * (TOP_K - len(hits)))
    return np.array(found), {f"search_{key}": ms for key, ms in _percentiles(milliseconds).items()}


def _real_latency(retriever: PassageRetriever, texts: list[str]) -> dict[str, float]:
    """Embedding + FAISS + BM25 + fusion, exactly as the bot retrieves, one question at a time."""
    milliseconds = []
    for text in texts:
        started = time.perf_counter()
        retriever.search(text, k=TOP_K)
        milliseconds.append((time.perf_counter() - started) * 1000)
    return _percentiles(milliseconds)


def _shipped_search_params(settings: IndexSettings, params: dict[str, int]) -> dict[str, int]:
    """The search breadth index.store applies when it opens an index of this kind."""
    if settings.kind == "hnsw":
        return {"efSearch": settings.hnsw_ef_search}
    if settings.kind == "ivf":
        return {"nprobe": min(settings.ivf_nprobe, params["nlist"])}
    return {}


def machine_facts(threads: int) -> dict:
    """The shared benchmark facts (CPU, load average...) plus the libraries and threads used here."""
    import torch

    versions = {}
    for package in ("faiss-cpu", "torch", "sentence-transformers", "numpy", "rank-bm25"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {**machine(), "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "versions": versions, "faiss_simd": faiss.get_compile_options().strip(),
            "faiss_threads": threads, "torch_threads": torch.get_num_threads()}


def markdown_table(report: dict) -> str:
    """The README table: one row per corpus size and index kind."""
    rows = ["| passages | index | parameters | build (vectors/s) | p50 ms | p95 ms | search p50 ms "
            "| recall@10 |", "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, kinds in report["results"].items():
        for kind in KINDS:
            run = kinds[kind]
            passages = f"{run['passages']:,}" + (" (real)" if label == "real" else "")
            params = ", ".join(f"{key}={value}" for key, value in run["params"].items()) or "exact"
            rows.append(f"| {passages} | {kind} | {params} | {run['vectors_per_s']:,.0f} | "
                        f"{run['p50_ms']:.1f} | {run['p95_ms']:.1f} | {run['search_p50_ms']:.2f} | {run['recall_at_10']:.3f} |")
    return "\n".join(rows)


def readme_block(report: dict) -> str:
    """What the README shows for a run: when and where it was measured, then the table."""
    machine = report["machine"]
    return (f"`{report['command']}` on {machine['started'][:10]}: {machine['cpus']} cores ({machine['cpu']}), "
            f"faiss-cpu {machine['versions']['faiss-cpu']}, torch {machine['versions']['torch']}, "
            f"{report['settings']['queries']} queries per size, {report.get('elapsed_s', '?')} s in all; "
            f"load average {machine['load_average_at_start'][0]} at the start and "
            f"{machine.get('load_average_at_end', ['?'])[0]} at the end. Embedding one question alone: "
            f"p50 {report['embedding']['query_p50_ms']:.1f} ms; embedding throughput "
            f"{report['embedding']['passages_per_s']} passages/s.{_busy_warning(machine)}"
            f"{_single_core_sentence(report.get('single_core_estimate'))}\n\n"
            f"{markdown_table(report)}\n")


def _single_core_sentence(estimate: dict | None) -> str:
    if not estimate:
        return ""
    return (f" On one core, counting only CPU time (which load does not inflate): embedding a question "
            f"p50 {estimate['embedding_p50_ms']:.1f} ms; the whole {estimate['mode']} retrieval on the "
            f"real corpus ({estimate['index_kind']} index) p50 {estimate['retrieval_p50_ms']:.1f} ms, "
            f"p95 {estimate['retrieval_p95_ms']:.1f} ms.")


def _busy_warning(machine: dict) -> str:
    loads = [machine["load_average_at_start"][0], *machine.get("load_average_at_end", [])[:1]]
    if max(loads) <= machine["cpus"]:
        return ""
    return (" **The machine was busy with other work (load above its core count), so every "
            "wall-clock figure is inflated; recall is not affected.**")


def plot_latency(report: dict, path: Path) -> None:
    """Latency against corpus size (log x): end to end on the left, FAISS search alone on the right."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on a server
    import matplotlib.pyplot as plt

    figure, (total, search) = plt.subplots(1, 2, figsize=(12, 4.8))
    colours = {"flat": "tab:blue", "hnsw": "tab:orange", "ivf": "tab:green"}
    for kind in KINDS:
        runs = [kinds[kind] for kinds in report["results"].values()]
        sizes = [run["passages"] for run in runs]
        total.plot(sizes, [run["p50_ms"] for run in runs], "o-", color=colours[kind], label=f"{kind} p50")
        total.plot(sizes, [run["p95_ms"] for run in runs], "x--", color=colours[kind], alpha=0.6,
                   label=f"{kind} p95")
        search.plot(sizes, [run["search_p50_ms"] for run in runs], "o-", color=colours[kind], label=kind)
    total.axhline(50, color="grey", linestyle=":", label="50 ms target (1M)")
    total.axhline(20, color="black", linestyle=":", label="20 ms target (real corpus)")
    total.axhline(report["embedding"]["query_p50_ms"], color="purple", linestyle="-.", alpha=0.6,
                  label="query embedding alone, p50")
    total.set(title="Query latency: embedding + search (+ BM25 fusion on the real corpus)",
              xscale="log", yscale="log", xlabel="passages in the index", ylabel="milliseconds")
    search.set(title="FAISS search alone, p50", xscale="log", yscale="log",
               xlabel="passages in the index", ylabel="milliseconds")
    for axes in (total, search):
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=7)
    machine = report["machine"]
    figure.suptitle(f"crampbot retrieval, {machine['cpus']} cores (load average "
                    f"{machine['load_average_at_start'][0]} at start), faiss {machine['versions']['faiss-cpu']}, "
                    f"{report['settings']['queries']} queries, recall@10 >= {RECALL_TARGET} where reachable",
                    fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def parse_sizes(text: str) -> list[str]:
    """'real,10000,1e6' -> ['real', '10000', '1000000']."""
    sizes = []
    for part in (piece.strip() for piece in text.split(",") if piece.strip()):
        if part == "real":
            sizes.append(part)
            continue
        try:
            size = int(float(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"size {part!r} is neither 'real' nor a number") from None
        if size < TOP_K:
            raise argparse.ArgumentTypeError(f"size {size} is below {TOP_K} passages")
        sizes.append(str(size))
    return sizes


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.retrieval", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, help=f"comma-separated; default {FULL_SIZES}")
    parser.add_argument("--queries", type=int, help="queries per size (default 200; 50 with --quick)")
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}, fewer queries")
    parser.add_argument("--embed-passages", type=int,
                        help="real-looking passages embedded for throughput (default 2000; 64 with --quick)")
    parser.add_argument("--threads", type=int, default=2, help="FAISS and torch threads (default 2)")
    parser.add_argument("--hnsw-ef-construction", type=int, default=HNSW_EF_CONSTRUCTION)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the JSON and the plot")
    options = parser.parse_args(argv)
    options.sizes = options.sizes or parse_sizes(QUICK_SIZES if options.quick else FULL_SIZES)
    options.queries = options.queries or (50 if options.quick else 200)
    options.embed_passages = options.embed_passages or (64 if options.quick else 2000)
    if options.queries < 2:
        parser.error("--queries must be at least 2")
    return options


def run(options: argparse.Namespace, command: str,
        save: Callable[[dict], None] = lambda report: None) -> dict:
    """The whole benchmark; `save` gets the report so far after each size (long runs may die)."""
    import torch

    started = time.perf_counter()
    faiss.omp_set_num_threads(options.threads)
    torch.set_num_threads(options.threads)
    report = {"command": command, "machine": machine_facts(options.threads),
              "settings": {"sizes": options.sizes, "queries": options.queries, "top_k": TOP_K,
                           "recall_target": RECALL_TARGET, "targets_p50_ms": TARGET_P50_MS,
                           "synthetic": asdict(SyntheticSpec())}}
    embedder = load_embedder(EmbeddingSettings())
    passages = load_passages(CorpusSettings())
    texts = real_looking_texts(passages, options.embed_passages, seed=SyntheticSpec().seed)
    embedding_started = time.perf_counter()
    looking_vectors = embedder.embed(texts)
    seconds = time.perf_counter() - embedding_started
    report["embedding"] = {"model": embedder.name, "passages": len(texts), "seconds": round(seconds, 2),
                           "passages_per_s": round(len(texts) / seconds, 1),
                           "mean_chars": round(sum(map(len, texts)) / len(texts))}
    report["embedding"].update(_query_embedding_latency(embedder, QUESTIONS[: options.queries]))
    _log(f"embedding: {report['embedding']}")
    report["single_core_estimate"] = single_core_estimate(embedder, options)
    _log(f"single-core estimate: {report['single_core_estimate']}")
    real_vectors = embedder.embed([embedding_text(p, True) for p in passages])
    anchors = np.vstack([real_vectors, looking_vectors])
    question_vectors = embedder.embed(list(QUESTIONS))
    report["settings"]["synthetic"]["anchors"] = len(anchors)
    report["results"] = {}
    for label in options.sizes:
        if label == "real":
            report["results"][label] = bench_real(passages, embedder, options)
        else:
            report["results"][label] = bench_synthetic(int(label), anchors, question_vectors, embedder, options)
        gc.collect()
        save(report)
    report["machine"]["load_average_at_end"] = load_average()
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    return report


def single_core_estimate(embedder: Embedder, options: argparse.Namespace) -> dict:
    """What a query costs on one idle core, measured even when the machine is shared.

    Wall-clock time on a busy machine includes waiting for a CPU; the CPU time of the thread that
    does the work does not. With 1 torch and 1 FAISS thread all the work runs on the calling
    thread, so its CPU time is close to the latency of one idle core (two are usually faster).
    """
    import torch

    embedding, retrieval = [], []
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as data_dir:
            settings = load_settings("default", data_dir=Path(data_dir))
            retriever = PassageRetriever(settings, embedder=embedder)
            retriever.load()
            for question in QUESTIONS[: options.queries]:
                started = time.thread_time()
                embedder.embed([question])
                embedded = time.thread_time()
                retriever.search(question, k=TOP_K)
                embedding.append((embedded - started) * 1000)
                retrieval.append((time.thread_time() - embedded) * 1000)
    finally:
        torch.set_num_threads(options.threads)
        faiss.omp_set_num_threads(options.threads)
    estimate = {"threads": 1, "index_kind": settings.index.kind, "mode": settings.retrieval.mode}
    for part, values in (("embedding", embedding), ("retrieval", retrieval)):
        estimate.update({f"{part}_{key}": ms for key, ms in _percentiles(values).items()})
    return estimate


def _query_embedding_latency(embedder: Embedder, questions: tuple[str, ...]) -> dict[str, float]:
    """Embedding one question alone: the floor under every end-to-end latency."""
    milliseconds = []
    for question in questions:
        started = time.perf_counter()
        embedder.embed([question])
        milliseconds.append((time.perf_counter() - started) * 1000)
    return {f"query_{key}": ms for key, ms in _percentiles(milliseconds).items()}


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)
    command = " ".join(["python -m bench.retrieval", *(sys.argv[1:] if argv is None else argv)])
    options.out.mkdir(parents=True, exist_ok=True)

    def save(report: dict) -> None:
        write_json(options.out / "retrieval.json", report)
        plot_latency(report, options.out / "retrieval_latency.png")

    report = run(options, command, save)
    save(report)
    # Only a run written to bench/results/ speaks for the README; scratch runs leave it alone.
    if options.out.resolve() == RESULTS_DIR and update_readme(README_BLOCK, readme_block(report)):
        _log(f"updated the {README_BLOCK} block of bench/README.md")
    print(markdown_table(report))
    print(f"\n{report['elapsed_s']} s; wrote {options.out / 'retrieval.json'} and retrieval_latency.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
