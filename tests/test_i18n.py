"""The catalogs of fixed texts (bot/locales/*.json) and the choice of a language."""
from __future__ import annotations

import json
import string

import pytest

from bot import render, texts
from bot.safety.input_guard import detect_language
from web import labels, messages

# Texts that are (nearly) the same in every language or name code, not prose.
_NOT_PROSE = {"NOT_COVERED_JOIN", "HISTORY_AND_CONVERSATION", "CONVERSATION_NOT_FOUND",
              "MODEL_MISSING"}


def _fields(value) -> set[str]:
    values = value if isinstance(value, list) else [value]
    return {name for text in values for _, name, _, _ in string.Formatter().parse(text) if name}


def test_there_is_an_english_and_a_russian_catalog():
    assert texts.LANGUAGES[:1] == ("en",) and "ru" in texts.LANGUAGES


@pytest.mark.parametrize("lang", [lang for lang in texts.LANGUAGES if lang != "en"])
def test_every_catalog_has_the_english_keys_kinds_and_placeholders(lang):
    english, other = texts.CATALOGS["en"], texts.CATALOGS[lang]
    assert sorted(other) == sorted(english)
    for key, value in english.items():
        assert type(other[key]) is type(value), key
        assert _fields(other[key]) == _fields(value), key
        if isinstance(value, list):
            assert len(other[key]) == len(value) and all(other[key]), key
        assert other[key], key


def test_catalog_files_hold_only_texts(tmp_path):
    for path in texts.LOCALES_DIR.glob("*.json"):
        entries = json.loads(path.read_text(encoding="utf-8"))
        assert all(isinstance(v, (str, list)) for v in entries.values()), path.name


def test_russian_texts_are_russian():
    for key, value in texts.CATALOGS["ru"].items():
        if key in _NOT_PROSE:
            continue
        for text in value if isinstance(value, list) else [value]:
            assert detect_language(text) == "ru", (key, text)


def test_russian_formats_fill_in():
    assert "2500" in texts.t("MESSAGE_TOO_LONG", "ru").format(length=2500, limit=2000)
    assert texts.t("WRITING", "ru").format(count=3).endswith("(найдено: 3)...")


def test_english_constants_are_the_english_catalog():
    english = texts.CATALOGS["en"]
    for module in (texts, render, labels, messages):
        for name, value in vars(module).items():
            if name in english and isinstance(value, str):
                assert value == english[name], f"{module.__name__}.{name}"
    assert texts.DISCLAIMER == english["DISCLAIMER"]
    assert render.SOURCES == "Sources" and labels.SEND == "Send"


def test_model_prompts_stay_english_and_out_of_the_catalogs():
    for name in ("SYSTEM_PROMPT", "USER_PROMPT", "SOURCE_LINE", "REWRITE_FOLLOW_UP",
                 "TRANSLATE_QUESTION", "LEAD_PROMPT", "LEAD_INPUT"):
        assert name not in texts.CATALOGS["en"]
        assert detect_language(getattr(texts, name)) == "en"


def test_disclaimers_cover_every_language_and_leave_history():
    for lang in texts.LANGUAGES:
        for key in ("DISCLAIMER", "DISCLAIMER_NO_SOURCES", "DISCLAIMER_URGENT"):
            disclaimer = texts.t(key, lang)
            assert disclaimer in texts.DISCLAIMERS
            assert texts.without_disclaimer(f"Ответ.\n\n{disclaimer}").strip() == "Ответ."


def test_lookup_falls_back_to_english():
    assert texts.t("SOURCES", "ru") == "Источники"
    assert texts.t("SOURCES", "ru-RU") == "Источники"
    assert texts.t("SOURCES", "de") == "Sources"
    assert texts.t("SOURCES", None) == "Sources"
    with pytest.raises(KeyError):
        texts.t("NO_SUCH_TEXT", "ru")


@pytest.mark.parametrize("kwargs, expected", [
    ({}, "en"),
    ({"browser": "ru-RU"}, "ru"),
    ({"browser": "ru"}, "ru"),
    ({"browser": "de-DE"}, "en"),
    ({"browser": "de-DE", "accept_language": "de-DE,ru;q=0.8"}, "ru"),
    ({"accept_language": "ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7"}, "ru"),
    ({"accept_language": "en-US,en;q=0.9,ru;q=0.8"}, "en"),
    ({"accept_language": "ru;q=0.5,en;q=0.9"}, "en"),
    ({"accept_language": "ru;q=0,fr"}, "en"),
    ({"accept_language": "garbage;q=x,,;"}, "en"),
    ({"setting": "ru", "browser": "en-US"}, "ru"),
    ({"forced": "en", "setting": "ru", "browser": "ru"}, "en"),
    ({"forced": "ru", "browser": "en-US"}, "ru"),
    ({"forced": "xx", "browser": "ru"}, "ru"),  # an unknown data-lang is ignored
])
def test_interface_language(kwargs, expected):
    assert labels.interface_language(**kwargs) == expected


def test_a_third_language_is_a_catalog(monkeypatch):
    german = dict(texts.CATALOGS["en"], SOURCES="Quellen")
    monkeypatch.setitem(texts.CATALOGS, "de", german)
    assert texts.t("SOURCES", "de-AT") == "Quellen"
    assert labels.interface_language(browser="de-DE") == "de"


# -- the web layer -----------------------------------------------------------------------------

def test_greeting_and_widget_texts_per_language():
    from bot.settings import WebSettings
    from web.chat import greeting_html
    from web.widget import embed_script, widget_header

    web = WebSettings()
    assert texts.t("WIDGET_GREETING", "ru") in greeting_html(web, "ru")
    assert texts.t("DISCLAIMER_NO_SOURCES", "ru") in greeting_html(web, "ru")
    own = WebSettings(greeting="Welcome to Riverside!")
    assert "Welcome to Riverside!" in greeting_html(own, "ru")  # the clinic's own words stay
    assert texts.t("WIDGET_SUBTITLE", "ru") in widget_header(web, "ru")
    script = embed_script(web)
    assert json.dumps(texts.t("WIDGET_LAUNCHER_LABEL", "ru"))[1:-1] in script
    assert '"lang": ""' in script and '"lang": "ru"' in embed_script(WebSettings(lang="ru"))


def test_web_lang_setting_is_typed():
    from pydantic import ValidationError

    from bot.settings import WebSettings

    assert WebSettings().lang == "auto" and WebSettings(lang="RU").lang == "ru"
    with pytest.raises(ValidationError):
        WebSettings(lang="xx")


def test_a_refusal_before_the_bot_is_in_the_questions_language():
    from web.chat import polite_refusal, reply_language

    assert reply_language("Почему сводит икры?", "en") == "ru"
    assert reply_language("Why do calves cramp?", "ru") == "en"
    assert reply_language("???", "ru") == "ru"  # no letters: the page's language
    _, answer = polite_refusal("Почему сводит икры?", "RATE_LIMITED")
    assert answer.text == texts.t("RATE_LIMITED", "ru")
    assert answer.disclaimer == texts.t("DISCLAIMER_NO_SOURCES", "ru")


def test_gradio_i18n_has_every_catalog_and_a_forced_language_everywhere():
    from bot.settings import WebSettings
    from web.chat import interface_i18n

    auto = interface_i18n(WebSettings(), {"X": lambda lang: lang}).translations_dict
    assert auto["ru"]["SEND"] == "Отправить" and auto["en"]["SEND"] == "Send"
    assert auto["ru"]["X"] == "ru"
    forced = interface_i18n(WebSettings(lang="ru"), {}).translations_dict
    assert forced["en"]["SEND"] == "Отправить"  # any browser, Russian


def test_every_uncovered_topic_has_a_russian_name():
    from bot.scope import load_terms

    names = {term.name for term in load_terms()}
    russian = texts.FOCUS_NAMES["ru"]
    assert names <= set(russian), sorted(names - set(russian))
    assert not set(russian) - names, "rows for names focus_terms.tsv no longer uses"
    for name in names:
        assert detect_language(texts.focus_name(name, "ru")) == "ru" or name in {"COVID-19"}, name
    assert texts.focus_name("quinine", "en") == "quinine"
    assert texts.focus_name("quinine", "ru") == "хинин"
