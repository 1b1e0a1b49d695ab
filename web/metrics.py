"""Prometheus metrics (prometheus-client) for GET /metrics: requests, answers by outcome,
first-token and full-answer latency, answers in progress and waiting, whether the model is
loaded.

Nothing of what visitors write is recorded: labels are fixed route groups and outcomes. Each
server has its own registry, so several apps in one process (tests) do not share counters.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.answer import Answer
from bot.events import BotEvent, Delta, Done

_SECONDS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)
_API_ROUTES = {"/api/v1/ask", "/api/v1/feedback", "/api/v1/health", "/api/v1/ready",
               "/api/v1/openapi.json"}


def outcome(answer: Answer) -> str:
    if answer.red_flag:
        return "red_flag"
    if answer.error:
        return "error"
    return "declined" if answer.declined else "answered"


class Metrics:
    """The server's metrics in a registry of their own."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("crampbot_http_requests", "HTTP requests by route group, method "
                                "and status.", ["route", "method", "status"], registry=self.registry)
        self.answers = Counter("crampbot_answers", "Replies by outcome (answered, declined, "
                               "red_flag, error).", ["outcome"], registry=self.registry)
        self.first_token = Histogram("crampbot_first_token_seconds", "From the question to the "
                                     "model's first token.", buckets=_SECONDS, registry=self.registry)
        self.answer_time = Histogram("crampbot_answer_seconds", "From the question to the full "
                                     "reply.", buckets=_SECONDS, registry=self.registry)
        self.in_progress = Gauge("crampbot_answers_in_progress", "Replies being made, including "
                                 "those waiting for the model (the queue).", registry=self.registry)
        self.waiting = Gauge("crampbot_answers_waiting", "API questions waiting for an answer "
                             "slot (web.answer_concurrency; at most web.answer_queue).",
                             registry=self.registry)
        self.model_loaded = Gauge("crampbot_model_loaded", "1 once the language model is loaded.",
                                  registry=self.registry)

    def watch_model(self, bot) -> None:
        self.model_loaded.set_function(lambda: float(bool(bot.model_ready)))

    def watch_queue(self, slots) -> None:
        self.waiting.set_function(lambda: float(slots.waiting))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def answered(self, answer: Answer, seconds: float) -> None:
        self.answers.labels(outcome(answer)).inc()
        self.answer_time.observe(seconds)


def route_group(path: str) -> str:
    """A fixed label for a path: the API route, or the page it belongs to (never the path
    itself, which a client chooses)."""
    if path in _API_ROUTES:
        return path
    if path.startswith("/api/"):
        return "/api/other"
    if path == "/metrics" or path == "/embed.js":
        return path
    if path == "/widget" or path.startswith("/widget/"):
        return "widget"
    return "chat"


class RequestMetrics:
    """Counts every HTTP response by route group, method and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in ("GET", "POST", "HEAD", "OPTIONS") else "other"

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(route_group(scope["path"]), method,
                                             str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)


class MeteredBot:
    """Wraps a bot: every reply, by `ask` (the API) or `stream` (the pages), is counted and
    timed."""

    def __init__(self, bot, metrics: Metrics) -> None:
        self.bot = bot
        self.metrics = metrics
        metrics.watch_model(bot)

    def ask(self, question: str, history: Sequence[tuple[str, str]] = (),
            lang: str | None = None) -> Answer:
        started = time.perf_counter()
        self.metrics.in_progress.inc()
        try:
            answer = self.bot.ask(question, history, lang)
        finally:
            self.metrics.in_progress.dec()
        if answer.timings.first_token_s is not None:
            self.metrics.first_token.observe(answer.timings.first_token_s)
        self.metrics.answered(answer, time.perf_counter() - started)
        return answer

    def stream(self, question: str, history: Sequence[tuple[str, str]] = (),
               lang: str | None = None) -> Iterator[BotEvent]:
        started = time.perf_counter()
        first_token = True
        self.metrics.in_progress.inc()
        try:
            for event in self.bot.stream(question, history, lang):
                if isinstance(event, Delta) and first_token:
                    first_token = False
                    self.metrics.first_token.observe(time.perf_counter() - started)
                elif isinstance(event, Done):
                    self.metrics.answered(event.answer, time.perf_counter() - started)
                yield event
        finally:
            self.metrics.in_progress.dec()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bot, name)
