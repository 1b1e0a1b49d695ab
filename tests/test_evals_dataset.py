"""Evaluation sets: validation of malformed lines, extra fields, and the dev set itself."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from bot.texts import DISCLAIMER, EXTRACTIVE_INTRO
from corpus.cleaning import clean_text
from corpus.errors import CrampbotError
from corpus.settings import CorpusSettings
from evals.dataset import EvalSetError, load_cases

PROJECT = Path(__file__).resolve().parent.parent
SETS_DIR = PROJECT / "evals" / "sets"
DEV_SET = SETS_DIR / "dev.jsonl"
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


STYLES = {"plain", "paraphrase", "misspelled", "russian", "followup", "long"}


def test_dev_set_covers_every_category_and_style(dev_cases):
    assert len(dev_cases) >= 150
    categories = Counter(case.category for case in dev_cases)
    assert set(categories) == {"in_scope", "out_of_scope", "red_flag", "injection"}
    assert categories["in_scope"] >= 75 and categories["out_of_scope"] >= 40
    assert categories["red_flag"] >= 14 and categories["injection"] >= 10
    assert all(case.extra.get("style") in STYLES for case in dev_cases)
    in_scope_styles = Counter(c.extra["style"] for c in dev_cases if c.category == "in_scope")
    assert min(in_scope_styles[s] for s in ("plain", "paraphrase", "misspelled")) >= 8
    assert in_scope_styles["russian"] >= 15 and in_scope_styles["followup"] >= 15
    assert all(c.lang == "ru" for c in dev_cases if c.extra["style"] == "russian")
    assert all(1 <= len(c.gold) <= 4 and c.must_mention for c in dev_cases if c.category == "in_scope")
    assert all(not c.gold and not c.must_mention for c in dev_cases if c.category != "in_scope")


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


def test_dev_red_flags_and_injections_are_kept(dev_cases):
    red_flags = [c for c in dev_cases if c.category == "red_flag"]
    assert len(red_flags) >= 14 and {c.lang for c in red_flags} == {"en", "ru"}
    assert sum(c.category == "injection" for c in dev_cases) >= 10


# -- must-mention groups: a good answer passes, restating the question does not ----------------
def _is_case_set(path: Path) -> bool:
    """An evaluation set of cases (not e.g. a list of red-flag texts kept in the same folder)."""
    first = next((line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()), "")
    try:
        record = json.loads(first)
    except json.JSONDecodeError:
        return True  # a broken set is still checked, so load_cases reports it
    return isinstance(record, dict) and {"question", "must_mention"} <= set(record)


# Every case set except fresh-v1* (kept frozen as it was used) is held to these rules.
STRICT_SETS = sorted(p for p in SETS_DIR.glob("*.jsonl")
                     if not p.name.startswith("fresh-v1") and _is_case_set(p))
# Known violations in sets this test does not own; their owner should fix the groups and drop
# the entry. Only these exact cases are skipped, every other case of the set is still checked.
KNOWN_LOOSE_GROUPS = {
    ("followups.jsonl", "fu-night"),  # one group of 8 terms
    ("followups.jsonl", "fu-alcohol"),  # "what about alcohol?" passes with [["alcohol"]]
}


def group_problems(case) -> list[str]:
    """Why the must-mention groups of an in_scope case are too loose or unsupported ([] if fine)."""
    groups = case.must_mention
    problems = [] if 1 <= len(groups) <= 3 else [f"{len(groups)} groups (want 1-3)"]
    raw = " ".join(gold.quote for gold in case.gold)
    # A term may follow the raw machine translation or its glossary repair ("calves", not "caviar").
    gold_texts = (raw.lower(), clean_text(raw).lower())
    question = case.question.lower()
    for group in groups:
        if len(group) > 6:
            problems.append(f"group {group} has {len(group)} terms (want at most 6)")
        if not any(term.lower() in text for term in group for text in gold_texts):
            problems.append(f"group {group}: no term occurs in the gold quotes")
        echoed = [term for term in group if term.lower() in question]
        if echoed:
            problems.append(f"group {group}: {echoed} already occur in the question")
    return problems


@pytest.mark.parametrize("set_path", STRICT_SETS, ids=lambda p: p.name)
def test_must_mention_groups_are_supported_by_gold_and_not_by_the_question(set_path):
    cases = load_cases(set_path, raw_dir=RAW_DIR)
    problems = [
        f"{case.id}: {problem}"
        for case in cases
        if case.category == "in_scope" and case.must_mention
        and (set_path.name, case.id) not in KNOWN_LOOSE_GROUPS
        for problem in group_problems(case)
    ]
    assert not problems, "\n".join(problems)


def test_the_strict_sets_include_dev():
    assert DEV_SET in STRICT_SETS


def test_group_rules_catch_loose_and_unsupported_groups(tmp_path):
    def problems(**fields):
        return group_problems(load_cases(write(tmp_path, good(**fields)), raw_dir=RAW_DIR)[0])

    assert problems() == []
    assert problems(must_mention=[["narrow"], ["vessel"]]) == []
    assert any("already occur in the question" in p
               for p in problems(question="do cold pools narrow vessels?"))
    assert any("no term occurs in the gold" in p for p in problems(must_mention=[["magnesium"]]))
    seven = [["cold", "chill", "ice", "frost", "winter", "narrow", "vessel"]]
    assert any("at most 6" in p for p in problems(must_mention=seven))
    assert any("want 1-3" in p for p in problems(must_mention=[["cold"]] * 4))


def test_group_terms_may_use_the_glossary_repair_of_a_gold_quote(tmp_path):
    quote = "The reason that drives caviar can be reinforced sports."
    gold = [{"source": "002_155f91860faa0152.txt", "quote": quote}]
    case = load_cases(write(tmp_path, good(question="why after sport?", gold=gold,
                                           must_mention=[["calves"], ["intensive"]])),
                      raw_dir=RAW_DIR)[0]
    assert "calves" not in quote.lower() and group_problems(case) == []


def test_dev_groups_are_not_satisfied_by_fixed_texts_or_earlier_turns(dev_cases):
    """The disclaimer, the extractive intro and a replay of the history must not pass a group."""
    fixed = f"{DISCLAIMER} {EXTRACTIVE_INTRO}".lower()
    problems = []
    for case in dev_cases:
        history = " ".join(f"{user} {assistant}" for user, assistant in case.history).lower()
        for group in case.must_mention:
            if any(term.lower() in fixed for term in group):
                problems.append(f"{case.id}: {group} matches a fixed text")
            if history and any(term.lower() in history for term in group):
                problems.append(f"{case.id}: {group} matches the history")
    assert not problems, "\n".join(problems)


def test_dev_out_of_scope_cases_are_mostly_near_misses(dev_cases):
    cases = [c for c in dev_cases if c.category == "out_of_scope"]
    assert all(c.extra.get("note", "").startswith(("near-miss: ", "far-off: ")) for c in cases)
    near = [c for c in cases if c.extra["note"].startswith("near-miss: ")]
    assert len(cases) >= 40 and len(near) >= 30 and len(cases) - len(near) >= 8
    assert sum(c.lang == "ru" for c in near) >= 5


def _chat_example_questions() -> list[str]:
    """The chat's English example questions (bot/locales/en.json), read without importing Gradio."""
    catalog = json.loads((PROJECT / "bot" / "locales" / "en.json").read_text(encoding="utf-8"))
    return catalog["EXAMPLE_QUESTIONS"]


def test_dev_followups_need_their_history(dev_cases):
    followups = [c for c in dev_cases if c.extra["style"] == "followup"]
    assert all(1 <= len(c.history) <= 2 for c in followups)
    assert all(re.search(r"\[\d+\]", answer) for c in followups for _, answer in c.history)
    assert not [c.id for c in dev_cases if c.history and c.extra["style"] != "followup"]
    in_scope = [c for c in followups if c.category == "in_scope"]
    assert len(in_scope) >= 15 and sum(c.lang == "ru" for c in in_scope) >= 2
    assert sum(c.category == "out_of_scope" for c in followups) >= 2
    examples = set(_chat_example_questions())
    assert len(examples) == 5
    opened_by = {c.history[0][0] for c in followups} & examples
    assert opened_by == examples, examples - opened_by
