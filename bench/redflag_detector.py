"""Red-flag detection on paraphrases: rules alone, the similarity detector alone, and both.

    .venv/bin/python -m bench.redflag_detector              # with emergencies.json's threshold
    .venv/bin/python -m bench.redflag_detector --calibrate  # also sweep threshold and margin

Reads evals/sets/redflag_paraphrases.jsonl (urgent messages in wordings the rules do not list,
and ordinary ones) and writes bench/results/redflag_detector.json with detection and false-alarm
rates per split and language, and prints the table. The threshold and margin are chosen on the
"calibrate" split only; the "test" split is held out. The similarity detector is given the
search text the pipeline computes (bot/query.py), as the pipeline will. A second table runs the
messages of tests/test_redflags.py, a development check on false alarms (not held out).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.tables import RESULTS_DIR, machine, markdown_table, write_json
from bot.query import search_query
from bot.safety.redflag_similarity import (EMERGENCIES_PATH, Score, SimilarityDetector,
                                           comparison_text, load_emergencies)
from bot.safety.input_guard import detect_language
from bot.safety.redflags import triage
from bot.settings import Settings, load_settings
from index.embedding import load_embedder

SET_PATH = Path(__file__).resolve().parents[1] / "evals" / "sets" / "redflag_paraphrases.jsonl"
OUT_PATH = RESULTS_DIR / "redflag_detector.json"
EXISTING_TESTS = Path(__file__).resolve().parents[1] / "tests" / "test_redflags.py"
MAX_FALSE_ALARM_RATE = 0.01
DETECTORS = ("rules", "similarity", "both")
# The sweep: cosine similarities of MiniLM between a message and a description fall in 0.2-0.9.
THRESHOLDS = np.round(np.arange(0.30, 0.801, 0.01), 2)
MARGINS = np.round(np.arange(-0.10, 0.201, 0.01), 2)


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    lang: str
    urgent: bool
    emergency: str | None
    split: str
    kind: str = ""


@dataclass(frozen=True)
class Measured:
    case: Case
    rule: str | None  # the rule that fired, if any
    score: Score | None  # the similarity detector's closest emergency

    def fires(self, detector: str, threshold: float, margin: float) -> str | None:
        """The emergency `detector` reports for this message, or None."""
        similar = (self.score.emergency_id
                   if self.score is not None and self.score.fires(threshold, margin) else None)
        return {"rules": self.rule, "similarity": similar, "both": self.rule or similar}[detector]


def load_set(path: Path = SET_PATH) -> list[Case]:
    cases = [Case(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    if len({c.id for c in cases}) != len(cases):
        raise ValueError(f"{path}: ids are not unique")
    return cases


def measure(cases: Iterable[Case], detector: SimilarityDetector,
            settings: Settings | None = None) -> list[Measured]:
    """Run the rules and score the similarity detector on each case (threshold applied later)."""
    settings = settings or load_settings()
    measured = []
    for case in cases:
        flag = triage(case.text)
        search_text = search_query(case.text, [], settings).text
        measured.append(Measured(case, flag.rule_id if flag else None,
                                 detector.score(comparison_text(case.text, search_text))))
    return measured


def rates(measured: Sequence[Measured], detector: str, threshold: float, margin: float) -> dict:
    urgent = [m for m in measured if m.case.urgent]
    ordinary = [m for m in measured if not m.case.urgent]
    found = [(m, m.fires(detector, threshold, margin)) for m in urgent]
    detected = sum(hit is not None for _, hit in found)
    alarms = [m.case.id for m in ordinary if m.fires(detector, threshold, margin)]
    return {
        "urgent": len(urgent), "detected": detected,
        "detection_rate": round(detected / len(urgent), 3) if urgent else None,
        "right_emergency": sum(hit == m.case.emergency for m, hit in found),
        "ordinary": len(ordinary), "false_alarms": len(alarms),
        "false_alarm_rate": round(len(alarms) / len(ordinary), 4) if ordinary else None,
        "false_alarm_ids": alarms,
        "missed_ids": [m.case.id for m, hit in found if hit is None],
    }


def calibrate(measured: Sequence[Measured]) -> dict:
    """The threshold and margin detecting most urgent messages with both detectors together,
    with false alarms at most MAX_FALSE_ALARM_RATE; ties go to the most cautious (highest) pair,
    so that a wider margin is kept against false alarms on messages not yet seen."""
    best = None
    for threshold in THRESHOLDS:
        for margin in MARGINS:
            r = rates(measured, "both", float(threshold), float(margin))
            if r["false_alarm_rate"] > MAX_FALSE_ALARM_RATE:
                continue
            key = (r["detected"], -r["false_alarms"], float(margin), float(threshold))
            if best is None or key > best[0]:
                best = (key, float(threshold), float(margin))
    if best is None:
        raise RuntimeError("no threshold keeps false alarms within the target")
    return {"threshold": best[1], "margin": best[2]}


def report(measured: Sequence[Measured], threshold: float, margin: float) -> list[dict]:
    rows = []
    for split in ("calibrate", "test"):
        for lang in ("en", "ru", "all"):
            subset = [m for m in measured if m.case.split == split
                      and (lang == "all" or m.case.lang == lang)]
            for detector in DETECTORS:
                rows.append({"split": split, "lang": lang, "detector": detector,
                             **rates(subset, detector, threshold, margin)})
    return rows


def existing_test_cases(path: Path = EXISTING_TESTS) -> list[Case]:
    """The messages of tests/test_redflags.py (written for the rules, by others), as cases.

    Not held out: they were looked at while writing the ordinary questions of emergencies.json,
    so they are a second check on false alarms, not an unbiased one.
    """
    spec = importlib.util.spec_from_file_location("_redflag_rule_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cases = [Case(f"tests-urgent-{i}", text, detect_language(text), True, rule, "tests")
             for i, (rule, text) in enumerate(
                 (rule, text) for rule, texts in module.URGENT.items() for text in texts)]
    for kind in ("ORDINARY", "NEGATED"):
        cases += [Case(f"tests-{kind.lower()}-{i}", text, detect_language(text), False, None,
                       "tests", kind.lower()) for i, text in enumerate(getattr(module, kind))]
    return cases


def existing_test_rows(measured: Sequence[Measured], threshold: float, margin: float) -> list[dict]:
    rows = []
    for kind in ("ordinary", "negated"):
        subset = [m for m in measured if m.case.urgent or m.case.kind == kind]
        for detector in DETECTORS:
            rows.append({"split": f"tests ({kind})", "lang": "all", "detector": detector,
                         **rates(subset, detector, threshold, margin)})
    return rows


def table(rows: Sequence[dict]) -> str:
    header = ["split", "lang", "detector", "detected", "detection", "right emergency",
              "false alarms", "false-alarm rate"]
    return markdown_table(header, [
        [r["split"], r["lang"], r["detector"], f"{r['detected']}/{r['urgent']}",
         f"{r['detection_rate']:.0%}", f"{r['right_emergency']}/{r['urgent']}",
         f"{r['false_alarms']}/{r['ordinary']}", f"{r['false_alarm_rate']:.1%}"] for r in rows])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", type=Path, default=SET_PATH)
    parser.add_argument("--out", type=Path, default=OUT_PATH)
    parser.add_argument("--calibrate", action="store_true",
                        help="sweep threshold and margin on the calibration split")
    args = parser.parse_args(argv)

    settings = load_settings()
    emergencies = load_emergencies()
    embedder = load_embedder(settings.embedding)
    started = time.perf_counter()
    detector = SimilarityDetector(emergencies, embedder)
    measured = measure(load_set(args.set), detector, settings)
    seconds = time.perf_counter() - started
    payload = {
        "machine": machine(), "set": str(args.set.relative_to(Path.cwd()) if args.set.is_absolute()
                                          and args.set.is_relative_to(Path.cwd()) else args.set),
        "emergencies_file": str(EMERGENCIES_PATH.name), "model": emergencies.model,
        "threshold": emergencies.threshold, "margin": emergencies.margin,
        "max_false_alarm_rate": MAX_FALSE_ALARM_RATE,
        "seconds_per_message": round(seconds / max(len(measured), 1), 4),
    }
    if args.calibrate:
        chosen = calibrate([m for m in measured if m.case.split == "calibrate"])
        payload["calibrated"] = chosen
        print(f"calibrated on the calibration split: threshold {chosen['threshold']}, "
              f"margin {chosen['margin']} (emergencies.json has {emergencies.threshold}, "
              f"{emergencies.margin})")
    rows = report(measured, emergencies.threshold, emergencies.margin)
    payload["rows"] = rows
    existing = existing_test_rows(measure(existing_test_cases(), detector, settings),
                                  emergencies.threshold, emergencies.margin)
    payload["tests_test_redflags_rows"] = existing
    write_json(args.out, payload)
    print(f"threshold {emergencies.threshold}, margin {emergencies.margin} "
          f"({payload['seconds_per_message'] * 1000:.0f} ms per message, rules + similarity)")
    print(table(rows))
    print("\nThe messages of tests/test_redflags.py (written for the rules; not held out):")
    print(table(existing))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
