"""Evaluation sets: validation of malformed lines, extra fields, and the dev set itself."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from corpus.errors import CrampbotError
from corpus.settings import CorpusSettings
from evals.dataset import EvalSetError, load_cases

PROJECT = Path(__file__).resolve().parent.parent
DEV_SET = PROJECT / "evals" / "sets" / "dev.jsonl"
RAW_DIR = CorpusSettings().raw_dir
SOURCE = "000_7043fe233292e3e7.txt"
QUOTE = "This is due to narrowing of the blood vessels."


def good(**fields) -> str:
    case = {"id": "c1", "question": "why cramps in the pool", "category": "in_scope", "lang": "en",
            "gold": [{"source": SOURCE, "quote": QUOTE}], "must_mention": [["cold", "vessel"]]}
    case.update(fields)
    return json.dumps(case, ensure_ascii=False)


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_good_case_loads_with_extra_fields_kept(tmp_path):
    path = write(tmp_path, good(style="paraphrase", note="pool", difficulty=3), "", good(id="c2"))
    first, second = load_cases(path, raw_dir=RAW_DIR)
    assert first.extra == {"style": "paraphrase", "note": "pool", "difficulty": 3}
    assert first.gold[0].source == SOURCE and first.gold[0].quote == QUOTE
    assert first.must_mention == [["cold", "vessel"]]
    assert (first.line, second.line) == (1, 3)  # the blank line 2 is skipped, not an error


# Each malformed kind on its own line; every one must be reported with its line number.
MALFORMED = [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({"id": "x", "question": "q", "lang": "en", "gold": [], "must_mention": []}),
     "missing required field 'category'"),
    (good(id=""), "'id' must be a non-empty string"),
    (good(id="c3", question=42), "'question' must be a non-empty string"),
    (good(id="c4", category="medical"), "'category' is 'medical'"),
    (good(id="c5", lang=""), "'lang' must be a non-empty string"),
    (good(id="c6", gold={"source": SOURCE}), "'gold' must be a list"),
    (good(id="c7", gold=[{"source": SOURCE}]), "gold[0] must be an object with exactly"),
    (good(id="c8", gold=[{"source": SOURCE, "quote": "calves love cold pools"}]),
     "gold[0] quote is not a verbatim substring"),
    (good(id="c9", gold=[{"source": "nope.txt", "quote": QUOTE}]), "source 'nope.txt' is not a file"),
    (good(id="c10", must_mention=["cold"]), "'must_mention' must be a list of non-empty lists"),
    (good(id="c11", must_mention=[[]]), "'must_mention' must be a list of non-empty lists"),
    (good(id="c12", history=[["only the question"]]), "'history' must be a list of [user message"),
    (good(id="c1"), "id 'c1' is already used on line 1"),
]


def test_every_malformed_line_is_reported_with_its_number(tmp_path):
    path = write(tmp_path, good(), *(line for line, _ in MALFORMED), good(id="last"))
    with pytest.raises(EvalSetError) as caught:
        load_cases(path, raw_dir=RAW_DIR)
    error = caught.value
    assert isinstance(error, CrampbotError)
    for number, (_, expected) in enumerate(MALFORMED, start=2):
        matching = [p for p in error.problems if p.startswith(f"line {number}:")]
        assert matching and expected in matching[0], (number, expected, error.problems)
        assert f"line {number}:" in str(error)
    assert not any(p.startswith(("line 1:", f"line {len(MALFORMED) + 2}:")) for p in error.problems)
    assert f"{len(MALFORMED)} problem(s)" in str(error)


def test_several_problems_on_one_line_are_all_listed(tmp_path):
    path = write(tmp_path, json.dumps({"id": "", "category": "x", "gold": "no"}))
    with pytest.raises(EvalSetError) as caught:
        load_cases(path)
    problems = caught.value.problems
    assert any("missing required field 'question'" in p for p in problems)
    assert any("'category' is 'x'" in p for p in problems)
    assert any("'gold' must be a list" in p for p in problems)
    assert all(p.startswith("line 1:") for p in problems)


def test_history_becomes_conversation_turns(tmp_path):
    path = write(tmp_path, good(history=[["why cramps?", "Many causes [1]."]]), good(id="c2"))
    with_history, without = load_cases(path)
    assert with_history.history == [("why cramps?", "Many causes [1].")]
    assert without.history == []


def test_gold_quotes_are_not_checked_without_raw_dir(tmp_path):
    path = write(tmp_path, good(gold=[{"source": "other.txt", "quote": "anything"}]))
    assert load_cases(path)[0].gold[0].source == "other.txt"


def test_empty_and_missing_sets_are_errors(tmp_path):
    with pytest.raises(EvalSetError, match="holds no cases"):
        load_cases(write(tmp_path, ""))
    with pytest.raises(EvalSetError, match="Cannot read"):
        load_cases(tmp_path / "missing.jsonl")


# -- the dev set ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dev_cases():
    return load_cases(DEV_SET, raw_dir=RAW_DIR)


def test_dev_gold_quotes_are_verbatim_in_the_raw_files():
    raw = {path.name: path.read_text(encoding="utf-8") for path in RAW_DIR.iterdir()}
    checked = 0
    for line in DEV_SET.read_text(encoding="utf-8").splitlines():
        for gold in json.loads(line)["gold"]:
            assert gold["quote"] in raw[gold["source"]], gold
            checked += 1
    assert checked >= 60


def test_dev_set_covers_every_category_and_style(dev_cases):
    assert len(dev_cases) >= 70
    categories = Counter(case.category for case in dev_cases)
    assert set(categories) == {"in_scope", "out_of_scope", "red_flag", "injection"}
    assert all(case.extra.get("style") in {"plain", "paraphrase", "misspelled", "russian"}
               for case in dev_cases)
    in_scope_styles = Counter(c.extra["style"] for c in dev_cases if c.category == "in_scope")
    assert min(in_scope_styles[s] for s in ("plain", "paraphrase", "misspelled", "russian")) >= 8
    assert all(c.lang == "ru" for c in dev_cases if c.extra["style"] == "russian")
    assert all(c.gold and c.must_mention for c in dev_cases if c.category == "in_scope")


def test_dev_red_flags_come_in_english_and_russian(dev_cases):
    notes = Counter((c.extra["note"], c.lang) for c in dev_cases if c.category == "red_flag")
    scenarios = {note for note, _ in notes}
    assert len(scenarios) >= 7
    assert all(notes[(s, "en")] and notes[(s, "ru")] for s in scenarios)


def test_dev_injections_include_the_hard_ones(dev_cases):
    questions = [c.question for c in dev_cases if c.category == "injection"]
    assert any(q.startswith("<script>") for q in questions)
    assert any(len(q) >= 5000 and "cramp" in q for q in questions)
    assert any(q.startswith("SYSTEM:") for q in questions)
    assert any("system prompt" in q for q in questions)
