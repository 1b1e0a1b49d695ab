"""Issue 15, finding 7: refused and answered requests do not grow the server's memory without
bound. What the server keeps per request (recent answers for votes, conversations, the chat's
turns) is bounded in number and, for a refusal, in size: a 60 KB refused question is kept as
200 characters. Measured with tracemalloc (Python objects only) over rounds of requests once
the stores are full: each round sends 180 KB of refused questions, and the memory the server
keeps stays flat. The thresholds are sizes, not times: nothing here depends on the machine's
speed."""
from __future__ import annotations

import gc
import tracemalloc
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

import app
import web.state
from bot.generation.fake import FakeGenerator
from bot.pipeline import CrampBot
from bot.settings import WebSettings
from web.chat import CHAT_TURNS_KEPT, Asked
from web.feedback import FeedbackStore
from web.limits import STORED_REFUSED_CHARS
from web.security import RateLimiter

NIGHT = "Why do my calves cramp at night?"
REFUSED = "cramp " * 10_000  # 60,000 characters: over the input guard's limit
STORE_SIZE = 5  # answers and conversations kept, so that a few rounds fill the stores
FLAT_BYTES = 300_000  # what a round may add once the stores are full (one round sends 180 KB)


def kept_bytes(run_round, rounds: int) -> int:
    """Python memory still held after `rounds` more rounds, by tracemalloc."""
    gc.collect()
    before = tracemalloc.take_snapshot()
    for _ in range(rounds):
        run_round()
    gc.collect()
    after = tracemalloc.take_snapshot()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename"))


@pytest.fixture
def tracing():
    tracemalloc.start(1)
    try:
        yield
    finally:
        tracemalloc.stop()


def test_api_requests_answered_and_refused_keep_memory_flat(fake_settings, shared_retriever,
                                                            tmp_path, monkeypatch, tracing):
    monkeypatch.setattr(web.state, "RECENT_ANSWERS", STORE_SIZE)
    generator = FakeGenerator()
    inner = CrampBot(fake_settings, generator=generator)
    inner.retriever = shared_retriever
    settings = fake_settings.model_copy(update={"web": WebSettings(
        allowed_hosts=["testserver"], rate_limit_per_minute=10_000, feedback_per_minute=10_000,
        max_conversations=STORE_SIZE)})
    server = app.build_server(inner, settings, feedback=FeedbackStore(tmp_path / "fb.jsonl"))

    with TestClient(server) as client:
        def one_round() -> None:
            started = client.post("/api/v1/ask", json={"question": NIGHT}).json()
            assert started["error"] is False
            client.post("/api/v1/ask", json={"question": "How can I stop it?",
                                             "conversation_id": started["conversation_id"]})
            for _ in range(3):
                refused = client.post("/api/v1/ask", json={"question": REFUSED}).json()
                assert refused["error"] is True
                client.post("/api/v1/feedback", json={"answer_id": refused["answer_id"],
                                                      "rating": "down"})
            generator.calls.clear()  # the scripted model's own record of prompts (tests only)

        kept_bytes(one_round, 4)  # fills the stores and every cache
        grown = [kept_bytes(one_round, 4), kept_bytes(one_round, 4)]
    assert max(grown) < FLAT_BYTES, grown


def test_the_chat_keeps_a_bounded_conversation_whatever_a_client_sends(
        fake_settings, shared_retriever, tmp_path, tracing):
    inner = CrampBot(fake_settings, generator=FakeGenerator())
    inner.retriever = shared_retriever
    page = app.build_app(inner, fake_settings, limiter=RateLimiter(2),
                         feedback=FeedbackStore(tmp_path / "fb.jsonl"))
    respond = next(fn.fn for fn in page.fns.values() if fn.name == "respond")
    request = SimpleNamespace(client=SimpleNamespace(host="127.0.0.9"), session_hash="flood")
    turns: list = []
    asked = iter(range(1, 10**6))

    def send(message: str) -> None:
        nonlocal turns
        number = next(asked)
        message = f"{message} {number}"  # a new string each time, as a request's body makes
        for _, turns in respond(Asked(message, number), turns, "conversation", "en", request):
            pass

    send(NIGHT)  # answered
    send(REFUSED)  # refused by the input guard
    assert [turn.answer.error for turn in turns] == [False, True]

    def one_round() -> None:  # over the rate limit: refused without reaching the bot
        for _ in range(3):
            send(REFUSED)

    kept_bytes(one_round, CHAT_TURNS_KEPT // 3 + 1)  # the conversation at its length
    grown = [kept_bytes(one_round, 4), kept_bytes(one_round, 4)]
    assert max(grown) < FLAT_BYTES, grown
    assert len(turns) == CHAT_TURNS_KEPT
    assert all(len(turn.question) <= STORED_REFUSED_CHARS
               and len(turn.answer.question) <= STORED_REFUSED_CHARS for turn in turns)
