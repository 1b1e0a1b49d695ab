"""Scope judgment: the question's focus terms against what the indexed passages mention."""
from __future__ import annotations

import pytest

from bot import texts
from bot.scope import FocusTermsError, ScopeChecker, load_terms

PASSAGES = ["Leg cramps at night can come from stress and irregular meals.",
            "Massage the calf, then take a warm bath up to the knees."]


@pytest.fixture(scope="module")
def checker():
    return ScopeChecker(PASSAGES)


@pytest.mark.parametrize("question, focus", [
    ("Is quinine safe for leg cramps?", "quinine"),
    ("my hands cramp at night, why?", "hand cramps"),
    ("how many mg of magnesium should I take for cramps", "doses of medicines or supplements"),
    ("my dog has leg cramps after a walk", "animals"),
    ("what about my period cramps?", "menstrual cramps"),
    ("does pickle juice stop a cramp?", "sports products"),
    ("How do I treat a gout attack in my knee?", "gout"),
    ("Is it safe to use a TENS machine on my calf when it cramps?", "TENS devices"),
    ("Why does my calf cramp after I donate blood?", "blood donation"),
    ("Is it ok to do yoga while I have a calf strain?", "muscle strains"),
    ("can flat feet cause cramps in the calf?", "flat feet"),
    ("my toes curl and cramp at night", "toe cramps"),
    ("why is a leg cramp called a charley horse? where does the name come from?",
     "where the name comes from"),
])
def test_uncovered_focus_is_named(checker, question, focus):
    assert checker.uncovered(question, question)[:1] == [focus]


@pytest.mark.parametrize("question", [
    "Why do my calves cramp at night?",
    "should I put ice on my calf after rubbing out a charley horse?",
    "I'm 28 weeks pregnant with my second child and my calves cramp",
    "Can a bad back make my calves cramp?",
    "Do tens of cramps a night mean something?",
    "why do I cramp when I point my toes in bed",
    "Why do expecting moms get swollen legs that cramp? Is it the baby pressing on something?",
    "стоит ли пить больше воды, если сводит икры?",  # "стоит ли": is it worth, not a price
])
def test_in_scope_questions_name_no_focus(checker, question):
    assert checker.uncovered(question, question) == []


def test_a_term_said_in_passing_is_not_the_focus_but_the_same_term_alone_is(checker):
    assert checker.uncovered("my baby's legs cramp at night", "") == ["babies"]
    assert checker.uncovered("I'm 30 weeks pregnant and the baby kicks, my calves cramp", "") == []


def test_russian_terms_are_matched_in_the_message_as_written(checker):
    assert checker.uncovered("cramps night", "судороги в руках ночью") == ["hand and arm cramps"]
    assert checker.uncovered("cramps calves night", "почему сводит икры ночью") == []


def test_coverage_comes_from_the_passages_not_the_code():
    clinic = ScopeChecker(PASSAGES + ["Children often get leg cramps during growth spurts."])
    assert clinic.uncovered("Why do children get leg cramps?", "") == []
    assert ScopeChecker(PASSAGES).uncovered("Why do children get leg cramps?", "") == ["children"]


def test_every_term_has_a_name_and_a_known_kind():
    terms = load_terms()
    assert len(terms) > 150 and all(t.name and t.kind for t in terms)


def test_a_malformed_lexicon_is_refused_with_its_row(tmp_path):
    bad = tmp_path / "terms.tsv"
    bad.write_text("term\tname\tkind\tunless\nquinine\tquinine\tdrugs\n", encoding="utf-8")
    with pytest.raises(FocusTermsError, match="row 2"):
        load_terms(bad)


def test_the_bot_declines_an_uncovered_focus_naming_it_without_calling_the_model(make_bot):
    bot = make_bot()
    answer = bot.ask("Is quinine safe to take for night-time leg cramps?")
    assert answer.declined and "quinine" in answer.text
    assert answer.text.startswith(texts.NOT_COVERED.format(focus="quinine"))
    assert answer.full_text.endswith(texts.DISCLAIMER_NO_SOURCES)
    assert bot._generator.calls == []


@pytest.mark.parametrize("question", [
    "Does insurance cover the cost of treatment for leg cramps?",
    "Is my insurance going to reimburse leg cramp treatment?",
    "Покрывает ли страховка лечение судорог в икрах?",
    "how much does a leg massage cost in Moscow?",
    "сколько стоит массаж ног в москве? где лучше сделать",
])
def test_insurance_and_costs_are_not_covered(question):
    checker = ScopeChecker(["Calf cramps at night are often caused by a lack of magnesium."])
    assert checker.uncovered(question, question) == ["insurance and costs of care"]


@pytest.mark.parametrize("question, key", [
    ("my dog has leg cramps after a walk", "NOT_COVERED_ANIMAL"),
    ("how much does a leg massage cost in Moscow?", "NOT_COVERED_COST"),
    ("why is a leg cramp called a charley horse? where does the name come from?", "NOT_COVERED_NO_ONE"),
    ("Is quinine safe to take for night-time leg cramps?", "NOT_COVERED"),
    ("у моей собаки сводит лапы", "NOT_COVERED_ANIMAL"),
])
def test_a_decline_names_who_can_answer_what_was_asked(make_bot, question, key):
    """A physician or pharmacist is no one to ask about a dog's cramps or a massage's price."""
    from bot.texts import t

    answer = make_bot().ask(question)
    lang = "ru" if "собак" in question else "en"
    before_focus = t(key, lang).split("{focus}")[0]
    after_focus = t(key, lang).split("{focus}")[1]
    assert answer.declined and answer.text.startswith(before_focus), answer.text
    assert after_focus in answer.text, answer.text
