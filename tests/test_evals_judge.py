"""The grounding judge on hand-made sentences against real passages of the raw sources.

These sentences are also where the judge's thresholds (evals/judge.py) were chosen.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from corpus.settings import CorpusSettings
from evals.judge import GroundingJudge, content_words, is_supported, split_sentences

RAW = CorpusSettings().raw_dir
F0 = (RAW / "000_7043fe233292e3e7.txt").read_text(encoding="utf-8")
F2 = (RAW / "002_155f91860faa0152.txt").read_text(encoding="utf-8")


def span(text: str, start: str, end: str) -> str:
    """The raw text from `start` through `end`: a passage as a chunker might cut it."""
    i = text.index(start)
    return text[i: text.index(end, i) + len(end)]


PASSAGES = {
    "swim": span(F0, "Well, another question", "insufficient heating before training."),
    "vitd": span(F0, "Why reduces the calf muscle? Most often", "exclude diuretics and drinks."),
    "preg": span(F0, "In women in particular", "can mean preeclampsia."),
    "caffeine": span(F2, "Abuse of caffeine.", "you may be advised calf muscles."),
    "massage": span(F2, "Spasms of the positive effect", "cold compress on the skin."),
    "potassium": span(F2, "Pain in the legs very often, pregnant women suffer.", "kiwi and honey."),
    "sweat": span(F2, "Profuse sweating", "causing and reduces muscle."),
    "work": span(F2, "Sitting or standing work.", "state of static tension."),
    "shoes": span(F2, "Wearing uncomfortable shoes.", "at night can't relax."),
}

SUPPORTED = [
    ("Cold water or a sudden temperature change can narrow the blood vessels and bring on cramps while swimming [1].", "swim"),
    ("Dehydration and not warming up before training can cause leg cramps [1].", "swim"),
    ("A lack of vitamin D can cause calf cramps because it helps the body absorb calcium and magnesium [1].", "vitd"),
    ("Vitamin B6 is also needed for the nervous system to work [1].", "vitd"),
    ("Eating pork, eggs and fish can help prevent cramps [1].", "vitd"),
    ("In late pregnancy, calf cramps can be a sign of gestational diabetes [1].", "preg"),
    ("Drinking more than five cups of strong tea or coffee a day may cause calf cramps [1].", "caffeine"),
    ("Massage helps with spasms, and a cold compress afterwards is useful [1].", "massage"),
    ("Pregnant women may lack calcium, which leads to calf cramps; eating bananas, kiwi and honey can help [1].", "potassium"),
    ("Heavy sweating loses minerals such as potassium, magnesium, sodium and calcium, which can lead to muscle spasms [1].", "sweat"),
    ("Sitting still for a long time slows the blood circulation in the legs, which can cause night cramps [1].", "work"),
    ("Uncomfortable shoes tire the leg muscles during the day so they cannot relax at night [1].", "shoes"),
]

UNSUPPORTED = [
    ("Quinine tablets are the most effective treatment for night cramps [1].", "massage"),
    ("Statins are a common cause of muscle cramps [1].", "sweat"),
    ("Drinking pickle juice stops a cramp within a minute [1].", "massage"),
    ("You should take 400 mg of magnesium every day to prevent cramps [1].", "vitd"),
    ("Stretching the calf before bed prevents night cramps [1].", "caffeine"),
    ("Cramps in pregnancy are harmless and need no attention [1].", "preg"),
    ("Leg cramps are caused by a lack of sleep and too much screen time [1].", "work"),
    ("Wearing compression stockings at night will stop the cramps [1].", "shoes"),
    ("Eating bananas is the best cure for vitamin D deficiency [1].", "vitd"),
    ("The capital of France is Paris [1].", "swim"),
    ("Dehydration is the main cause of cramps in older adults [1].", "caffeine"),  # true elsewhere, not here
    ("Smoking narrows the arteries of the legs and is the main cause of cramps [1].", "work"),
]


@pytest.fixture(scope="module")
def judge(embedder):
    return GroundingJudge(embedder)


@pytest.mark.parametrize("sentence, passage", SUPPORTED)
def test_supported_sentence_is_accepted(judge, sentence, passage):
    verdict = judge.judge(sentence, [PASSAGES[passage]])
    assert verdict.supported, verdict


@pytest.mark.parametrize("sentence, passage", UNSUPPORTED)
def test_unsupported_sentence_is_rejected(judge, sentence, passage):
    verdict = judge.judge(sentence, [PASSAGES[passage]])
    assert not verdict.supported, verdict


def test_any_cited_passage_may_support_the_sentence(judge):
    sentence, passage = SUPPORTED[0]
    assert judge.judge(sentence, [PASSAGES["shoes"], PASSAGES[passage]]).supported
    assert not judge.judge(sentence, [PASSAGES["shoes"]]).supported
    assert not judge.judge(sentence, []).supported


def test_without_an_embedder_only_close_wording_counts():
    lexical = GroundingJudge()
    copied = "Profuse sweating of the body can also lead to muscle spasms [1]."
    assert lexical.judge(copied, [PASSAGES["sweat"]]).supported
    assert lexical.judge(copied, [PASSAGES["sweat"]]).cosine is None
    for sentence, passage in UNSUPPORTED:
        assert not lexical.judge(sentence, [PASSAGES[passage]]).supported, sentence


def test_decision_rule_thresholds():
    assert is_supported(0.8, None)
    assert not is_supported(0.6, None)
    assert is_supported(0.6, 0.75)
    assert not is_supported(0.4, 0.6)


def test_sentences_keep_their_markers_and_words_are_stemmed():
    assert split_sentences("Cramps are common. [1] They hurt [2].\n- Rest [1, 2].") == [
        "Cramps are common [1].", "They hurt [2].", "- Rest [1, 2]."]
    assert content_words("Yes, the cramps [1] and cramping of calves") == ["cramp", "cramp", "calv"]
    assert content_words("tired legs") == content_words("tire leg")
