"""Shared by the speed benchmarks: machine facts recorded with every figure, and the README table.

Each benchmark owns one marked block of bench/README.md and rewrites only that block, so the
table there is always the output of the command named above it.
"""
from __future__ import annotations

import json
import os
import platform
import re
import time
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
README = BENCH_DIR / "README.md"
RESULTS_DIR = BENCH_DIR / "results"


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages: the machine may be shared, so every figure carries them."""
    return [round(value, 2) for value in os.getloadavg()]


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "cpu": _cpu_name(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average_at_start": load_average(),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def update_readme(block: str, text: str, readme: Path = README) -> bool:
    """Replace the lines between `<!-- {block}:start -->` and `<!-- {block}:end -->`.

    Returns False (and changes nothing) when the README has no such block, so a benchmark
    never writes into text another benchmark or a person owns.
    """
    if not readme.is_file():
        return False
    content = readme.read_text(encoding="utf-8")
    pattern = re.compile(
        rf"(<!-- {re.escape(block)}:start -->\n).*?(<!-- {re.escape(block)}:end -->)", re.DOTALL
    )
    if not pattern.search(content):
        return False
    updated = pattern.sub(lambda m: m.group(1) + text.rstrip("\n") + "\n" + m.group(2), content, count=1)
    readme.write_text(updated, encoding="utf-8")
    return True
