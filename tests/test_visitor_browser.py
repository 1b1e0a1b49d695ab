"""The visitor's side in headless Chromium, with the scripted model: axe-core finds no critical
or serious violation on the page and in the widget, before and after an answer; a keyboard-only
visitor opens the widget, asks, reads the answer's first line, asks again and closes it with
Escape; on a phone and in the 400 px panel a finished answer shows its start; a reload keeps the
conversation until "New conversation"; a site that may not frame the widget is told so.
Screenshots go to test-artifacts/visitor-*.png."""
from __future__ import annotations

import json
import threading
import time

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

import app  # noqa: E402
from bot import texts  # noqa: E402
from bot.generation.fake import FakeGenerator  # noqa: E402
from bot.pipeline import CrampBot  # noqa: E402
from browser_support import (  # noqa: E402
    ARTIFACTS_DIR, CLINIC_SITE, HOST, SITE_APP_URL, axe_violations, chromium_browser,
    clinic_settings, free_port, record_outside_requests, serve_asgi_in_thread, serve_directory,
)
from web import labels  # noqa: E402
from web.feedback import FeedbackStore  # noqa: E402

pytestmark = pytest.mark.browser

NIGHT = "Why do my calves cramp at night?"
SWIMMING = "What helps against leg cramps when swimming?"
FAST_MS = 60_000
DESKTOP = {"width": 1366, "height": 800}
PHONE = {"width": 390, "height": 844}
PANEL = {"width": 400, "height": 660}  # the widget's panel on a desktop
BOX = "#crampbot-message textarea"


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def sites(fake_settings, shared_retriever, tmp_path_factory):
    """Our server (page, widget, embed.js), the example clinic's site on an allowed origin,
    and the same site on an origin that is not allowed."""
    clinic_port, foreign_port = free_port(), free_port()
    settings = clinic_settings(fake_settings, allowed_origins=[f"http://{HOST}:{clinic_port}"],
                               rate_limit_per_minute=1000)
    web = settings.web
    bot = CrampBot(settings, generator=FakeGenerator())
    bot.retriever = shared_retriever
    feedback = FeedbackStore(tmp_path_factory.mktemp("feedback") / "feedback.jsonl")
    with serve_asgi_in_thread(app.build_server(bot, settings, feedback=feedback),
                              timeout_s=900) as app_url:
        pages = {SITE_APP_URL: app_url}
        with serve_directory(CLINIC_SITE, pages, port=clinic_port) as clinic, \
                serve_directory(CLINIC_SITE, pages, port=foreign_port) as foreign:
            yield {"app": app_url, "clinic": clinic, "foreign": foreign, "web": web}


@pytest.fixture
def new_context(browser):
    """A fresh browser session of the given viewport; fails the test on JavaScript errors or
    on any request that would leave 127.0.0.1."""
    contexts, errors, outside = [], [], []

    def opener(viewport=DESKTOP, **options):
        context = browser.new_context(viewport=viewport, **options)
        blocked = record_outside_requests(context)
        contexts.append((context, blocked))
        context.on("page", lambda page: page.on("pageerror", lambda e: errors.append(str(e))))
        return context

    yield opener
    for context, blocked in contexts:
        outside.extend(blocked)
        context.close()
    assert outside == [], f"a page fetched from outside 127.0.0.1: {outside}"
    assert errors == [], f"JavaScript errors: {errors}"


def screenshot(page, name: str) -> None:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / f"visitor-{name}.png"))


def wait_for(condition, timeout_s: float = 10):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    return condition()


def final_reply(where, index: int):
    reply = where.locator("[data-testid=bot]").nth(index)
    reply.locator(".cb-answer:not(.cb-draft)").wait_for(timeout=FAST_MS)
    return reply


def settled(where) -> None:
    """The reply's events are over: the box is back (and the page's scroll has run)."""
    playwright_api.expect(where.locator(BOX)).to_be_enabled(timeout=FAST_MS)
    time.sleep(0.3)


def assert_first_line_in_view(frame, index: int) -> None:
    """The answer's first line lies inside the chat's visible area and inside the window."""
    box = frame.locator("[data-testid=bot]").nth(index).locator(".cb-answer").evaluate("""a => {
      const line = a.getBoundingClientRect();
      let view = a.parentElement;
      while (view && !(['auto', 'scroll'].includes(getComputedStyle(view).overflowY)
                       && view.scrollHeight > view.clientHeight)) view = view.parentElement;
      const area = view ? view.getBoundingClientRect() : {top: 0, bottom: innerHeight};
      const lineHeight = parseFloat(getComputedStyle(a).lineHeight) || 24;
      return {top: line.top, lineBottom: line.top + lineHeight, areaTop: area.top,
              areaBottom: area.bottom, windowHeight: innerHeight,
              scrolled: view ? view.scrollTop : null};
    }""")
    assert box["top"] >= max(box["areaTop"], 0) - 1, box
    assert box["lineBottom"] <= min(box["areaBottom"], box["windowHeight"]) + 1, box


def focused_in(frame) -> str:
    """What has the keyboard focus in this frame's document ('' for the body)."""
    return frame.evaluate("""() => {
      const el = document.activeElement;
      if (!el || el === document.body) return '';
      return el.matches('#crampbot-message textarea') ? 'box' : el.tagName.toLowerCase();
    }""")


def launcher_focused(page) -> bool:
    return page.evaluate("""() => {
      const host = document.getElementById('crampbot-widget');
      return document.activeElement === host
        && host.shadowRoot.activeElement?.classList.contains('launcher') === true;
    }""")


def widget_frame(page):
    """The widget's frame in the clinic's page, once its message box is there."""
    page.frame_locator("#crampbot-widget iframe").locator(BOX).wait_for(timeout=FAST_MS)
    return page.locator("#crampbot-widget iframe").element_handle().content_frame()


def assert_axe_clean(frame, where: str, *, heading_one: bool = False,
                     include: str | None = None) -> None:
    found = axe_violations(frame, include=include)
    serious = [v for v in found if v["impact"] in ("critical", "serious")]
    assert serious == [], f"{where}: " + json.dumps(serious, indent=1)[:4000]
    if heading_one:
        assert "page-has-heading-one" not in {v["id"] for v in found}, where


def test_axe_finds_no_serious_violation_on_the_page_before_and_after_an_answer(
        sites, new_context):
    page = new_context(DESKTOP).new_page()
    page.goto(sites["app"] + "/")
    page.locator(BOX).wait_for()
    assert page.locator(".cb-greeting").inner_text().count(texts.DISCLAIMER_NO_SOURCES) == 1
    assert page.locator("footer").is_hidden()  # no "Built with Gradio"
    assert_axe_clean(page.main_frame, "page, empty", heading_one=True)
    screenshot(page, "page-empty")

    page.locator(BOX).fill(NIGHT)
    page.locator(BOX).press("Enter")
    final_reply(page, 0)
    settled(page)
    assert_axe_clean(page.main_frame, "page, after an answer", heading_one=True)
    assert focused_in(page.main_frame) == "box"
    assert_first_line_in_view(page.main_frame, 0)
    # The page is the clinic's colour, as the widget is (Gradio's orange is gone).
    send = page.get_by_role("button", name=labels.SEND, exact=True)
    assert send.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(14, 111, 116)"
    screenshot(page, "page-answer")


def test_axe_finds_no_serious_violation_in_the_widget_before_and_after_an_answer(
        sites, new_context):
    page = new_context(DESKTOP).new_page()
    page.goto(sites["clinic"] + "/")
    page.locator("#crampbot-widget .launcher").click()
    frame = widget_frame(page)
    # Our part of the clinic's page: the launcher (now the close button) and the panel.
    assert_axe_clean(page.main_frame, "clinic page, launcher", include="#crampbot-widget")
    assert_axe_clean(frame, "widget, empty", heading_one=True)
    ask_in(frame, NIGHT)
    final_reply(frame, 0)
    settled(frame)
    assert_axe_clean(frame, "widget, after an answer", heading_one=True)
    screenshot(page, "widget-answer")


def ask_in(frame, question: str) -> None:
    frame.locator(BOX).fill(question)
    frame.locator(BOX).press("Enter")


def test_keyboard_only_visitor_opens_asks_reads_asks_again_and_closes(sites, new_context):
    page = new_context(DESKTOP).new_page()
    page.goto(sites["clinic"] + "/")
    for _ in range(60):  # Tab through the clinic's page to the launcher
        page.keyboard.press("Tab")
        if launcher_focused(page):
            break
    assert launcher_focused(page), "the launcher cannot be reached with Tab"
    page.keyboard.press("Enter")
    frame = widget_frame(page)
    assert wait_for(lambda: focused_in(frame) == "box"), "opening does not put focus in the box"

    for number, question in enumerate([NIGHT, SWIMMING]):
        page.keyboard.type(question)
        page.keyboard.press("Enter")
        final_reply(frame, number)
        settled(frame)
        assert wait_for(lambda: focused_in(frame) == "box"), f"focus lost after answer {number}"
        assert_first_line_in_view(frame, number)
        screenshot(page, f"keyboard-answer-{number + 1}")

    # The open panel keeps the keyboard: Tab cycles through the frame and the close button.
    seen_launcher = False
    for _ in range(40):
        page.keyboard.press("Tab")
        in_panel = page.evaluate("""() => {
          const host = document.getElementById('crampbot-widget');
          return document.activeElement === host;
        }""")
        assert in_panel, "Tab left the open panel"
        seen_launcher = seen_launcher or launcher_focused(page)
    assert seen_launcher
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "crampbot-widget"

    page.keyboard.press("Escape")
    page.locator("#crampbot-widget .panel").wait_for(state="hidden", timeout=5000)
    assert wait_for(lambda: launcher_focused(page)), "Escape does not return focus to the launcher"


def test_phone_shows_the_start_of_the_answer_in_the_page_and_the_widget(sites, new_context):
    context = new_context(PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    page.goto(sites["app"] + "/")
    ask_in(page.main_frame, NIGHT)
    final_reply(page, 0)
    settled(page)
    assert_first_line_in_view(page.main_frame, 0)
    assert page.locator(BOX).evaluate("t => getComputedStyle(t).fontSize") == "16px"
    screenshot(page, "phone-page-answer")

    clinic = context.new_page()
    clinic.goto(sites["clinic"] + "/")
    clinic.locator("#crampbot-widget .launcher").click()
    frame = widget_frame(clinic)
    ask_in(frame, NIGHT)
    final_reply(frame, 0)
    settled(frame)
    assert_first_line_in_view(frame, 0)
    screenshot(clinic, "phone-widget-answer")


def test_panel_sized_widget_shows_the_start_of_each_answer(sites, new_context):
    page = new_context(PANEL).new_page()
    page.goto(sites["app"] + "/widget/")
    for number, question in enumerate([NIGHT, SWIMMING]):
        ask_in(page.main_frame, question)
        final_reply(page, number)
        settled(page)
        assert_first_line_in_view(page.main_frame, number)
    screenshot(page, "panel-second-answer")


def test_reload_keeps_the_conversation_until_new_conversation(sites, new_context):
    context = new_context(DESKTOP)
    for path in ("/", "/widget/"):
        page = context.new_page()
        page.goto(sites["app"] + path)
        ask_in(page.main_frame, NIGHT)
        first = final_reply(page, 0).locator(".cb-answer").inner_text()
        settled(page)
        page.reload()
        kept = final_reply(page, 0)
        assert kept.locator(".cb-answer").inner_text() == first, path
        assert page.locator("[data-testid=user]").first.inner_text().strip() == NIGHT
        # The next question continues that conversation.
        ask_in(page.main_frame, "And how do I prevent them?")
        final_reply(page, 1)
        settled(page)
        screenshot(page, f"reload-kept{path.strip('/').replace('/', '-') or '-page'}")

        page.get_by_role("button", name=labels.NEW_CONVERSATION).click()
        page.locator(".cb-greeting").wait_for()
        assert page.locator("[data-testid=bot]").count() == 0
        page.reload()
        page.locator(".cb-greeting").wait_for()
        assert page.locator("[data-testid=bot]").count() == 0, path
        page.close()

    # Another tab is another conversation (sessionStorage is per tab).
    other = context.new_page()
    other.goto(sites["app"] + "/")
    other.locator(".cb-greeting").wait_for()
    assert other.locator("[data-testid=bot]").count() == 0


def test_widget_in_the_clinic_site_keeps_the_conversation_across_its_pages(sites, new_context):
    page = new_context(DESKTOP).new_page()
    page.goto(sites["clinic"] + "/")
    page.locator("#crampbot-widget .launcher").click()
    frame = widget_frame(page)
    ask_in(frame, NIGHT)
    final_reply(frame, 0)
    settled(frame)
    page.goto(sites["clinic"] + "/iframe.html")  # another page of the clinic's site
    page.goto(sites["clinic"] + "/")
    page.locator("#crampbot-widget .launcher").click()
    frame = widget_frame(page)
    final_reply(frame, 0)
    assert frame.locator("[data-testid=user]").first.inner_text().strip() == NIGHT


def test_a_site_that_is_not_allowed_is_told_instead_of_a_broken_frame(sites, new_context):
    page = new_context(DESKTOP).new_page()
    page.goto(sites["foreign"] + "/")
    page.locator("#crampbot-widget .launcher").click()
    notice = page.locator("#crampbot-widget .notice")
    notice.wait_for(state="visible", timeout=25_000)
    assert notice.inner_text().strip() == labels.NOT_ENABLED
    assert page.locator("#crampbot-widget iframe").is_hidden()
    screenshot(page, "foreign-not-enabled")

    allowed = new_context(DESKTOP).new_page()
    allowed.goto(sites["clinic"] + "/")
    allowed.locator("#crampbot-widget .launcher").click()
    widget_frame(allowed)
    time.sleep(2)  # longer than embed.js waits for the frame's "ready" after it loads
    assert allowed.locator("#crampbot-widget .notice").is_hidden()


class SlowGenerator(FakeGenerator):
    """The scripted model at a readable pace, so the draft stays on screen for a while."""

    def stream(self, messages, max_new_tokens):
        for word in super().stream(messages, max_new_tokens):
            time.sleep(0.6)
            yield word


@pytest.fixture(scope="module")
def slow_app(fake_settings, shared_retriever, tmp_path_factory):
    bot = CrampBot(fake_settings, generator=SlowGenerator())
    bot.retriever = shared_retriever
    feedback = FeedbackStore(tmp_path_factory.mktemp("slow") / "fb.jsonl")
    with serve_asgi_in_thread(app.build_server(bot, fake_settings, feedback=feedback),
                              timeout_s=600) as app_url:
        yield app_url


def test_thumbs_only_under_finished_answers(slow_app, new_context):
    page = new_context(PANEL).new_page()
    page.goto(slow_app + "/widget/")
    ask_in(page.main_frame, NIGHT)
    page.locator("[data-testid=bot] .cb-draft").wait_for(timeout=FAST_MS)
    like = page.get_by_role("button", name="Like", exact=True)
    assert like.count() == 0 or not like.first.is_visible()
    screenshot(page, "draft-without-thumbs")
    final_reply(page, 0)
    settled(page)
    playwright_api.expect(like).to_be_visible()
    size = like.bounding_box()
    assert size["width"] >= 24 and size["height"] >= 24  # WCAG 2.2 target size
    assert focused_in(page.main_frame) == "box"

    # A reader who scrolls up while the next draft streams is left there.
    ask_in(page.main_frame, SWIMMING)
    page.locator("[data-testid=bot]").nth(1).locator(".cb-draft").wait_for(timeout=FAST_MS)
    chat = page.locator("#crampbot-chat .bubble-wrap")
    chat.evaluate("view => { view.scrollTop = 0; }")
    page.wait_for_timeout(1200)  # a few more words of the draft
    assert page.locator("[data-testid=bot]").nth(1).locator(".cb-draft").count() == 1
    assert chat.evaluate("view => view.scrollTop") < 5
    final_reply(page, 1)
    settled(page)
    assert_first_line_in_view(page.main_frame, 1)


class _SlowLoadingModel(FakeGenerator):
    """A scripted model whose load takes until the test lets it finish."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def load(self) -> None:
        self.release.wait(timeout=120)


def test_page_says_the_model_is_loading_while_it_loads(fake_settings, shared_retriever, new_context):
    model = _SlowLoadingModel()
    bot = CrampBot(fake_settings, generator=model)
    bot._model_ready = False  # as a real backend before its load
    bot.retriever = shared_retriever
    with serve_asgi_in_thread(app.build_server(bot, fake_settings), timeout_s=300) as app_url:
        page = new_context(PANEL).new_page()
        page.goto(app_url + "/widget/")
        notice = page.locator("#crampbot-loading [role=status]")
        # Not loaded is not loading (a Russian answer needs no model): nothing is said yet.
        page.locator(BOX).wait_for(timeout=FAST_MS)
        playwright_api.expect(notice).to_be_hidden(timeout=FAST_MS)
        warm_up = threading.Thread(target=lambda: bot.generator, daemon=True)
        warm_up.start()  # as app.py's warm-up does
        playwright_api.expect(notice).to_have_text(texts.MODEL_LOADING, timeout=FAST_MS)
        screenshot(page, "model-loading")
        model.release.set()
        playwright_api.expect(notice).to_be_hidden(timeout=10_000)
        ask_in(page.main_frame, NIGHT)
        final_reply(page, 0)


def test_a_question_sent_during_an_answer_waits_and_says_so(slow_app, new_context):
    page = new_context(PANEL).new_page()
    page.goto(slow_app + "/widget/")
    box = page.locator(BOX)
    box.click()
    page.keyboard.type(NIGHT)
    page.keyboard.press("Enter")
    page.locator("[data-testid=bot] .cb-draft").wait_for(timeout=FAST_MS)
    page.keyboard.type(SWIMMING)  # the box is still typeable
    page.keyboard.press("Enter")
    note = page.locator("#crampbot-waiting")
    playwright_api.expect(note).to_have_text(labels.WAITING)
    playwright_api.expect(note).to_be_in_viewport()
    assert box.input_value() == SWIMMING
    assert page.locator("[data-testid=user]").count() == 1
    screenshot(page, "question-waiting")

    final_reply(page, 0)
    playwright_api.expect(page.locator("[data-testid=user]")).to_have_count(2, timeout=FAST_MS)
    assert page.locator("[data-testid=user]").nth(1).inner_text().strip() == SWIMMING
    playwright_api.expect(note).to_be_hidden()
    final_reply(page, 1)
    assert page.locator("[data-testid=bot]").count() == 2
    assert wait_for(lambda: focused_in(page.main_frame) == "box")


# Records whether any element of the page was ever dimmed as "pending" (Gradio's 0.2 opacity
# for the outputs of a running event), from the first byte of the document on.
_WATCH_DIMMING = """
window.__dimmed = [];
new MutationObserver(records => {
  for (const r of records) {
    const el = r.target;
    if (el.classList && el.classList.contains('pending')) window.__dimmed.push(el.className);
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['class']});
"""


@pytest.mark.parametrize("path", ["/", "/widget/"])
def test_nothing_is_dimmed_while_the_page_loads(sites, new_context, path):
    """The load restores the conversation and the page's language: a visitor must not see the
    header and greeting flicker to 0.2 opacity (and a dimmed header fails contrast)."""
    context = new_context(PANEL if path == "/widget/" else DESKTOP)
    context.add_init_script(_WATCH_DIMMING)
    page = context.new_page()
    page.goto(sites["app"] + path)
    page.locator(BOX).wait_for()
    page.locator(".cb-greeting").wait_for()
    page.wait_for_timeout(1500)  # the load's events and a loading-check tick are over
    assert page.evaluate("window.__dimmed") == []


@pytest.mark.parametrize("path", ["/", "/widget/"])
def test_axe_finds_no_serious_violation_in_dark_mode(sites, new_context, path):
    page = new_context(PANEL if path == "/widget/" else DESKTOP).new_page()
    page.goto(sites["app"] + path + "?__theme=dark")
    page.locator(BOX).wait_for()
    assert page.evaluate("document.querySelector('.dark') !== null")
    assert_axe_clean(page.main_frame, f"{path} dark, empty")
    ask_in(page.main_frame, NIGHT)
    final_reply(page, 0)
    settled(page)
    assert_axe_clean(page.main_frame, f"{path} dark, after an answer")
    screenshot(page, f"dark{path.strip('/').replace('/', '-') or '-page'}")


def test_new_conversation_during_an_answer_stops_it(slow_app, new_context):
    """Pressed while a draft streams, "New conversation" cancels that answer: it must not
    reappear in the new conversation when its stream would have ended."""
    page = new_context(PANEL).new_page()
    page.goto(slow_app + "/widget/")
    ask_in(page.main_frame, NIGHT)
    page.locator("[data-testid=bot] .cb-draft").wait_for(timeout=FAST_MS)
    page.wait_for_timeout(1500)  # a few words into the draft, as a visitor would be
    page.get_by_role("button", name=labels.NEW_CONVERSATION).click()
    page.locator(".cb-greeting").wait_for()
    page.wait_for_timeout(6000)  # longer than the slow draft takes to finish
    screenshot(page, "new-conversation-during-answer")
    shown = page.locator("#crampbot-chat").inner_text()
    assert page.locator("[data-testid=bot]").count() == 0, shown
    assert page.locator("[data-testid=user]").count() == 0, shown
    ask_in(page.main_frame, SWIMMING)  # and the chat still answers
    final_reply(page, 0)
    assert page.locator("[data-testid=user]").count() == 1


def test_the_page_holds_votes_to_the_per_client_limit(fake_settings, shared_retriever,
                                                      tmp_path, new_context):
    """web.feedback_per_minute bounds the chat's thumbs as it bounds POST /api/v1/feedback:
    each vote appends to the log, so a flood of clicks must not fill the disk."""
    from web.feedback import read_feedback

    settings = fake_settings.model_copy(update={
        "web": fake_settings.web.model_copy(update={"feedback_per_minute": 1})})
    bot = CrampBot(settings, generator=FakeGenerator())
    bot.retriever = shared_retriever
    log = tmp_path / "feedback.jsonl"
    with serve_asgi_in_thread(app.build_server(bot, settings, feedback=FeedbackStore(log)),
                              timeout_s=300) as app_url:
        page = new_context(DESKTOP).new_page()
        page.goto(app_url + "/")
        for number, question in enumerate((NIGHT, SWIMMING)):
            ask_in(page.main_frame, question)
            final_reply(page, number)
            settled(page)
        page.get_by_role("button", name="Like", exact=True).first.click()
        page.get_by_role("button", name="Liked", exact=True).wait_for(timeout=5000)
        assert wait_for(lambda: len(read_feedback(log).records) == 1)
        page.get_by_role("button", name="Like", exact=True).first.click()  # the second answer
        page.get_by_role("button", name="Liked", exact=True).nth(1).wait_for(timeout=5000)
        time.sleep(2)  # the second vote's event has run
        assert [r["question"] for r in read_feedback(log).records] == [NIGHT]
        assert page.locator("[data-testid=user]").nth(1).inner_text().strip() == SWIMMING


def test_a_thumbs_down_in_the_page_lands_in_the_gaps_log_scrubbed(fake_settings, shared_retriever,
                                                                  tmp_path, new_context):
    """With answer.gaps_log_enabled, the chat's thumbs down logs the question (bot/gaps.py)."""
    gaps = tmp_path / "gaps.jsonl"
    settings = fake_settings.model_copy(update={"data_dir": tmp_path, "answer": (
        fake_settings.answer.model_copy(update={"gaps_log": gaps, "gaps_log_enabled": True}))})
    bot = CrampBot(settings, generator=FakeGenerator())
    bot.retriever = shared_retriever
    with serve_asgi_in_thread(app.build_server(bot, settings), timeout_s=300) as app_url:
        page = new_context(DESKTOP).new_page()
        page.goto(app_url + "/")
        ask_in(page.main_frame, NIGHT + " Write to jo@example.org")
        final_reply(page, 0)
        settled(page)
        page.get_by_role("button", name="Dislike", exact=True).first.click()
        assert wait_for(lambda: gaps.is_file() and gaps.read_text(encoding="utf-8").strip())
    (line,) = [json.loads(line) for line in gaps.read_text(encoding="utf-8").splitlines()]
    assert line["reason"] == "thumbs_down" and line["question"] == NIGHT + " Write to [email]"
