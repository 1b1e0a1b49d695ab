"""Calibrate the relevance gate: sweep its threshold over answerable vs out-of-scope questions.

`crampbot calibrate SET --out DIR` runs every in_scope and out_of_scope question of an evaluation
set through retrieval (no language model: Russian goes through the lexicon gloss, as in
retrieval-only evaluation), records the gate's signal for each, and writes:
  DIR/gate_curve.png   decline rate of each category against the threshold, choice marked;
  DIR/gate.json        the chosen threshold, both rates at it, the whole curve and every signal.
It also reports both rates at the configured retrieval.gate_threshold, to check a threshold
chosen on one set against another. The choice: the threshold that declines the most out_of_scope questions while declining at most
`max_in_scope_decline` of in_scope ones; among equally good thresholds, the middle of their
range, so the margin to both sides is as wide as the data allows. Put it in the preset's
retrieval.gate_threshold.
"""
from __future__ import annotations

import json
from pathlib import Path

from bot.errors import ConfigError
from bot.query import search_query
from bot.retrieval import PassageRetriever
from bot.settings import Settings

MAX_IN_SCOPE_DECLINE = 0.05  # the target: decline at most 5% of answerable questions
_CATEGORIES = ("in_scope", "out_of_scope")


def calibrate_gate(set_path: Path, settings: Settings, out_dir: Path,
                   max_in_scope_decline: float = MAX_IN_SCOPE_DECLINE,
                   retriever: PassageRetriever | None = None) -> dict:
    """Sweep, choose, write gate.json and gate_curve.png into `out_dir`; returns gate.json's data."""
    cases = _read_cases(Path(set_path))
    retriever = retriever or PassageRetriever(settings)
    signals = []
    for case in cases:
        history = [tuple(turn) for turn in case.get("history", [])]
        query = search_query(case["question"], history, settings, rewriter=None)
        results, _ = retriever.search(query.text)
        signals.append({"id": case["id"], "category": case["category"],
                        "signal": round(retriever.relevance(results), 4)})
    answerable = [s["signal"] for s in signals if s["category"] == "in_scope"]
    unanswerable = [s["signal"] for s in signals if s["category"] == "out_of_scope"]
    curve = decline_curve(answerable, unanswerable)
    choice = choose_threshold(curve, max_in_scope_decline)
    configured = settings.retrieval.gate_threshold
    result = {
        "set": str(set_path), "preset": settings.preset, "signal": "best dense cosine",
        "max_in_scope_decline": max_in_scope_decline, **choice,
        # How the threshold in use does on this set: the check on a held-out set.
        "configured": {"threshold": configured,
                       "in_scope_declined": _share_below(answerable, configured),
                       "out_of_scope_declined": _share_below(unanswerable, configured)},
        "in_scope_cases": len(answerable), "out_of_scope_cases": len(unanswerable),
        "curve": curve, "signals": signals,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gate.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot_curve(result, out_dir / "gate_curve.png")
    return result


def decline_curve(answerable: list[float], unanswerable: list[float]) -> list[dict]:
    """Decline rates at every threshold where one changes (a question is declined below it)."""
    values = sorted(set(answerable) | set(unanswerable))
    # Midpoints between observed signals, plus one below and one above them all.
    thresholds = [values[0] - 0.01] + [(a + b) / 2 for a, b in zip(values, values[1:])]
    thresholds.append(values[-1] + 0.01)
    return [
        {"threshold": round(t, 4),
         "in_scope_declined": _share_below(answerable, t),
         "out_of_scope_declined": _share_below(unanswerable, t)}
        for t in thresholds
    ]


def choose_threshold(curve: list[dict], max_in_scope_decline: float) -> dict:
    """Most out_of_scope declined, then fewest in_scope declined, then the middle of the range."""
    allowed = [p for p in curve if p["in_scope_declined"] <= max_in_scope_decline]
    best = max((p["out_of_scope_declined"], -p["in_scope_declined"]) for p in allowed)
    tied = [p["threshold"] for p in allowed
            if (p["out_of_scope_declined"], -p["in_scope_declined"]) == best]
    # The tied thresholds are consecutive (both rates only grow with the threshold), so every
    # threshold between them, the middle included, declines exactly the same questions.
    return {"threshold": round((min(tied) + max(tied)) / 2, 4),
            "in_scope_declined": -best[1], "out_of_scope_declined": best[0],
            "tied_range": [min(tied), max(tied)]}


def plot_curve(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    curve = result["curve"]
    thresholds = [p["threshold"] for p in curve]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.step(thresholds, [p["out_of_scope_declined"] for p in curve], where="post",
            label=f"out_of_scope declined (n={result['out_of_scope_cases']})", color="tab:green")
    ax.step(thresholds, [p["in_scope_declined"] for p in curve], where="post",
            label=f"in_scope declined (n={result['in_scope_cases']})", color="tab:red")
    ax.axvline(result["threshold"], color="black", linestyle="--",
               label=f"chosen {result['threshold']:.3f}")
    if result["configured"]["threshold"] != result["threshold"]:
        ax.axvline(result["configured"]["threshold"], color="grey", linestyle="-.",
                   label=f"configured {result['configured']['threshold']:.3f}")
    ax.axhline(result["max_in_scope_decline"], color="tab:red", linestyle=":", linewidth=1)
    ax.axhline(0.95, color="tab:green", linestyle=":", linewidth=1)
    ax.set_xlabel(f"gate threshold ({result['signal']})")
    ax.set_ylabel("share declined")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Relevance gate on {Path(result['set']).name} ({result['preset']} preset)")
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _share_below(values: list[float], threshold: float) -> float:
    return round(sum(v < threshold for v in values) / len(values), 4) if values else 0.0


def _read_cases(path: Path) -> list[dict]:
    """The in_scope and out_of_scope cases of a set (bot/ cannot import evals/, so read here)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ConfigError(f"Cannot read the calibration set {path} ({error.strerror}).") from error
    cases = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except json.JSONDecodeError:
            raise ConfigError(f"{path} line {number} is not valid JSON; fix it and run again.") from None
        if case.get("category") in _CATEGORIES and isinstance(case.get("question"), str):
            cases.append(case)
    kinds = {c["category"] for c in cases}
    if kinds != set(_CATEGORIES):
        raise ConfigError(f"{path} needs both in_scope and out_of_scope questions to calibrate the gate.")
    return cases
