"""What kind of answer a question asks for (bot/intents.py)."""
from __future__ import annotations

import pytest

from bot.intents import reorder_cues, asks_first_aid, asks_why, intent_cues, off_intent


@pytest.mark.parametrize("question, first_aid", [
    ("What should I do when my calf cramps right now?", True),
    ("what can I do right when my calf knots up", True),
    ("how do I stop a cramp quickly?", True),
    ("the back of my leg goes rock hard right when I wake up, what's going on", False),
    ("What happens inside the muscle during a cramp?", False),
    ("How can I stop calf cramps from coming back?", False),
    # One cramp that happened or is happening: what to do about it is first aid.
    ("what to do if my calf cramped at night", True),
    ("my leg is cramping, what do I do?", True),
    ("what do I do when my leg cramps in bed?", True),
    # A pattern asks for prevention, and a why-question for causes.
    ("what helps if my calves cramp every night?", False),
    ("why does my calf cramp when my leg is cold?", False),
])
def test_first_aid_is_asked_only_with_a_request_for_help_now(question, first_aid):
    assert asks_first_aid(question) is first_aid


def test_a_first_aid_question_sets_every_unit_without_first_aid_aside():
    question = "what can I do right when my calf knots up"
    assert off_intent(question, "If the cause of leg cramps is a serious disease, it needs to be treated.")
    assert off_intent(question, "To prevent calf muscle cramps from recurring, eliminate provoking factors.")
    assert not off_intent(question, "Gently stroke the cramped limb.")
    assert not off_intent("Why do my calves cramp at night?", "Caffeine abuse can cause cramps.")


def test_each_kind_of_question_looks_for_its_kind_of_sentence():
    def matches(question: str, unit: str) -> bool:
        return any(cue.search(unit) for cue in intent_cues(question))

    assert asks_why("Why do my calves cramp at night?")
    assert matches("Why do my calves cramp at night?", "This is due to narrowing of the blood vessels.")
    assert matches("Does massage help?", "It is recommended to use herbal teas.")
    mechanism = "What happens inside the muscle during a cramp?"
    assert matches(mechanism, "In a state of fatigue, the alpha motor neurons keep working.")
    assert not matches(mechanism, "Muscle cramps are an unpleasant and often very painful phenomenon.")
    assert intent_cues("Tell me about calves.") == []


@pytest.mark.parametrize("question, asks_help", [
    ("how do I stop the cramps?", True),
    ("what can stop a cramp?", True),
    # Stopping while walking is a symptom (of atherosclerosis in the sources), not a request.
    ("he gets calf cramps when he walks to the shop, he has to stop. What could that point to?", False),
    ("I have to stop and rest every 200 metres, is that related to my cramps?", False),
])
def test_stopping_while_walking_is_a_symptom_not_a_request_for_advice(question, asks_help):
    assert (reorder_cues(question) != []) is asks_help


def test_a_question_that_asks_what_helps_sets_units_that_advise_nothing_below_advice():
    question = "what can I do so it stops happening?"
    assert off_intent(question, "Caffeine abuse. When you drink more than 5 cups of coffee a day, "
                                "your calf muscles may cramp.") > 0
    assert off_intent(question, "It is recommended to use herbal teas.") == 0
    assert off_intent("Why do swimmers cramp?", "Caffeine abuse.") == 0


def test_the_disease_stroke_is_neither_first_aid_nor_advice():
    unit = "This phenomenon is most common at the onset of a stroke or in the period after it."
    assert off_intent("what can I do right when my calf knots up", unit) > 0
    assert off_intent("how do I avoid it next season?", unit) > 0
    assert not any(cue.search(unit) for cue in reorder_cues("what helps?"))
    assert not off_intent("what can I do right when my calf knots up", "Lightly stroke them under the water.")


def test_a_question_how_long_looks_for_a_duration():
    question = "how long does one usually last?"
    assert any(cue.search("Tonic convulsions often last for three minutes or more.")
               for cue in reorder_cues(question))
    assert off_intent(question, "If at least once a month you have a cramp, see a doctor.") > 0
    assert off_intent(question, "Tonic convulsions often last for three minutes or more.") < 0  # a gain


def test_advice_for_a_condition_the_question_does_not_name_goes_below_general_advice():
    blood_pressure = ("In some cases, pain in the calf is a signal that there is overstrain or a "
                      "blood pressure disorder. Such symptoms are relieved by a balanced diet.")
    assert off_intent("And what can I do about it? calves cramp", blood_pressure) > 0
    assert off_intent("what helps calf cramps with high blood pressure?", blood_pressure) == 0
    assert off_intent("And what can I do about it? calves cramp",
                      "Alternatively, try to relieve pain with baths with warm water.") == 0
    # One condition, several words: a question about veins asks about the phlebologist too.
    assert off_intent("what helps when my veins are the cause?",
                      "A phlebologist then prescribes treatment.") == 0


def test_a_unit_about_pregnancy_goes_below_for_a_question_that_names_none():
    """"...precursors of varicose veins." was followed by gestational diabetes and preeclampsia
    for a 34-year-old asking why his calf locks up at night."""
    pregnancy = ("And during pregnancy, future mothers should be especially careful: in the last "
                 "trimester, this can be a symptom of gestational diabetes mellitus.")
    assert off_intent("why does my calf lock up at 3am? im 34 and healthy", pregnancy) > 0
    assert off_intent("can varicose veins cause leg cramps?",
                      "Varicose veins are also common among expectant mothers.") > 0
    assert off_intent("I'm 30 weeks pregnant, are calf cramps dangerous?", pregnancy) == 0
    # A unit is about what its first sentence says: anemia here, which "most often" strikes
    # pregnant women.
    assert off_intent("can low red cells cause my calf cramps?",
                      "Cramping calf muscles can result from severe anemia. Most often it occurs "
                      "in pregnant women.") == 0


def test_advice_for_an_unasked_condition_goes_below_a_unit_that_advises_nothing():
    """The blood-pressure diet is wrong advice for one who did not say they have high pressure;
    a cause sentence is only off the asked kind."""
    blood_pressure = ("In some cases, pain in the calf is a signal of a blood pressure disorder. "
                      "Such symptoms are relieved by a balanced diet.")
    cause = "Wearing uncomfortable shoes. In the daytime the leg muscles get really tired."
    assert off_intent("what can relieve", blood_pressure) > off_intent("what can relieve", cause) > 0
