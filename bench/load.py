"""Concurrent chat sessions against the real web app on 127.0.0.1, bounded in number and time.

    .venv/bin/python -m bench.load                  # fake model -> bench/results/load.json + README table
    .venv/bin/python -m bench.load --model tiny --sessions 1,4 --seconds 30

By default the model is the scripted fake generator (`--model fake`): everything else is
real (HTTP, input guard, query rewriting hooks, hybrid retrieval, answer verification,
conversation store), so the figures show what the app tier costs and how it behaves when
more sessions arrive than it serves at once. `--model tiny` uses the packaged SmolLM2 135M
instead. Each session is a conversation: a question, then follow-ups with its
conversation_id, then a new conversation, until the time is up. Any response other than an
answer, a 429 (rate limit) or a 503 (busy) counts as an error, as does a server that stops
answering /health.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from bench.app_process import API, AppProcess, ask
from bench.tables import RESULTS_DIR, load_average, machine, markdown_table, update_readme, write_json

RESULTS = RESULTS_DIR / "load.json"
README_BLOCK = "load-table"
CONVERSATION = [
    "Why do my calves cramp at night?",
    "How can I stop it?",
    "Which vitamins help prevent leg cramps?",
]
MODELS: dict[str, tuple[str, dict]] = {  # name -> (preset, generation settings)
    "fake": ("default", {"backend": "fake"}),
    "tiny": ("tiny", {"backend": "transformers"}),
}
_EXPECTED = {200: "answered", 429: "rate limited", 503: "busy"}


def session(app: AppProcess, until: float, timeout_s: float, records: list, lock: threading.Lock) -> None:
    """One visitor: conversations of CONVERSATION's questions until `until` (monotonic)."""
    with httpx.Client(timeout=timeout_s, trust_env=False) as client:
        while time.monotonic() < until:
            conversation_id = None
            for question in CONVERSATION:
                if time.monotonic() >= until:
                    return
                record = {"sent_at": time.monotonic()}
                try:
                    response, seconds = ask(client, app.base_url, question, conversation_id)
                    record.update(status=response.status_code, seconds=seconds)
                    if response.status_code == 200:
                        conversation_id = response.json().get("conversation_id")
                        record["answer_error"] = response.json().get("error")
                except httpx.HTTPError as error:
                    record.update(status=type(error).__name__, seconds=time.monotonic() - record["sent_at"])
                with lock:
                    records.append(record)
                if record["status"] != 200:
                    break  # a busy or failed turn ends this conversation; start a new one


def run_level(app: AppProcess, sessions: int, seconds: float, timeout_s: float) -> dict:
    records: list[dict] = []
    lock = threading.Lock()
    load_before = load_average()
    started = time.monotonic()
    until = started + seconds
    threads = [threading.Thread(target=session, args=(app, until, timeout_s, records, lock), daemon=True)
               for _ in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + timeout_s + 30)
    elapsed = time.monotonic() - started
    statuses = Counter(str(r["status"]) for r in records)
    answered = [r["seconds"] for r in records if r["status"] == 200]
    errors = [r for r in records if r["status"] not in _EXPECTED or r.get("answer_error")]
    return {
        "sessions": sessions, "seconds": round(elapsed, 1), "requests": len(records),
        "answers": len(answered),
        "answers_per_s": round(len(answered) / elapsed, 2),
        "p50_s": _percentile(answered, 50), "p95_s": _percentile(answered, 95),
        "max_s": round(max(answered), 2) if answered else None,
        "statuses": dict(statuses), "errors": len(errors),
        "error_examples": [str(r["status"]) for r in errors[:5]],
        "healthy_after": _healthy(app), "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def _percentile(values: list[float], percent: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[percent - 1], 3)


def _healthy(app: AppProcess) -> bool:
    try:
        return httpx.get(f"{app.base_url}{API}/health", timeout=10, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def table(model: str, levels: list[dict]) -> str:
    rows = [[
        model, level["sessions"], f"{level['seconds']}s", level["answers"], level["answers_per_s"],
        f"{level['p50_s']}s", f"{level['p95_s']}s",
        ", ".join(f"{k}: {v}" for k, v in sorted(level["statuses"].items())), level["errors"],
        "yes" if level["healthy_after"] else "NO",
        f"{level['load_average_before'][0]:.1f}–{level['load_average_after'][0]:.1f}",
    ] for level in levels]
    header = ["model", "sessions", "time", "answers", "answers/s", "p50", "p95", "HTTP statuses",
              "errors", "healthy after", "load avg"]
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="fake")
    parser.add_argument("--sessions", default="1,4,16", help="concurrent sessions, one run each")
    parser.add_argument("--seconds", type=float, default=30, help="length of each run")
    parser.add_argument("--timeout", type=float, default=120, help="seconds one request may take")
    parser.add_argument("--rate-limit", type=int, default=10_000,
                        help="questions per minute per client (all sessions share 127.0.0.1)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)

    preset, generation = MODELS[args.model]
    config = {"generation": generation, "web": {"rate_limit_per_minute": args.rate_limit}}
    header = machine()
    levels = []
    with AppProcess(preset, config) as app:
        ready_s = app.wait_until(model_ready=True, timeout_s=600)
        with httpx.Client(timeout=args.timeout, trust_env=False) as client:
            ask(client, app.base_url, CONVERSATION[0])  # warm-up: first-use costs are not load
        for sessions in (int(n) for n in args.sessions.split(",")):
            print(f"{sessions} sessions for {args.seconds:g} s (load {load_average()[0]})", flush=True)
            levels.append(run_level(app, sessions, args.seconds, args.timeout))
        server_alive = app.process.poll() is None
    markdown = table(args.model, levels)
    command = "python -m bench.load " + " ".join(argv if argv is not None else sys.argv[1:])
    write_json(args.out, {"command": command.strip(), "machine": header, "model": args.model,
                          "preset": preset, "generation": generation, "ready_s": round(ready_s, 2),
                          "server_alive_at_end": server_alive, "levels": levels,
                          "load_average_at_end": load_average()})
    print(markdown)
    if not args.no_readme and args.out == RESULTS:
        update_readme(README_BLOCK, markdown)
    failed = not server_alive or any(level["errors"] or not level["healthy_after"] for level in levels)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
