"""Generation speed of every backend and model preset on the same prompts, beside llama.cpp.

    .venv/bin/python -m bench.generation            # -> bench/results/generation.json + README table
    .venv/bin/python -m bench.generation --presets tiny --variants llamacpp,transformers --repeats 1

The prompts are the pipeline's own: the questions below, their retrieved passages and the
system rules, built once and given to every variant. Each variant runs in a fresh process
(so peak memory is its own) that loads the model, answers one untimed warm-up, then each
prompt `--repeats` times back to back. Figures are medians; the load average is recorded
beside each, because the machine may be shared. Each answer is also verified against its
passages (bot.grounding) so that a faster variant that stops being grounded shows up here.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.tables import RESULTS_DIR, load_average, machine, markdown_table, update_readme, write_json

RESULTS = RESULTS_DIR / "generation.json"
README_BLOCK = "generation-table"
REFERENCE = "llamacpp"
QUESTIONS = [
    "Why do my calves cramp at night?",
    "Which vitamins help prevent leg cramps?",
    "What should I do when my calf cramps right now?",
]
# Backend settings per variant (GenerationSettings fields); the model and dtype come from the
# preset. transformers-fp32 is not run by default: its dequantized cache (6 GB for the default
# model) would be written on first use.
VARIANTS: dict[str, dict] = {
    "llamacpp": {"backend": "llamacpp"},
    "transformers": {"backend": "transformers", "quantization": "none"},
    "transformers-int8": {"backend": "transformers", "quantization": "int8-dynamic"},
    "transformers-int4": {"backend": "transformers", "quantization": "int4-weight"},
    "transformers-fp32": {"backend": "transformers", "dtype": "float32", "quantization": "none"},
}
DEFAULT_VARIANTS = ["llamacpp", "transformers", "transformers-int8", "transformers-int4"]
PRESETS = ["default", "tiny"]


# -- the measuring process ---------------------------------------------------------------------

def measure(spec: dict) -> dict:
    """Load one variant and time its answers to `spec['prompts']` (runs in its own process)."""
    from bot.generation.factory import make_generator
    from bot.settings import load_settings

    settings = load_settings(spec["preset"], generation=spec["overrides"])
    started = time.perf_counter()
    generator = make_generator(settings.generation, settings.models_dir)
    generator.load()
    load_s = time.perf_counter() - started
    # Warm up on the system rules and a greeting: the rules are in every prompt (llama.cpp keeps
    # their computed prefix between answers, as it does in the app), the sources are not.
    greeting = [spec["prompts"][0][0], {"role": "user", "content": "Hello."}]
    warm_up = _timed_answer(generator, greeting, 8)
    runs = []
    for repeat in range(spec["repeats"]):
        for number, messages in enumerate(spec["prompts"]):
            run = _timed_answer(generator, messages, spec["max_new_tokens"])
            runs.append({"prompt": number, "repeat": repeat, "prompt_tokens": _prompt_tokens(generator, messages), **run})
    return {
        "model": generator.name,
        "generation_settings": settings.generation.model_dump(mode="json"),
        "threads": settings.generation.threads or os.cpu_count(),
        "load_s": round(load_s, 2),
        "load_phases": getattr(generator, "load_phases", {}),
        "warm_up_first_token_s": warm_up["first_token_s"],
        # ru_maxrss is in KiB on Linux; it counts the mapped model file's pages that were read.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "runs": runs,
    }


def _prompt_tokens(generator, messages: list) -> int | None:
    """Tokens the model reads before its first token (backends that can count them)."""
    counter = getattr(generator, "prompt_tokens", None)
    return counter(messages) if counter else None


def _timed_answer(generator, messages: list, max_new_tokens: int) -> dict:
    load_before = load_average()
    cpu_started, started = time.process_time(), time.perf_counter()
    first = None
    pieces = []
    for piece in generator.stream(messages, max_new_tokens):
        if first is None:
            first = time.perf_counter()
        pieces.append(piece)
    ended = time.perf_counter()
    cpu_s = time.process_time() - cpu_started
    text = "".join(pieces)
    tokens = generator.count_tokens(text) if text else 0
    decode_s = ended - first if first is not None else 0.0
    return {
        "first_token_s": round(first - started, 3) if first is not None else None,
        "total_s": round(ended - started, 3),
        "generated_tokens": tokens,
        # The first token's time is prompt processing; decoding is the tokens after it.
        "decode_tokens_per_s": round((tokens - 1) / decode_s, 2) if tokens > 1 and decode_s > 0 else None,
        "cpu_s": round(cpu_s, 2),
        "load_average": load_before,
        "answer": text,
    }


# -- the driver ----------------------------------------------------------------------------------

def build_prompts(questions: list[str], passages_per_prompt: int | None = None,
                  passage_chars: int | None = None) -> tuple[list[list], list[list], object]:
    """The pipeline's messages for each question, the passages shown, and the embedder.

    `passages_per_prompt` and `passage_chars` override the default preset's top_k and
    max_passage_chars, to measure what a shorter prompt saves on the first token.
    """
    from bot.prompt import build_messages
    from bot.retrieval import PassageRetriever
    from bot.settings import load_settings

    settings = load_settings("default")
    retriever = PassageRetriever(settings)
    retriever.load()
    prompts, shown = [], []
    for question in questions:
        results, _ = retriever.search(question, k=passages_per_prompt)
        passages = [r.passage for r in results]
        prompts.append(build_messages(
            question, passages, [], history_turns=settings.generation.history_turns,
            max_passage_chars=passage_chars or settings.generation.max_passage_chars,
        ))
        shown.append(passages)
    return prompts, shown, retriever.embedder


def run_variant(preset: str, variant: str, prompts: list, repeats: int, max_new_tokens: int,
                threads: int | None = None) -> dict:
    overrides = dict(VARIANTS[variant], **({"threads": threads} if threads is not None else {}))
    spec = {"preset": preset, "overrides": overrides, "prompts": prompts,
            "repeats": repeats, "max_new_tokens": max_new_tokens}
    with tempfile.TemporaryDirectory() as scratch:
        spec_path, out_path = Path(scratch) / "spec.json", Path(scratch) / "out.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "bench.generation", "--worker", str(spec_path), str(out_path)],
            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        if done.returncode != 0 or not out_path.is_file():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return {"preset": preset, "variant": variant, "error": " / ".join(tail)}
        result = json.loads(out_path.read_text(encoding="utf-8"))
    result.update(preset=preset, variant=variant, wall_s=round(time.perf_counter() - started, 1),
                  load_average_after=load_average())
    return result


def summarize(result: dict, shown: list[list], embedder) -> dict:
    """Medians over the runs, plus how grounded the answers are."""
    from bot.grounding import verify_answer

    runs = result["runs"]
    grounded = []
    for run in runs:
        check = verify_answer(run["answer"].strip(), shown[run["prompt"]], embedder)
        run["verified_fraction"] = round(check.verified_fraction, 2)
        run["declined"] = check.declined
        grounded.append(check.verified_fraction)
    decode = [r["decode_tokens_per_s"] for r in runs if r["decode_tokens_per_s"]]
    return {
        "prompt_tokens": _median([r["prompt_tokens"] for r in runs if r.get("prompt_tokens")]),
        "first_token_s": _median([r["first_token_s"] for r in runs if r["first_token_s"] is not None]),
        "decode_tokens_per_s": _median(decode),
        "total_s": _median([r["total_s"] for r in runs]),
        "generated_tokens": _median([r["generated_tokens"] for r in runs]),
        "cpu_s_per_token": _median([r["cpu_s"] / r["generated_tokens"] for r in runs if r["generated_tokens"]]),
        "peak_rss_mb": result["peak_rss_mb"],
        "load_s": result["load_s"],
        "load_phases": result.get("load_phases", {}),
        "mean_verified_fraction": round(statistics.mean(grounded), 2) if grounded else None,
        "declines": sum(r["declined"] for r in runs),
        "load_average_range": [min(r["load_average"][0] for r in runs), max(r["load_average"][0] for r in runs)],
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def add_ratios(results: list[dict]) -> None:
    """Each summary's ratio to llama.cpp on the same preset: tokens/s as a share, times as a multiple."""
    reference = {r["preset"]: r["summary"] for r in results if r["variant"] == REFERENCE and "summary" in r}
    for result in results:
        base = reference.get(result["preset"])
        summary = result.get("summary")
        if not base or not summary:
            continue
        result["vs_llamacpp"] = {
            "decode_tokens_per_s": _ratio(summary["decode_tokens_per_s"], base["decode_tokens_per_s"]),
            "first_token_s": _ratio(summary["first_token_s"], base["first_token_s"]),
            "total_s": _ratio(summary["total_s"], base["total_s"]),
            "peak_rss_mb": _ratio(summary["peak_rss_mb"], base["peak_rss_mb"]),
            "cpu_s_per_token": _ratio(summary["cpu_s_per_token"], base["cpu_s_per_token"]),
        }


def _ratio(value, base) -> float | None:
    return round(value / base, 2) if value and base else None


def table(results: list[dict]) -> str:
    rows = []
    for r in results:
        if "summary" not in r:
            rows.append([r["preset"], r["variant"], "", f"failed: {r.get('error', '')[:80]}", "", "", "", "", "", "", ""])
            continue
        s, v = r["summary"], r.get("vs_llamacpp", {})
        rows.append([
            r["preset"], r["variant"], s.get("prompt_tokens") or "–",
            _with_ratio(s["first_token_s"], v.get("first_token_s"), "s"),
            _with_ratio(s["decode_tokens_per_s"], v.get("decode_tokens_per_s"), ""),
            _with_ratio(s["total_s"], v.get("total_s"), "s"),
            _with_ratio(s["peak_rss_mb"], v.get("peak_rss_mb"), " MB"),
            _with_ratio(s["cpu_s_per_token"], v.get("cpu_s_per_token"), " s"),
            s["generated_tokens"], s["mean_verified_fraction"],
            "–".join(f"{x:.1f}" for x in s["load_average_range"]),
        ])
    header = ["preset", "backend", "prompt tokens", "first token (× llama.cpp)", "decode tok/s (× llama.cpp)",
              "full answer (× llama.cpp)", "peak memory (× llama.cpp)", "CPU time per token (× llama.cpp)",
              "tokens", "verified", "load avg"]
    return markdown_table(header, rows)


def _with_ratio(value, ratio, unit: str) -> str:
    if value is None:
        return "–"
    text = f"{value:g}{unit}"
    return f"{text} ({ratio:g}×)" if ratio is not None else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.generation", description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--repeats", type=int, default=2, help="answers per prompt and variant")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for every variant (default: the settings', all cores); "
                        "1 keeps a shared machine's other jobs from stalling the threads' barriers")
    parser.add_argument("--passages", type=int, default=None,
                        help="passages per prompt (default: the default preset's top_k)")
    parser.add_argument("--passage-chars", type=int, default=None,
                        help="characters per passage in the prompt (default: the preset's)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite the README table")
    parser.add_argument("--worker", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(Path(args.worker[0]).read_text(encoding="utf-8"))
        write_json(Path(args.worker[1]), measure(spec))
        return 0

    header = machine()
    prompts, shown, embedder = build_prompts(QUESTIONS, args.passages, args.passage_chars)
    results = []
    for preset in args.presets.split(","):
        for variant in args.variants.split(","):
            print(f"{preset} / {variant} ... (load {load_average()[0]})", flush=True)
            result = run_variant(preset, variant, prompts, args.repeats, args.max_new_tokens, args.threads)
            if "runs" in result:
                result["summary"] = summarize(result, shown, embedder)
            results.append(result)
    add_ratios(results)
    markdown = table(results)
    command = "python -m bench.generation " + " ".join(argv if argv is not None else sys.argv[1:])
    write_json(args.out, {"command": command.strip(), "machine": header, "questions": QUESTIONS,
                          "prompts": prompts, "results": results,
                          "load_average_at_end": load_average()})
    print(markdown)
    if not args.no_readme and args.out == RESULTS:
        update_readme(README_BLOCK, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
