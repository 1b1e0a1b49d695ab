"""OpenAI's chat-completions API over the same bot, for existing chat clients (Open WebUI,
AnythingLLM, the `openai` package): POST /v1/chat/completions, streamed or not, GET /v1/models.
An app of its own mounted at /v1, with its own schema (/v1/openapi.json) and OpenAI's error
shape for what FastAPI itself refuses; the server's middlewares (web/security.py) wrap it too.

`model` is the preset the server runs. The last `user` message is the question, earlier
user/assistant pairs the history (bounded like /api/v1/ask's); system messages are ignored, the
bot keeps its own rules. The reply's content is the bot's `Answer.full_text`: the verified
answer with its [n] markers, ending with the code-added disclaimer; its sources also come as
`citations` on the message (on the last chunk's delta when streamed). A stream sends only that
verified text: the pipeline's draft (Delta) may be replaced at the end, and an OpenAI stream
cannot take back what it sent, so while the draft is written the stream carries SSE comments,
which keep proxies from timing out and which clients skip. Errors are in OpenAI's shape
({"error": {"message", "type", "param", "code"}}); the body-size, deadline and origin
refusals come from the middlewares of web/security.py in their own {"detail"} shape.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, format_sse_event
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException  # FastAPI's is a subclass

from bot import texts
from bot.answer import Answer
from bot.events import BotEvent, Done
from bot.safety.input_guard import encodable
from bot.settings import WebSettings
from web.api import Problem, citations_out
from web.conversations import MAX_TURNS_KEPT
from web.limits import abridged
from web.security import client_key, retry_after_header
from web.server import AnswerSlots
from web.state import Limiter, shared_state_unavailable

log = logging.getLogger("crampbot.api")
OPENAI_PREFIX = "/v1"
OWNER = "crampbot"

# OpenAI's API has no language of its own: its errors are the English catalog's.
OPENAI_UNKNOWN_MODEL = texts.t("OPENAI_UNKNOWN_MODEL", "en")
OPENAI_INVALID = texts.t("OPENAI_INVALID", "en")

OPENAI_DESCRIPTION = (
    "OpenAI's chat-completions API for existing chat clients: `model` is the server's preset "
    "(GET /v1/models); each reply's content is the cited answer ending with its disclaimer, "
    "with the cited passages in `citations`. See docs/api.md.")

_MAX_ERROR_TEXT = 300
# A chunk of the streamed reply: a word and the space after it, or leading space.
_PIECE = re.compile(r"\S+\s*|\s+")


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    type: Literal["text"] = Field(description="Only text: the bot reads no images or files.")
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)  # name, tool_calls...: not used

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class ChatCompletionRequest(BaseModel):
    # OpenAI's sampling options (temperature, max_tokens, n, ...) are accepted and ignored: the
    # preset decides how the bot answers, and clients send them unasked.
    # strict: "stream": 0 is refused, not taken for false (Schemathesis found it accepted).
    model_config = ConfigDict(
        extra="allow", strict=True,
        json_schema_extra={"examples": [{"model": "default", "messages": [
            {"role": "user", "content": "Why do my calves cramp at night?"}]}]})

    model: str = Field(description="The preset this server runs (GET /v1/models).")
    messages: list[ChatMessage] = Field(
        min_length=1, description="The conversation, oldest first, ending with the question.")
    stream: bool | None = Field(False, description="Send the reply as Server-Sent Events.")


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    error: OpenAIErrorDetail


class OpenAIProblem(Exception):
    """A refusal to send in OpenAI's error shape."""

    def __init__(self, status: int, message: str, error_type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers
        self.body = OpenAIError(error=OpenAIErrorDetail(message=message, type=error_type,
                                                        param=param, code=code))

    def response(self) -> JSONResponse:
        return JSONResponse(self.body.model_dump(), status_code=self.status, headers=self.headers)


async def _refused(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's and Starlette's own refusals in OpenAI's shape, which clients made for OpenAI
    read (`error.message`): an invalid body is 400 invalid_request_error where FastAPI would
    answer 422 {"detail": [...]}, and 404/405 for paths and methods this app does not have.
    A 413 keeps web/security.py's {"detail"} shape, the one its middleware gives up front."""
    if isinstance(error, RequestValidationError):
        return _invalid(error).response()
    if isinstance(error, OpenAIProblem):
        return error.response()
    assert isinstance(error, HTTPException)
    if error.status_code == 413:
        return JSONResponse({"detail": error.detail}, status_code=413, headers=error.headers)
    return OpenAIProblem(error.status_code, str(error.detail), headers=error.headers).response()


def _invalid(error: RequestValidationError) -> OpenAIProblem:
    first = (error.errors() or [{}])[0]
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    # A JSON syntax error's loc is its position in the text, not a field.
    where = "body" if first.get("type") == "json_invalid" else ".".join(loc) or "body"
    message = OPENAI_INVALID.format(where=where, what=first.get("msg", "invalid"))
    # Short and without the input: a 1,000-message body is not sent back (as web/limits.py does).
    return OpenAIProblem(400, abridged(encodable(message), _MAX_ERROR_TEXT),
                         param=abridged(encodable(where), 100))


def _text(message: ChatMessage) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    return "".join(part.text for part in message.content)


def question_and_history(messages: Sequence[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last message, when it is the user's) and the earlier turns: each
    assistant message paired with the user message before it, its disclaimer dropped, the
    latest MAX_TURNS_KEPT kept, as the server keeps a conversation of /api/v1/ask (the bot
    then cuts each turn and their total: web/limits.py). A conversation that does not end
    with the user's question asks the empty question, which the bot answers as it does on
    /ask, with what to type: schema-valid input is answered, not refused."""
    said = [(m.role, _text(m)) for m in messages if m.role in ("user", "assistant")]
    question = said.pop()[1] if said and said[-1][0] == "user" else ""
    turns: list[tuple[str, str]] = []
    asked: str | None = None
    for role, text in said:
        if role == "user":
            asked = text  # a question never answered is replaced by the next one
        elif asked is not None:
            turns.append((asked, texts.without_disclaimer(text).strip()))
            asked = None
    return question, turns[-MAX_TURNS_KEPT:]


def _completion_id() -> str:
    return "chatcmpl-" + secrets.token_urlsafe(18)


def citations_of(answer: Answer) -> list[dict[str, Any]]:
    """The same citation fields as /api/v1/ask's."""
    return [citation.model_dump() for citation in citations_out(answer)]


def completion(answer: Answer, model: str) -> dict[str, Any]:
    return {
        "id": _completion_id(), "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": answer.full_text, "citations": citations_of(answer)}}],
    }


def completion_chunks(events: Iterable[BotEvent], model: str) -> Iterator[bytes]:
    """The streamed reply as SSE bytes, ending with `data: [DONE]`; never raises (a failure
    after the first byte is an `error` payload, which the openai client raises as APIError)."""
    head = {"id": _completion_id(), "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}

    def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
        body = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
        return format_sse_event(data_str=json.dumps(body, ensure_ascii=False))

    yield chunk({"role": "assistant", "content": ""})
    try:
        for event in events:
            if not isinstance(event, Done):
                yield format_sse_event(comment=type(event).__name__.lower())  # keep-alive
                continue
            for piece in _PIECE.findall(event.answer.full_text):
                yield chunk({"content": piece})
            yield chunk({"citations": citations_of(event.answer)}, finish_reason="stop")
            yield format_sse_event(data_str="[DONE]")
            return
        log.error("the bot's stream ended without a final answer")
    except Exception:
        log.exception("internal error while streaming a chat completion")
    error = OpenAIError(error=OpenAIErrorDetail(message=texts.INTERNAL_ERROR, type="server_error"))
    yield format_sse_event(data_str=error.model_dump_json())


# Each event of a stream (OpenAI 3.2's itemSchema, as FastAPI writes it for its SSE routes):
# `data` is a chat.completion.chunk as JSON, or [DONE].
_CHUNK_EVENT = {"type": "object", "properties": {"data": {"type": "string"}}, "required": ["data"]}
_OPENAI_ERRORS = {
    400: {"model": OpenAIError, "description": "The body is invalid (or not JSON, not UTF-8)."},
    403: {"model": Problem, "description": "Sent by a browser from a site that is not allowed."},
    404: {"model": OpenAIError, "description": "Unknown model (not the server's preset)."},
    408: {"model": Problem, "description": "The body did not arrive in time."},
    413: {"model": Problem, "description": "Request body over the size limit."},
    429: {"model": OpenAIError, "description": "Too many questions; see the Retry-After header."},
    503: {"model": OpenAIError, "description": "Too many questions waiting for an answer "
          "(web.answer_queue), or shared state (Redis) unavailable; see Retry-After."},
}


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = OWNER


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def openai_app(bot, web: WebSettings, limiter: Limiter, slots: AnswerSlots) -> FastAPI:
    """The app to mount at OPENAI_PREFIX, answering with `bot` (its settings.preset is the one
    model) under the ask rate limit `limiter`, in the API's answer `slots`."""
    api = FastAPI(title=f"{web.clinic_name} assistant, OpenAI-compatible API", version="1",
                  description=OPENAI_DESCRIPTION, openapi_url="/openapi.json", docs_url=None,
                  redoc_url=None)
    api.include_router(openai_router(bot, web, limiter, slots))
    for error in (RequestValidationError, OpenAIProblem, HTTPException):
        api.add_exception_handler(error, _refused)
    if web.state == "redis":  # as app.py does for the server's own routes
        import redis

        api.add_exception_handler(redis.RedisError, shared_state_unavailable)
    return api


def openai_router(bot, web: WebSettings, limiter: Limiter, slots: AnswerSlots) -> APIRouter:
    """The routes of openai_app, relative to its mount."""
    preset = bot.settings.preset
    card = ModelCard(id=preset, created=int(time.time()))
    router = APIRouter(tags=["openai-compatible"])

    def known(model: str) -> None:
        if model != preset:
            raise OpenAIProblem(404, OPENAI_UNKNOWN_MODEL.format(model=abridged(model, 100),
                                                                 preset=preset),
                                param="model", code="model_not_found")

    @router.get("/models", response_model=ModelList, summary="The one model: the server's preset")
    def models() -> ModelList:
        return ModelList(data=[card])

    # No GET /models/{model}: a name with a line break in it would not reach this app at all
    # (Starlette's mount pattern stops at line ends) and get the chat page's 404 instead; chat
    # clients list the models. Any /v1 path not here is a 404 in OpenAI's shape.

    def admitted(body: ChatCompletionRequest, request: Request) -> tuple[str, list]:
        known(body.model)
        question, history = question_and_history(body.messages)
        slots.admit()
        wait = limiter.retry_after(client_key(request))  # Redis, when shared
        if wait is not None:
            raise OpenAIProblem(429, texts.RATE_LIMITED, error_type="rate_limit_error",
                                code="rate_limit_exceeded", headers=retry_after_header(wait))
        if web.log_questions:
            log.info("question: %r", question[:200])
        return question, history

    # Like /api/v1/ask: the checks and the bot in the thread pool, the bot in an answer slot.
    @router.post("/chat/completions", response_model=None,
                 summary="OpenAI-compatible chat completion: a cited answer and its disclaimer",
                 responses={200: {"description": "A chat.completion, or with stream=true "
                                                 "chat.completion.chunk events ending with [DONE].",
                                  "content": {"application/json": {},
                                              "text/event-stream": {"itemSchema": _CHUNK_EVENT}}},
                            **_OPENAI_ERRORS})
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        question, history = await run_in_threadpool(admitted, body, request)
        if body.stream:
            chunks = completion_chunks(bot.stream(question, history), preset)
            return EventSourceResponse(slots.iterate(chunks),
                                       headers={"Cache-Control": "no-cache",
                                                "X-Accel-Buffering": "no"})
        return JSONResponse(completion(await slots.run(bot.ask, question, history), preset))

    return router
