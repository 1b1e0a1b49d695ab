"""The server's log: one JSON object a line (or plain text), each with the id of the request it
belongs to, and no visitor's words unless settings.web.log_questions says so.

`RequestId` (ASGI middleware) takes a well-formed X-Request-ID from the proxy or makes one,
returns it in the response and puts it on every record logged while the request runs.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import datetime, timezone

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.settings import WebSettings

current_request_id: ContextVar[str] = ContextVar("crampbot_request_id", default="-")
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Loggers whose INFO records quote what a visitor asked (e.g. the model's rewrite of a
# follow-up, bot/query.py); kept only with log_questions.
_QUOTING_LOGGERS = ("bot.query",)


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get("x-request-id", "")
        request_id = offered if _WELL_FORMED.match(offered) else uuid.uuid4().hex
        token = current_request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)


class RequestContext(logging.Filter):
    """Adds `request_id` to every record; drops records quoting visitors unless allowed."""

    def __init__(self, log_questions: bool = False) -> None:
        super().__init__()
        self.log_questions = log_questions

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        quoting = record.name.startswith(_QUOTING_LOGGERS) and record.levelno <= logging.INFO
        return self.log_questions or not quoting


class JsonLines(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, request_id, error."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            payload["error"] = self.formatException(record.exc_info)
        return json.dumps(payload)  # ASCII escapes: any text, surrogates too, can be written


def configure_logging(web: WebSettings, stream=None) -> logging.Handler:
    """The root logger's one handler; uvicorn's loggers propagate to it (run uvicorn with
    log_config=None)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines() if web.log_format == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    handler.addFilter(RequestContext(web.log_questions))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return handler
