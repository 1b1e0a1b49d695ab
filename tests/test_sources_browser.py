"""A clinic's leaflet in the chat, in headless Chromium: after `crampbot sources add`, a question
only the leaflet answers gets a source card with its title (a link opening in a new tab), page
and review; after `crampbot sources remove` (and a restart) the chat declines it again."""
from __future__ import annotations

import pytest

pytest.importorskip("playwright.sync_api")

import cli  # noqa: E402
from bot import texts  # noqa: E402
from bot.generation.fake import FakeGenerator  # noqa: E402
from bot.pipeline import CrampBot  # noqa: E402
from browser_support import chromium_browser, record_outside_requests, serve_in_thread  # noqa: E402
from corpus import sample_leaflets as leaflets  # noqa: E402
from test_browser import ask, final_reply, screenshot  # noqa: E402

pytestmark = pytest.mark.browser

QUESTION = "When does the Riverside vein clinic run?"
URL = "https://riverside-veins.example/leaflets/117"
TITLE = "Compression stockings, varicose veins and calf cramps"


def _chat_reply(browser, embedder, question: str):
    """Serve the chat on the current data folder, ask `question`, return the reply's parts."""
    import app
    from bot.settings import load_settings

    settings = load_settings("default", generation={"backend": "fake"})
    bot = CrampBot(settings, generator=FakeGenerator())
    bot.retriever._embedder = embedder  # the model already loaded by this test session
    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    outside = record_outside_requests(context)
    try:
        with serve_in_thread(app.build_app(bot, settings), settings, timeout_s=300) as url:
            page = context.new_page()
            page.goto(url)
            page.locator("#crampbot-message textarea").wait_for()
            ask(page, question)
            reply = final_reply(page, 0, 120)
            return page, reply, outside
    except BaseException:
        context.close()
        raise


def test_added_leaflet_is_cited_with_title_link_page_and_review_then_removed(
        tmp_path, monkeypatch, embedder, capsys):
    monkeypatch.setenv("CRAMPBOT_DATA_DIR", str(tmp_path / "data"))
    pdf = leaflets.build_pdf(tmp_path / "Vein Clinic Leaflet.pdf")
    assert cli.main(["sources", "add", str(pdf), "--url", URL, "--reviewed-by", "Dr A. Patel",
                     "--reviewed-on", "2026-03-01"]) == 0
    with chromium_browser() as browser:
        page, reply, outside = _chat_reply(browser, embedder, QUESTION)
        assert "every Tuesday morning from eight until noon" in reply.locator(".cb-answer").inner_text()
        card = reply.locator(".cb-card").first
        link = card.locator(".cb-card-title a")
        assert link.inner_text() == TITLE
        assert (link.get_attribute("href"), link.get_attribute("target")) == (URL, "_blank")
        assert "noopener" in link.get_attribute("rel")
        assert "The Tuesday vein clinic · page 2" in card.inner_text()
        assert card.locator(".cb-card-review").inner_text() == "Reviewed by Dr A. Patel on 1 March 2026"
        screenshot(page, "sources-leaflet-card")
        assert outside == []
        page.context.close()

        assert cli.main(["sources", "remove", "vein-clinic-leaflet"]) == 0
        page, reply, _ = _chat_reply(browser, embedder, QUESTION)
        assert reply.locator(".cb-card").count() == 0
        assert reply.locator(".cb-answer.cb-declined").count() == 1
        assert "Tuesday" not in reply.inner_text()
        assert reply.locator(".cb-disclaimer").inner_text().strip() == texts.DISCLAIMER_NO_SOURCES
        screenshot(page, "sources-leaflet-removed")
        page.context.close()
    capsys.readouterr()
