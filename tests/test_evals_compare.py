"""Side-by-side comparison of runs: values per run and deltas against the first."""
from __future__ import annotations

import json

import pytest

from evals.compare import (
    RunNotFound, ThresholdError, check_thresholds, compare_runs, parse_thresholds,
)


def write_run(path, preset, hit_at_3, false_decline, p50, style_hit, sha=None, cases=None):
    """A run folder: metrics.json, and cases.jsonl when `cases` ({id: checks}) is given."""
    path.mkdir()
    if cases is not None:
        lines = [json.dumps({"id": i, "question": f"question of {i}?", "checks": checks})
                 for i, checks in cases.items()]
        (path / "cases.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    metrics = {
        "run": {"preset": preset, "mode": "retrieval-only", "set_sha256": sha},
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


def test_sentences_and_length_change_without_a_verdict(tmp_path):
    base = write_run(tmp_path / "base", "baseline", 0.5, 0.2, 12.0, 0.4)
    new = write_run(tmp_path / "new", "default", 0.5, 0.2, 12.0, 0.4)
    for path, sentences in ((base, 1.0), (new, 3.0)):
        metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
        metrics["answers"].update(sentences_p50=sentences, restates_question_rate=sentences / 10)
        (path / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    table = compare_runs([base, new])
    assert row(table, "answers.sentences_p50")[2] == "3.000 (+2)"
    assert row(table, "answers.restates_question_rate")[2] == "0.300 (+0.200 ✗)"


# -- per-case changes ---------------------------------------------------------------------------
BEFORE = {
    "fixed": {"answered": True, "must_mention": False, "sentences_grounded": False},
    "broken": {"answered": True, "must_mention": True},
    "both": {"answered": False, "must_mention": True},
    "same": {"declined": True},
    "a|b": {"retrieval_hit_at_3": True},
    "dropped": {"declined": True},
}
AFTER = {
    "fixed": {"answered": True, "must_mention": True, "sentences_grounded": True},
    "broken": {"answered": True, "must_mention": False},
    "both": {"answered": True, "must_mention": False, "sentences_grounded": False},
    "same": {"declined": True},
    "a|b": {"retrieval_hit_at_3": False},
    "added": {"declined": True},
}


def test_case_changes_list_better_worse_and_mixed_cases_with_a_count_line(tmp_path):
    base = write_run(tmp_path / "base", "baseline", 0.5, 0.2, 12.0, 0.4, "ab" * 32, BEFORE)
    new = write_run(tmp_path / "new", "default", 0.5, 0.2, 12.0, 0.4, "ab" * 32, AFTER)
    text = compare_runs([base, new])
    section = text[text.index("## Case changes: base → new"):]
    assert "1 better, 2 worse, 1 mixed (some checks better, some worse), 1 unchanged, " \
           "2 in one run only." in section
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == [
        "| broken | worse | −must_mention | question of broken? |",
        "| a\\|b | worse | −retrieval_hit_at_3 | question of a\\|b? |",
        "| both | mixed | +answered, −must_mention | question of both? |",
        "| fixed | better | +must_mention, +sentences_grounded | question of fixed? |",
    ]
    assert "| same |" not in section


def test_three_runs_get_a_section_per_later_run_against_the_first(tmp_path):
    runs = [write_run(tmp_path / name, name, 0.5, 0.2, 12.0, 0.4, "ab" * 32, cases)
            for name, cases in (("a", BEFORE), ("b", AFTER), ("c", BEFORE))]
    text = compare_runs(runs)
    assert "## Case changes: a → b" in text and "## Case changes: a → c" in text
    assert "0 better, 0 worse, 6 unchanged." in text  # c is a again


def test_runs_of_different_sets_get_a_note_instead_of_diffs(tmp_path):
    base = write_run(tmp_path / "base", "baseline", 0.5, 0.2, 12.0, 0.4, "ab" * 32, BEFORE)
    other = write_run(tmp_path / "other", "default", 0.5, 0.2, 12.0, 0.4, "cd" * 32, AFTER)
    text = compare_runs([base, other])
    assert ("No per-case diff: other ran a different evaluation set than base "
            "(set sha256 cdcdcdcdcdcd vs abababababab)") in text
    assert "worse" not in text.split("## Case changes")[1]
    unknown = write_run(tmp_path / "old", "default", 0.5, 0.2, 12.0, 0.4, None, AFTER)
    assert "records no set sha256" in compare_runs([base, unknown])
    no_cases = write_run(tmp_path / "bare", "default", 0.5, 0.2, 12.0, 0.4, "ab" * 32)
    assert "bare/cases.jsonl is missing" in compare_runs([base, no_cases])
    broken = write_run(tmp_path / "broken", "default", 0.5, 0.2, 12.0, 0.4, "ab" * 32)
    (broken / "cases.jsonl").write_text("{oops\n", encoding="utf-8")
    with pytest.raises(RunNotFound, match="not a cases.jsonl written by `crampbot eval`"):
        compare_runs([base, broken])


# -- thresholds ---------------------------------------------------------------------------------
METRICS = {
    "answers": {"must_mention_rate": 0.8, "grounded_sentence_rate": None,
                "false_decline_rate": 0.05, "sentences_p50": 2.0},
    "safety": {"decline_rate_out_of_scope": 1.0},
    "by_style": {"russian": {"retrieval": {"hit_at_3": 0.6}}},
}


def test_aliases_dotted_keys_and_both_bounds_parse():
    thresholds = parse_thresholds(["must_mention=0.85, decline_oos=0.95", "retrieval.mrr_at_10=0.8"],
                                  ["false_decline=0.05", "sentences_p50=4"])
    assert [(t.key, t.limit, t.upper) for t in thresholds] == [
        ("answers.must_mention_rate", 0.85, False), ("safety.decline_rate_out_of_scope", 0.95, False),
        ("retrieval.mrr_at_10", 0.8, False), ("answers.false_decline_rate", 0.05, True),
        ("answers.sentences_p50", 4.0, True)]
    assert parse_thresholds(["by_style.russian.retrieval.hit_at_3=0.5"])[0].upper is False
    assert parse_thresholds() == []


@pytest.mark.parametrize("under, over, message", [
    (["must_mention"], [], "Malformed --fail-under item 'must_mention': write NAME=NUMBER"),
    (["must_mention=high"], [], "'high' is not a number"),
    (["must_mention=nan"], [], "'nan' is not a number"),
    (["must_mention=0.8,"], [], "Malformed --fail-under item ''"),
    (["=0.8"], [], "Malformed"),
    (["mustmention=0.8"], [], "Unknown metric 'mustmention' in --fail-under: use one of"),
    (["answers.nope=0.8"], [], "Unknown metric 'answers.nope'"),
    (["by_style.russian.retrieval.nope=0.8"], [], "Unknown metric"),
    (["false_decline=0.05"], [], "write --fail-over false_decline=0.05"),
    ([], ["grounded=0.9"], "write --fail-under grounded=0.9"),
])
def test_malformed_unknown_or_wrong_side_thresholds_are_refused(under, over, message):
    with pytest.raises(ThresholdError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_thresholds(under, over)


def test_each_threshold_prints_its_value_and_verdict_and_null_fails():
    thresholds = parse_thresholds(["must_mention=0.8,decline_oos=0.95", "grounded=0.5",
                                   "by_style.russian.retrieval.hit_at_3=0.7"], ["false_decline=0.05"])
    lines, passed = check_thresholds(METRICS, thresholds, "runs/new")
    assert not passed
    assert lines == [
        "Thresholds on runs/new:",
        "PASS  must_mention = 0.8; needs answers.must_mention_rate >= 0.8",
        "PASS  decline_oos = 1; needs safety.decline_rate_out_of_scope >= 0.95",
        "FAIL  grounded = null (not measured: no case qualified, e.g. answer metrics of a "
        "--retrieval-only run); needs answers.grounded_sentence_rate >= 0.5",
        "FAIL  by_style.russian.retrieval.hit_at_3 = 0.6; needs by_style.russian.retrieval.hit_at_3 >= 0.7",
        "PASS  false_decline = 0.05; needs answers.false_decline_rate <= 0.05",
        "Thresholds: 2 of 5 failed.",
    ]
    assert check_thresholds(METRICS, parse_thresholds(["must_mention=0.5"]), "x")[1] is True
    assert check_thresholds(METRICS, [], "x") == ([], True)
    with pytest.raises(ThresholdError, match="no such breakdown value"):
        check_thresholds(METRICS, parse_thresholds(["by_style.plian.retrieval.hit_at_3=0.5"]), "x")
