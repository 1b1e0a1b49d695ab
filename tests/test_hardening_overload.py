"""Issue 15, overload: the API makes web.answer_concurrency answers at once, lets
web.answer_queue more wait, and turns the next away at once with 503 and Retry-After (on
/api/v1/ask, its stream and /v1/chat/completions alike) instead of letting every question run
at the same time, each slower, until clients time out. And the server is called ready only once
its warm-up question has been answered, so visitors' first questions do not each build the
bot's caches at the same time. Against the real app (app.build_server under uvicorn) on
127.0.0.1 with the scripted model; a bot that holds its answers until the test lets them go."""
from __future__ import annotations

import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import app
from bot.generation.fake import FakeGenerator
from bot.pipeline import CrampBot
from bot.settings import WebSettings
from web.feedback import FeedbackStore

from served import RecordingBot, serve  # noqa: E402  (tests/served.py)

NIGHT = "Why do my calves cramp at night?"
WAIT_S = 60  # what any step may take on a busy machine before the test gives up


class HeldBot(RecordingBot):
    """Answers only once `release` is set; `entered` counts the answers begun."""

    def __init__(self, bot) -> None:
        super().__init__(bot)
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def ask(self, question, history=(), lang=None):
        self.entered.release()
        self.release.wait(WAIT_S)
        return super().ask(question, history, lang)


def waiting(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10, trust_env=False).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "crampbot_answers_waiting":
                return sample.value
    raise AssertionError("no crampbot_answers_waiting in /metrics")


def until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture
def held(fake_settings, shared_retriever, tmp_path):
    inner = CrampBot(fake_settings, generator=FakeGenerator())
    inner.retriever = shared_retriever
    bot = HeldBot(inner)
    web = WebSettings(answer_concurrency=1, answer_queue=1, rate_limit_per_minute=1000)
    settings = fake_settings.model_copy(update={"web": web})
    server = app.build_server(bot, settings, feedback=FeedbackStore(tmp_path / "fb.jsonl"))
    with serve(server, web) as (url, _):
        try:
            yield url, bot
        finally:
            bot.release.set()


def test_questions_past_the_queue_get_503_at_once_and_the_queued_ones_are_answered(held):
    url, bot = held
    replies = {}

    def ask(name: str) -> None:
        replies[name] = httpx.post(f"{url}/api/v1/ask", json={"question": NIGHT},
                                   timeout=WAIT_S * 2, trust_env=False)

    answering = threading.Thread(target=ask, args=("answering",))
    answering.start()
    assert bot.entered.acquire(timeout=WAIT_S), "the first question never reached the bot"
    queued = threading.Thread(target=ask, args=("queued",))
    queued.start()
    until(lambda: waiting(url) == 1, "the second question never waited for the slot")

    with httpx.Client(base_url=url, timeout=WAIT_S / 2, trust_env=False) as client:
        turned_away = client.post("/api/v1/ask", json={"question": NIGHT})
        stream = client.post("/api/v1/ask/stream", json={"question": NIGHT})
        openai = client.post("/v1/chat/completions", json={
            "model": "default", "messages": [{"role": "user", "content": NIGHT}]})
        health = client.get("/api/v1/health")
    assert turned_away.status_code == 503 and int(turned_away.headers["Retry-After"]) > 0
    assert turned_away.json()["detail"]
    assert stream.status_code == 503 and stream.headers["content-type"] == "application/json"
    assert openai.status_code == 503 and openai.json()["error"]["message"]
    assert "Retry-After" in openai.headers
    assert health.status_code == 200  # the rest of the server is not held up
    assert len(bot.asked) == 0  # none of the three reached the bot

    bot.release.set()
    answering.join(WAIT_S)
    queued.join(WAIT_S)
    assert replies["answering"].status_code == 200 and replies["queued"].status_code == 200
    assert len(bot.asked) == 2
    until(lambda: waiting(url) == 0, "the queue did not empty")


def test_ready_only_after_the_warm_up_question_was_answered(fake_settings, shared_retriever,
                                                            tmp_path):
    inner = CrampBot(fake_settings, generator=FakeGenerator())
    inner.retriever = shared_retriever
    bot = RecordingBot(inner)
    web = WebSettings()
    settings = fake_settings.model_copy(update={"web": web})
    warmed = threading.Event()
    server = app.build_server(bot, settings, warmed=warmed,
                              feedback=FeedbackStore(tmp_path / "fb.jsonl"))
    with serve(server, web) as (url, _):
        assert httpx.get(f"{url}/api/v1/ready", trust_env=False).status_code == 503
        app.warm_up(bot, warmed)
        assert [question for question, _ in bot.asked] == [app.EXAMPLE_QUESTIONS[0]]
        assert httpx.get(f"{url}/api/v1/ready", trust_env=False).json() == {"ready": True}


def test_a_failed_warm_up_still_ends(fake_settings):
    class Broken:
        def warm_up(self):
            raise RuntimeError("index unreadable")

    done = threading.Event()
    app.warm_up(Broken(), done)  # logged, not raised
    assert done.is_set()
