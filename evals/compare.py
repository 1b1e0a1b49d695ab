"""Side-by-side table of two or more runs, with each metric's change against the first run."""
from __future__ import annotations

import json
from pathlib import Path

from corpus.errors import CrampbotError
from evals.metrics import flatten
from evals.report import HEADLINE, LOWER_IS_BETTER, fmt, get

# Breakdown rows: the metrics that say most about a category or style in one number each.
_BREAKDOWN_KEYS = ("retrieval.hit_at_3", "answers.must_mention_rate",
                   "answers.grounded_sentence_rate")


class RunNotFound(CrampbotError):
    """A folder given to compare holds no metrics.json from `crampbot eval`."""


def load_metrics(run_dir: Path) -> dict:
    path = Path(run_dir) / "metrics.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise RunNotFound(
            f"{path} is missing or unreadable ({type(error).__name__}); run `crampbot eval` with "
            f"--out {run_dir} first."
        ) from error


def compare_runs(dirs: list[Path], out: Path | None = None) -> str:
    """Markdown table: one column per run, deltas against the first; written to `out` if given."""
    if len(dirs) < 2:
        raise RunNotFound("Give at least two evaluation folders to compare.")
    runs = [load_metrics(Path(d)) for d in dirs]
    headers = ["metric"] + [_label(Path(d), m) for d, m in zip(dirs, runs)]
    rows = [_row(key, runs) for key in _keys(runs)]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" + "---:|" * len(runs),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        f"Deltas are against {headers[1]}; ✓ better, ✗ worse.",
        "",
    ]
    table = "\n".join(lines)
    if out is not None:
        out = Path(out)
        if out.is_dir():
            out = out / "compare.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table, encoding="utf-8")
    return table


def _label(run_dir: Path, metrics: dict) -> str:
    run = metrics.get("run", {})
    return f"{run_dir.name} ({run.get('preset', '?')}, {run.get('mode', '?')})"


def _keys(runs: list[dict]) -> list[str]:
    """Headline metrics, then the breakdown rows, then counts; only rows some run has a value for."""
    flat = [flatten({k: v for k, v in m.items() if not k.startswith("by_") and k != "run"})
            for m in runs]
    others = sorted({k for f in flat for k in f} - set(HEADLINE))
    keys = list(HEADLINE) + [k for k in others if not _is_count(k)]
    for by in sorted({k for m in runs for k in m if k.startswith("by_")}):
        for value in sorted({v for m in runs for v in m.get(by, {})}):
            keys += [f"{by}.{value}.{key}" for key in _BREAKDOWN_KEYS]
    keys += [k for k in others if _is_count(k)]
    return [k for k in keys if any(get(m, k) is not None for m in runs)]


def _is_count(key: str) -> bool:
    return key.startswith("counts.") or key.endswith(".cases")


def _row(key: str, runs: list[dict]) -> list[str]:
    base = get(runs[0], key)
    cells = [f"`{key}`", fmt(base)]
    metric = key.split(".", 2)[-1] if key.startswith("by_") else key
    for metrics in runs[1:]:
        value = get(metrics, key)
        cells.append(f"{fmt(value)} {_delta(base, value, metric)}".rstrip())
    return cells


def _delta(base, value, metric: str) -> str:
    if not isinstance(base, (int, float)) or not isinstance(value, (int, float)):
        return ""
    change = value - base
    if abs(change) < 1e-9:
        return "(±0)"
    if _is_count(metric):  # sizes, not quality: no better or worse
        return f"({change:+g})"
    better = change < 0 if metric in LOWER_IS_BETTER else change > 0
    mark = "✓" if better else "✗"
    return f"({change:+.3f} {mark})" if abs(change) < 10 else f"({change:+.1f} {mark})"
