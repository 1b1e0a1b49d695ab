"""Detection and false-alarm rates of the red-flag detectors on the calibration half of
evals/sets/redflag_paraphrases.jsonl (bench/redflag_detector.py measures both halves).

Would fail without the similarity detector: the rules alone find about a quarter of these
paraphrases."""
from __future__ import annotations

import pytest

from bench.redflag_detector import MAX_FALSE_ALARM_RATE, SET_PATH, load_set, measure, rates
from bot.safety.redflag_similarity import SimilarityDetector, load_emergencies

MIN_DETECTION_BOTH = 0.85  # measured 0.95 on the calibration half
MIN_GAIN_OVER_RULES = 0.4  # measured 0.95 vs 0.26


@pytest.fixture(scope="module")
def calibration(embedder):
    from bot.settings import load_settings

    emergencies = load_emergencies()
    cases = [c for c in load_set() if c.split == "calibrate"]
    measured = measure(cases, SimilarityDetector(emergencies, embedder), load_settings())
    return {detector: rates(measured, detector, emergencies.threshold, emergencies.margin)
            for detector in ("rules", "similarity", "both")}


def test_both_detectors_find_most_paraphrases_with_few_false_alarms(calibration):
    both, rules = calibration["both"], calibration["rules"]
    print(f"\ncalibration half: rules {rules['detection_rate']:.0%}, "
          f"both {both['detection_rate']:.0%} detected; "
          f"false alarms {both['false_alarms']}/{both['ordinary']}")
    assert both["detection_rate"] >= MIN_DETECTION_BOTH
    assert both["detection_rate"] - rules["detection_rate"] >= MIN_GAIN_OVER_RULES
    assert both["false_alarm_rate"] <= MAX_FALSE_ALARM_RATE


def test_the_similarity_detector_alone_keeps_false_alarms_within_the_target(calibration):
    assert calibration["similarity"]["false_alarm_rate"] <= MAX_FALSE_ALARM_RATE


def test_the_set_is_large_enough_and_split_in_two():
    cases = load_set(SET_PATH)
    urgent = [c for c in cases if c.urgent]
    ordinary = [c for c in cases if not c.urgent]
    assert len(urgent) >= 40 and sum(c.lang == "ru" for c in urgent) >= 15
    assert len(ordinary) >= 150 and {c.lang for c in ordinary} == {"en", "ru"}
    for group in (urgent, ordinary):
        assert {c.split for c in group} == {"calibrate", "test"}
    ids = {e.id for e in load_emergencies().emergencies}
    assert all(c.emergency in ids for c in urgent) and all(c.emergency is None for c in ordinary)


def test_the_set_does_not_reuse_the_wordings_of_the_rules_or_their_tests():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    written = ((root / "tests" / "test_redflags.py").read_text(encoding="utf-8")
               + (root / "bot" / "safety" / "redflags.json").read_text(encoding="utf-8")).lower()
    reused = [c.text for c in load_set() if c.urgent and c.text.lower() in written]
    assert not reused
