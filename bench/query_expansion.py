"""Would a model-written search query rescue paraphrases? HyDE measured against plain retrieval.

    .venv/bin/python -m bench.query_expansion                 # llama.cpp writes (about 2 minutes)
    .venv/bin/python -m bench.query_expansion --backend transformers

For every in_scope question of evals/sets/dev.jsonl and fresh.jsonl, the model writes two
sentences a health article might contain in answer (a "hypothetical document", HyDE); retrieval
then searches the normalized question plus those sentences. Hit@3 and MRR@10 with and without,
per set and style, go to bench/results/query_expansion.json. Not part of the pipeline: measured
here, it helped the held-out paraphrases and hurt the dev set (README "Evaluation").
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.tables import RESULTS_DIR, machine, write_json

RESULTS = RESULTS_DIR / "query_expansion.json"
SETS = ("dev", "fresh")
INSTRUCTION = ("Write two short sentences, in the plain style of a health article about leg cramps, "
               "that answer the question. Name the likely causes or remedies in medical words. "
               "No preamble.")


def summarize(rows: list[dict]) -> dict:
    """The evaluation's retrieval metrics of the plain ('base') and expanded ('hyde') first-hit ranks."""
    from evals.metrics import rank_metrics

    return {"cases": len(rows), "plain": rank_metrics([row["base"] for row in rows]),
            "hyde": rank_metrics([row["hyde"] for row in rows])}


def main(argv: list[str] | None = None) -> int:
    from bot.generation.factory import make_generator
    from bot.query import search_query
    from bot.retrieval import PassageRetriever
    from bot.settings import load_settings
    from evals.dataset import load_cases
    from evals.metrics import first_hit_rank

    parser = argparse.ArgumentParser(prog="bench.query_expansion", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="llamacpp", choices=["llamacpp", "transformers"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    settings = load_settings("default")
    generator = make_generator(settings.generation.model_copy(update={"backend": args.backend}),
                               settings.models_dir)
    generator.load()
    retriever = PassageRetriever(settings)
    retriever.load()
    rows = []
    for set_name in SETS:
        for case in load_cases(Path(f"evals/sets/{set_name}.jsonl"), raw_dir=settings.corpus.raw_dir):
            if case.category != "in_scope":
                continue
            query = search_query(case.question, case.history, settings).text
            plain, _ = retriever.search(query, k=10)
            started = time.perf_counter()
            hypothesis = "".join(generator.stream(
                [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": query}], 60))
            seconds = time.perf_counter() - started
            expanded, _ = retriever.search(f"{query} {hypothesis}", k=10)
            rows.append({"set": set_name, "id": case.id, "style": case.extra.get("style"),
                         "base": first_hit_rank(plain, case.gold),
                         "hyde": first_hit_rank(expanded, case.gold),
                         "generation_s": round(seconds, 2), "hypothesis": hypothesis.strip()})
    summary = {}
    for set_name in SETS:
        in_set = [row for row in rows if row["set"] == set_name]
        summary[set_name] = {"all": summarize(in_set)}
        for style in sorted({row["style"] for row in in_set if row["style"]}):
            summary[set_name][style] = summarize([row for row in in_set if row["style"] == style])
    seconds = sorted(row["generation_s"] for row in rows)
    write_json(args.out, {"command": "python -m bench.query_expansion " + " ".join(argv or sys.argv[1:]),
                          "machine": machine(), "backend": args.backend, "instruction": INSTRUCTION,
                          "generation_s_median": seconds[len(seconds) // 2], "summary": summary,
                          "rows": rows})
    for set_name, styles in summary.items():
        for style, result in styles.items():
            print(f"{set_name:6} {style:11} n={result['cases']:2}  hit@3 {result['plain']['hit_at_3']:.3f} -> "
                  f"{result['hyde']['hit_at_3']:.3f}  MRR@10 {result['plain']['mrr_at_10']:.3f} -> "
                  f"{result['hyde']['mrr_at_10']:.3f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
