"""Replies in the question's language: every fixed text of a reply (disclaimer, declines,
refusals, errors) follows the language the input guard told, once, for the message."""
from __future__ import annotations

import re
import time

import pytest

import bot.pipeline as pipeline_module
from bot import render, texts
from bot.citations import split_sentences, strip_markers
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


# -- the answer body in the reply's language (bot/localize.py, bot/translation.py) -----------
def _letters_in(text: str, lang: str) -> bool:
    from bot.safety.input_guard import detect_language

    return detect_language(re.sub(r"\[\d+\]", "", text)) == lang


def test_a_russian_question_gets_a_russian_cited_body_rendered_from_the_checked_english(make_bot):
    bot = make_bot()
    answer = bot.ask(NIGHT_RU)
    assert _letters_in(answer.text, "ru") and _letters_in(answer.checked_text, "en")
    assert answer.rendered.kept_english == 0 and not answer.rendered.english_note
    # The same markers, sentence by sentence, as the English answer that was checked.
    assert re.findall(r"\[\d+\]", answer.text) == re.findall(r"\[\d+\]", answer.checked_text)
    assert len(split_sentences(answer.text)) == len(split_sentences(answer.checked_text))
    assert {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)} == {c.number for c in answer.citations}
    assert all(_letters_in(c.supporting_translation, "ru") for c in answer.citations)
    # By default (answer.lead_translation = "none") a Russian answer asks the model nothing.
    assert bot.generator.calls == [] and answer.extractive and answer.rendered.lead == "none"
    english = bot.ask(NIGHT_EN)
    assert english.rendered is None and english.checked_text == ""
    assert all(c.supporting_translation == "" for c in english.citations)


def test_the_lead_can_be_rendered_at_request_time(make_bot, fake_settings, monkeypatch):
    from bot.lead import Lead

    settings = fake_settings.model_copy(update={"answer": fake_settings.answer.model_copy(
        update={"lead_translation": "model"})})
    lead = "Night cramps can come from stress and irregular meals."
    # The lead's own checks are bot/lead.py's (tests/test_lead.py): here it is taken as checked.
    monkeypatch.setattr(pipeline_module, "check_lead", lambda *a: Lead(lead, [1]))
    bot = make_bot(settings=settings)
    bot.generator.queue(lead + " [1]", "Ночные судороги могут быть вызваны стрессом и "
                                       "нерегулярным питанием.")
    answer = bot.ask(NIGHT_RU)
    lead_prompt, rendering_prompt = bot.generator.calls
    assert lead_prompt[0]["content"] == texts.LEAD_PROMPT
    assert rendering_prompt[-1]["content"].endswith(f"Sentence: {lead}")
    assert answer.rendered.lead == "rendered" and not answer.extractive
    assert answer.text.startswith("Ночные судороги могут быть вызваны стрессом и нерегулярным "
                                  "питанием [1].")
    assert answer.checked_text.startswith(lead[:-1] + " [1].")
    # A rendering that fails its checks leaves the checked English lead in its place.
    bot.generator.queue(lead + " [1]", "Ночные судороги вызывает кофе.")
    failed = bot.ask(NIGHT_RU)
    assert failed.rendered.lead == "english" and failed.rendered.kept_english == 1
    assert failed.text.startswith(lead[:-1] + " [1].") and _letters_in(failed.text, "ru")


def test_without_renderings_the_english_answer_comes_after_a_note_and_is_rendered_later(
        make_bot, tmp_path):
    from bot.translation import TranslationMemory

    bot = make_bot()
    memory = TranslationMemory("ru", tmp_path / "none.tsv", tmp_path / "cache" / "ru.jsonl")
    bot._memories["ru"] = memory
    answer = bot.ask(NIGHT_RU)
    assert answer.text.startswith(texts.t("ANSWER_IN_ENGLISH", "ru") + "\n\n")
    assert answer.text.endswith(answer.checked_text) and answer.rendered.english_note
    assert answer.full_text.endswith(texts.t("DISCLAIMER", "ru"))
    # The sentences it lacked were queued for the model, which renders them in the background.
    sentences = split_sentences(answer.checked_text)
    deadline = time.monotonic() + 30
    while memory.missing(strip_markers(s) for s in sentences) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not memory.missing(strip_markers(s) for s in sentences)
    assert len(memory.cache_path.read_text(encoding="utf-8").splitlines()) == len(sentences)
