"""Who may use the assistant from where, how often and how much: origins, framing, rate, size.

`protect(app, web_settings)` wraps the whole server (API, widget and the Gradio routes under
them) in these controls, outermost first:

- Content-Security-Policy `frame-ancestors`: only the widget may be framed, and only by the
  allowed origins; every other page by our own origin only.
- CORS for the allowed origins (Starlette's middleware). Because the parent app configures it,
  Gradio's own CORS middleware stands aside; by itself it would echo any origin back.
- An origin guard: a POST that a browser sends from any other site is refused with 403 before
  it reaches a route, so a foreign page cannot spend the clinic's quota even though CORS alone
  would only hide the answer from it.
- A body-size limit (413), also for bodies sent without a Content-Length, and a deadline for
  the body to arrive (408, web/server.py).
- Host pinning: a Host header outside settings.web.allowed_hosts gets 400 (Starlette's
  TrustedHostMiddleware), outermost; lone surrogates in JSON bodies are replaced and unused
  Gradio routes answer 404 (web/limits.py).

The per-client rate limit is applied where a question is asked (the API route, the chat's
answer event), so only questions count, not the dozens of asset requests a page makes.
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import texts
from bot.settings import WebSettings

_WINDOW_S = 60.0
_MAX_TRACKED_CLIENTS = 50_000  # bounds the limiter's memory under a flood of addresses
_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class RateLimiter:
    """At most `per_minute` questions per client in any sliding 60-second window.

    Hand-written because no rate-limit library is among the pinned dependencies, and a
    sliding log of timestamps per client is a dozen lines. In memory: with several server
    replicas each counts its own share (see the README).
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._asked: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float | None:
        """None when `client` may ask now (and the question is counted); else the seconds
        until it may ask again."""
        now = self._clock()
        with self._lock:
            asked = self._asked.pop(client, None) or deque()
            while asked and now - asked[0] >= _WINDOW_S:
                asked.popleft()
            self._asked[client] = asked  # most recently seen last
            if len(asked) >= self.per_minute:
                return _WINDOW_S - (now - asked[0])
            asked.append(now)
            while len(self._asked) > _MAX_TRACKED_CLIENTS:
                self._asked.popitem(last=False)
            return None


def client_key(request) -> str:
    """The address a request came from (a Starlette or Gradio request), used only to count
    questions in memory, never stored. Behind a reverse proxy on the same machine, uvicorn
    takes it from X-Forwarded-For."""
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or "unknown"


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def frame_ancestors(web: WebSettings) -> str:
    """The widget's CSP: framed by our own pages and by the allowed origins, nobody else."""
    return "frame-ancestors " + " ".join(["'self'", *web.allowed_origins])


def protect(app: FastAPI, web: WebSettings, framable_prefixes: Iterable[str] = ("/widget",),
            gradio_mounts: Iterable[str] = ()) -> None:
    """Add the controls above to `app`; call before the first request."""
    from web.limits import ClosedRoutes, EncodableJson
    from web.server import BodyDeadline, HeaderSizeLimit

    # add_middleware wraps what was added before, so the last one added runs first: the Host
    # check before all else, CORS headers then also reach the 403 and 413 replies, and CSP
    # reaches every response. The body is read (size, deadline, text repair) only after the
    # cheap checks have passed.
    app.add_middleware(EncodableJson)
    app.add_middleware(BodySizeLimit, max_bytes=web.max_request_bytes)
    app.add_middleware(BodyDeadline, timeout_s=web.body_timeout_s)
    app.add_middleware(ClosedRoutes, mounts=gradio_mounts)
    app.add_middleware(HeaderSizeLimit, max_bytes=web.max_header_bytes)
    app.add_middleware(OriginGuard, allowed=web.allowed_origins)
    app.add_middleware(
        CORSMiddleware, allow_origins=list(web.allowed_origins), allow_credentials=False,
        allow_methods=["GET", "POST"], allow_headers=["Content-Type"],
        expose_headers=["Retry-After"], max_age=600,
    )
    app.add_middleware(FrameAncestors, widget_policy=frame_ancestors(web),
                       framable_prefixes=tuple(framable_prefixes))
    # Same-origin checks compare Origin with Host, so Host must be one of ours (DNS rebinding).
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(web.allowed_hosts),
                       www_redirect=False)


class FrameAncestors:
    """Sets who may frame each response: the widget's policy under its prefixes, our own
    origin elsewhere (the full chat and the API are not meant to be framed by other sites)."""

    def __init__(self, app: ASGIApp, widget_policy: str, framable_prefixes: tuple[str, ...]
                 ) -> None:
        self.app = app
        self.widget_policy = widget_policy.encode()
        self.framable_prefixes = framable_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        framable = any(path == prefix or path.startswith(prefix + "/")
                       for prefix in self.framable_prefixes)
        policy = self.widget_policy if framable else b"frame-ancestors 'self'"

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"content-security-policy", b"x-frame-options")]
                headers += [(b"content-security-policy", policy),
                            (b"x-content-type-options", b"nosniff")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_policy)


class OriginGuard:
    """Refuses state-changing requests a browser sends from a site that is neither ours nor
    allowed. Requests without an Origin header (curl, server-to-server) pass: they are not
    made by a visitor's browser on someone else's page, and the rate limit still applies."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = set(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _UNSAFE_METHODS:
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not self._admits(origin, headers.get("host", "")):
                await json_reply(send, 403, texts.ORIGIN_NOT_ALLOWED)
                return
        await self.app(scope, receive, send)

    def _admits(self, origin: str, host: str) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self.allowed:
            return True
        # Same origin: our own pages (the chat, the widget inside its frame). The scheme is
        # not compared because a TLS-terminating proxy talks plain HTTP to us.
        return origin != "null" and urlsplit(origin).netloc == host.lower()


class RequestTooLarge(HTTPException):
    """Raised while reading a body past the limit. An HTTPException, so FastAPI turns it into
    the 413 reply instead of wrapping it into "error parsing the body" (400)."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail=texts.REQUEST_TOO_LARGE)


class BodySizeLimit:
    """413 for bodies over `max_bytes`: at once when Content-Length says so, else while the
    body streams in (chunked uploads have no length to check up front)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await json_reply(send, 413, texts.REQUEST_TOO_LARGE)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLarge()
            return message

        await reply_on(RequestTooLarge, 413, texts.REQUEST_TOO_LARGE,
                       self.app, scope, limited_receive, send)


async def reply_on(error: type[BaseException], status: int, detail: str, app: ASGIApp,
                   scope: Scope, receive: Receive, send: Send) -> None:
    """Run `app`; when it raises `error` before its response has started, reply `status`
    with `detail` instead (after the start, the error goes on: the reply is under way)."""
    started = False

    async def tracking_send(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, tracking_send)
    except error:
        if started:
            raise
        await json_reply(send, status, detail)


async def json_reply(send: Send, status: int, detail: str) -> None:
    # The same {"detail": ...} shape FastAPI uses for its own errors.
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
