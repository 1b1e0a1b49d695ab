"""Adding one leaflet to a large index vs rebuilding it: `python -m index.update_bench [--sources N]`.

Makes N synthetic sources (a few sentences of varied wording each), chunks them with the
project's chunker, builds the index from scratch with the real embedding model, then times
adding one real leaflet (corpus/sample_leaflets.py's text) with `update_index`, and checks that
removing it again leaves the top-1 retrieval of the other sources' passages unchanged. Both
timings include chunking every source, as `crampbot sources add` does. Writes JSON to --out.
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from corpus.chunking import chunk_source
from corpus.settings import CorpusSettings
from corpus.sources import SourceText
from index.embedding import load_embedder
from index.settings import EmbeddingSettings, IndexSettings
from index.store import build_index, update_index

_SUBJECTS = ("calf muscle", "night cramp", "varicose vein", "compression stocking", "magnesium",
             "hamstring", "foot arch", "ankle swelling", "statin", "diuretic", "marathon runner",
             "pregnant woman", "older adult", "shin splint", "knee joint", "heel pain")
_VERBS = ("eases", "worsens", "prevents", "follows", "accompanies", "signals", "triggers",
          "relieves", "masks", "explains")
_OBJECTS = ("dehydration", "long standing", "cold water", "tight shoes", "poor sleep",
            "a blood clot", "low potassium", "heavy sweating", "sitting cross-legged",
            "an ultrasound scan", "gentle stretching", "a warm bath", "quinine tonic")
_WHEN = ("after exercise", "at night", "in the morning", "during pregnancy", "in hot weather",
         "after surgery", "in winter", "on long flights", "after a fall", "while swimming")


def synthetic_source(n: int, rng: random.Random) -> SourceText:
    paragraphs = []
    for _ in range(rng.randint(3, 5)):
        sentences = [f"In leaflet {n}, {rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} "
                     f"{rng.choice(_OBJECTS)} {rng.choice(_WHEN)}." for _ in range(4)]
        paragraphs.append(" ".join(sentences))
    return SourceText(name=f"synthetic-{n:04d}.txt", text="\n\n".join(paragraphs) + "\n")


def leaflet_source() -> SourceText:
    from corpus.sample_leaflets import LEAFLET

    text = "".join(f"## {heading}\n\n" + "\n\n".join(body) + "\n\n"
                   for heading, body in LEAFLET.items())
    return SourceText(name="riverside-leaflet.md", text=text)


def chunk_all(sources: list[SourceText], settings: CorpusSettings):
    return [p for source in sources for p in chunk_source(source, source.stem, settings)]


def run(count: int, folder: Path) -> dict:
    rng = random.Random(16)
    settings, embedding, index = CorpusSettings(), EmbeddingSettings(), IndexSettings()
    embedder = load_embedder(embedding)
    sources = [synthetic_source(n, rng) for n in range(count)]
    common = dict(chunker_settings={}, embedder=embedder, embedding=embedding, index=index)

    started = time.perf_counter()
    base = build_index(folder, passages=chunk_all(sources, settings), corpus_fingerprint="base",
                       **common)
    rebuild_s = time.perf_counter() - started

    started = time.perf_counter()
    added = update_index(folder, passages=chunk_all(sources + [leaflet_source()], settings),
                         corpus_fingerprint="added", **common)
    add_s = time.perf_counter() - started

    # Removing the leaflet again: every other passage must be found as before.
    probes = rng.sample(base.passages, min(300, len(base.passages)))
    queries = embedder.embed([p.text.split(". ")[0] for p in probes])

    def top1(built) -> list[str]:
        return [built.passages[hits[0][0]].id for hits in built.search(queries, 1)]

    before = top1(base)
    removed = update_index(folder, passages=chunk_all(sources, settings),
                           corpus_fingerprint="removed", **common)
    after = top1(removed)
    return {
        "sources": count, "passages": len(base), "leaflet_passages": len(added) - len(base),
        "rebuild_seconds": round(rebuild_s, 2), "add_one_seconds": round(add_s, 2),
        "speedup": round(rebuild_s / add_s, 1),
        "add_embedded": added.manifest.last_change["embedded"],
        "remove_embedded": removed.manifest.last_change["embedded"],
        "top1_recall_before_remove": sum(a == p.id for a, p in zip(before, probes)) / len(probes),
        "top1_recall_after_remove": sum(a == p.id for a, p in zip(after, probes)) / len(probes),
        "top1_unchanged_by_remove": before == after,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--out", default="bench-update.json", help="JSON file for the numbers")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        result = run(args.sources, Path(folder) / "index")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
