"""GET /metrics (issue 15): scraped before and after real requests to the real app, its
counters, histograms and gauges move with what was asked."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import app
from bot.events import Done
from bot.generation.fake import FakeGenerator
from bot.pipeline import CrampBot
from bot.settings import WebSettings
from web.feedback import FeedbackStore
from web.metrics import MeteredBot, Metrics

NIGHT = "Why do my calves cramp at night?"


def scrape(client) -> dict[tuple[str, tuple], float]:
    reply = client.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(reply.text)
            for sample in family.samples}


@pytest.fixture(scope="module")
def client(fake_settings, shared_retriever, tmp_path_factory):
    bot = CrampBot(fake_settings, generator=FakeGenerator())
    bot.retriever = shared_retriever
    web = WebSettings(allowed_hosts=["testserver"], rate_limit_per_minute=1000)
    server = app.build_server(bot, fake_settings.model_copy(update={"web": web}),
                              feedback=FeedbackStore(tmp_path_factory.mktemp("m") / "fb.jsonl"))
    with TestClient(server) as test_client:
        yield test_client


def test_metrics_move_with_the_requests_made(client):
    before = scrape(client)
    assert client.post("/api/v1/ask", json={"question": NIGHT}).status_code == 200
    assert client.post("/api/v1/ask", json={"question": "What is the capital of France?"}
                       ).json()["declined"] is True
    assert client.post("/api/v1/ask", json={"question": "   "}).json()["error"] is True
    assert client.post("/api/v1/ask", json={"question": 3}).status_code == 422
    after = scrape(client)

    def moved(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("crampbot_answers_total", outcome="answered") == 1
    assert moved("crampbot_answers_total", outcome="declined") == 1
    assert moved("crampbot_answers_total", outcome="error") == 1
    assert moved("crampbot_http_requests_total", route="/api/v1/ask", method="POST",
                 status="200") == 3
    assert moved("crampbot_http_requests_total", route="/api/v1/ask", method="POST",
                 status="422") == 1
    assert moved("crampbot_answer_seconds_count") == 3
    assert after[("crampbot_model_loaded", ())] == 1
    assert after[("crampbot_answers_in_progress", ())] == 0
    assert moved("crampbot_http_requests_total", route="/metrics", method="GET",
                 status="200") == 1


def test_no_question_text_is_exposed_and_page_requests_are_grouped(client):
    before = scrape(client)
    client.post("/api/v1/ask", json={"question": "secret words about my calves"})
    client.get("/config")
    client.get("/widget/config")
    text = client.get("/metrics").text
    assert "secret" not in text and "calves" not in text
    after = scrape(client)
    for group in ("chat", "widget"):
        key = ("crampbot_http_requests_total",
               (("method", "GET"), ("route", group), ("status", "200")))
        assert after[key] - before.get(key, 0) == 1


def test_streamed_replies_of_the_pages_are_counted_and_timed(fake_settings, shared_retriever):
    bot = CrampBot(fake_settings, generator=FakeGenerator())
    bot.retriever = shared_retriever
    metrics = Metrics()
    metered = MeteredBot(bot, metrics)
    events = list(metered.stream(NIGHT))
    assert isinstance(events[-1], Done)
    samples = {sample.name: sample.value for family in
               text_string_to_metric_families(metrics.exposition().decode())
               for sample in family.samples if not sample.labels or "outcome" in sample.labels}
    assert samples["crampbot_answers_total"] == 1
    assert samples["crampbot_answer_seconds_count"] == 1
    assert samples["crampbot_answers_in_progress"] == 0
