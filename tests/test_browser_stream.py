"""A clinic's own front end streaming answers in Chromium: page JavaScript on the clinic's
origin reads POST /api/v1/ask/stream with fetch and a ReadableStream (CORS from an allowed
origin) and shows the draft as it streams, then the verified answer, its sources and the
disclaimer. Screenshots: test-artifacts/stream-draft.png, test-artifacts/stream-done.png."""
from __future__ import annotations

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

import app  # noqa: E402
from bot import texts  # noqa: E402
from bot.pipeline import CrampBot  # noqa: E402
from browser_support import (  # noqa: E402
    ARTIFACTS_DIR, HOST, chromium_browser, free_port, record_outside_requests,
    serve_asgi_in_thread, serve_directory,
)
from bot.settings import WebSettings  # noqa: E402
from web.feedback import FeedbackStore  # noqa: E402

from test_api_stream import NIGHT, HeldGenerator  # noqa: E402

pytestmark = pytest.mark.browser
APP_URL = "__APP_URL__"

# What a clinic's developer would write: fetch + ReadableStream, a dozen lines of SSE parsing
# (EventSource cannot POST a question), text put in with textContent only.
CLINIC_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Clinic front end</title>
<style>body{font:16px/1.5 sans-serif;max-width:44rem;margin:2rem auto}
#draft{color:#555;font-style:italic}#answer{font-weight:600}#disclaimer{font-size:14px}</style>
</head><body>
<h1>Ask our assistant</h1>
<form id="form"><label>Question <input id="question" size="50"></label>
<button id="ask">Ask</button></form>
<p id="status" role="status"></p><p id="draft"></p><p id="answer"></p>
<ol id="sources"></ol><p id="disclaimer"></p>
<script>
window.kinds = [];
document.getElementById("form").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  const show = (id, text) => { document.getElementById(id).textContent = text; };
  const response = await fetch("__APP_URL__/api/v1/ask/stream", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({question: document.getElementById("question").value})});
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", draft = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      const block = buffer.slice(0, end); buffer = buffer.slice(end + 2);
      let kind = "message", data = "";
      for (const line of block.split("\\n")) {
        if (line.startsWith("event: ")) kind = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (!data) continue;  // a keep-alive comment
      const event = JSON.parse(data);
      window.kinds.push(kind);
      if (kind === "status") show("status", event.text);
      if (kind === "retrieved") show("status", `Found ${event.passages.length} passages...`);
      if (kind === "delta") { draft += event.text; show("draft", draft); }
      if (kind === "error") show("status", event.detail);
      if (kind === "done") {
        show("status", ""); show("draft", ""); show("answer", event.answer);
        show("disclaimer", event.disclaimer);
        for (const source of event.citations) {
          const item = document.createElement("li");
          item.textContent = `[${source.number}] ${source.title}: ${source.section}`;
          document.getElementById("sources").append(item);
        }
      }
    }
  }
});
</script></body></html>
"""


@pytest.fixture(scope="module")
def sites(fake_settings, shared_retriever, tmp_path_factory):
    """Our server and the clinic's page on an allowed origin; the model holds on request."""
    clinic_port = free_port()
    clinic_origin = f"http://{HOST}:{clinic_port}"
    web = WebSettings(allowed_origins=[clinic_origin], rate_limit_per_minute=1000)
    settings = fake_settings.model_copy(update={"web": web})
    generator = HeldGenerator()
    bot = CrampBot(settings, generator=generator)
    bot.retriever = shared_retriever
    folder = tmp_path_factory.mktemp("clinic-front-end")
    (folder / "index.html").write_text(CLINIC_PAGE, encoding="utf-8")
    server = app.build_server(bot, settings,
                              feedback=FeedbackStore(folder.parent / "feedback.jsonl"))
    with serve_asgi_in_thread(server, timeout_s=600) as app_url, \
            serve_directory(folder, {APP_URL: app_url}, port=clinic_port) as clinic:
        yield {"clinic": clinic, "bot": bot, "generator": generator}


def test_the_page_shows_the_draft_as_it_streams_then_the_answer(sites):
    generator, bot = sites["generator"], sites["bot"]
    expected = bot.ask(NIGHT)
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    with chromium_browser() as chromium:
        context = chromium.new_context(viewport={"width": 900, "height": 800})
        outside = record_outside_requests(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(sites["clinic"] + "/")
        generator.hold()
        page.fill("#question", NIGHT)
        page.click("#ask")

        # The model has written its first word and waits: the page already shows it.
        page.wait_for_function(
            "document.getElementById('draft').textContent.trim() === 'Cramps'", timeout=15_000)
        assert page.text_content("#answer") == ""
        assert page.text_content("#status").startswith("Found ")
        page.screenshot(path=str(ARTIFACTS_DIR / "stream-draft.png"))
        generator.release.set()

        page.wait_for_function("document.getElementById('answer').textContent !== ''",
                               timeout=30_000)
        page.screenshot(path=str(ARTIFACTS_DIR / "stream-done.png"))
        answer = page.text_content("#answer")
        disclaimer = page.text_content("#disclaimer")
        sources = page.locator("#sources li").all_text_contents()
        kinds = page.evaluate("window.kinds")
        draft = page.text_content("#draft")
        context.close()

    assert generator.released_in_time is True
    assert answer == expected.text and "[1]" in answer
    assert disclaimer == texts.DISCLAIMER
    assert sources[0] == (f"[1] {expected.citations[0].passage.title}: "
                          f"{expected.citations[0].passage.section}")
    assert len(sources) == len(expected.citations)
    assert kinds[0] == "retrieved" and kinds[-1] == "done" and kinds.count("delta") >= 5
    assert draft == ""  # the verified answer replaced the draft
    assert errors == [] and outside == []
