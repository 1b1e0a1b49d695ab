"""The web chat in headless Chromium: answer, source card and disclaimer on the page, HTML in a
message shown as text, nothing fetched from outside 127.0.0.1. Screenshots go to test-artifacts/."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api")

from bot import render, texts  # noqa: E402
from bot.generation.fake import FakeGenerator  # noqa: E402
from bot.pipeline import CrampBot  # noqa: E402
from browser_support import (  # noqa: E402
    ARTIFACTS_DIR, chromium_browser, record_outside_requests, serve_in_thread, serve_subprocess,
)

pytestmark = pytest.mark.browser

NIGHT = "Why do my calves cramp at night?"
SCRIPT = "<script>window.__pwned=1</script>why cramps?"
FAST_S = 60  # seconds for a reply with the fake model
REAL_S = 900  # first question with the real model: index build, model load, generation


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def fake_chat(fake_settings, shared_retriever):
    """The real page and pipeline in this process, answering with a scripted model."""
    import app

    bot = CrampBot(fake_settings, generator=FakeGenerator())
    bot.retriever = shared_retriever
    with serve_in_thread(app.build_app(bot, fake_settings), fake_settings, timeout_s=600) as url:
        yield url, bot


@pytest.fixture
def open_page(browser):
    """A fresh browser session (so a fresh conversation); fails the test on page errors or on
    any request that would leave 127.0.0.1."""
    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    outside = record_outside_requests(context)
    errors: list[str] = []

    def opener(url: str):
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.locator("#crampbot-message textarea").wait_for()
        return page

    yield opener
    context.close()
    assert outside == [], f"the page fetched from outside 127.0.0.1: {outside}"
    assert errors == [], f"JavaScript errors on the page: {errors}"


def ask(page, question: str) -> None:
    box = page.locator("#crampbot-message textarea")
    box.fill(question)  # waits until the previous answer re-enabled the box
    box.press("Enter")


def final_reply(page, index: int, timeout_s: float):
    """The index-th assistant message, once it holds the final answer (not a draft/status)."""
    reply = page.locator("[data-testid=bot]").nth(index)
    reply.locator(".cb-answer:not(.cb-draft)").wait_for(timeout=timeout_s * 1000)
    return reply


def screenshot(page, name: str) -> None:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / f"{name}.png"), full_page=True)


def test_question_gets_answer_source_card_and_disclaimer(fake_chat, open_page):
    url, bot = fake_chat
    expected = bot.ask(NIGHT)  # the composed answer the page must show (the fake lead is dropped)
    top = expected.citations[0]
    page = open_page(url)

    ask(page, NIGHT)
    reply = final_reply(page, 0, FAST_S)

    assert page.locator("[data-testid=user]").first.inner_text().strip() == NIGHT
    assert reply.locator(".cb-answer").inner_text().strip() == expected.text
    assert reply.locator(".cb-cite").first.inner_text() == "[1]"
    card = reply.locator(".cb-card").first
    assert card.locator(".cb-card-title").inner_text() == top.passage.title
    assert top.supporting_sentence.split(". ")[0] in card.locator(".cb-passage mark").inner_text()
    assert reply.locator(".cb-disclaimer").inner_text().strip() == texts.DISCLAIMER
    # Quoted sentences are badged as quoted; green only on a model sentence that passed its check.
    assert reply.locator(".cb-extractive").count() == 1
    assert reply.locator(".cb-verified").count() == (0 if expected.extractive else 1)

    original = card.locator(".cb-original-text")
    assert not original.is_visible()  # the raw wording only on demand
    card.locator("summary").click()
    assert original.is_visible()
    assert original.inner_text().split()[:3] == top.passage.original.split()[:3]
    screenshot(page, "browser-answer")


def test_html_in_a_message_is_shown_as_text_and_never_runs(fake_chat, open_page):
    url, _ = fake_chat
    page = open_page(url)

    ask(page, SCRIPT)
    reply = final_reply(page, 0, FAST_S)

    assert page.locator("[data-testid=user]").first.inner_text().strip() == SCRIPT
    assert page.evaluate("typeof window.__pwned") == "undefined"
    injected = page.evaluate(
        "[...document.querySelectorAll('script')].filter(s => s.text.includes('__pwned')).length")
    assert injected == 0
    assert reply.locator(".cb-disclaimer").inner_text().strip() == texts.DISCLAIMER
    screenshot(page, "browser-script-as-text")


def test_example_question_is_asked_with_one_click(fake_chat, open_page):
    url, _ = fake_chat
    page = open_page(url)

    page.get_by_text("Which vitamins prevent calf cramps?").click()
    reply = final_reply(page, 0, FAST_S)

    assert page.locator("[data-testid=user]").first.inner_text().strip() == (
        "Which vitamins prevent calf cramps?")
    assert reply.locator(".cb-disclaimer").inner_text().strip() == texts.DISCLAIMER
    ask(page, "And at night?")  # the box is usable again for a follow-up
    final_reply(page, 1, FAST_S)
    assert page.locator("[data-testid=bot]").count() == 2


# Records whether the page ever said the model is loading (the state can be short).
_WATCH_LOADING = """
window.__sawLoading = false;
new MutationObserver(() => {
  if (!window.__sawLoading && document.body && document.body.textContent.includes(%r))
    window.__sawLoading = true;
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


# The page's own example questions, and what a correct answer from the sources must name.
EXAMPLES_MUST_NAME = {
    "Why do my calves cramp at night?": ("stress", "shoes", "metabol", "sitting", "standing", "caffeine"),
    "What helps against leg cramps when swimming?": ("vessel", "cold", "temperature"),
    "Which vitamins prevent calf cramps?": ("vitamin d", "b6", "b1", "b5"),
    "What should I do when my calf cramps right now?": ("massage", "stroke", "warm", "bath", "compress"),
    "Can pregnancy cause leg cramps?": ("calcium", "diabetes", "preeclampsia", "iron", "anemia"),
}
FOLLOW_UP = "Is that dangerous in pregnancy?"


def _check_real_reply(reply, must_name) -> str:
    """A cited, non-declined answer naming one of the expected facts, with card and disclaimer."""
    answer = reply.locator(".cb-answer").inner_text()
    assert not reply.locator(".cb-answer.cb-declined, .cb-answer.cb-error").count(), answer
    assert re.search(r"\[\d+\]", answer), answer
    assert any(term in answer.lower() for term in must_name), answer
    assert reply.locator(".cb-card").count() >= 1
    assert reply.locator(".cb-card-title").first.inner_text().strip()
    assert reply.locator(".cb-disclaimer").inner_text().strip() == texts.DISCLAIMER
    assert render.CHECKING not in reply.inner_text()
    return answer


@pytest.mark.slow
def test_real_model_answers_the_examples_and_a_follow_up(browser):
    """`python app.py` with the default settings (real embedder, real default LLM), the model
    loading on the first question so the page must say so instead of hanging; then every
    example button in a fresh session, and a two-turn follow-up in the page itself."""
    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    outside = record_outside_requests(context)
    context.add_init_script(_WATCH_LOADING % texts.MODEL_LOADING)
    try:
        with serve_subprocess(["--no-warm-up"], timeout_s=REAL_S + 600,
                              log_name="browser-real-app") as url:
            for number, (example, must_name) in enumerate(EXAMPLES_MUST_NAME.items()):
                page = context.new_page()
                page.goto(url)
                page.get_by_text(example).click()
                reply = final_reply(page, 0, REAL_S)
                if number == 0:
                    assert page.evaluate("window.__sawLoading") is True
                screenshot(page, f"browser-real-example-{number + 1}")
                _check_real_reply(reply, must_name)
                if example == NIGHT:
                    ask(page, FOLLOW_UP)  # "that" = night cramps: condensed, not declined
                    follow = final_reply(page, 1, REAL_S)
                    screenshot(page, "browser-real-follow-up")
                    _check_real_reply(follow, EXAMPLES_MUST_NAME["Can pregnancy cause leg cramps?"])
                page.close()
    finally:
        context.close()
    assert outside == []
