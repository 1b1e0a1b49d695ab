"""Which prompt layout keeps the default model grounded, and how fast the packaged models are.

    .venv/bin/python -m bench.prompt_formats            # everything -> bench/results/prompt_formats.json
    .venv/bin/python -m bench.prompt_formats --skip-speed --formats b,d

Formats: the prompt texts of bot/texts.py (and, for comparison, the previous ones with an
exact-decline rule) laid out differently across the system and user turns, over the same
hand-cut passages. Each answer is scored on citations, declines and word overlap with what it cites.
Speed: cold load (join parts + dequantize + save the cache, into a scratch models folder),
warm load from that cache, time to first token and decode tokens/s for a ~300-token prompt.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import shutil
import statistics
import time
from pathlib import Path

from bot.generation.factory import make_generator
from bot.settings import PROJECT_DIR, load_settings
from bot.texts import CANNOT_ANSWER, SOURCE_LINE, SYSTEM_PROMPT, USER_PROMPT

RESULTS = PROJECT_DIR / "bench" / "results" / "prompt_formats.json"
SCRATCH = PROJECT_DIR / "bench" / "results" / "tmp"  # git-ignored

# Passages cut by hand from corpus/raw/*.txt (wording kept, machine-translation quirks included).
PASSAGES = {
    "night_causes": (
        "Causes of night pain in calves of legs",
        "Prolonged stress, irregular meals. And the first and second leads to a decrease in blood "
        "sugar. Muscles eat glucose. Its deficiency can cause reduction of electrolytes, and as a "
        "result there are cramps. Excessive physical stress. This is especially true for those cases "
        "when the muscles were not ready for it. It is therefore important to increase the load on "
        "the legs gradually.",
    ),
    "work_caffeine": (
        "Causes of night pain in calves of legs",
        "Sitting or standing work. Both can cause night cramps. In the case of sedentary work, "
        "immobility contributes to slowing the blood circulation. In the case of standing work, the "
        "muscles of the legs are in a state of static tension. Abuse of caffeine. When consuming in a "
        "day more than 5 cups of strong tea or coffee, you may get cramps in the calf muscles. Wearing "
        "uncomfortable shoes. Day the leg muscles get really tired and at night can't relax.",
    ),
    "what_to_do": (
        "What to do when cramps in calf muscle",
        "To prevent the recurrence of cramps in the calf muscles, you need to eliminate provoking "
        "factors. It is compulsory to adjust your diet. Meals should be at approximately the same "
        "time. You should perform only a feasible exercise, and daily kneading of the muscles of the "
        "lower legs is welcome. Massage has a positive effect on spasms; do it not only at critical "
        "moments but also during the day. After the massage a cold compress on the skin is useful.",
    ),
    "pregnancy": (
        "Why drives caviar",
        "Pregnant women very often suffer from pain in the legs. Because of the growing stress on the "
        "body, pregnant women have insufficient amounts of calcium. This leads to cramps and pain in "
        "the calves. As a rule, the situation is corrected by taking additional vitamins and mineral "
        "complexes. A so-called potassium diet also helps, when you need to eat more bananas, kiwi "
        "and honey.",
    ),
    "electrolytes": (
        "Why leg cramps cramp",
        "The reason for localized tonic seizures can also be a violation of the biochemical and "
        "electrolyte composition of blood. They form after a significant loss of body salts, which "
        "develops with a decrease in blood calcium, potassium or magnesium, as well as a lack of "
        "vitamin D. Cramping calf muscles can also result from severe anemia.",
    ),
    "vitamins": (
        "One more reason",
        "Most often, the reason can be a simple vitamin deficiency, for example vitamin D deficiency. "
        "Vitamin D helps to absorb calcium and magnesium, without which the nerve endings work "
        "poorly. Vitamin B6 is also needed for the functioning of the nervous system. To avoid "
        "vitamin deficiency and prevent cramps of the calf muscle, you should include pork, eggs and "
        "fish in the menu.",
    ),
    "swimming": (
        "One more reason",
        "Why do cramps often lie in wait for swimmers? This is due to narrowing of the blood vessels. "
        "It can be caused by too cold water, a temperature difference (warmed up in the sun and went "
        "into the water), or muscle strain. Cramps in water also often affect people who lack "
        "calcium.",
    ),
    "warm_bath": (
        "Why drives caviar",
        "Massage can relieve the pain: gently stroke the cramped limb, then massage the foot with "
        "very light tapping. Alternatively, try a bath with warm water up to the knee, lightly "
        "stroking the legs under the water. Warmth will relax the muscles and relieve the spasm. "
        "Herbal teas can help, but choose only those without a diuretic effect.",
    ),
}

# (question, passages shown in this order, numbers that hold the answer; empty = off-topic)
QUESTIONS = [
    ("Why do my calves cramp at night?", ["work_caffeine", "night_causes", "what_to_do", "pregnancy"], {1, 2}),
    ("What can I do so that calf cramps don't come back?", ["electrolytes", "what_to_do", "swimming", "vitamins"], {2, 4}),
    ("Which vitamins are linked to leg cramps?", ["pregnancy", "swimming", "vitamins", "electrolytes"], {3, 4}),
    ("Why do I get leg cramps when swimming?", ["swimming", "warm_bath", "night_causes"], {1}),
    ("I'm pregnant and get calf cramps. What might help?", ["night_causes", "electrolytes", "pregnancy", "warm_bath"], {3, 4}),
    ("Can drinking a lot of coffee cause cramps in my legs?", ["vitamins", "work_caffeine", "what_to_do"], {2}),
    ("How do I fix my car's brakes?", ["night_causes", "what_to_do", "swimming"], set()),
    ("What is the capital of Australia?", ["vitamins", "pregnancy", "work_caffeine"], set()),
    ("What dose of ibuprofen should I take for a headache?", ["what_to_do", "electrolytes", "warm_bath"], set()),
]

# Restated at the end of the user turn in (b): small models follow the latest instruction best.
REMINDER = (
    "Answer using only the sources above, in 2 to 4 short sentences, each ending with its source "
    "number like [1]."
)
# (e): the current prompt plus a decline rule limited to off-topic questions.
OFF_TOPIC_RULE = (
    f" If the sources are about a different topic than the question, reply exactly: \"{CANNOT_ANSWER}\""
)
# (d): bot/texts.py before commit 6957d0e, kept here to measure what it did: rules with an
# exact-decline instruction in the system prompt, repeated at the end of the user turn.
PREVIOUS_SYSTEM_PROMPT = (
    "You are a careful medical-information assistant about leg and calf cramps. "
    "Answer ONLY from the numbered sources the user gives you. "
    "After every sentence, cite the source it comes from as [1], [2], etc. "
    "If the sources do not answer the question, reply exactly: "
    f"\"{CANNOT_ANSWER}\" "
    "Write 2 to 4 short plain-English sentences. Do not add a disclaimer."
)
PREVIOUS_REMINDER = (
    "Answer the question using only the sources above, in 2 to 4 short sentences, each ending "
    "with its source number like [1]. If the sources do not answer it, reply exactly: "
    f"\"{CANNOT_ANSWER}\""
)


def _sources(keys: list[str]) -> str:
    return "\n".join(
        SOURCE_LINE.format(n=n, section=PASSAGES[key][0], text=PASSAGES[key][1])
        for n, key in enumerate(keys, start=1)
    )


def build_messages(layout: str, question: str, keys: list[str]) -> list[dict]:
    user = USER_PROMPT.format(sources=_sources(keys), question=question)
    if layout == "a":
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    if layout == "b":
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": f"{user}\n\n{REMINDER}"}]
    if layout == "c":
        return [{"role": "user", "content": f"{SYSTEM_PROMPT}\n\n{user}"}]
    if layout == "d":
        previous = f"Sources:\n{_sources(keys)}\n\nQuestion: {question}\n\n{PREVIOUS_REMINDER}"
        return [{"role": "system", "content": PREVIOUS_SYSTEM_PROMPT}, {"role": "user", "content": previous}]
    if layout == "e":
        return [{"role": "system", "content": SYSTEM_PROMPT + OFF_TOPIC_RULE}, {"role": "user", "content": user}]
    if layout == "f":
        return [
            {"role": "system", "content": SYSTEM_PROMPT + OFF_TOPIC_RULE},
            {"role": "user", "content": f"{user}\n\n{REMINDER}"},
        ]
    raise ValueError(f"unknown layout {layout}")


LAYOUTS = {
    "a": "rules in the system prompt only (current bot/texts.py)",
    "b": "rules in the system prompt, restated at the end of the user turn",
    "c": "no system prompt: rules, sources and question in the user turn",
    "d": "previous bot/texts.py: exact-decline rule in the system prompt and at the end of the user turn",
    "e": "(a) plus, in the system prompt, 'if the sources are about a different topic, reply exactly <decline>'",
    "f": "(b) plus the off-topic decline rule of (e) in the system prompt",
}

# -- scoring ------------------------------------------------------------------------------------

_MARKER = re.compile(r"\[(\d+)\]")
_STOPWORDS = set(
    "a an and are as at be been but by can do does for from has have if in into is it its may "
    "more most not of on or so such than that the their them then there these they this to was "
    "were what when which who why will with you your also other very".split()
)


def _content_words(text: str) -> set[str]:
    words = re.findall(r"[a-z]+", _MARKER.sub(" ", text.lower()))
    # Crude plural folding, so "cramps" in an answer matches "cramp" in a passage.
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words if len(w) > 2 and w not in _STOPWORDS}


def _sentences(answer: str) -> list[str]:
    # Move markers written after the full stop ("... cramps. [1]") in front of it, then split.
    text = re.sub(r"([.!?])\s*((?:\[\d+\]\s*)+)", lambda m: f" {m.group(2).strip()}{m.group(1)} ", answer)
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 3]


def score_answer(answer: str, keys: list[str], expected: set[int]) -> dict:
    cited = {int(n) for n in _MARKER.findall(answer)}
    declined = CANNOT_ANSWER in answer
    loose = CANNOT_ANSWER.lower() in answer.replace("\u2019", "'").lower()
    valid = bool(cited) and cited <= set(range(1, len(keys) + 1))
    result = {"cited": sorted(cited), "declined_exact": declined, "declined_loose": loose, "valid_markers": valid}
    if not expected:  # off-topic: the only good answer is the exact decline, citing nothing
        result["score"] = 1.0 if declined and not cited else 0.5 if not cited else 0.0
        return result
    sentences = _sentences(answer)
    with_marker = [s for s in sentences if _MARKER.search(s)]
    overlaps = []
    for sentence in with_marker:
        numbers = {int(n) for n in _MARKER.findall(sentence)} & set(range(1, len(keys) + 1))
        passage_words = set().union(*(_content_words(PASSAGES[keys[n - 1]][1]) for n in numbers)) if numbers else set()
        words = _content_words(sentence)
        overlaps.append(len(words & passage_words) / len(words) if words else 0.0)
    result["cites_expected"] = bool(cited & expected)
    result["sentence_coverage"] = len(with_marker) / len(sentences) if sentences else 0.0
    result["overlap"] = statistics.mean(overlaps) if overlaps else 0.0
    parts = [valid, result["cites_expected"], result["sentence_coverage"], result["overlap"]]
    result["score"] = 0.0 if declined else sum(float(p) for p in parts) / len(parts)
    return result


def summarize(rows: list[dict]) -> dict:
    scope = [r for r in rows if r["in_scope"]]
    off = [r for r in rows if not r["in_scope"]]
    return {
        "score": round(statistics.mean(r["score"] for r in rows), 3),
        "in_scope_score": round(statistics.mean(r["score"] for r in scope), 3),
        "in_scope_valid_markers": sum(r["valid_markers"] for r in scope),
        "in_scope_cites_expected": sum(r["cites_expected"] for r in scope),
        "in_scope_wrongly_declined": sum(r["declined_exact"] for r in scope),
        "in_scope_sentence_coverage": round(statistics.mean(r["sentence_coverage"] for r in scope), 3),
        "in_scope_overlap": round(statistics.mean(r["overlap"] for r in scope), 3),
        "off_topic_declined_exact": sum(r["declined_exact"] and not r["cited"] for r in off),
        "off_topic_uncited": sum(not r["cited"] for r in off),
        "in_scope_n": len(scope),
        "off_topic_n": len(off),
    }


def run_layout(generator, layout: str, max_new_tokens: int) -> dict:
    import torch

    started_at = time.strftime("%Y-%m-%d %H:%M:%S")
    rows = []
    for question, keys, expected in QUESTIONS:
        messages = build_messages(layout, question, keys)
        started = time.perf_counter()
        answer = "".join(generator.stream(messages, max_new_tokens)).strip()
        row = {
            "question": question,
            "in_scope": bool(expected),
            "expected": sorted(expected),
            "answer": answer,
            "seconds": round(time.perf_counter() - started, 1),
            **score_answer(answer, keys, expected),
        }
        rows.append(row)
        print(f"[{layout}] {row['score']:.2f} {question} -> {answer[:100]!r}", flush=True)
    return {
        "description": LAYOUTS[layout],
        "measured_at": started_at,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch_threads": torch.get_num_threads(),
        "summary": summarize(rows),
        "answers": rows,
    }


# -- speed --------------------------------------------------------------------------------------

SPEED_QUESTION = "What causes calf cramps at night, and what can I do about them?"
SPEED_KEYS = ["night_causes", "what_to_do", "pregnancy"]


def _timed_stream(generator, messages: list[dict], max_new_tokens: int) -> dict:
    started = time.perf_counter()
    first = None
    text = ""
    for piece in generator.stream(messages, max_new_tokens):
        if first is None:
            first = time.perf_counter() - started
        text += piece
    total = time.perf_counter() - started
    tokens = generator.count_tokens(text)
    return {"first_token_s": first, "total_s": total, "tokens": tokens,
            "decode_tokens_per_s": (tokens - 1) / (total - first) if tokens > 1 and total > first else None}


def measure_speed(preset: str, runs: int) -> dict:
    started = time.perf_counter()
    import bot.generation.transformers_backend  # noqa: F401  (torch + transformers, timed apart)

    import_s = time.perf_counter() - started
    settings = load_settings(preset)
    scratch = SCRATCH / f"models-{preset}"
    shutil.rmtree(scratch, ignore_errors=True)
    started = time.perf_counter()
    cold = make_generator(settings.generation, scratch)  # joins parts and verifies the hash
    resolve_s = time.perf_counter() - started
    cold.load()  # dequantizes and writes the cache
    cold_s = time.perf_counter() - started
    del cold
    gc.collect()
    started = time.perf_counter()
    warm = make_generator(settings.generation, scratch)
    warm.load()
    warm_s = time.perf_counter() - started
    messages = build_messages("a", SPEED_QUESTION, SPEED_KEYS)  # the prompt the app sends
    _timed_stream(warm, messages, 4)  # first call pays one-off allocations
    timings = [_timed_stream(warm, messages, 64) for _ in range(runs)]
    result = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_1min": round(os.getloadavg()[0], 2),  # the machine may be shared
        "model": settings.generation.model,
        "name": warm.name,
        "dtype": settings.generation.dtype,
        "import_s": round(import_s, 1),  # 0 for the second model: already imported
        "cold_load_s": round(cold_s, 1),
        "cold_resolve_s": round(resolve_s, 1),
        "warm_load_s": round(warm_s, 1),
        "warm_loaded_from": warm.loaded_from,
        "prompt_tokens": warm.prompt_tokens(messages),
        "first_token_s": round(statistics.median(t["first_token_s"] for t in timings), 2),
        "decode_tokens_per_s": round(statistics.median(t["decode_tokens_per_s"] for t in timings), 2),
        "runs": timings,
    }
    del warm
    gc.collect()
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"[speed] {json.dumps({k: v for k, v in result.items() if k != 'runs'})}", flush=True)
    return result


def rescore(formats: dict) -> None:
    """Score the stored answers again (after a change to the scoring), without generating."""
    keys_of = {question: (keys, expected) for question, keys, expected in QUESTIONS}
    for result in formats["results"].values():
        for row in result["answers"]:
            keys, expected = keys_of[row["question"]]
            row.update(score_answer(row["answer"], keys, expected))
        result["summary"] = summarize(result["answers"])
    _rank(formats)


def _rank(formats: dict) -> None:
    results = formats["results"]
    formats["ranking"] = sorted(results, key=lambda name: -results[name]["summary"]["score"])
    formats["ranking_in_scope"] = sorted(results, key=lambda name: -results[name]["summary"]["in_scope_score"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--formats", default=",".join(LAYOUTS), help="Layouts to compare, e.g. a,b,c.")
    parser.add_argument("--max-new-tokens", type=int, default=120)
    parser.add_argument("--skip-formats", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--speed-runs", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None,
        help="torch threads for the format comparison (default: the preset's). On a busy machine 1 "
        "thread decodes faster than 2 fighting over cores; greedy answers barely depend on it.",
    )
    parser.add_argument("--rescore", action="store_true", help="Only score the stored answers again.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.rescore:
        report = json.loads(args.out.read_text())
        rescore(report["formats"])
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"rescored {args.out}: ranking {report['formats']['ranking']}")
        return

    # Results are saved after every layout and model, and a run only replaces the sections it
    # measures: on a shared 2-core machine a full run takes long and may be interrupted.
    report: dict = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    if not args.skip_speed:
        speed = report.setdefault("speed", {})
        for preset in ("tiny", "default"):
            speed[preset] = measure_speed(preset, args.speed_runs)
            save()
    if not args.skip_formats:
        overrides = {"generation": {"threads": args.threads}} if args.threads is not None else {}
        settings = load_settings("default", **overrides)
        generator = make_generator(settings.generation, settings.models_dir)
        generator.load()
        setup = {"model": generator.name, "max_new_tokens": args.max_new_tokens}
        formats = report.get("formats", {})
        if {k: formats.get(k) for k in setup} != setup:
            formats = {**setup, "results": {}}  # other model or budget: earlier layouts not comparable
        report["formats"] = formats
        for layout in (name.strip() for name in args.formats.split(",") if name.strip()):
            formats["results"][layout] = run_layout(generator, layout, args.max_new_tokens)
            _rank(formats)
            save()
    save()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
