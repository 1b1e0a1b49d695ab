"""Issue 15, findings 1-8: every input bounded, no 500s, Host pinned, unused Gradio routes
closed, feedback deduplicated, limited and capped. FastAPI's TestClient against the real app
(app.build_server) on the real index with the scripted model; the connection limits against a
real uvicorn on 127.0.0.1 in tests/test_hardening_server.py."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

import app
from bot import texts
from bot.answer import Answer
from bot.events import Done
from bot.generation.fake import FakeGenerator
from bot.pipeline import CrampBot
from bot.settings import WebSettings
from web.feedback import FeedbackStore, read_feedback, summarize
from web.limits import STORED_REFUSED_CHARS, BoundedBot, bound_history, budget_history

from served import RecordingBot  # noqa: E402  (tests/served.py)

NIGHT = "Why do my calves cramp at night?"
CLINIC = "https://www.example-clinic.org"


def make_server(fake_settings, shared_retriever, feedback_path, **web_fields):
    inner = CrampBot(fake_settings, generator=FakeGenerator())
    inner.retriever = shared_retriever
    bot = RecordingBot(inner)
    web = WebSettings(**{"allowed_origins": [CLINIC], "allowed_hosts": ["testserver"],
                         "rate_limit_per_minute": 1000, **web_fields})
    settings = fake_settings.model_copy(update={"web": web})
    server = app.build_server(bot, settings, feedback=FeedbackStore(feedback_path))
    return server, bot


@pytest.fixture(scope="module")
def served(fake_settings, shared_retriever, tmp_path_factory):
    path = tmp_path_factory.mktemp("hardening") / "feedback.jsonl"
    server, bot = make_server(fake_settings, shared_retriever, path)
    with TestClient(server) as client:
        yield client, bot, path


def post_raw(client, path: str, text: str):
    """POST a JSON text as written (json= would refuse to encode a lone surrogate)."""
    return client.post(path, content=text.encode("utf-8"),
                       headers={"Content-Type": "application/json"})


# -- 1. history bounded before it reaches the model --------------------------------------------

def test_a_63_kb_history_reaches_the_model_cut_to_the_budget(served):
    client, bot, _ = served
    web = WebSettings()
    turn = {"question": "cramp " * 999, "answer": "magnesium " * 799}  # 5,994 + 7,990 chars
    body = {"question": NIGHT, "history": [turn] * 4}
    assert len(json.dumps(body)) > 50_000

    reply = client.post("/api/v1/ask", json=body)

    assert reply.status_code == 200 and reply.json()["disclaimer"] == texts.DISCLAIMER
    question, history = bot.asked[-1]
    assert question == NIGHT
    assert history, "the latest turn is kept, cut"
    assert all(len(q) <= web.history_turn_chars and len(a) <= web.history_turn_chars
               for q, a in history)
    assert sum(len(q) + len(a) for q, a in history) <= web.history_chars


def test_stored_conversations_and_the_chat_are_bounded_too(fake_settings):
    seen = []

    class Inner:
        def stream(self, question, history=(), lang=None):
            seen.append(list(history))
            yield Done(Answer(question=question, text="ok"))

    web = WebSettings(history_turn_chars=100, history_chars=250)
    bot = BoundedBot(Inner(), web)
    long_turns = [("q" * 1000, "a" * 1000)] * 5
    list(bot.stream(NIGHT, long_turns))
    assert seen[-1] == [("q" * 97 + "...", "a" * 97 + "...")]
    assert bound_history([("short", "answer")] * 3, 100, 250) == [("short", "answer")] * 3
    assert bound_history([], 100, 250) == []


def test_history_reaches_the_model_within_its_token_budget(served):
    # Within every character bound (1,400 + 1,400 characters) but 1,400 tokens as the model
    # counts them (the scripted model: one a word), over web.history_tokens (1,000).
    client, bot, _ = served
    budget = WebSettings().history_tokens
    count = bot.generator.count_tokens
    older = {"question": "Do cramps run in families?", "answer": "Sometimes they do [1]."}
    last = {"question": "a " * 700, "answer": "b " * 700}
    assert count(last["question"] + last["answer"]) > budget

    reply = client.post("/api/v1/ask", json={"question": NIGHT, "history": [older, last]})

    assert reply.status_code == 200
    _, history = bot.asked[-1]
    assert len(history) == 1, "the older turn is dropped, the last one kept and cut"
    question, answer = history[0]
    assert question.startswith("a a a") and answer.startswith("b b b")
    assert count(question) + count(answer) <= budget


def test_the_token_budget_holds_before_the_model_is_loaded_and_drops_old_turns_first():
    seen = []

    class Loading:  # no tokenizer yet: the estimate of two characters a token is used
        model_ready = False

        def stream(self, question, history=(), lang=None):
            seen.append(list(history))
            yield Done(Answer(question=question, text="ok"))

    web = WebSettings(history_tokens=100)
    list(BoundedBot(Loading(), web).stream(NIGHT, [("q" * 150, "a" * 150)] * 2))
    assert len(seen[-1]) == 1 and sum(map(len, seen[-1][0])) <= 200
    assert budget_history([("one", "1"), ("two", "2"), ("three", "3")], len, 10) == [
        ("two", "2"), ("three", "3")]
    [(question, answer)] = budget_history([("q" * 30, "a" * 30)], len, 20)
    assert question.startswith("qq") and answer.startswith("aa")
    assert len(question) <= 10 and len(question) + len(answer) <= 20


def test_history_fields_past_their_limit_get_a_short_422(served):
    client, _, _ = served
    body = {"question": NIGHT, "history": [{"question": "x" * 6001, "answer": "ok"}]}
    reply = client.post("/api/v1/ask", json=body)
    assert reply.status_code == 422
    assert len(reply.content) < 2000 and "xxxxxxxx" not in reply.text


# -- 3. lone surrogates: never a 500, on any route ----------------------------------------------

@pytest.mark.parametrize("body", [
    '{"question": "night \\ud800 cramps"}',
    '{"question": "\\udfff\\ud800"}',
    '{"question": "Why?", "conversation_id": "\\ud800"}',
    '{"question": "Why?", "\\ud800": 1}',
    '{"question": "Why?", "history": [{"question": "\\ud83d", "answer": "x\\udc00"}]}',
    '{"\\ud800": "\\ud800"}',
])
def test_lone_surrogates_in_an_ask_never_give_500(served, body):
    client, _, _ = served
    reply = post_raw(client, "/api/v1/ask", body)
    assert reply.status_code in (200, 422), reply.text
    reply.content.decode("utf-8")  # strict: what comes back is valid UTF-8
    if reply.status_code == 200:
        assert reply.json()["disclaimer"] in texts.DISCLAIMERS


def test_feedback_on_an_answer_whose_question_held_a_surrogate_is_recorded(served):
    client, _, path = served
    answer = post_raw(client, "/api/v1/ask", '{"question": "Why do my calves \\ud800 cramp?"}')
    assert answer.status_code == 200
    vote = client.post("/api/v1/feedback", json={"answer_id": answer.json()["answer_id"],
                                                 "rating": "up"})
    assert vote.status_code == 200 and vote.json() == {"recorded": True}
    assert post_raw(client, "/api/v1/feedback",
                    '{"answer_id": "x", "rating": "\\ud800"}').status_code == 422
    log = read_feedback(path)
    assert log.unreadable_lines == 0
    assert any("\ufffd" in record.get("question", "") for record in log.records)


def test_the_chat_answers_a_message_with_a_lone_surrogate(served):
    client, _, _ = served
    config = client.get("/config").json()
    ask = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "ask")
    # ask's inputs: the message box, the turns and the page's language (web/chat.py).
    body = ('{"data": ["cramp \\ud800 at night", null, "en"], "fn_index": %d, '
            '"session_hash": "surrogate-test", "event_data": null}' % ask)
    reply = post_raw(client, "/gradio_api/run/predict", body)
    assert reply.status_code == 200, reply.text[:300]
    assert "cramp \ufffd at night" in reply.content.decode("utf-8")


# -- 2. feedback: one vote per answer, rate-limited, capped ----------------------------------------

def test_one_vote_per_answer_the_latest_wins_and_the_question_is_stored_once(tmp_path):
    path = tmp_path / "feedback.jsonl"
    store = FeedbackStore(path)
    answer = Answer(question="Why night cramps? " * 100, text="Tired muscles [1].")
    for _ in range(50):
        store.record(answer, "up", "api", "a1")
    store.record(answer, "down", "api", "a1")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert "question" in json.loads(lines[0]) and "question" not in json.loads(lines[1])
    report = summarize(path)
    assert "thumbs down      1" in report and "thumbs up        0" in report
    for rating in ["up", "down"] * 50:  # flipping forever is capped too
        store.record(answer, rating, "api", "a1")
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 12


def test_votes_through_the_api_keep_one_line_with_the_question_per_answer(served):
    # web.state = "memory": the process remembers each answer's latest vote (VoteMemory).
    client, _, path = served
    answer_id = client.post("/api/v1/ask", json={"question": NIGHT}).json()["answer_id"]
    for rating in ["up", "up", "down", "down", "up", "up"]:
        assert client.post("/api/v1/feedback", json={"answer_id": answer_id,
                                                     "rating": rating}).status_code == 200
    lines = [record for record in read_feedback(path).records
             if record["answer_id"] == answer_id]
    assert [record["rating"] for record in lines] == ["up", "down", "up"]
    assert [("question" in record) for record in lines] == [True, False, False]


def test_feedback_is_rate_limited_per_client(fake_settings, shared_retriever, tmp_path):
    server, _ = make_server(fake_settings, shared_retriever, tmp_path / "fb.jsonl",
                            feedback_per_minute=3)
    with TestClient(server) as client:
        answer_ids = [client.post("/api/v1/ask", json={"question": NIGHT}).json()["answer_id"]
                      for _ in range(4)]
        statuses = [client.post("/api/v1/feedback", json={"answer_id": answer_id,
                                                          "rating": "up"}).status_code
                    for answer_id in answer_ids]
    assert statuses == [200, 200, 200, 429]


def test_the_feedback_log_is_rotated_at_its_size_cap(tmp_path):
    path = tmp_path / "feedback.jsonl"
    store = FeedbackStore(path, max_bytes=20_000, backups=2)
    for n in range(200):
        store.record(Answer(question="q" * 1000, text="a"), "up", "api", f"answer-{n}")
    files = sorted(p.name for p in tmp_path.glob("feedback.jsonl*") if not p.name.endswith(".lock"))
    assert files == ["feedback.jsonl", "feedback.jsonl.1", "feedback.jsonl.2"]
    assert all((tmp_path / name).stat().st_size <= 20_000 for name in files)
    log = read_feedback(path)
    assert log.unreadable_lines == 0 and log.records[-1]["answer_id"] == "answer-199"
    assert 20 <= len(log.records) < 200


# -- 5. the Host header is pinned; 6. unused Gradio routes closed --------------------------------

def test_a_foreign_host_header_is_refused_even_with_a_matching_origin(served):
    client, bot, _ = served
    before = len(bot.asked)
    reply = client.post("/api/v1/ask", json={"question": NIGHT},
                        headers={"Host": "evil.example:7871",
                                 "Origin": "http://evil.example:7871"})
    assert reply.status_code == 400
    assert len(bot.asked) == before
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400


def test_default_allowed_hosts_are_loopback_and_hosts_are_validated():
    assert WebSettings().allowed_hosts == ["127.0.0.1", "localhost", "[::1]"]
    assert WebSettings(allowed_hosts=["Assistant.Example.org"]).allowed_hosts == [
        "assistant.example.org"]
    for bad in ["http://x.org", "x.org:443", "a*.org"]:
        with pytest.raises(ValueError):
            WebSettings(allowed_hosts=[bad])


@pytest.mark.parametrize("path", ["/logout", "/widget/logout", "/login", "/gradio_api/file=/etc/passwd",
                                  "/widget/gradio_api/proxy=http://evil.example/",
                                  "/gradio_api/upload_progress", "/gradio_api/mcp/sse"])
def test_unused_gradio_routes_are_closed_and_nothing_redirects_off_site(served, path):
    client, _, _ = served
    reply = client.get(path, follow_redirects=False)
    assert reply.status_code == 404
    assert "location" not in reply.headers


def test_uploads_are_closed_on_both_mounts(served):
    client, _, _ = served
    for path in ("/gradio_api/upload", "/widget/gradio_api/upload"):
        reply = client.post(path, files={"files": ("x.html", b"<script>alert(1)</script>")})
        assert reply.status_code == 404, path
    assert client.get("/widget/").status_code == 200 and client.get("/config").status_code == 200


# -- 7. refused questions are not stored whole; 8. a 422 does not echo the input -----------------

def test_a_refused_question_is_stored_abridged(served):
    client, _, path = served
    huge = "cramp " * 10_000  # 60,000 characters: refused by the input guard
    reply = client.post("/api/v1/ask", json={"question": huge})
    assert reply.status_code == 200 and reply.json()["error"] is True
    vote = client.post("/api/v1/feedback", json={"answer_id": reply.json()["answer_id"],
                                                 "rating": "down"})
    assert vote.status_code == 200
    record = read_feedback(path).records[-1]
    assert len(record["question"]) <= STORED_REFUSED_CHARS


def test_a_1000_turn_history_gets_a_short_422(served):
    client, _, _ = served
    body = {"question": NIGHT, "history": [{"question": "q", "answer": "a"}] * 1000}
    reply = client.post("/api/v1/ask", json=body)
    assert reply.status_code == 422
    assert len(reply.content) < 1000
    detail = reply.json()["detail"]
    assert detail and all(set(error) == {"loc", "msg", "type"} for error in detail)


def test_a_stored_conversation_keeps_turns_no_longer_than_the_model_sees(served):
    client, bot, _ = served
    long_question = "Why do my calves cramp at night when I " + "really " * 700 + "sleep?"
    first = client.post("/api/v1/ask", json={"question": long_question}).json()
    assert first["error"] is False
    client.post("/api/v1/ask", json={"question": "And by day?",
                                     "conversation_id": first["conversation_id"]})
    _, history = bot.asked[-1]
    assert len(history) == 1 and len(history[0][0]) <= WebSettings().history_turn_chars


def test_api_paths_answer_405_for_other_methods_and_404_when_unknown(served):
    client, _, _ = served
    trace = client.request("TRACE", "/api/v1/health")
    assert trace.status_code == 405 and "GET" in trace.headers["allow"]
    get_ask = client.get("/api/v1/ask")
    assert get_ask.status_code == 405 and get_ask.headers["allow"] == "POST"
    assert client.delete("/api/v1/openapi.json").status_code == 405
    assert client.get("/api/v1/nothing-here").status_code == 404
    assert client.get("/api/v1/health").status_code == 200
