"""The page and the widget in the visitor's language, in headless Chromium: with the browser
language set to Russian (locale ru-RU: navigator.language and Accept-Language), the labels,
greeting, placeholder and example questions are Russian, and a Russian question gets a Russian,
cited answer (its sentences rendered from the translation memory, a source card's highlighted
sentence translated) ending with the Russian disclaimer; with English, everything stays English; an embed's
data-lang="ru" makes the widget Russian in an English browser. The production server
(app.build_server) with the scripted model. Screenshots go to test-artifacts/i18n-*.png."""
from __future__ import annotations

import pytest

pytest.importorskip("playwright.sync_api")

import app  # noqa: E402
from bot import texts  # noqa: E402
from bot.generation.fake import FakeGenerator  # noqa: E402
from bot.pipeline import CrampBot  # noqa: E402
from bot.safety.input_guard import detect_language  # noqa: E402
from bot.settings import WebSettings  # noqa: E402
from browser_support import (  # noqa: E402
    ARTIFACTS_DIR, CLINIC_SITE, HOST, SITE_APP_URL, chromium_browser, free_port,
    record_outside_requests, serve_asgi_in_thread, serve_directory,
)

pytestmark = pytest.mark.browser

FAST_MS = 60_000  # a reply with the scripted model
NIGHT_RU = "Почему по ночам сводит икры?"
NIGHT_EN = "Why do my calves cramp at night?"
EMBED_TAG = '/embed.js" defer>'


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def sites(fake_settings, shared_retriever):
    """Our server (default greeting and labels, which have catalogs), the example clinic's
    page with its embed script as shipped, and the same page whose script says data-lang="ru"."""
    plain_port, russian_port = free_port(), free_port()
    origins = [f"http://{HOST}:{plain_port}", f"http://{HOST}:{russian_port}"]
    settings = fake_settings.model_copy(update={"web": WebSettings(allowed_origins=origins)})
    bot = CrampBot(settings, generator=FakeGenerator())
    bot.retriever = shared_retriever
    with serve_asgi_in_thread(app.build_server(bot, settings), timeout_s=600) as app_url:
        urls = {SITE_APP_URL: app_url}
        with serve_directory(CLINIC_SITE, urls, port=plain_port) as plain, \
                serve_directory(CLINIC_SITE, {**urls, EMBED_TAG: '/embed.js" defer data-lang="ru">'},
                                port=russian_port) as russian:
            yield {"app": app_url, "plain": plain, "russian": russian}


@pytest.fixture
def browser_in(browser):
    """A fresh browser session in a language; fails on JavaScript errors or on any request
    that would leave 127.0.0.1."""
    contexts, errors, outside = [], [], []

    def opener(locale: str, width: int = 1100, height: int = 1000):
        context = browser.new_context(locale=locale, viewport={"width": width, "height": height})
        outside.append(record_outside_requests(context))
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield opener
    for context in contexts:
        context.close()
    assert all(found == [] for found in outside), outside
    assert errors == [], f"JavaScript errors: {errors}"


def screenshot(page, name: str) -> None:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / f"i18n-{name}.png"))


def ask(frame, question: str) -> None:
    box = frame.locator("#crampbot-message textarea")
    box.fill(question)
    box.press("Enter")


def final_reply(frame, index: int = 0):
    reply = frame.locator("[data-testid=bot]").nth(index)
    reply.locator(".cb-answer:not(.cb-draft)").wait_for(timeout=FAST_MS)
    return reply


def assert_chat_speaks(frame, lang: str, examples: int) -> None:
    """Labels, greeting, placeholder and example questions of the chat in `frame`, in `lang`."""
    t = lambda key: texts.t(key, lang)  # noqa: E731
    box = frame.locator("#crampbot-message textarea")
    # Set on load (the examples, the send button): wait for them before reading the rest.
    frame.get_by_text(t("EXAMPLE_QUESTIONS")[0], exact=True).wait_for(timeout=15_000)
    assert box.get_attribute("placeholder") == t("MESSAGE_PLACEHOLDER")
    # The box's name for screen readers (its label is visually hidden).
    assert frame.locator("#crampbot-message [data-testid=block-info]").inner_text().strip() == t("MESSAGE_BOX")
    assert frame.locator("#crampbot-message button.submit-button").inner_text().strip() == t("SEND")
    assert frame.locator("#crampbot-new-conversation").inner_text().strip() == t("NEW_CONVERSATION")
    greeting = frame.locator(".cb-greeting").inner_text()
    assert t("WIDGET_GREETING") in greeting and t("DISCLAIMER_NO_SOURCES") in greeting
    shown = [frame.get_by_text(q, exact=True).count() for q in t("EXAMPLE_QUESTIONS")]
    assert shown == [1] * examples + [0] * (len(shown) - examples)
    assert frame.locator("html").get_attribute("lang") == lang
    assert frame.locator("[role=group]").first.get_attribute("aria-label") == t("EXAMPLES")


def assert_reply_in(reply, lang: str) -> None:
    """A cited answer in `lang`: its body, and its fixed texts (badges, Sources heading,
    disclaimer); in another language than English, the badge that says the sentences are
    translated and a card's translated highlight, marked as a machine translation."""
    assert reply.locator(".cb-cite").first.inner_text() == "[1]"
    body = reply.locator(".cb-answer").inner_text()
    assert detect_language(body) == lang, body
    assert reply.locator(".cb-sources-title").text_content() == texts.t("SOURCES", lang)
    assert reply.locator(".cb-extractive").inner_text().strip() == texts.t("EXTRACTIVE_BADGE", lang)
    translated = reply.locator(".cb-translated")
    if lang == "en":
        assert translated.count() == 0 and reply.locator(".cb-translation").count() == 0
    else:
        assert translated.inner_text().strip() == texts.t("TRANSLATED_BADGE", lang)
        highlight = reply.locator(".cb-translation").first.inner_text()
        assert highlight.startswith(texts.t("CARD_TRANSLATION", lang))
        assert detect_language(highlight) == lang
    assert reply.locator(".cb-disclaimer").inner_text().strip() == texts.t("DISCLAIMER", lang)


def test_russian_browser_gets_the_page_in_russian(sites, browser_in):
    page = browser_in("ru-RU")
    page.goto(sites["app"] + "/")
    assert_chat_speaks(page, "ru", examples=5)
    assert page.locator(".cb-header p").inner_text().strip() == texts.t("PAGE_INTRO", "ru")
    screenshot(page, "page-ru")

    page.get_by_text(texts.t("EXAMPLE_QUESTIONS", "ru")[0], exact=True).click()
    reply = final_reply(page)
    assert page.locator("[data-testid=user]").first.inner_text().strip() == NIGHT_RU
    assert_reply_in(reply, "ru")
    for key in ("LIKE", "DISLIKE"):  # the thumbs' names, given to Gradio's i18n
        assert page.get_by_role("button", name=texts.t(key, "ru"), exact=True).count() == 1
    screenshot(page, "page-ru-answer")


def open_widget(page, site_url: str, lang: str):
    """Open the clinic site's widget and check it speaks `lang`: launcher, labels, examples and
    subtitle. Returns the widget's frame."""
    page.goto(site_url + "/")
    launcher = page.locator("#crampbot-widget .launcher")
    assert launcher.inner_text().strip() == texts.t("WIDGET_LAUNCHER_LABEL", lang)
    launcher.click()
    widget = page.frame_locator("#crampbot-widget iframe")
    assert_chat_speaks(widget, lang, examples=3)
    assert widget.locator(".cb-widget-subtitle").inner_text() == texts.t("WIDGET_SUBTITLE", lang)
    return widget


def test_russian_browser_gets_the_widget_in_russian(sites, browser_in):
    page = browser_in("ru-RU", 1280, 860)
    widget = open_widget(page, sites["plain"], "ru")
    screenshot(page, "widget-ru")

    ask(widget, NIGHT_RU)
    assert_reply_in(final_reply(widget), "ru")
    screenshot(page, "widget-ru-answer")


def test_english_browser_stays_english_and_a_russian_question_is_answered_in_russian(
        sites, browser_in):
    page = browser_in("en-US")
    page.goto(sites["app"] + "/")
    assert_chat_speaks(page, "en", examples=5)
    assert page.locator(".cb-header p").inner_text().strip() == texts.t("PAGE_INTRO", "en")
    ask(page, NIGHT_EN)
    assert_reply_in(final_reply(page, 0), "en")
    ask(page, NIGHT_RU)  # whatever the page's language, a Russian question gets Russian
    assert_reply_in(final_reply(page, 1), "ru")
    screenshot(page, "page-en")

    site = browser_in("en-US", 1280, 860)
    open_widget(site, sites["plain"], "en")
    screenshot(site, "widget-en")


def test_data_lang_makes_the_widget_russian_in_an_english_browser(sites, browser_in):
    page = browser_in("en-US", 1280, 860)
    open_widget(page, sites["russian"], "ru")
    screenshot(page, "widget-data-lang-ru")


def test_a_page_launched_by_gradio_shows_texts_not_keys(fake_settings, shared_retriever, browser_in):
    """Blocks.launch (app.launch_options: the tests' and a standalone launch) resets a page's
    i18n unless given one; the page must still show its texts, not their keys."""
    from browser_support import serve_in_thread

    bot = CrampBot(fake_settings, generator=FakeGenerator())
    bot.retriever = shared_retriever
    with serve_in_thread(app.build_app(bot, fake_settings), fake_settings) as url:
        for lang, locale in (("ru", "ru-RU"), ("en", "en-US")):
            page = browser_in(locale)
            page.goto(url)
            assert_chat_speaks(page, lang, examples=5)
            shown = page.locator("body").inner_text()
            assert "GREETING_HTML" not in shown and "NEW_CONVERSATION" not in shown


@pytest.mark.slow
def test_real_model_answers_a_russian_example_in_a_russian_browser(browser_in):
    """`python app.py` with the default settings (real embedder and default LLM): the first
    Russian example, clicked in a Russian browser, gets a Russian, cited answer from the
    sources that ends with the Russian disclaimer."""
    from browser_support import serve_subprocess

    page = browser_in("ru-RU")
    with serve_subprocess(timeout_s=1500, log_name="i18n-real-app") as url:
        page.goto(url)
        assert_chat_speaks(page, "ru", examples=5)
        page.get_by_text(NIGHT_RU, exact=True).click()
        reply = page.locator("[data-testid=bot]").first
        reply.locator(".cb-answer:not(.cb-draft)").wait_for(timeout=900_000)
        screenshot(page, "real-page-ru-answer")
        assert not reply.locator(".cb-answer.cb-declined, .cb-answer.cb-error").count()
        assert reply.locator(".cb-cite").count() >= 1 and reply.locator(".cb-card").count() >= 1
        assert detect_language(reply.locator(".cb-answer").inner_text()) == "ru"
        assert reply.locator(".cb-sources-title").text_content() == texts.t("SOURCES", "ru")
        assert reply.locator(".cb-disclaimer").inner_text().strip() == texts.t("DISCLAIMER", "ru")
