"""POST /api/v1/ask/stream against the real server on 127.0.0.1 (app.build_server under uvicorn),
read as Server-Sent Events by httpx-sse: the events in order, the first delta on the wire while
the model is still writing, `done` equal to /api/v1/ask's reply, /ask's refusals before the
stream starts, and an `error` event (never a traceback) when something fails after it."""
from __future__ import annotations

import json
import threading

import httpx
import pytest
from httpx_sse import connect_sse

import app
from bot import texts
from bot.events import Status
from bot.generation.fake import FakeGenerator
from bot.pipeline import CrampBot
from bot.settings import WebSettings
from web.feedback import FeedbackStore

from served import RecordingBot, serve  # noqa: E402  (tests/served.py)

CLINIC = "https://www.example-clinic.org"
ELSEWHERE = "https://quota-thief.example"
NIGHT = "Why do my calves cramp at night?"
CLOT = "My calf is swollen, red and hot after a long flight"
STREAM = "/api/v1/ask/stream"
HOLD_S = 20


class HeldGenerator(FakeGenerator):
    """The fake model, but the first reply after `hold()` writes its first word and then waits
    (up to HOLD_S) until `release` is set: what a client has read by then was streamed."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.holding = False
        self.released_in_time: bool | None = None

    def hold(self) -> None:
        self.release.clear()
        self.holding, self.released_in_time = True, None

    def stream(self, messages, max_new_tokens):
        pieces = list(super().stream(messages, max_new_tokens))
        yield pieces[0]
        if self.holding:
            self.holding = False
            self.released_in_time = self.release.wait(HOLD_S)
        yield from pieces[1:]


class FailingBot:
    """A bot whose stream breaks after its first event (a bug, a lost model server)."""

    def __init__(self, bot) -> None:
        self.bot = bot

    def stream(self, question, history=(), lang=None):
        yield Status("Searching...")
        raise RuntimeError("the model server went away")

    def __getattr__(self, name):
        return getattr(self.bot, name)


def build(fake_settings, shared_retriever, tmp_path, generator=None, wrap=RecordingBot, **web):
    """(server, its web settings, the wrapped bot) on the real index with a fake model."""
    bot = CrampBot(fake_settings, generator=generator or FakeGenerator())
    bot.retriever = shared_retriever
    web_settings = WebSettings(**{"allowed_origins": [CLINIC], "rate_limit_per_minute": 1000,
                                  **web})
    settings = fake_settings.model_copy(update={"web": web_settings})
    wrapped = wrap(bot)
    server = app.build_server(wrapped, settings, feedback=FeedbackStore(tmp_path / "fb.jsonl"))
    return server, web_settings, wrapped


@pytest.fixture(scope="module")
def live(fake_settings, shared_retriever, tmp_path_factory):
    """(base URL, recording bot, held generator) of one server for the module."""
    generator = HeldGenerator()
    server, web, bot = build(fake_settings, shared_retriever, tmp_path_factory.mktemp("stream"),
                             generator)
    with serve(server, web) as (url, _):
        yield url, bot, generator


def events_of(url: str, body: dict, **headers) -> list[tuple[str, dict]]:
    with httpx.Client(timeout=60) as client, connect_sse(
            client, "POST", url + STREAM, json=body, headers=headers) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        assert source.response.headers["cache-control"] == "no-cache"
        return [(event.event, json.loads(event.data)) for event in source.iter_sse()]


def test_events_come_in_order_and_done_is_the_reply_of_ask(live):
    url, bot, _ = live
    events = events_of(url, {"question": NIGHT})
    kinds = [kind for kind, _ in events]

    assert kinds[0] == "retrieved" and kinds[-1] == "done"
    assert set(kinds[1:-1]) == {"delta"}
    draft = "".join(data["text"] for kind, data in events if kind == "delta")
    assert draft.strip() == "Cramps have many causes [1]."  # the fake model's lead, as written
    passages = events[0][1]["passages"]
    assert passages and {"title", "section", "source", "passage_id"} == set(passages[0])

    done = events[-1][1]
    asked = httpx.post(url + "/api/v1/ask", json={"question": NIGHT}, timeout=60).json()
    assert set(done) == set(asked)
    for field in ("answer", "disclaimer", "citations", "declined", "red_flag", "error",
                  "extractive", "verified_fraction"):
        assert done[field] == asked[field], field
    assert done["disclaimer"] == texts.DISCLAIMER and "[1]" in done["answer"]
    assert done["citations"][0]["passage_id"] in {p["passage_id"] for p in passages}
    assert done["answer_id"] and done["conversation_id"]


def test_the_first_delta_arrives_while_the_model_is_still_writing(live):
    url, _, generator = live
    generator.hold()
    seen: list[str] = []
    with httpx.Client(timeout=60) as client, connect_sse(
            client, "POST", url + STREAM, json={"question": NIGHT}) as source:
        for event in source.iter_sse():
            seen.append(event.event)
            if event.event == "delta" and not generator.release.is_set():
                # The model has written one word and waits for us: nothing else can be here.
                assert "done" not in seen
                assert json.loads(event.data) == {"text": "Cramps "}
                generator.release.set()
    assert generator.released_in_time is True, "the first delta only came after the answer"
    assert seen[-1] == "done"


def test_a_stream_continues_the_conversation_it_was_given(live):
    url, bot, _ = live
    first = events_of(url, {"question": NIGHT})[-1][1]
    follow_up = events_of(url, {"question": "And how do I prevent them?",
                                "conversation_id": first["conversation_id"]})[-1][1]

    assert follow_up["conversation_id"] == first["conversation_id"]
    assert bot.asked[-1] == ("And how do I prevent them?", [(NIGHT, first["answer"])])


def test_an_urgent_question_gets_done_at_once_with_the_urgent_disclaimer(live):
    url, _, _ = live
    events = events_of(url, {"question": CLOT})
    assert [kind for kind, _ in events] == ["done"]
    done = events[0][1]
    assert done["red_flag"] is True and done["disclaimer"] == texts.DISCLAIMER_URGENT
    assert "112" in done["answer"]


def test_refusals_before_the_stream_are_the_status_codes_of_ask(live):
    url, _, _ = live
    post = lambda body, **kw: httpx.post(url + STREAM, timeout=30, **kw, **body)  # noqa: E731

    unknown = post({"json": {"question": NIGHT, "conversation_id": "made-up"}})
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": texts.CONVERSATION_NOT_FOUND}
    assert post({"json": {"question": 5}}).status_code == 422
    assert post({"content": b"{not json", "headers": {"Content-Type": "application/json"}}
                ).status_code in (400, 422)
    foreign = post({"json": {"question": NIGHT}, "headers": {"Origin": ELSEWHERE}})
    assert foreign.status_code == 403 and foreign.json() == {"detail": texts.ORIGIN_NOT_ALLOWED}
    large = post({"json": {"question": "cramp " * 20_000}})
    assert large.status_code == 413 and large.json() == {"detail": texts.REQUEST_TOO_LARGE}
    assert httpx.get(url + STREAM, timeout=30).status_code == 405
    # From the clinic's site the stream is allowed, and CORS lets its page read it.
    allowed = httpx.post(url + STREAM, json={"question": CLOT}, headers={"Origin": CLINIC},
                         timeout=30)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == CLINIC


def test_the_rate_limit_refuses_with_429_before_streaming(fake_settings, shared_retriever,
                                                          tmp_path):
    server, web, _ = build(fake_settings, shared_retriever, tmp_path, rate_limit_per_minute=1)
    with serve(server, web) as (url, _):
        assert events_of(url, {"question": CLOT})[-1][0] == "done"
        refused = httpx.post(url + STREAM, json={"question": CLOT}, timeout=30)
        # /ask shares the limit: the one question of the minute is spent.
        also = httpx.post(url + "/api/v1/ask", json={"question": CLOT}, timeout=30)
    assert refused.status_code == 429 and also.status_code == 429
    assert refused.headers["content-type"] == "application/json"
    assert refused.json() == {"detail": texts.RATE_LIMITED}
    assert int(refused.headers["retry-after"]) >= 1


def test_a_failure_after_the_stream_began_is_an_error_event(fake_settings, shared_retriever,
                                                             tmp_path):
    server, web, _ = build(fake_settings, shared_retriever, tmp_path, wrap=FailingBot)
    with serve(server, web) as (url, _):
        with httpx.Client(timeout=30) as client:
            reply = client.post(url + STREAM, json={"question": NIGHT})
    assert reply.status_code == 200
    assert "Traceback" not in reply.text and "went away" not in reply.text
    assert reply.text.endswith(
        "event: error\ndata: " + json.dumps({"detail": texts.INTERNAL_ERROR},
                                              separators=(",", ":")) + "\n\n")
    assert reply.text.startswith("event: status\n")
