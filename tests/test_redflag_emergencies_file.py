"""The emergency descriptions file validates: unknown keys and gaps are refused, naming the place,
and every emergency answers with urgent advice in English and Russian."""
from __future__ import annotations

import json
import re

import pytest

from bot.query_translate import load_russian_lexicon
from bot.safety.input_guard import detect_language
from bot.safety.redflag_similarity import (EMERGENCIES_PATH, RED_FLAG_LEXICON_PATH,
                                           EmergenciesFileError, load_emergencies)
from bot.safety.redflags import load_rules


def test_every_emergency_has_english_and_russian_advice_that_says_what_to_do_first():
    for emergency in load_emergencies().emergencies:
        for language in ("en", "ru"):
            advice = getattr(emergency.advice, language).format(emergency_number="911")
            avoid = getattr(emergency.avoid, language).format(emergency_number="911")
            assert "911" in re.split(r"(?<=[.!?])\s", advice)[0], (emergency.id, language)
            assert detect_language(advice) == language == detect_language(avoid), emergency.id


def test_every_rule_has_descriptions_and_new_emergencies_are_added():
    ids = {e.id for e in load_emergencies().emergencies}
    assert {rule.id for rule in load_rules().rules} <= ids
    assert {"heat_illness", "compartment_syndrome"} <= ids


def test_descriptions_are_english():
    for emergency in load_emergencies().emergencies:
        assert all(detect_language(d) == "en" for d in emergency.descriptions), emergency.id


def test_red_flag_lexicon_loads_in_the_retrieval_lexicon_format():
    lexicon = load_russian_lexicon(RED_FLAG_LEXICON_PATH)
    assert lexicon.words["жар"] == "fever" and lexicon.stems["жар"] == "heat"


def _file_with(tmp_path, change):
    data = json.loads(EMERGENCIES_PATH.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "emergencies.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _sugar(data):  # an emergency without a rule: it carries its own advice
    return next(e for e in data["emergencies"] if e["id"] == "low_blood_sugar")


def _clot(data):
    return next(e for e in data["emergencies"] if e["id"] == "leg_clot")


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: _sugar(d).update(descriptons=["typo"]), r"descriptons"),
        (lambda d: d.update(treshold=0.5), r"treshold"),
        (lambda d: _sugar(d).pop("advice"), r"emergencies\[low_blood_sugar\].*own advice"),
        (lambda d: _sugar(d)["advice"].pop("ru"), r"advice\.ru"),
        (lambda d: _sugar(d)["avoid"].update(en="Call {number}."), r"avoid\.en"),
        (lambda d: _clot(d).update(advice=_sugar(d)["advice"]), r"emergencies\[leg_clot\].*rule"),
        (lambda d: d["emergencies"].append(dict(_sugar(d))), r"not unique.*low_blood_sugar"),
        (lambda d: _sugar(d).update(descriptions=["one", "two"]), r"descriptions"),
        (lambda d: d.update(threshold=1.5), r"threshold"),
        (lambda d: d.pop("review"), r"review"),
    ],
)
def test_malformed_file_is_refused_with_a_clear_message(tmp_path, change, expected):
    with pytest.raises(EmergenciesFileError, match=expected) as caught:
        load_emergencies(_file_with(tmp_path, change))
    assert str(caught.value).startswith("The emergencies file") and "\n" not in str(caught.value)


def test_unreadable_file_is_refused(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 1,', encoding="utf-8")
    with pytest.raises(EmergenciesFileError, match="not valid JSON"):
        load_emergencies(broken)
    with pytest.raises(EmergenciesFileError, match="missing"):
        load_emergencies(tmp_path / "absent.json")
