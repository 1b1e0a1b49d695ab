"""Locust, headless and bounded in time, against the real app (`app.py`) on 127.0.0.1, with a
slow-loris client and a feedback flood running beside the well-behaved visitors.

    .venv/bin/python -m bench.loadtest.run                       # fake model, 12 users, 45 s
    .venv/bin/python -m bench.loadtest.run --baseline            # then the visitors alone
    .venv/bin/python -m bench.loadtest.run --users 24 --seconds 60 --model tiny

The load starts once the server says it is ready (/api/v1/ready: its warm-up question
answered). With --baseline, a second run of the same length follows on the same server with
the well-behaved visitors alone (as many as in the first), so the report shows what the
slow-loris and the flood cost them. Writes bench/results/locust.json (per request name:
count, failures, p50, p95; the server's own counts by route and status from /metrics; its
memory before, after and after the baseline) and bench/results/locust_stats.csv (Locust's),
and rewrites the locust-table in bench/README.md. Exits 1 when a well-behaved request failed
or the server is unhealthy after.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from bench.app_process import API, AppProcess
from bench.tables import RESULTS_DIR, load_average, machine, markdown_table, update_readme, write_json

RESULTS = RESULTS_DIR / "locust.json"
STATS_CSV = RESULTS_DIR / "locust_stats.csv"
# By path, not imported: importing Locust here would patch this process with gevent.
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
WELL_BEHAVED = "visitor"  # the locustfile's prefix for well-behaved visitors' requests
VISITOR_CLASSES = ("ApiVisitor", "ChatVisitor", "ChatAsker")  # the well-behaved users
MISBEHAVING_USERS = 2  # FeedbackFlood and SlowLoris, one each
README_BLOCK = "locust-table"
MODELS = {"fake": ("default", {"backend": "fake"}), "tiny": ("tiny", {"backend": "transformers"})}


def rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    return round(sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
                 / 2**20, 1)


def server_counts(base_url: str) -> dict[str, int]:
    """The server's request counts by 'route status' from /metrics."""
    text = httpx.get(f"{base_url}/metrics", timeout=10, trust_env=False).text
    counts = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "crampbot_http_requests_total":
                key = f"{sample.labels['method']} {sample.labels['route']} {sample.labels['status']}"
                counts[key] = counts.get(key, 0) + int(sample.value)
    return dict(sorted(counts.items()))


def read_stats(path: Path) -> list[dict]:
    rows = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows.append({"type": row["Type"], "name": row["Name"],
                         "requests": int(row["Request Count"]),
                         "failures": int(row["Failure Count"]),
                         "p50_ms": _number(row["50%"]), "p95_ms": _number(row["95%"]),
                         "max_ms": _number(row["Max Response Time"])})
    return rows


def _number(text: str) -> float | None:
    try:
        return round(float(text), 1)
    except ValueError:
        return None


def run_locust(base_url: str, users: int, seconds: int, out_prefix: Path,
               user_classes: tuple[str, ...] = ()) -> int:
    """Locust's exit code; `user_classes` limits the run to those (default: all)."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
               "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s",
               "--host", base_url, "--csv", str(out_prefix), "--stop-timeout", "15",
               "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0",
               *user_classes]
    return subprocess.run(command, timeout=seconds + 120, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=12, help="Locust users in all (2 misbehave)")
    parser.add_argument("--seconds", type=int, default=45, help="how long the load runs")
    parser.add_argument("--model", choices=sorted(MODELS), default="fake")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--baseline", action="store_true",
                        help="then run the well-behaved visitors alone for comparison")
    args = parser.parse_args(argv)
    preset, generation = MODELS[args.model]
    started = time.strftime("%Y-%m-%d")
    load_before = load_average()
    with AppProcess(preset, {"generation": generation}) as app, \
            tempfile.TemporaryDirectory(prefix="crampbot-locust-") as scratch:
        app.wait_until(model_ready=True, timeout_s=600, warmed=True)
        rss_before = rss_mb(app.process.pid)
        prefix = Path(scratch) / "locust"
        locust_exit = run_locust(app.base_url, args.users, args.seconds, prefix)
        rss_after = rss_mb(app.process.pid)
        healthy = httpx.get(f"{app.base_url}{API}/health", timeout=10,
                            trust_env=False).status_code == 200
        counts = server_counts(app.base_url)
        stats = read_stats(prefix.with_name("locust_stats.csv"))
        if args.out == RESULTS:
            shutil.copy(prefix.with_name("locust_stats.csv"), STATS_CSV)
        baseline, rss_baseline = None, None
        if args.baseline:
            alone = Path(scratch) / "alone"
            run_locust(app.base_url, args.users - MISBEHAVING_USERS, args.seconds, alone,
                       VISITOR_CLASSES)
            baseline = read_stats(alone.with_name("alone_stats.csv"))
            rss_baseline = rss_mb(app.process.pid)
    visitors = [row for row in stats if row["name"].startswith(WELL_BEHAVED)]
    payload = {
        "machine": machine(), "load_average": [load_before, load_average()],
        "command": " ".join(["python -m bench.loadtest.run", *(argv or sys.argv[1:])]),
        "model": args.model, "users": args.users, "seconds": args.seconds,
        "locust_exit_code": locust_exit, "stats": stats, "server_counts": counts,
        "rss_mb": {"before": rss_before, "after": rss_after, "after_baseline": rss_baseline},
        "healthy_after": healthy,
        "visitor_failures": sum(row["failures"] for row in visitors),
        "visitor_requests": sum(row["requests"] for row in visitors),
        "baseline_stats": baseline,
    }
    write_json(args.out, payload)
    table = markdown_table(
        ["request", "requests", "failures", "p50 ms", "p95 ms", "max ms"],
        [[row["name"], row["requests"], row["failures"], row["p50_ms"], row["p95_ms"],
          row["max_ms"]] for row in stats])
    summary = (f"`{payload['command']}` on {started}: model {args.model}, {args.users} users "
               f"for {args.seconds} s, load average {load_before[0]}–{load_average()[0]}; "
               f"server memory {rss_before} → {rss_after} MB; healthy after: "
               f"{'yes' if healthy else 'no'}; well-behaved failures: "
               f"{payload['visitor_failures']} of {payload['visitor_requests']}.")
    feedback = {k: v for k, v in counts.items() if "/api/v1/feedback" in k}
    text = f"{summary}\n\n{table}\n\nServer's own counts of the flood (/metrics): " + ", ".join(
        f"{key}: {value}" for key, value in feedback.items())
    if baseline is not None:
        text += "\n\n" + baseline_comparison(stats, baseline, rss_after, rss_baseline)
    print(text)
    if not args.no_readme:
        update_readme(README_BLOCK, text)
    alone_failures = sum(row["failures"] for row in baseline or [] if row["name"] != "Aggregated")
    return 0 if healthy and payload["visitor_failures"] == 0 and alone_failures == 0 else 1


def baseline_comparison(stats: list[dict], baseline: list[dict], rss_after: float,
                        rss_baseline: float) -> str:
    """The visitors' p50/p95 beside a slow-loris and a flood, and alone, per request name."""
    alone = {row["name"]: row for row in baseline}
    rows = [[row["name"], row["p50_ms"], alone.get(row["name"], {}).get("p50_ms"),
             row["p95_ms"], alone.get(row["name"], {}).get("p95_ms"),
             alone.get(row["name"], {}).get("failures")]
            for row in stats if row["name"].startswith(WELL_BEHAVED)]
    return (f"The same visitors alone right after (--baseline), same server; its memory "
            f"{rss_after} → {rss_baseline} MB:\n\n" + markdown_table(
                ["request", "p50 ms with", "p50 ms alone", "p95 ms with", "p95 ms alone",
                 "failures alone"], rows))


if __name__ == "__main__":
    sys.exit(main())
