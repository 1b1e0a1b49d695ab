"""Side-by-side comparison of runs: values per run and deltas against the first."""
from __future__ import annotations

import json

import pytest

from evals.compare import RunNotFound, compare_runs


def write_run(path, preset, hit_at_3, false_decline, p50, style_hit):
    path.mkdir()
    metrics = {
        "run": {"preset": preset, "mode": "retrieval-only"},
        "counts": {"cases": 10},
        "retrieval": {"hit_at_1": 0.5, "hit_at_3": hit_at_3, "mrr_at_10": None},
        "answers": {"false_decline_rate": false_decline},
        "cost": {"retrieval_ms_p50": p50},
        "by_style": {"plain": {"retrieval": {"hit_at_3": style_hit}}},
    }
    (path / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return path


def row(table: str, key: str) -> list[str]:
    line = next(x for x in table.splitlines() if x.startswith(f"| `{key}` |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_table_has_a_column_per_run_and_deltas_against_the_first(tmp_path):
    base = write_run(tmp_path / "base", "baseline", 0.5, 0.2, 12.0, 0.4)
    new = write_run(tmp_path / "new", "default", 0.75, 0.3, 30.5, 0.4)
    out = tmp_path / "cmp" / "compare.md"
    table = compare_runs([base, new], out)
    assert out.read_text(encoding="utf-8") == table
    header = table.splitlines()[0]
    assert "base (baseline, retrieval-only)" in header and "new (default, retrieval-only)" in header
    assert row(table, "retrieval.hit_at_3") == ["`retrieval.hit_at_3`", "0.500", "0.750 (+0.250 ✓)"]
    assert row(table, "retrieval.hit_at_1") == ["`retrieval.hit_at_1`", "0.500", "0.500 (±0)"]
    # lower is better for declines and latency, so a rise is marked worse
    assert row(table, "answers.false_decline_rate")[2] == "0.300 (+0.100 ✗)"
    assert row(table, "cost.retrieval_ms_p50")[2] == "30.5 (+18.5 ✗)"
    assert row(table, "counts.cases")[2] == "10 (±0)"
    assert row(table, "by_style.plain.retrieval.hit_at_3")[1:] == ["0.400", "0.400 (±0)"]
    assert "`retrieval.mrr_at_10`" not in table  # no run has a value: no row


def test_three_runs_and_output_folder(tmp_path):
    runs = [write_run(tmp_path / name, name, hit, 0.1, 10.0, 0.5)
            for name, hit in (("a", 0.5), ("b", 0.4), ("c", 0.6))]
    table = compare_runs(runs, tmp_path)
    assert (tmp_path / "compare.md").read_text(encoding="utf-8") == table
    assert row(table, "retrieval.hit_at_3")[1:] == ["0.500", "0.400 (-0.100 ✗)", "0.600 (+0.100 ✓)"]


def test_missing_run_is_a_clear_error(tmp_path):
    base = write_run(tmp_path / "base", "baseline", 0.5, 0.2, 12.0, 0.4)
    with pytest.raises(RunNotFound, match="crampbot eval"):
        compare_runs([base, tmp_path / "nowhere"])
    with pytest.raises(RunNotFound, match="at least two"):
        compare_runs([base])
