"""The web server without a browser: JSON API, conversations, origin/CORS/CSP controls, rate and
size limits, the feedback log and its summary, the embed script. FastAPI's TestClient against
the real app (app.build_server), the real index and a scripted model."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

import app
from bot import texts
from bot.answer import Answer
from bot.generation.fake import FakeGenerator
from bot.pipeline import CrampBot
from bot.settings import WebSettings
from web.chat import Turn, voted_turn
from web.conversations import ConversationStore, ExpiringStore
from web.feedback import FeedbackStore, feedback_record, read_feedback, summarize
from web.security import RateLimiter

from served import RecordingBot  # noqa: E402  (tests/served.py)

PROJECT_DIR = Path(__file__).resolve().parent.parent
CLINIC = "https://www.example-clinic.org"
ELSEWHERE = "https://quota-thief.example"
NIGHT = "Why do my calves cramp at night?"
CLOT = "My calf is swollen, red and hot after a long flight"
OFF_TOPIC = "What is the capital of France?"


def web_settings(**fields) -> WebSettings:
    # TestClient sends Host: testserver, which the default allowed_hosts (loopback) refuse.
    return WebSettings(**{"allowed_origins": [CLINIC], "allowed_hosts": ["testserver"], **fields})


@pytest.fixture(scope="module")
def served(fake_settings, shared_retriever, tmp_path_factory):
    """One server for the module: (client, recording bot, feedback file)."""
    bot = CrampBot(fake_settings, generator=FakeGenerator())
    bot.retriever = shared_retriever
    recording = RecordingBot(bot)
    settings = fake_settings.model_copy(update={"web": web_settings(rate_limit_per_minute=1000)})
    path = tmp_path_factory.mktemp("feedback") / "feedback.jsonl"
    server = app.build_server(recording, settings, feedback=FeedbackStore(path))
    with TestClient(server) as client:
        yield client, recording, path


def server_with(fake_settings, shared_retriever, tmp_path, **web_fields):
    bot = RecordingBot(CrampBot(fake_settings, generator=FakeGenerator()))
    bot.bot.retriever = shared_retriever
    settings = fake_settings.model_copy(update={"web": web_settings(**web_fields)})
    server = app.build_server(bot, settings, feedback=FeedbackStore(tmp_path / "fb.jsonl"))
    return server, bot


# -- asking --------------------------------------------------------------------------------

def test_ask_returns_the_answer_with_structured_citations_disclaimer_and_ids(served):
    client, bot, _ = served
    expected = bot.bot.ask(NIGHT)  # the composed answer (the fake model's lead is checked too)
    top = expected.citations[0].passage

    reply = client.post("/api/v1/ask", json={"question": NIGHT})

    assert reply.status_code == 200
    body = reply.json()
    assert body["answer"] == expected.text and "[1]" in body["answer"]
    assert body["extractive"] is expected.extractive
    assert body["disclaimer"] == texts.DISCLAIMER
    assert (body["declined"], body["red_flag"], body["error"]) == (False, False, False)
    citation = body["citations"][0]
    assert citation == {
        "number": 1, "title": top.title, "section": top.section, "text": top.text,
        "original": top.original, "supporting_sentence": citation["supporting_sentence"],
        "supporting_translation": "",  # an English reply has none
        "source": top.source, "passage_id": top.id,
        # A shipped source has no page, link or review; a clinic's own leaflet fills them in.
        "page": None, "url": "", "reviewed_by": "", "reviewed_on": "",
    }
    assert citation["supporting_sentence"] == expected.citations[0].supporting_sentence
    assert body["conversation_id"] and body["answer_id"] and body["lang"] == "en"


def test_a_russian_question_is_answered_with_its_language_and_the_russian_disclaimer(served):
    client, _, _ = served
    body = client.post("/api/v1/ask", json={"question": "Почему по ночам сводит икры?"}).json()
    assert body["lang"] == "ru" and body["disclaimer"] == texts.t("DISCLAIMER", "ru")


def test_conversation_id_carries_the_earlier_turns_to_the_bot(served):
    client, bot, _ = served
    first = client.post("/api/v1/ask", json={"question": NIGHT}).json()
    second = client.post("/api/v1/ask", json={"question": "And how do I prevent them?",
                                              "conversation_id": first["conversation_id"]})

    assert second.status_code == 200
    assert second.json()["conversation_id"] == first["conversation_id"]
    question, history = bot.asked[-1]
    assert question == "And how do I prevent them?"
    assert history == [(NIGHT, first["answer"])]  # plain answer text, no disclaimer


def test_unknown_conversation_id_is_404_with_a_clear_message(served):
    client, _, _ = served
    reply = client.post("/api/v1/ask", json={"question": NIGHT, "conversation_id": "made-up"})
    assert reply.status_code == 404
    assert reply.json() == {"detail": texts.CONVERSATION_NOT_FOUND}


def test_client_sent_history_is_used_and_nothing_is_kept(served):
    client, bot, _ = served
    history = [{"question": NIGHT, "answer": "Tired muscles cramp [1]."}]
    reply = client.post("/api/v1/ask", json={"question": "And by day?", "history": history})

    assert reply.status_code == 200
    assert reply.json()["conversation_id"] is None
    assert bot.asked[-1] == ("And by day?", [(NIGHT, "Tired muscles cramp [1].")])

    both = client.post("/api/v1/ask", json={"question": "x", "history": history,
                                            "conversation_id": "abc"})
    assert both.status_code == 422
    assert texts.HISTORY_AND_CONVERSATION in both.text


@pytest.mark.parametrize("question, flag", [(CLOT, "red_flag"), (OFF_TOPIC, "declined"),
                                            ("   ", "error")])
def test_red_flags_declines_and_refusals_come_flagged_with_the_disclaimer(served, question, flag):
    client, _, _ = served
    body = client.post("/api/v1/ask", json={"question": question}).json()
    assert body[flag] is True
    assert body["citations"] == []
    # No source is shown: the disclaimer does not point at any; an urgent reply has its own.
    expected = texts.DISCLAIMER_URGENT if flag == "red_flag" else texts.DISCLAIMER_NO_SOURCES
    assert body["disclaimer"] == expected
    if flag == "error":
        assert body["answer"] == texts.EMPTY_MESSAGE


def test_openapi_schema_documents_the_routes_and_their_errors(served):
    client, _, _ = served
    schema = client.get("/api/v1/openapi.json").json()
    ask = schema["paths"]["/api/v1/ask"]["post"]
    assert set(ask["responses"]) >= {"200", "403", "404", "413", "422", "429"}
    assert "/api/v1/feedback" in schema["paths"] and "/api/v1/health" in schema["paths"]
    response = schema["components"]["schemas"]["AskResponse"]["properties"]
    assert {"answer", "citations", "disclaimer", "declined", "red_flag", "error",
            "conversation_id", "answer_id"} <= set(response)
    citation = schema["components"]["schemas"]["CitationOut"]["properties"]
    assert {"number", "title", "section", "text", "original", "source"} <= set(citation)
    # The Gradio pages' own endpoints are not part of the public API.
    assert all(path.startswith("/api/v1/") for path in schema["paths"])


def test_health_and_routes_of_the_one_server(served):
    client, _, _ = served
    assert client.get("/api/v1/health").json() == {"status": "ok", "model_ready": True}
    assert client.get("/").status_code == 200
    assert client.get("/widget/").status_code == 200
    redirect = client.get("/widget", follow_redirects=False)
    assert redirect.status_code in (307, 308) and redirect.headers["location"] == "/widget/"
    assert client.get("/docs").status_code != 200 or "swagger" not in client.get("/docs").text


# -- origins: framing and CORS ---------------------------------------------------------------

def test_only_the_widget_may_be_framed_and_only_by_allowed_origins(served):
    client, _, _ = served
    widget_policy = client.get("/widget/").headers["content-security-policy"]
    assert widget_policy == f"frame-ancestors 'self' {CLINIC}"
    for path in ("/", "/api/v1/health", "/embed.js"):
        assert client.get(path).headers["content-security-policy"] == "frame-ancestors 'self'"
    # The Gradio routes the widget loads carry the widget's policy too.
    assert client.get("/widget/config").headers["content-security-policy"] == widget_policy


def test_cors_admits_the_clinic_and_never_echoes_another_origin(served):
    client, _, _ = served
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    allowed = client.options("/api/v1/ask", headers={"Origin": CLINIC, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == CLINIC
    refused = client.options("/api/v1/ask", headers={"Origin": ELSEWHERE, **preflight})
    assert "access-control-allow-origin" not in refused.headers
    # Gradio alone would echo any origin on its own routes; behind our middleware it must not.
    for path in ("/config", "/widget/config", "/api/v1/health"):
        reply = client.get(path, headers={"Origin": ELSEWHERE})
        assert "access-control-allow-origin" not in reply.headers, path
    assert client.get("/api/v1/health", headers={"Origin": CLINIC}).headers[
        "access-control-allow-origin"] == CLINIC


def test_a_foreign_page_cannot_spend_the_quota(served):
    client, bot, _ = served
    before = len(bot.asked)
    reply = client.post("/api/v1/ask", json={"question": NIGHT}, headers={"Origin": ELSEWHERE})
    assert reply.status_code == 403
    assert reply.json() == {"detail": texts.ORIGIN_NOT_ALLOWED}
    assert "access-control-allow-origin" not in reply.headers
    # Also as a "simple" request, which a browser sends without asking first.
    simple = client.post("/api/v1/ask", content=json.dumps({"question": NIGHT}),
                         headers={"Origin": ELSEWHERE, "Content-Type": "text/plain"})
    assert simple.status_code == 403
    assert client.post("/widget/gradio_api/queue/join", json={},
                       headers={"Origin": ELSEWHERE}).status_code == 403
    assert len(bot.asked) == before
    ours = client.post("/api/v1/ask", json={"question": NIGHT}, headers={"Origin": CLINIC})
    assert ours.status_code == 200 and ours.headers["access-control-allow-origin"] == CLINIC


# -- rate and size limits --------------------------------------------------------------------

def test_rate_limit_answers_429_with_retry_after_per_client(fake_settings, shared_retriever,
                                                           tmp_path):
    server, bot = server_with(fake_settings, shared_retriever, tmp_path, rate_limit_per_minute=2)
    with TestClient(server, client=("203.0.113.7", 5000)) as visitor, \
            TestClient(server, client=("203.0.113.8", 5000)) as neighbour:
        for _ in range(2):
            assert visitor.post("/api/v1/ask", json={"question": NIGHT}).status_code == 200
        limited = visitor.post("/api/v1/ask", json={"question": NIGHT},
                               headers={"Origin": CLINIC})
        assert limited.status_code == 429
        assert limited.json() == {"detail": texts.RATE_LIMITED}
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # The clinic's front end can read the header (and the reply) across origins.
        assert "retry-after" in limited.headers["access-control-expose-headers"].lower()
        assert limited.headers["access-control-allow-origin"] == CLINIC
        assert len(bot.asked) == 2
        assert neighbour.post("/api/v1/ask", json={"question": NIGHT}).status_code == 200


def test_rate_limiter_window_slides():
    now = [1000.0]
    limiter = RateLimiter(per_minute=2, clock=lambda: now[0])
    assert limiter.retry_after("a") is None
    now[0] += 20
    assert limiter.retry_after("a") is None
    now[0] += 10
    assert limiter.retry_after("a") == pytest.approx(30)  # the first question leaves at 60 s
    assert limiter.retry_after("b") is None
    now[0] += 30
    assert limiter.retry_after("a") is None  # one slot free again
    assert limiter.retry_after("a") == pytest.approx(20)


def test_oversized_bodies_are_refused_with_413_before_the_bot(fake_settings, shared_retriever,
                                                              tmp_path):
    server, bot = server_with(fake_settings, shared_retriever, tmp_path, max_request_bytes=2048)
    with TestClient(server) as client:
        big = {"question": "cramps " * 400}
        reply = client.post("/api/v1/ask", json=big)
        assert reply.status_code == 413
        assert reply.json() == {"detail": texts.REQUEST_TOO_LARGE}

        def chunks():  # no Content-Length: the limit must count the bytes as they arrive
            data = json.dumps(big).encode()
            for start in range(0, len(data), 512):
                yield data[start:start + 512]

        chunked = client.post("/api/v1/ask", content=chunks(),
                              headers={"Content-Type": "application/json"})
        assert chunked.status_code == 413
        assert chunked.json() == {"detail": texts.REQUEST_TOO_LARGE}
        assert bot.asked == []
        assert client.post("/api/v1/ask", json={"question": NIGHT}).status_code == 200


# -- feedback --------------------------------------------------------------------------------

def test_feedback_on_an_api_answer_is_appended_without_personal_data(served):
    client, _, path = served
    answer = client.post("/api/v1/ask", json={"question": NIGHT}).json()
    reply = client.post("/api/v1/feedback", json={"answer_id": answer["answer_id"],
                                                  "rating": "down"})
    assert reply.status_code == 200 and reply.json() == {"recorded": True}

    line = path.read_text(encoding="utf-8").splitlines()[-1]
    record = json.loads(line)
    assert record["rating"] == "down" and record["surface"] == "api"
    assert record["question"] == NIGHT and record["answer"] == answer["answer"]
    assert [c["passage_id"] for c in record["citations"]] == [
        c["passage_id"] for c in answer["citations"]]
    assert record["time"].endswith("+00:00")
    assert "testclient" not in line and "conversation" not in line  # who asked is not stored
    assert set(record) == {"time", "answer_id", "rating", "surface", "question", "answer",
                           "citations", "declined", "red_flag", "error", "extractive",
                           "verified_fraction", "lang"}

    unknown = client.post("/api/v1/feedback", json={"answer_id": "nope", "rating": "up"})
    assert unknown.status_code == 404 and unknown.json() == {"detail": texts.ANSWER_NOT_FOUND}


def _append_many(path: str, writer: int, count: int) -> None:
    store = FeedbackStore(Path(path))
    answer = Answer(question=f"question from writer {writer} " + "x" * 3000, text="answer")
    for n in range(count):
        store.append(feedback_record(answer, "up", "api", f"{writer}-{n}"))


# Another process, as a second server worker would be (a light import, unlike this module).
_WRITER_PROCESS = (
    "import sys; from pathlib import Path; from bot.answer import Answer; "
    "from web.feedback import FeedbackStore, feedback_record\n"
    "store = FeedbackStore(Path(sys.argv[1])); writer = sys.argv[2]\n"
    "answer = Answer(question='question from writer ' + writer + ' ' + 'x' * 3000, text='a')\n"
    "for n in range(40): store.append(feedback_record(answer, 'up', 'api', f'{writer}-{n}'))\n"
)


def test_concurrent_appends_from_threads_and_processes_keep_every_line_whole(tmp_path):
    path = tmp_path / "feedback.jsonl"
    processes = [subprocess.Popen([sys.executable, "-c", _WRITER_PROCESS, str(path), str(n)],
                                  cwd=PROJECT_DIR) for n in (100, 101)]
    threads = [threading.Thread(target=_append_many, args=(str(path), n, 40)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [process.wait(timeout=120) for process in processes] == [0, 0]

    log = read_feedback(path)
    assert log.unreadable_lines == 0
    assert len(log.records) == 8 * 40
    assert len({record["answer_id"] for record in log.records}) == 8 * 40


def test_summary_counts_the_latest_vote_per_answer(tmp_path):
    path = tmp_path / "feedback.jsonl"
    store = FeedbackStore(path)
    good = Answer(question="Why night cramps?", text="Tired muscles [1].")
    bad = Answer(question="Which vitamins  help?", text="Magnesium [1].")
    declined = Answer(question="Capital of France?", text=texts.CANNOT_ANSWER, declined=True)
    store.record(good, "down", "widget", "a1")
    store.record(good, "up", "widget", "a1")  # changed their mind: counts as up
    store.record(bad, "down", "chat", "a2")
    store.record(bad, "down", "api", "a3")
    store.record(declined, "up", "chat", "a4")
    store.record(declined, "none", "chat", "a4")  # withdrawn
    with open(path, "a", encoding="utf-8") as log:
        log.write("{not json\n")

    report = summarize(path)

    assert "6 votes on 4 answers" in report
    assert "1 votes were withdrawn" in report
    assert "thumbs up        1  (33%)" in report
    assert "thumbs down      2  (67%)" in report
    assert "2 x  'which vitamins help?'" in report
    assert "1 unreadable lines were skipped" in report
    assert "widget 1" in report and "chat 1" in report and "api 1" in report
    assert summarize(tmp_path / "missing.jsonl").startswith("No feedback recorded yet")


def test_a_like_event_names_the_finished_answer_it_was_given_on():
    answer = Answer(question="q", text="a")
    turns = [Turn("q1", answer, "<p>1</p>"), Turn("q2", answer, "<p>2</p>")]
    assert voted_turn(turns, 1) is turns[0]
    assert voted_turn(turns, 3) is turns[1]
    assert voted_turn(turns, [3, 0]) is turns[1]
    assert voted_turn(turns, 2) is None  # a user message
    assert voted_turn(turns, 5) is None  # the reply being written
    assert turns[0].answer_id != turns[1].answer_id


# -- stores, settings, embed script ------------------------------------------------------------

def test_expiring_store_forgets_idle_entries_and_the_least_recently_used():
    now = [0.0]
    store = ExpiringStore(max_items=2, ttl_s=60, clock=lambda: now[0])
    store.put("a", 1)
    store.put("b", 2)
    assert store.get("a") == 1  # "b" is now the least recently used
    store.put("c", 3)
    assert store.get("b") is None and store.get("a") == 1 and store.get("c") == 3
    now[0] += 61
    assert store.get("a") is None and len(store) == 0

    conversations = ConversationStore(max_conversations=10, ttl_s=60, clock=lambda: now[0])
    conversation_id = conversations.start()
    for n in range(30):
        conversations.add_turn(conversation_id, f"q{n}", f"a{n}")
    assert len(conversations.turns(conversation_id)) == 20
    assert conversations.turns(conversation_id)[-1] == ("q29", "a29")


@pytest.mark.parametrize("origin", ["*", "https://clinic.org/path", "clinic.org",
                                    "https://*.clinic.org", "null"])
def test_allowed_origins_must_be_exact_origins(origin):
    with pytest.raises(ValidationError):
        WebSettings(allowed_origins=[origin])


def test_origins_are_normalized_and_colours_validated():
    assert WebSettings(allowed_origins=["HTTPS://Clinic.org:8443/"]).allowed_origins == [
        "https://clinic.org:8443"]
    with pytest.raises(ValidationError):
        WebSettings(primary_color="red; background: url(x)")


def test_embed_script_carries_the_clinic_defaults_safely(fake_settings, shared_retriever,
                                                         tmp_path):
    server, _ = server_with(fake_settings, shared_retriever, tmp_path, primary_color="#123abc",
                            launcher_label="Ask us</script><b>")
    with TestClient(server) as client:
        reply = client.get("/embed.js")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/javascript")
    assert '"color": "#123abc"' in reply.text
    defaults = next(line for line in reply.text.splitlines() if "var defaults =" in line)
    assert "Ask us\\u003c/script>\\u003cb>" in defaults and "</script>" not in defaults
    assert "/*@defaults*/" not in reply.text


def test_a_client_can_ask_for_the_reply_language(served):
    client, _, _ = served
    body = client.post("/api/v1/ask", json={"question": "Why do my calves cramp at night?",
                                            "lang": "ru"}).json()
    assert body["lang"] == "ru" and body["disclaimer"] == texts.t("DISCLAIMER", "ru")
    body = client.post("/api/v1/ask", json={"question": "Почему по ночам сводит икры?",
                                            "lang": "en"}).json()
    assert body["lang"] == "en" and body["disclaimer"] == texts.DISCLAIMER
    refused = client.post("/api/v1/ask", json={"question": "Why?", "lang": "de"})
    assert refused.status_code == 422
