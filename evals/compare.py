"""Side-by-side table of two or more runs, with each metric's change against the first run,
then the cases whose checks changed between the first run and each later one."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from corpus.errors import CrampbotError
from evals.metrics import flatten, summarize
from evals.report import HEADLINE, LOWER_IS_BETTER, NO_DIRECTION, fmt, get, md_cell, shorten

# Breakdown rows: the metrics that say most about a category or style in one number each.
_BREAKDOWN_KEYS = ("retrieval.hit_at_3", "answers.must_mention_rate",
                   "answers.grounded_sentence_rate", "answers.citation_precision",
                   "safety.language_match_rate")


class RunNotFound(CrampbotError):
    """A folder given to compare holds no metrics.json from `crampbot eval`."""


class ThresholdError(CrampbotError):
    """A --fail-under / --fail-over spec is malformed or names a metric that does not exist."""


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
    """Markdown table (one column per run, deltas against the first), then for each later run
    the cases whose checks changed against the first; written to `out` if given."""
    if len(dirs) < 2:
        raise RunNotFound("Give at least two evaluation folders to compare.")
    dirs = [Path(d) for d in dirs]
    runs = [load_metrics(d) for d in dirs]
    headers = ["metric"] + [_label(d, m) for d, m in zip(dirs, runs)]
    rows = [_row(key, runs) for key in _keys(runs)]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" + "---:|" * len(runs),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        f"Deltas are against {headers[1]}; ✓ better, ✗ worse.",
        "",
    ]
    for later, metrics in zip(dirs[1:], runs[1:]):
        lines += case_changes(dirs[0], runs[0], later, metrics)
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
    return key.startswith("counts.") or key.endswith((".cases", "_cases"))


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
    if _is_count(metric) or metric in NO_DIRECTION:  # sizes, not quality: no better or worse
        return f"({change:+g})"
    better = change < 0 if metric in LOWER_IS_BETTER else change > 0
    mark = "✓" if better else "✗"
    return f"({change:+.3f} {mark})" if abs(change) < 10 else f"({change:+.1f} {mark})"


# -- per-case changes -------------------------------------------------------------------------
def load_cases(run_dir: Path) -> dict[str, dict]:
    """The records of a run's cases.jsonl by case id; empty when the run has none."""
    path = Path(run_dir) / "cases.jsonl"
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        records = [json.loads(line) for line in lines if line.strip()]
        return {record["id"]: record for record in records}
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise RunNotFound(f"{path} is not a cases.jsonl written by `crampbot eval` "
                          f"({type(error).__name__}); run the evaluation again.") from error


def check_changes(before: dict, after: dict) -> tuple[list[str], list[str]]:
    """Checks that failed before and pass now, and those that passed before and fail now."""
    old, new = before.get("checks", {}), after.get("checks", {})
    # A check present in one run only (no citations to validate, say) is not a change.
    better = [name for name in new if old.get(name) is False and new[name] is True]
    worse = [name for name in new if old.get(name) is True and new[name] is False]
    return better, worse


def case_changes(base_dir: Path, base: dict, later_dir: Path, later: dict) -> list[str]:
    """Markdown lines: the cases whose checks changed from the base run to a later run."""
    lines = [f"## Case changes: {base_dir.name} → {later_dir.name}", ""]
    mismatch = _set_mismatch(base_dir, base, later_dir, later)
    if mismatch:
        return lines + [f"No per-case diff: {mismatch}", ""]
    before, after = load_cases(base_dir), load_cases(later_dir)
    if not before or not after:
        missing = base_dir if not before else later_dir
        return lines + [f"No per-case diff: {missing}/cases.jsonl is missing or empty.", ""]
    rows, tally = _change_rows(before, after)
    return lines + [_tally_line(tally, len(before.keys() ^ after.keys())), "", *rows]


def _change_rows(before: dict, after: dict) -> tuple[list[str], dict[str, int]]:
    """Table rows, worse first (what blocks a change), and how many cases fell in each kind."""
    tally = {"better": 0, "worse": 0, "mixed": 0, "unchanged": 0}
    changed = []
    for case_id in (i for i in before if i in after):
        better, worse = check_changes(before[case_id], after[case_id])
        kind = "mixed" if better and worse else "better" if better else "worse" if worse else "unchanged"
        tally[kind] += 1
        if kind != "unchanged":
            checks = [f"+{name}" for name in better] + [f"−{name}" for name in worse]
            changed.append((kind, case_id, ", ".join(checks), after[case_id].get("question", "")))
    order = {"worse": 0, "mixed": 1, "better": 2}
    changed.sort(key=lambda row: order[row[0]])
    if not changed:
        return [], tally
    rows = ["| case | change | checks (+ now passes, − now fails) | question |", "|---|---|---|---|"]
    rows += [f"| {md_cell(i)} | {kind} | {checks} | {md_cell(shorten(q, 80))} |"
             for kind, i, checks, q in changed]
    return rows + [""], tally


def _tally_line(tally: dict[str, int], unmatched: int) -> str:
    parts = [f"{tally['better']} better", f"{tally['worse']} worse"]
    if tally["mixed"]:
        parts.append(f"{tally['mixed']} mixed (some checks better, some worse)")
    parts.append(f"{tally['unchanged']} unchanged")
    if unmatched:  # e.g. one run used --limit
        parts.append(f"{unmatched} in one run only")
    return ", ".join(parts) + "."


def _set_mismatch(base_dir: Path, base: dict, later_dir: Path, later: dict) -> str | None:
    """Why two runs' cases cannot be matched by id, or None when both ran the same set file."""
    shas = [m.get("run", {}).get("set_sha256") for m in (base, later)]
    if not all(shas):
        return "a run's metrics.json records no set sha256, so the sets may differ."
    if shas[0] != shas[1]:
        return (f"{later_dir.name} ran a different evaluation set than {base_dir.name} "
                f"(set sha256 {shas[1][:12]} vs {shas[0][:12]}); case ids may not mean the same.")
    return None


# -- thresholds -------------------------------------------------------------------------------
# Short names for the metrics a change is usually gated on; any documented dotted key works too.
ALIASES = {
    "hit_at_1": "retrieval.hit_at_1", "hit_at_3": "retrieval.hit_at_3",
    "mrr": "retrieval.mrr_at_10",
    "must_mention": "answers.must_mention_rate", "citation_validity": "answers.citation_validity",
    "citation_precision": "answers.citation_precision",
    "grounded": "answers.grounded_sentence_rate", "false_decline": "answers.false_decline_rate",
    "sentences_p50": "answers.sentences_p50", "tokens_p50": "answers.tokens_p50",
    "one_sentence": "answers.one_sentence_rate", "restates": "answers.restates_question_rate",
    "extractive": "answers.extractive_rate",
    "disclaimer": "safety.disclaimer_rate", "decline_oos": "safety.decline_rate_out_of_scope",
    "red_flag": "safety.red_flag_escalation", "injection": "safety.injection_pass_rate",
    "false_red_flag": "safety.false_red_flag_rate",
    "language_match": "safety.language_match_rate",
}


_NULL = "null (not measured: no case qualified, e.g. answer metrics of a --retrieval-only run)"


@dataclass(frozen=True)
class Threshold:
    """One gate: `key` must be >= `limit` (--fail-under) or <= `limit` (--fail-over, `upper`)."""

    name: str  # as the user wrote it, alias or dotted key
    key: str
    limit: float
    upper: bool

    def passes(self, value: float) -> bool:
        return value <= self.limit if self.upper else value >= self.limit

    def rule(self) -> str:
        return f"{self.key} {'<=' if self.upper else '>='} {self.limit:g}"


def parse_thresholds(fail_under=(), fail_over=()) -> list[Threshold]:
    """Thresholds from option values like "must_mention=0.85,decline_oos=0.95" (each repeatable).

    Raises ThresholdError for a malformed item, an unknown metric, or a bound on the wrong side
    (a floor on a lower-is-better metric would pass exactly when the metric is bad).
    """
    return [_parse_one(item, upper) for specs, upper in ((fail_under, False), (fail_over, True))
            for spec in specs for item in spec.split(",")]


def _parse_one(item: str, upper: bool) -> Threshold:
    option = "--fail-over" if upper else "--fail-under"
    name, sep, number = (part.strip() for part in item.partition("="))
    if not sep or not name or not number:
        raise ThresholdError(f"Malformed {option} item {item.strip()!r}: write NAME=NUMBER, "
                             "several separated by commas, e.g. must_mention=0.85,decline_oos=0.95.")
    try:
        limit = float(number)
    except ValueError:
        limit = math.nan
    if not math.isfinite(limit):
        raise ThresholdError(f"Malformed {option} item {item.strip()!r}: {number!r} is not a number.")
    key = ALIASES.get(name, name)
    if not _is_known(key):
        raise ThresholdError(f"Unknown metric {name!r} in {option}: use one of {', '.join(ALIASES)} "
                             "or a dotted key from evals/README.md, e.g. answers.must_mention_rate.")
    _check_side(name, key, limit, upper)
    return Threshold(name, key, limit, upper)


@cache
def _known_keys() -> frozenset[str]:
    # Every key a run's metrics can have: the sections of an empty summary, plus the two cost
    # numbers the runner adds for the whole run.
    return frozenset(flatten(summarize([]))) | {"cost.warm_up_s", "cost.peak_rss_mb"}


def _is_known(key: str) -> bool:
    parts = key.split(".", 2)
    if key.startswith("by_") and len(parts) == 3:  # by_style.russian.retrieval.hit_at_3
        return parts[2] in _known_keys()
    return key in _known_keys()


def _check_side(name: str, key: str, limit: float, upper: bool) -> None:
    metric = key.split(".", 2)[-1] if key.startswith("by_") else key
    if _is_count(metric) or metric in NO_DIRECTION:
        return  # no better side: either bound is meaningful
    if metric in LOWER_IS_BETTER and not upper:
        raise ThresholdError(f"{key} is better lower, so a floor passes when it is bad: write "
                             f"--fail-over {name}={limit:g} to fail when it is above {limit:g}.")
    if metric not in LOWER_IS_BETTER and upper:
        raise ThresholdError(f"{key} is better higher: write --fail-under {name}={limit:g} to "
                             f"fail when it is below {limit:g}.")


def check_thresholds(metrics: dict, thresholds: list[Threshold], label: str) -> tuple[list[str], bool]:
    """One PASS/FAIL line per threshold with the measured value, then a summary; and all passed?

    A metric that is null (no case qualified, e.g. answer metrics of a --retrieval-only run)
    fails: a gate that cannot be measured must not let a change through.
    """
    if not thresholds:
        return [], True
    flat = flatten(metrics)
    missing = [t for t in thresholds if t.key not in flat]
    if missing:  # only breakdown keys get here: the set has no such value
        raise ThresholdError(f"{missing[0].key} is not in the metrics of {label}: the set has no "
                             "such breakdown value.")
    lines, failed = [f"Thresholds on {label}:"], 0
    for t in thresholds:
        value = flat[t.key]
        ok = value is not None and t.passes(value)
        failed += not ok
        shown = _NULL if value is None else f"{value:g}"
        lines.append(f"{'PASS' if ok else 'FAIL'}  {t.name} = {shown}; needs {t.rule()}")
    verdict = f"{failed} of {len(thresholds)} failed" if failed else f"all {len(thresholds)} passed"
    lines.append(f"Thresholds: {verdict}.")
    return lines, not failed
