"""`crampbot` command line: serve, ingest, ask, eval, eval-compare, calibrate, feedback-summary."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Offline by construction: nothing may reach a model hub, whatever the environment says.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _settings(args: argparse.Namespace):
    from bot.settings import load_settings

    return load_settings(preset=args.preset, config_file=args.config)


def cmd_serve(args: argparse.Namespace) -> int:
    import app

    argv = ["--preset", args.preset] if args.preset else []
    if args.config:
        argv += ["--config", args.config]
    return app.main(argv)


def cmd_ingest(args: argparse.Namespace) -> int:
    from bot.retrieval import PassageRetriever

    settings = _settings(args)
    started = time.perf_counter()
    index = PassageRetriever(settings).load(progress=True, force_rebuild=True)
    seconds = time.perf_counter() - started
    print(f"Indexed {len(index.passages)} passages into {settings.index_dir} in {seconds:.1f} s")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from bot.pipeline import CrampBot

    answer = CrampBot(_settings(args)).ask(args.question)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(answer.full_text.replace(answer.disclaimer, "").rstrip())
    for citation in answer.citations:
        p = citation.passage
        print(f"\n[{citation.number}] {p.title} — {p.section or 'introduction'}\n    {p.text}")
    print(f"\n{answer.disclaimer}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from evals.compare import check_thresholds, parse_thresholds
    from evals.runner import run_eval

    # Parsed before the run: a typo in a threshold must not cost a whole evaluation.
    thresholds = parse_thresholds(args.fail_under, args.fail_over)
    settings = _settings(args)
    out = Path(args.out or f"evals/runs/{settings.preset}{'-retrieval' if args.retrieval_only else ''}")
    metrics = run_eval(Path(args.set), out, settings, retrieval_only=args.retrieval_only,
                       limit=args.limit)
    print(f"Wrote {out}/metrics.json, cases.jsonl, report.md and report.html")
    lines, passed = check_thresholds(metrics, thresholds, str(out))
    if lines:
        print("\n".join(lines))
    return 0 if passed else 1


def cmd_eval_compare(args: argparse.Namespace) -> int:
    from evals.compare import check_thresholds, compare_runs, load_metrics, parse_thresholds

    thresholds = parse_thresholds(args.fail_under, args.fail_over)
    out = Path(args.out) if args.out else None
    print(compare_runs([Path(d) for d in args.dirs], out))
    lines, passed = check_thresholds(load_metrics(Path(args.dirs[-1])), thresholds, args.dirs[-1])
    if lines:
        print("\n".join(lines))
    return 0 if passed else 1


def cmd_calibrate(args: argparse.Namespace) -> int:
    from bot.calibrate import calibrate_gate

    result = calibrate_gate(Path(args.set), _settings(args), Path(args.out))
    print(json.dumps({k: v for k, v in result.items() if k not in ("curve", "signals")}, indent=2))
    print(f"Wrote {args.out}/gate.json and {args.out}/gate_curve.png")
    return 0


def cmd_feedback_summary(args: argparse.Namespace) -> int:
    from web.feedback import feedback_path, summarize

    print(summarize(Path(args.file) if args.file else feedback_path(_settings(args))))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crampbot", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--preset", help="named preset from bot/presets (default: default)")
    common.add_argument("--config", help="JSON config file overriding the preset")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", parents=[common], help="start the web chat").set_defaults(func=cmd_serve)
    sub.add_parser("ingest", parents=[common], help="build or rebuild the index").set_defaults(func=cmd_ingest)
    ask = sub.add_parser("ask", parents=[common], help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    ask.set_defaults(func=cmd_ask)

    ev = sub.add_parser("eval", parents=[common], help="run an evaluation set")
    ev.add_argument("set", help="evaluation set (JSON Lines)")
    ev.add_argument("--out", help="folder for the results (default: evals/runs/<preset>)")
    ev.add_argument("--retrieval-only", action="store_true", help="skip the language model")
    ev.add_argument("--limit", type=int, help="only the first N cases")
    ev.add_argument("--fail-under", action="append", default=[], metavar="NAME=MIN,...",
                    help="exit 1 if a metric is below MIN, e.g. must_mention=0.85,decline_oos=0.95")
    ev.add_argument("--fail-over", action="append", default=[], metavar="NAME=MAX,...",
                    help="exit 1 if a lower-is-better metric is above MAX, e.g. false_decline=0.05")
    ev.set_defaults(func=cmd_eval)

    cmp_ = sub.add_parser("eval-compare", help="side-by-side table of evaluation runs")
    cmp_.add_argument("dirs", nargs="+", help="run folders; the first is the reference")
    cmp_.add_argument("--out", help="also write the table to this file")
    cmp_.add_argument("--fail-under", action="append", default=[], metavar="NAME=MIN,...",
                      help="exit 1 if a metric of the last run is below MIN")
    cmp_.add_argument("--fail-over", action="append", default=[], metavar="NAME=MAX,...",
                      help="exit 1 if a lower-is-better metric of the last run is above MAX")
    cmp_.set_defaults(func=cmd_eval_compare)

    cal = sub.add_parser("calibrate", parents=[common],
                         help="choose the relevance-gate threshold from an evaluation set")
    cal.add_argument("set", nargs="?", default="evals/sets/dev.jsonl", help="evaluation set")
    cal.add_argument("--out", default="evals/calibration", help="folder for gate.json and the plot")
    cal.set_defaults(func=cmd_calibrate)

    fb = sub.add_parser("feedback-summary", parents=[common], help="summarize thumbs up/down")
    fb.add_argument("--file", help="feedback JSON Lines file (default: the configured one)")
    fb.set_defaults(func=cmd_feedback_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    from bot.errors import CrampbotError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CrampbotError as error:
        print(f"crampbot: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
