"""Locust, headless, against app.py on 127.0.0.1 for 15 seconds (issue 15): the well-behaved
visitors (asking through the API and in the chat) get no error while a slow-loris client and a
feedback flood run, the flood is shed with 429s, and the server is healthy after. Locust runs
in its own process (it patches its interpreter with gevent); the whole run is bounded by its
--run-time and a timeout."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def test_visitors_are_served_while_a_slow_loris_and_a_feedback_flood_run(tmp_path):
    out = tmp_path / "locust.json"
    run = subprocess.run([sys.executable, "-m", "bench.loadtest.run", "--users", "6",
                          "--seconds", "15", "--out", str(out), "--no-readme"],
                         cwd=PROJECT_DIR, capture_output=True, text=True, timeout=400)
    assert out.is_file(), run.stdout[-2000:] + run.stderr[-2000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["healthy_after"] is True
    assert result["visitor_requests"] > 0 and result["visitor_failures"] == 0, result["stats"]
    asked = {row["name"]: row["requests"] for row in result["stats"]}
    assert asked.get("visitor: ask", 0) > 0 and asked.get("visitor: chat ask", 0) > 0
    counts = result["server_counts"]
    assert counts.get("POST /api/v1/feedback 429", 0) > 0  # the flood was shed
    assert counts.get("POST /api/v1/feedback 200", 0) <= 30  # web.feedback_per_minute
    slow = next(row for row in result["stats"] if row["name"].startswith("slow-loris"))
    assert slow["failures"] == 0 and slow["max_ms"] < 20_000  # cut off by the header deadline
    assert result["rss_mb"]["after"] < result["rss_mb"]["before"] + 1024
    assert run.returncode == 0
