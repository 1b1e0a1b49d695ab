"""The widget on a clinic's site, in headless Chromium: the example clinic page (served from a
second origin on 127.0.0.1) opens the widget with its one-line script, gets a cited answer with
the disclaimer and records a thumbs-up; the same pages served from an origin that is not
allowed cannot frame the widget or call the API; the rate limit answers politely in the chat.
Screenshots go to test-artifacts/widget-*.png."""
from __future__ import annotations

import json
import time

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

import app  # noqa: E402
from bot import texts  # noqa: E402
from bot.generation.fake import FakeGenerator  # noqa: E402
from bot.pipeline import CrampBot  # noqa: E402
from browser_support import (  # noqa: E402
    ARTIFACTS_DIR, CLINIC_SITE, HOST, SITE_APP_URL, chromium_browser, clinic_settings, free_port,
    record_outside_requests, serve_asgi_in_thread, serve_directory,
)
from web.feedback import FeedbackStore, read_feedback  # noqa: E402

pytestmark = pytest.mark.browser

NIGHT = "Why do my calves cramp at night?"
FAST_MS = 60_000  # a reply with the scripted model
BLOCKED_MS = 5_000  # how long a blocked frame gets to show anything at all


class CountingBot(CrampBot):
    """Counts the API's questions, to show a refused request never reached the assistant."""

    api_questions = 0

    def ask(self, question, history=(), lang=None):
        self.api_questions += 1
        return super().ask(question, history, lang)


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def sites(fake_settings, shared_retriever, tmp_path_factory):
    """Our server, the clinic's site on an allowed origin, and the very same pages on an
    origin that is not allowed."""
    clinic_port, foreign_port = free_port(), free_port()
    clinic_origin = f"http://{HOST}:{clinic_port}"
    settings = clinic_settings(fake_settings, allowed_origins=[clinic_origin])
    bot = CountingBot(settings, generator=FakeGenerator())
    bot.retriever = shared_retriever
    feedback_file = tmp_path_factory.mktemp("feedback") / "feedback.jsonl"
    server = app.build_server(bot, settings, feedback=FeedbackStore(feedback_file))
    with serve_asgi_in_thread(server, timeout_s=600) as app_url:
        pages = {SITE_APP_URL: app_url}
        with serve_directory(CLINIC_SITE, pages, port=clinic_port) as clinic, \
                serve_directory(CLINIC_SITE, pages, port=foreign_port) as foreign:
            yield {"app": app_url, "clinic": clinic, "foreign": foreign, "bot": bot,
                   "settings": settings, "feedback_file": feedback_file}


@pytest.fixture
def new_page(browser):
    """Pages in a fresh browser session; fails the test on JavaScript errors or on any request
    that would leave 127.0.0.1. Console messages are collected per page."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    outside = record_outside_requests(context)
    errors: list[str] = []

    def opener():
        page = context.new_page()
        page.console_messages_seen = []
        page.on("console", lambda message: page.console_messages_seen.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield opener
    context.close()
    assert outside == [], f"a page fetched from outside 127.0.0.1: {outside}"
    assert errors == [], f"JavaScript errors: {errors}"


def screenshot(page, name: str) -> None:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / f"{name}.png"))


def ask(frame, question: str) -> None:
    box = frame.locator("#crampbot-message textarea")
    box.fill(question)
    box.press("Enter")


def wait_for(condition, timeout_s: float = 10):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    return condition()


def test_clinic_page_opens_the_widget_which_answers_with_sources_and_records_feedback(
        sites, new_page):
    bot, web = sites["bot"], sites["settings"].web
    expected = bot.ask(NIGHT)  # the composed answer the widget must show
    top = expected.citations[0]
    page = new_page()
    page.goto(sites["clinic"] + "/")

    launcher = page.locator("#crampbot-widget .launcher")
    assert launcher.inner_text().strip() == web.launcher_label
    assert page.locator("#crampbot-widget iframe").count() == 0  # loaded on first open only
    screenshot(page, "widget-clinic-closed")
    launcher.click()

    widget = page.frame_locator("#crampbot-widget iframe")
    assert widget.locator(".cb-widget-title").inner_text() == web.clinic_name
    assert web.greeting in widget.locator(".cb-greeting").inner_text()
    screenshot(page, "widget-clinic-open")
    ask(widget, NIGHT)
    reply = widget.locator("[data-testid=bot]").first
    reply.locator(".cb-answer:not(.cb-draft)").wait_for(timeout=FAST_MS)

    assert reply.locator(".cb-answer").inner_text().strip() == expected.text
    assert reply.locator(".cb-cite").first.inner_text() == "[1]"
    assert reply.locator(".cb-card-title").first.inner_text() == top.passage.title
    assert top.supporting_sentence.split(". ")[0] in reply.locator(".cb-card .cb-passage mark").first.inner_text()
    assert reply.locator(".cb-disclaimer").inner_text().strip() == texts.DISCLAIMER
    # The clinic's colour reached the frame (the user's send button), set from settings.
    send = widget.locator("#crampbot-message button").last
    assert send.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(14, 111, 116)"
    screenshot(page, "widget-clinic-answer")

    # Vote once the reply's events are over (the message box is usable again), and see the
    # page take the click before looking for it in the log.
    playwright_api.expect(widget.locator("#crampbot-message textarea")).to_be_enabled()
    widget.get_by_role("button", name="Like", exact=True).click()
    widget.get_by_role("button", name="Liked", exact=True).wait_for(timeout=5000)
    log = wait_for(lambda: read_feedback(sites["feedback_file"]).records)
    assert [record["rating"] for record in log] == ["up"]
    record = log[0]
    assert record["surface"] == "widget" and record["question"] == NIGHT
    assert record["answer"] == expected.text
    assert record["citations"][0]["passage_id"] == top.passage.id

    page.keyboard.press("Escape")  # focus is in the frame: the frame asks the page to close
    page.locator("#crampbot-widget .panel").wait_for(state="hidden", timeout=5000)


def assert_frame_blocked_by_csp(page, allowed_origin: str) -> None:
    """The widget's frame on `page` shows nothing of the widget, and the browser says why:
    our frame-ancestors policy, which names only the allowed origin."""
    frame = page.frames[-1]
    shown = wait_for(lambda: frame.locator("#crampbot-message textarea").count() > 0,
                     BLOCKED_MS / 1000)
    assert not shown, "the widget rendered inside a page from an origin that is not allowed"
    refusals = wait_for(lambda: [text for text in page.console_messages_seen
                                 if "frame-ancestors" in text])
    assert refusals, page.console_messages_seen
    assert "blocked" in refusals[0] and f"frame-ancestors 'self' {allowed_origin}" in refusals[0]
    assert frame.url.startswith("chrome-error://")  # Chromium's error page, not our widget


def test_iframe_snippet_frames_the_widget_on_the_clinic_only(sites, new_page):
    clinic = new_page()
    clinic.goto(sites["clinic"] + "/iframe.html")
    clinic.frame_locator("iframe").locator("#crampbot-message textarea").wait_for(timeout=FAST_MS)
    screenshot(clinic, "widget-iframe-snippet")

    foreign = new_page()
    foreign.goto(sites["foreign"] + "/iframe.html")
    assert_frame_blocked_by_csp(foreign, sites["clinic"])
    screenshot(foreign, "widget-foreign-iframe-blocked")


def test_embed_script_on_a_foreign_origin_opens_only_a_blocked_frame(sites, new_page):
    page = new_page()
    page.goto(sites["foreign"] + "/")
    page.locator("#crampbot-widget .launcher").click()
    page.locator("#crampbot-widget iframe").wait_for(state="attached")
    assert_frame_blocked_by_csp(page, sites["clinic"])
    screenshot(page, "widget-foreign-embed-blocked")


_FETCH_ASK = """async ([url, mode]) => {
  try {
    const options = mode === 'no-cors'
      ? {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'},
         body: JSON.stringify({question: 'Why do my calves cramp at night?'})}
      : {method: 'POST', headers: {'Content-Type': 'application/json'},
         body: JSON.stringify({question: 'Why do my calves cramp at night?'})};
    const reply = await fetch(url + '/api/v1/ask', options);
    if (reply.type === 'opaque') return {opaque: true};
    return {status: reply.status, body: await reply.json()};
  } catch (error) {
    return {failed: String(error)};
  }
}"""


def test_api_answers_the_clinic_page_and_no_other_origin(sites, new_page):
    bot = sites["bot"]
    clinic = new_page()
    clinic.goto(sites["clinic"] + "/")
    before = bot.api_questions
    result = clinic.evaluate(_FETCH_ASK, [sites["app"], "cors"])
    assert result["status"] == 200, result
    assert result["body"]["citations"] and result["body"]["disclaimer"] == texts.DISCLAIMER
    assert bot.api_questions == before + 1

    foreign = new_page()
    foreign.goto(sites["foreign"] + "/")
    result = foreign.evaluate(_FETCH_ASK, [sites["app"], "cors"])
    assert "failed" in result, result  # CORS: the browser refuses to hand over the reply
    # A "simple" request goes out without a preflight; the server refuses it (403) before the
    # assistant sees it, so a foreign page cannot spend the clinic's quota either.
    assert foreign.evaluate(_FETCH_ASK, [sites["app"], "no-cors"]) == {"opaque": True}
    assert bot.api_questions == before + 1


def test_rate_limit_answers_politely_in_the_chat(fake_settings, shared_retriever, tmp_path,
                                                 new_page):
    settings = clinic_settings(fake_settings, rate_limit_per_minute=1)
    bot = CrampBot(settings, generator=FakeGenerator())
    bot.retriever = shared_retriever
    server = app.build_server(bot, settings, feedback=FeedbackStore(tmp_path / "fb.jsonl"))
    with serve_asgi_in_thread(server, timeout_s=300) as app_url:
        page = new_page()
        page.set_viewport_size({"width": 400, "height": 660})  # the size of the widget's panel
        page.goto(app_url + "/widget/")
        ask(page, NIGHT)
        page.locator("[data-testid=bot]").nth(0).locator(
            ".cb-answer:not(.cb-draft)").wait_for(timeout=FAST_MS)
        ask(page, "And how do I prevent them?")
        second = page.locator("[data-testid=bot]").nth(1)
        second.locator(".cb-answer:not(.cb-draft)").wait_for(timeout=FAST_MS)

        assert second.locator(".cb-answer").inner_text().strip() == texts.RATE_LIMITED
        # A refusal shows no source: its disclaimer says general information.
        assert second.locator(".cb-disclaimer").inner_text().strip() == texts.DISCLAIMER_NO_SOURCES
        # The box comes back (a separate event after the reply): one can ask again later.
        playwright_api.expect(page.locator("#crampbot-message textarea")).to_be_enabled()
        screenshot(page, "widget-rate-limited")
