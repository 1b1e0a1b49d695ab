"""How the server meets slow, idle and flooding clients: uvicorn's own limits, a deadline for
request headers and one for request bodies, a bounded queue for answers, and a log that does
not grow with a flood.

`uvicorn_options(web)` gives the keyword arguments app.py passes to uvicorn.run: the keep-alive
timeout, uvicorn's concurrency limit (503 beyond it), the header-size limit of its h11 parser,
and `HeaderDeadlineH11`, uvicorn's h11 protocol with one more timer: uvicorn closes idle
keep-alive connections, but waits forever for the first bytes of a new connection and for
headers that trickle in, so 20,000 silent sockets held 20,000 file descriptors.

`AnswerSlots` bounds the API's answers: a few at once (anyio's CapacityLimiter, first come
first served), a few more waiting, and 503 with Retry-After at once beyond that. Without it
every question ran in FastAPI's 40-thread pool at the same time, each slowed by all the others,
and a burst left every visitor waiting past any client's timeout. The chat page and the widget
queue in Gradio's own queue (default_concurrency_limit, max_size: web/chat.py).
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TypeVar

import anyio
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from bot.settings import WebSettings
from web import messages
from web.security import json_reply, reply_on

_LOG_WINDOW_S = 60.0
BUSY_RETRY_S = 10  # the Retry-After of a question turned away because the queue is full
Item = TypeVar("Item")


def uvicorn_options(web: WebSettings) -> dict:
    """Keyword arguments for uvicorn.run / uvicorn.Config enforcing settings.web's limits."""
    protocol = type("HeaderDeadlineH11", (HeaderDeadlineH11,),
                    {"header_timeout_s": web.header_timeout_s})
    return {
        "http": protocol,
        "timeout_keep_alive": max(1, round(web.keep_alive_timeout_s)),
        "limit_concurrency": web.max_connections,
        "h11_max_incomplete_event_size": web.max_header_bytes,
        "timeout_graceful_shutdown": 5,
        "server_header": False,
    }


class HeaderDeadlineH11(H11Protocol):
    """Closes a connection that has not delivered a request's headers within
    `header_timeout_s` of connecting (or of its previous response)."""

    header_timeout_s = 10.0
    _deadline: asyncio.TimerHandle | None = None
    _armed_for = None  # the request cycle current when the deadline was set

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self._armed_for:  # a new request's headers have arrived
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._armed_for = self.cycle
        self._deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class BodyDeadline:
    """408 when a request body is not received in full within `timeout_s` (a slow-body
    client would otherwise hold a worker thread and its connection for as long as it likes).
    Once the body is in, `receive` is passed through untouched: streaming responses listen on
    it for the client's disconnect for as long as they run."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.timeout_s
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                message = await receive()
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await reply_on(TimeoutError, 408, messages.REQUEST_TIMEOUT, self.app, scope,
                       timed_receive, send)


class HeaderSizeLimit:
    """431 for requests whose headers add up to more than `max_bytes`. uvicorn's h11 limit
    (h11_max_incomplete_event_size) only bounds headers still arriving; these arrived whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and sum(
                len(name) + len(value) + 4 for name, value in scope["headers"]) > self.max_bytes:
            await json_reply(send, 431, messages.HEADERS_TOO_LARGE)
            return
        await self.app(scope, receive, send)


class AnswerSlots:
    """At most `concurrency` answers made at once and `queue` questions waiting for one.

    `admit()` is called before a request is accepted (a route's dependency, so a stream's
    refusal comes before its response starts): 503 when the queue is full. `run` and `iterate`
    then hold a slot while the bot works in the thread pool, waiting their turn in order.
    """

    def __init__(self, concurrency: int, queue: int) -> None:
        self.queue = queue
        # Made outside the event loop; anyio binds it to the running one when first used.
        self.limiter = anyio.CapacityLimiter(concurrency)

    @property
    def waiting(self) -> int:
        return self.limiter.statistics().tasks_waiting

    def admit(self) -> None:
        """Raise 503 (with Retry-After) when no slot is free and the queue is full."""
        if self.limiter.available_tokens == 0 and self.waiting >= self.queue:
            raise HTTPException(503, messages.BUSY, headers={"Retry-After": str(BUSY_RETRY_S)})

    async def run(self, function: Callable[..., Item], *args) -> Item:
        """`function(*args)` in the thread pool once a slot is free."""
        async with self.limiter:
            return await run_in_threadpool(function, *args)

    async def iterate(self, items: Iterable[Item]) -> AsyncIterator[Item]:
        """A blocking iterator (the bot's stream) stepped in the thread pool, holding one
        slot from its first item to its end (or the client's leaving)."""
        async with self.limiter:
            async for item in iterate_in_threadpool(iter(items)):
                yield item


class RepeatedRecords(logging.Filter):
    """Lets through at most `per_minute` records of the same logger, level and message
    template, then one note of how many were held back: a flood of identical errors (bad
    requests, refused hosts) cannot fill the disk."""

    def __init__(self, per_minute: int = 20, clock=time.monotonic) -> None:
        super().__init__()
        self.per_minute = per_minute
        self._clock = clock
        self._seen: dict[tuple, list] = {}  # key -> [window start, count]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access":
            return True
        key = (record.name, record.levelno, str(record.msg)[:200])
        now = self._clock()
        with self._lock:
            window = self._seen.get(key)
            if window is None or now - window[0] >= _LOG_WINDOW_S:
                held_back = window[1] - self.per_minute if window else 0
                if len(self._seen) > 10_000:
                    self._seen.clear()
                self._seen[key] = [now, 1]
                if held_back > 0:
                    record.msg = f"{record.msg} (and {held_back} more like it in the last minute)"
                return True
            window[1] += 1
            return window[1] <= self.per_minute


def install_log_flood_guard(per_minute: int = 20) -> RepeatedRecords:
    """Put one RepeatedRecords on the root logger's handlers, where every record ends up
    (web/logs.py). The access log is let through: its lines all share one template."""
    guard = RepeatedRecords(per_minute)
    for handler in logging.getLogger().handlers:
        handler.addFilter(guard)
    return guard
