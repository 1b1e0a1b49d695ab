"""Rare words no source uses: a drug, a brand or a diagnosis that no focus-lexicon row names."""
from __future__ import annotations

import pytest

from bot.rare_terms import RareTerms

PASSAGES = ["Caffeine abuse. When you drink more than 5 cups of strong coffee a day, your calf "
            "muscles may cramp.", "A phlebologist then prescribes treatment after a Doppler scan."]


@pytest.fixture(scope="module")
def rare() -> RareTerms:
    return RareTerms(PASSAGES, known_words={"enough"}, is_misspelling=lambda w: w.lower() == "cofee")


@pytest.mark.parametrize("question, expected", [
    ("Does Benadryl help night leg cramps?", ["Benadryl"]),
    ("Is gabapentin safe with alcohol for calf cramps?", ["gabapentin"]),
    ("Можно ли принимать баклофен от судорог?", ["баклофен"]),
    ("Which doctor, a phlebologist? And is a Doppler scan needed?", []),  # the sources' own words
    ("Can coffee cause calf cramps at night?", []),  # common words
    ("does cofee make my calfs cramp", []),  # a misspelling the corrector repairs
    ("my calf cramps erly in the morning, is it conected to my new boots?", []),  # slips
    ("svodit ikry na poslednem trimestre, chto eto mozhet znachit?", []),  # transliteration
    ("my calves cramp mid-WOD and at night", []),  # jargon judged by its short parts
    ("is co-codamol ok for calf cramps?", ["co-codamol"]),
    # Russian verbs and their colloquial forms say how it goes, not what is asked about
    ("как сделать чтобы икры не сводило? уже замучалась", []),
    ("почему во сне сводит икры? жена говорит я дрыгаюсь ночью", []),
    ("Фибромиалгия может вызывать судороги?", ["Фибромиалгия"]),  # a noun it does not know
    ("менструальные боли и судороги", ["менструальные"]),  # an adjective naming the topic
])
def test_rare_unknown_words_are_found(rare, question, expected):
    assert rare.find(question) == expected


def test_a_russian_word_the_lexicon_glosses_is_known(rare):
    assert rare.find("флеболог или баклофен?", russian_known=lambda w: w.startswith("флеболог")) == ["баклофен"]


def test_a_decline_names_a_rare_drug_the_lexicon_lacks(make_bot):
    fake_bot = make_bot("Coffee can cause cramps [1].")
    answer = fake_bot.ask("Does Benadryl help night leg cramps, and is it ok with my blood pressure pills?")
    assert answer.declined and "Benadryl" in answer.text
    answer = fake_bot.ask("Does coffee cause night leg cramps?")
    assert not answer.declined
