"""The similarity red-flag detector with the real embedder: paraphrases beside the rules escalate,
negated and ordinary messages do not, and triage() keeps its old behaviour without an embedder."""
from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from bot.safety.input_guard import detect_language
from bot.safety.redflag_similarity import comparison_text, load_emergencies, similarity_triage
from bot.safety.redflags import triage

# The case an independent test found declined instead of escalated (heat stroke), in the words
# of the report and as a person would type it. The rules now list heat stroke too
# (redflags.json, heat_illness); either detector must escalate it.
HEAT_ILLNESS = {
    "en": [
        "confusion, hot dry skin, no sweating after hours of work in the heat",
        "I'm confused, my skin is hot and dry and I'm not sweating after hours of work in the heat",
    ],
    "ru": [
        "спутанность сознания, горячая сухая кожа, не потею после многих часов работы на жаре",
        "Я несколько часов работал на жаре, теперь путаюсь, кожа горячая и сухая, совсем не потею",
    ],
}

# An emergency no rule lists: only its descriptions' meaning finds it.
LOW_BLOOD_SUGAR = {
    "en": [
        "I'm sweating, shaky and confused, I'm diabetic and skipped lunch",
        "type 1 diabetic, took my insulin but didn't eat, now I'm trembling, sweaty and can't think straight",
    ],
    "ru": [
        "у меня диабет, пропустил обед, теперь трясёт, потею и путаются мысли",
        "диабетик, укололся инсулином и не поел, теперь дрожу, весь в поту и плохо соображаю",
    ],
}

NEGATED = [
    "No chest pain, just cramps",
    "no chest pain and no shortness of breath, just cramps in my calves at night",
    "I'm not confused and my skin isn't hot or dry, I just cramp after work in the heat",
    "My calf is not swollen, red or warm, it only cramps at night",
    "Нет боли в груди, только судороги",
    "Кожа не горячая и не сухая, голова ясная, просто сводит ноги после работы на жаре",
]

ORDINARY = [
    "my calf cramps at night and hurts a lot",
    "cramps after running a marathon",
    "why do I get cramps in hot weather?",
    "what is heat stroke?",
    "икру сводит ночью и очень больно",
    "судороги после марафона",
    "почему в жару чаще сводит ноги?",
    # A question about stopping alcohol, with no symptom: dev's follow-up after a coffee
    # question had been sent the alcohol-withdrawal emergency advice.
    "and what about quitting alcohol suddenly?",
    "what happens if you stop drinking alcohol abruptly?",
]


def _pipeline_search_text(message: str) -> str:
    """What the pipeline passes as search_text: bot/query.py's search text for a first message
    (for Russian, the lexicon gloss)."""
    from bot.query import search_query
    from bot.settings import load_settings

    return search_query(message, [], load_settings()).text


@pytest.mark.parametrize("language", ["en", "ru"])
def test_heat_illness_escalates_with_advice_in_the_message_language(embedder, language):
    for message in HEAT_ILLNESS[language]:
        flag = triage(message, "911", embedder=embedder, search_text=_pipeline_search_text(message))
        assert flag is not None, message
        assert flag.rule_id == "heat_illness"
        assert detect_language(flag.advice) == language == detect_language(flag.avoid)
        first_sentence = re.split(r"(?<=[.!?])\s", flag.advice)[0]
        assert "911" in first_sentence and "{" not in flag.advice


@pytest.mark.parametrize("language", ["en", "ru"])
def test_an_emergency_no_rule_lists_escalates_by_meaning(embedder, language):
    for message in LOW_BLOOD_SUGAR[language]:
        assert triage(message) is None  # the rules alone miss it: the gap this detector closes
        flag = triage(message, "911", embedder=embedder, search_text=_pipeline_search_text(message))
        assert flag is not None, message
        assert flag.detector == "similarity" and flag.rule_id == "low_blood_sugar"
        assert detect_language(flag.advice) == language == detect_language(flag.avoid)
        first_sentence = re.split(r"(?<=[.!?])\s", flag.advice)[0]
        assert "911" in first_sentence and "{" not in flag.advice
        assert flag.matched and 0 < flag.score <= 1


@pytest.mark.parametrize("message", NEGATED + ORDINARY)
def test_negated_and_ordinary_messages_do_not_fire(embedder, message):
    assert triage(message, embedder=embedder, search_text=_pipeline_search_text(message)) is None


def test_negated_parts_are_removed_before_comparing():
    assert comparison_text("No chest pain, just cramps") == "just cramps"
    # The pipeline's gloss of this message has lost "нет" ("pain chest cramps"): the detector
    # glosses the message itself, after removing what is negated.
    assert comparison_text("Нет боли в груди, только судороги",
                           search_text="pain chest cramps") == "only cramps"


def test_rules_come_first_and_say_so(embedder):
    flag = triage("my chest hurts", embedder=embedder)
    assert flag.detector == "rules" and flag.rule_id == "chest_breathing" and flag.score is None


def test_without_an_embedder_triage_is_the_rules_alone():
    assert triage(LOW_BLOOD_SUGAR["en"][1]) is None
    assert triage("my chest hurts").detector == "rules"


def test_advice_language_can_be_forced(embedder):
    flag = triage(LOW_BLOOD_SUGAR["en"][1], embedder=embedder, language="ru")
    assert flag is not None and detect_language(flag.advice) == "ru"


def test_a_rule_emergency_found_by_meaning_gives_the_rule_advice(embedder):
    from bot.safety.redflags import load_rules

    message = "one leg has been puffy, tender and aching ever since the long plane journey home"
    flag = similarity_triage(message, embedder)
    assert flag is not None and flag.rule_id == "leg_clot"
    rule = next(r for r in load_rules().spec.rules if r.id == "leg_clot")
    assert flag.advice == rule.advice.en.format(emergency_number="112")


class _OtherModel:
    name, dim = "some-other-model", 384

    def embed(self, texts):
        return np.ones((len(texts), self.dim), dtype=np.float32) / np.sqrt(self.dim)


def test_detector_is_off_for_a_model_it_was_not_calibrated_for(caplog):
    with caplog.at_level(logging.WARNING, logger="bot.safety.redflag_similarity"):
        assert similarity_triage(HEAT_ILLNESS["en"][1], _OtherModel()) is None
    assert load_emergencies().model in caplog.text


class _Counting:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, embedder):
        self.name, self.dim, self._embedder, self.texts = embedder.name, embedder.dim, embedder, 0

    def embed(self, texts):
        self.texts += len(texts)
        return self._embedder.embed(texts)


def test_descriptions_are_embedded_once_then_one_text_per_message(embedder):
    counting = _Counting(embedder)
    similarity_triage(HEAT_ILLNESS["en"][0], counting)
    first = counting.texts
    for message in ORDINARY[:3]:
        similarity_triage(message, counting)
    assert first > 50 and counting.texts == first + 3
