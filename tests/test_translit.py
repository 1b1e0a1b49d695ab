"""Russian typed in Latin letters is read as Russian (bot/translit.py) and answered in Russian."""
from __future__ import annotations

import pytest

from bot import texts
from bot.safety.input_guard import check_message
from bot.translit import cyrillic_reading


@pytest.mark.parametrize("typed, russian", [
    ("pochemu svodit ikry po nocham? mne 72 goda, ran'she takogo ne bylo",
     "почему сводит икры по ночам? мне 72 года, раньше такого не было"),
    ("chto delat esli svelo nogu noch'yu", "что делать если свело ногу ночью"),  # lost ь: delat
    ("silno svodit ikronozhnuyu myshcu", "сильно сводит икроножную мышцу"),  # c = ц, y = ы
    # A soft sign lost inside a word: "skolko" is "сколько" (which the cost focus term names).
    ("skolko stoit massazh nog v moskve?", "сколько стоит массаж ног в москве?"),
    ("bolno ikru, chto delat", "больно икру, что делать"),
    ("moy muzh zhaluetsya chto svodit nogi", "мой муж жалуется что сводит ноги"),  # y = й, ts
    ("eto opasno pri beremennosti?", "это опасно при беременности?"),  # e = э
    ("k kakomu vrachu idti", "к какому врачу идти"),
])
def test_russian_in_latin_letters_reads_as_russian(typed, russian):
    assert cyrillic_reading(typed) == russian


@pytest.mark.parametrize("english", [
    "Why do my calves cramp at night?",
    "does cofee make my calfs cramp",  # misspelt English
    "Benadryl gabapentin ok?",  # words neither language knows
    "calfs crampin at nite wtf",
    "Can the flu give me leg cramps?",
    "pochemu",  # one word is too little to tell
    "Почему сводит икры?",  # already Cyrillic
])
def test_english_and_single_words_are_left_alone(english):
    assert cyrillic_reading(english) is None


def test_the_checked_message_carries_the_reading_and_the_typed_text():
    message = check_message("chto delat esli svelo nogu noch'yu", 2000)
    assert message.ok and message.lang == "ru" and message.reply_lang == "ru"
    assert message.cleaned == message.search_text == "что делать если свело ногу ночью"
    assert message.raw == "chto delat esli svelo nogu noch'yu"


def test_a_transliterated_question_gets_a_russian_answer(make_bot):
    answer = make_bot("Standing work can cause night cramps [1].").ask(
        "pochemu svodit ikry po nocham?")
    assert not answer.declined, answer.text
    assert answer.disclaimer == texts.t("DISCLAIMER", "ru")
    cyrillic = sum("а" <= ch.lower() <= "я" for ch in answer.text)
    latin = sum("a" <= ch.lower() <= "z" for ch in answer.text)
    assert cyrillic > 5 * latin, answer.text
