"""Bounds on what a visitor can make the server hold or do: history size, stored copies, text
that cannot be written, error replies that would echo the input, and routes the chat never uses.

- `BoundedBot`: the bot as the web serves it. Earlier turns are cut per turn and in total
  (settings.web.history_turn_chars, history_chars), then to a token budget counted by the
  model's tokenizer (history_tokens), before they reach the model, on every surface (API
  history, API conversations, the chat); a refused question is kept abridged.
- `EncodableJson`: every string of a JSON request body (keys too) with lone surrogates replaced
  (bot.safety.input_guard.encodable), before any route, FastAPI's or Gradio's, reads it.
- `validation_problem`: FastAPI's 422, without the input it would otherwise echo back.
- `ClosedRoutes`: 404 for the Gradio routes the chat and widget do not use (uploads, login and
  logout, file and proxy routes, ...), under every mount.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.answer import Answer
from bot.events import BotEvent, Done
from bot.safety.input_guard import encodable
from bot.settings import WebSettings

History = Sequence[tuple[str, str]]
TokenCounter = Callable[[str], int]
log = logging.getLogger("crampbot.limits")

STORED_REFUSED_CHARS = 200  # a refused question is kept this long (the reply says why)
_ELLIPSIS = "..."
_MAX_REPORTED_ERRORS = 5
_MAX_ERROR_TEXT = 200
# Until the model's tokenizer is loaded, a token is taken to be two characters: fewer than any
# tokenizer of ours gives for English or Russian, so the estimate trims more, never less.
_CHARS_PER_TOKEN_AT_MOST = 2


def abridged(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at a space when one is near the end."""
    if len(text) <= limit:
        return text
    cut = text[:max(0, limit - len(_ELLIPSIS))]
    space = cut.rfind(" ")
    if space > len(cut) * 0.8:
        cut = cut[:space]
    return cut.rstrip() + _ELLIPSIS


def bound_history(history: History, turn_chars: int, total_chars: int) -> list[tuple[str, str]]:
    """The latest turns that fit: each question and answer cut to `turn_chars`, then the oldest
    turns dropped while all of them together exceed `total_chars` (the last one always stays)."""
    turns = [(abridged(question, turn_chars), abridged(answer, turn_chars))
             for question, answer in history]
    kept: list[tuple[str, str]] = []
    used = 0
    for question, answer in reversed(turns):
        size = len(question) + len(answer)
        if kept and used + size > total_chars:
            break
        kept.append((question, answer))
        used += size
    return kept[::-1]


def budget_history(history: History, count_tokens: TokenCounter, max_tokens: int
                   ) -> list[tuple[str, str]]:
    """The latest turns whose tokens (`count_tokens` of each question and answer) add up to
    at most `max_tokens`, the oldest dropped; the last turn always stays, cut to fit: its
    question to half the budget at most, its answer to the rest."""
    kept: list[tuple[str, str]] = []
    used = 0
    for question, answer in reversed(history):
        size = count_tokens(question) + count_tokens(answer)
        if used + size <= max_tokens:
            kept.append((question, answer))
            used += size
            continue
        if not kept:
            question = cut_to_tokens(question, count_tokens, max_tokens // 2)
            kept.append((question, cut_to_tokens(answer, count_tokens,
                                                 max_tokens - count_tokens(question))))
        break
    return kept[::-1]


def cut_to_tokens(text: str, count_tokens: TokenCounter, max_tokens: int) -> str:
    """`text` abridged until `count_tokens` of it is at most `max_tokens`."""
    for _ in range(8):
        tokens = count_tokens(text)
        if tokens <= max_tokens:
            return text
        # In proportion, a little under, so that one or two rounds are enough.
        text = abridged(text, int(len(text) * max_tokens / tokens * 0.9))
    return ""


def estimated_tokens(text: str) -> int:
    return math.ceil(len(text) / _CHARS_PER_TOKEN_AT_MOST)


def compact(answer: Answer) -> Answer:
    """The answer as stored for feedback and conversations: a refused question abridged (a
    5,000-answer store of whole 60 KB refusals would hold 300 MB)."""
    if answer.error and len(answer.question) > STORED_REFUSED_CHARS:
        return dataclasses.replace(answer, question=abridged(answer.question, STORED_REFUSED_CHARS))
    return answer


class BoundedBot:
    """Wraps a CrampBot (or anything with its ask/stream): bounded history in, compact
    refusals out; every other attribute is the wrapped bot's."""

    def __init__(self, bot, web: WebSettings) -> None:
        self.bot = bot
        self.turn_chars = web.history_turn_chars
        self.total_chars = web.history_chars
        self.total_tokens = web.history_tokens

    def _bounded(self, history: History) -> list[tuple[str, str]]:
        # Characters first: cheap, and they bound what the tokenizer is given.
        turns = bound_history(history, self.turn_chars, self.total_chars)
        return budget_history(turns, self._token_counter(), self.total_tokens) if turns else turns

    def _token_counter(self) -> TokenCounter:
        """The model's own count once it is loaded (asking for it earlier would load it here);
        until then, or if the tokenizer fails, the estimate."""
        if not getattr(self.bot, "model_ready", False):
            return estimated_tokens
        count = getattr(getattr(self.bot, "generator", None), "count_tokens", None)
        if count is None:
            return estimated_tokens

        def counted(text: str) -> int:
            try:
                return count(text)
            except Exception:  # a tokenizer error must not cost the visitor the answer
                log.warning("history counted by estimate: the tokenizer failed", exc_info=True)
                return estimated_tokens(text)

        return counted

    def ask(self, question: str, history: History = (), lang: str | None = None) -> Answer:
        return compact(self.bot.ask(question, self._bounded(history), lang))

    def stream(self, question: str, history: History = (), lang: str | None = None
               ) -> Iterator[BotEvent]:
        for event in self.bot.stream(question, self._bounded(history), lang):
            yield Done(compact(event.answer)) if isinstance(event, Done) else event

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bot, name)


# -- text that cannot be written -----------------------------------------------------------------

# A JSON escape of a UTF-16 surrogate (\ud800-\udfff): the only way a JSON text can carry one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def encodable_json(value: Any) -> Any:
    """`value` (parsed JSON) with every string, keys included, made encodable."""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, list):
        return [encodable_json(item) for item in value]
    if isinstance(value, dict):
        return {encodable(key): encodable_json(item) for key, item in value.items()}
    return value


class EncodableJson:
    """Replaces lone surrogates in JSON request bodies, so no route can fail to write what it
    was sent (a reply, a log line, the feedback file, Gradio's event stream). Bodies without a
    surrogate escape pass untouched; the body-size limit outside this bounds what is read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if _SURROGATE_ESCAPE.search(body):
            try:
                body = json.dumps(encodable_json(json.loads(body)), ensure_ascii=False).encode()
            except (ValueError, RecursionError):
                pass  # not JSON after all: the route reports it
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        scope = {**scope, "headers": headers}
        await self.app(scope, _replay([{"type": "http.request", "body": body,
                                        "more_body": False}], receive), send)


def _is_json(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"content-type":
            return b"json" in value.lower()
    return False


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()  # e.g. a streaming response listening for the disconnect

    return receive


# -- error replies that would echo the input -------------------------------------------------------

async def validation_problem(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 in FastAPI's shape (a list of {loc, msg, type}) without the offending input, at
    most a few errors, each text short and encodable: a 1,000-turn history is not sent back."""
    reported = []
    for item in error.errors()[:_MAX_REPORTED_ERRORS]:
        reported.append({
            "loc": [part if isinstance(part, int) else _short(str(part))
                    for part in item.get("loc", ())][:8],
            "msg": _short(str(item.get("msg", ""))),
            "type": _short(str(item.get("type", ""))),
        })
    return JSONResponse({"detail": reported}, status_code=422)


def _short(text: str) -> str:
    return abridged(encodable(text), _MAX_ERROR_TEXT)


# -- Gradio routes the pages never call ------------------------------------------------------------

# Relative to a Gradio mount. The chat needs its page, config, assets, theme, the queue
# (join/data/heartbeat/cancel/reset) and run/predict; nothing here.
_UNUSED_GRADIO = re.compile(
    r"/(login|logout|login/callback|monitoring(/.*)?"
    r"|gradio_api/(upload|upload_progress|process_recording|vibe-edit|undo-vibe-edit|vibe-code"
    r"|run-history/.*|runs|dev/reload|proxy=.*|file=.*|file/.*|stream/.*|custom_component/.*"
    r"|call/.*|mcp(/.*)?))/?")


class ClosedRoutes:
    """404 for the Gradio routes under `mounts` that neither page uses: an upload endpoint
    open to any client, a logout that redirects to whatever Host was sent, and the rest."""

    def __init__(self, app: ASGIApp, mounts: Iterable[str]) -> None:
        self.app = app
        self.mounts = sorted({mount.rstrip("/") for mount in mounts}, key=len, reverse=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self._closed(scope["path"]):
            if scope["type"] == "http":
                await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)

    def _closed(self, path: str) -> bool:
        for mount in self.mounts:
            if mount and not (path == mount or path.startswith(mount + "/")):
                continue
            return _UNUSED_GRADIO.fullmatch(path[len(mount):]) is not None
        return False
