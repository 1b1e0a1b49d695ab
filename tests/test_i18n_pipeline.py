"""Replies in the question's language: every fixed text of a reply (disclaimer, declines,
refusals, errors) follows the language the input guard told, once, for the message."""
from __future__ import annotations

import pytest

import bot.pipeline as pipeline_module
from bot import render, texts
from bot.safety.input_guard import check_message

NIGHT_RU = "Почему по ночам сводит икры?"
NIGHT_EN = "Why do my calves cramp at night?"


def test_the_message_is_checked_once_into_one_value():
    message = check_message("  <b>Почему</b> сводит\tикры?  ", 2000)
    assert message.ok and message.cleaned == "<b>Почему</b> сводит икры?"
    assert message.search_text == "Почему сводит икры?"
    assert message.raw == "  <b>Почему</b> сводит\tикры?  "
    assert (message.lang, message.reply_lang) == ("ru", "ru")
    assert check_message("Why do calves cramp?", 2000).reply_lang == "en"
    assert check_message("\U0001F62B\U0001F9B5", 2000).reply_lang == "en"  # no letters: English
    assert check_message("Чому зводить литки? Її", 2000).reply_lang == "en"  # Ukrainian: no catalog


def test_the_pipeline_calls_the_input_guard_once_per_question(make_bot, monkeypatch):
    calls = []
    real = pipeline_module.check_message
    monkeypatch.setattr(pipeline_module, "check_message",
                        lambda *args: calls.append(args) or real(*args))
    make_bot().ask(NIGHT_RU)
    assert len(calls) == 1


def test_a_russian_question_gets_the_russian_disclaimer(make_bot):
    answer = make_bot().ask(NIGHT_RU)
    assert not (answer.declined or answer.error or answer.red_flag)
    assert answer.lang == "ru" and answer.citations
    assert answer.disclaimer == texts.t("DISCLAIMER", "ru") in texts.DISCLAIMERS
    assert answer.full_text.endswith(texts.t("DISCLAIMER", "ru"))
    html = render.render_answer(answer)
    assert "Источники" in html and "цитаты из источников" in html and "Sources" not in html


def test_an_english_question_stays_english(make_bot):
    answer = make_bot().ask(NIGHT_EN)
    assert answer.lang == "en" and answer.full_text.endswith(texts.DISCLAIMER)
    assert ">Sources<" in render.render_answer(answer)


def test_a_russian_question_the_sources_do_not_cover_is_declined_in_russian(make_bot):
    answer = make_bot().ask("Как лечить мигрень?")
    assert answer.declined and answer.lang == "ru"
    assert answer.text.startswith("Мои источники не касаются темы «мигрень»")
    assert answer.text.endswith(texts.t("CANNOT_ANSWER_HINT", "ru"))
    assert answer.disclaimer == texts.t("DISCLAIMER_NO_SOURCES", "ru")


def test_below_the_gate_a_russian_question_gets_the_russian_decline(make_bot, fake_settings):
    settings = fake_settings.model_copy(update={"retrieval": fake_settings.retrieval.model_copy(
        update={"gate_threshold": 1.5})})
    answer = make_bot(settings=settings).ask(NIGHT_RU)
    assert answer.declined
    assert answer.text == f"{texts.t('CANNOT_ANSWER', 'ru')} {texts.t('CANNOT_ANSWER_HINT', 'ru')}"


def test_a_russian_red_flag_gets_the_russian_urgent_disclaimer(make_bot):
    answer = make_bot().ask("сильная боль в груди и одышка")
    assert answer.red_flag and answer.disclaimer == texts.t("DISCLAIMER_URGENT", "ru")


@pytest.mark.parametrize("lang, word", [("ru", "икры "), ("en", "calves ")])
def test_a_too_long_message_is_refused_in_its_language(make_bot, fake_settings, lang, word):
    limit = fake_settings.safety.max_message_chars
    question = word * (limit // len(word) + 10)
    answer = make_bot().ask(question)
    assert answer.error and answer.lang == lang
    assert answer.text == texts.t("MESSAGE_TOO_LONG", lang).format(length=len(question.strip()),
                                                                    limit=limit)
    assert answer.disclaimer == texts.t("DISCLAIMER_NO_SOURCES", lang)


def test_an_internal_error_is_apologised_for_in_russian(make_bot, monkeypatch):
    bot = make_bot()
    monkeypatch.setattr(bot, "_searched", lambda *a, **k: 1 / 0)
    answer = bot.ask(NIGHT_RU)
    assert answer.error and answer.text == texts.t("INTERNAL_ERROR", "ru")
    assert answer.disclaimer == texts.t("DISCLAIMER_NO_SOURCES", "ru")


@pytest.mark.parametrize("lang", texts.LANGUAGES)
def test_every_example_question_is_answered_with_sources(make_bot, lang):
    bot = make_bot()
    for question in texts.t("EXAMPLE_QUESTIONS", lang):
        answer = bot.ask(question)
        assert not (answer.declined or answer.error or answer.red_flag), question
        assert answer.citations and answer.lang == lang, question


@pytest.mark.parametrize("lang, question", [("en", NIGHT_EN), ("ru", NIGHT_RU)])
def test_a_setup_error_is_told_in_the_question_language_with_the_operator_detail(
        make_bot, monkeypatch, lang, question):
    from bot.errors import IndexMismatch

    bot = make_bot()
    detail = "The index was built from other sources; run crampbot ingest."
    monkeypatch.setattr(bot.retriever, "load", lambda *a, **k: (_ for _ in ()).throw(
        IndexMismatch(detail)))
    answer = bot.ask(question)
    assert answer.error and answer.lang == lang and detail in answer.text
    assert answer.text.startswith(texts.t("SETUP_ERROR", lang).split("{")[0])
    assert answer.full_text.endswith(texts.t("DISCLAIMER_NO_SOURCES", lang))
