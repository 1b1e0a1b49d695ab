"""The server log (issue 15): JSON lines carrying the request's id, and no visitor's words
unless settings.web.log_questions. The real app through TestClient, its log in a buffer."""
from __future__ import annotations

import io
import json
import logging

import pytest
from fastapi.testclient import TestClient

import app
from bot.generation.fake import FakeGenerator
from bot.pipeline import CrampBot
from bot.settings import WebSettings
from web.feedback import FeedbackStore
from web.logs import configure_logging

QUESTION = "Why do my calves cramp at night, secretly?"


@pytest.fixture
def logged(fake_settings, shared_retriever, tmp_path):
    """(client, log buffer) factory for a server with the given web settings."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    clients = []

    def make(**web_fields):
        web = WebSettings(allowed_hosts=["testserver"], **web_fields)
        buffer = io.StringIO()
        configure_logging(web, stream=buffer)
        bot = CrampBot(fake_settings, generator=FakeGenerator())
        bot.retriever = shared_retriever
        server = app.build_server(bot, fake_settings.model_copy(update={"web": web}),
                                  feedback=FeedbackStore(tmp_path / "fb.jsonl"))
        client = TestClient(server)
        clients.append(client)
        return client, buffer

    yield make
    for client in clients:
        client.close()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def records(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_log_lines_are_json_with_the_request_id(logged):
    client, buffer = logged(log_questions=True)
    reply = client.post("/api/v1/ask", json={"question": QUESTION},
                        headers={"X-Request-ID": "proxy-id-42"})
    assert reply.headers["x-request-id"] == "proxy-id-42"
    lines = records(buffer)
    asked = [line for line in lines if line["logger"] == "crampbot.api"]
    assert asked and asked[0]["request_id"] == "proxy-id-42" and "secretly" in asked[0]["message"]
    assert {"time", "level", "logger", "message", "request_id"} <= set(asked[0])
    made_up = client.get("/api/v1/health", headers={"X-Request-ID": "bad id\n{}"})
    assert made_up.headers["x-request-id"] != "bad id\n{}" and len(made_up.headers["x-request-id"]) == 32


def test_no_question_text_in_the_log_by_default(logged):
    client, buffer = logged()
    client.post("/api/v1/ask", json={"question": QUESTION})
    logging.getLogger("bot.query").info("query rewrite discarded: %r", QUESTION)
    assert "secretly" not in buffer.getvalue()
