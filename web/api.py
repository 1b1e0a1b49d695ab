"""The JSON API for a clinic's own front end: ask (with a conversation, also streamed as
Server-Sent Events by web/stream.py), give feedback, health; and, by web/openai_compat.py,
OpenAI's chat-completions API under /v1 for existing chat clients.

Documented by FastAPI's OpenAPI schema at /api/v1/openapi.json and by docs/api.md. A
conversation is either kept here (send back the `conversation_id` you got) or by the client
(send `history`), so several replicas need no shared state when clients send their history.
"""
from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot import texts
from bot.answer import Answer
from bot.pipeline import CrampBot
from bot.settings import WebSettings
from web import messages
from web.conversations import MAX_TURNS_KEPT
from web.feedback import FeedbackStore, answer_subject
from web.limits import abridged, compact
from web.security import client_key, retry_after_header
from web.server import AnswerSlots
from web.state import Conversations, Limiter, ServerState, make_state
from web.stream import answer_events

PREFIX = "/api/v1"
log = logging.getLogger("crampbot.api")
# Ids are the server's own secrets.token_urlsafe values: anything else is refused with 422.
_ID = r"^[A-Za-z0-9_-]{1,64}$"
# Refused with 422 beyond these; what reaches the model is cut further (settings.web.history_*).
MAX_HISTORY_QUESTION_CHARS = 6000
MAX_HISTORY_ANSWER_CHARS = 8000


class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(max_length=MAX_HISTORY_QUESTION_CHARS, description="An earlier question.")
    answer: str = Field(max_length=MAX_HISTORY_ANSWER_CHARS,
                        description="The `answer` the API gave to it (without the disclaimer).")


class AskRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"question": "Why do my calves cramp at night?"}],
                           # one kind of memory: the schema says so, not only the validator
                           "not": {"required": ["conversation_id", "history"]}},
    )

    question: str = Field(description="The visitor's question, as typed.")
    conversation_id: str | None = Field(
        None, pattern=_ID,
        description="Continue a conversation kept by the server (from an earlier reply). "
        "Omit it, and `history`, to start a new one.")
    history: list[HistoryTurn] | None = Field(
        None, max_length=MAX_TURNS_KEPT,
        description="Earlier turns kept by the client, oldest first; the server then keeps "
        "nothing and returns no conversation_id. Use instead of conversation_id.")
    lang: Literal[texts.LANGUAGES] | None = Field(  # type: ignore[valid-type]
        None, description="The reply's language (its fixed texts and disclaimer); omit it to "
        "reply in the question's language.")

    @model_validator(mode="after")
    def _one_kind_of_memory(self) -> "AskRequest":
        if {"conversation_id", "history"} <= self.model_fields_set:
            raise ValueError(texts.HISTORY_AND_CONVERSATION)
        return self


class CitationOut(BaseModel):
    number: int = Field(description="The n of the [n] markers in `answer`.")
    title: str = Field(description="Title of the source document.")
    section: str = Field(description="Section of the source the passage is from.")
    text: str = Field(description="The cited passage, cleaned for reading.")
    original: str = Field(description="The passage's original (machine-translated) wording.")
    supporting_sentence: str = Field(
        description="The passage sentence that best supports the answer ('' if none).")
    supporting_translation: str = Field(
        "", description="A machine translation of supporting_sentence in the reply's language "
        "(`lang`), checked like the answer's sentences; '' for English replies or when there "
        "is none. Show it marked as a machine translation.")
    source: str = Field(description="File name of the source in the corpus.")
    passage_id: str = Field(description="Stable id of the passage.")
    page: int | None = Field(None, description="Page of a PDF source the passage starts on.")
    url: str = Field("", description="Where the clinic publishes the source ('' if not set).")
    reviewed_by: str = Field("", description="Who last reviewed the source ('' if not set).")
    reviewed_on: str = Field("", description="When it was last reviewed, ISO date ('' if not set).")


class AskResponse(BaseModel):
    answer: str = Field(description="The reply without the disclaimer, with [n] citation markers.")
    disclaimer: str = Field(description="Show it with every answer.")
    citations: list[CitationOut]
    declined: bool = Field(description="The sources do not cover the question.")
    red_flag: bool = Field(description="Urgent-care advice: show it prominently.")
    error: bool = Field(description="The input was refused or something failed; `answer` says why.")
    extractive: bool = Field(description="The answer quotes source sentences instead of a summary.")
    verified_fraction: float | None = Field(
        description="Share of the answer's sentences supported by the cited passages.")
    answer_id: str = Field(description="Names this answer for POST /api/v1/feedback.")
    conversation_id: str | None = Field(
        description="Send it with the next question to continue; null when history was sent.")
    lang: str = Field("en", description="The question's language, which the disclaimer and "
                      "fixed texts are in ('en', 'ru').")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer_id: str = Field(pattern=_ID, description="From the answer's reply.")
    rating: Literal["up", "down"] = Field(description="Thumbs up or down.")


class FeedbackResponse(BaseModel):
    recorded: bool


class Health(BaseModel):
    status: Literal["ok"]
    model_ready: bool = Field(description="False until the language model has been loaded.")


class Readiness(BaseModel):
    ready: bool = Field(description="True once the model and the index are loaded.")


class Problem(BaseModel):
    detail: str


_ASK_ERRORS = {
    400: {"model": Problem, "description": "The body is not JSON (or not UTF-8)."},
    403: {"model": Problem, "description": "Sent by a browser from a site that is not allowed."},
    404: {"model": Problem, "description": "Unknown or expired conversation_id."},
    408: {"model": Problem, "description": "The body did not arrive in time."},
    413: {"model": Problem, "description": "Request body over the size limit."},
    429: {"model": Problem, "description": "Too many questions; see the Retry-After header."},
    503: {"model": Problem, "description": "Too many questions waiting for an answer "
          "(web.answer_queue), or shared state (Redis) unavailable; see Retry-After."},
}


# A route whose replies are a stream would list its refusals under the stream's media type.
_STREAM_ERRORS = {
    status: {"description": error["description"],
             "content": {"application/json": {"schema": error["model"].model_json_schema()}}}
    for status, error in _ASK_ERRORS.items()}

_STREAM_DESCRIPTION = (
    "The answer of POST /api/v1/ask as Server-Sent Events (`event:` names the kind, `data:` is "
    "JSON): `status` {text}* while waiting, `retrieved` {passages} once the sources are found, "
    "`delta` {text}* the draft as the model writes it (unverified: replaced by the answer), then "
    "`done` with the fields of /api/v1/ask's reply. An error once the stream has begun is an "
    "`error` {detail} event instead of `done`. Refusals before it begins (rate limit, unknown "
    "conversation, invalid body...) are the same status codes as /api/v1/ask's.")


@dataclass(frozen=True)
class Admitted:
    """A question let through the rate limit, with the conversation it continues."""

    question: str
    conversation_id: str | None
    history: list[tuple[str, str]]
    lang: str | None = None


def api_router(bot: CrampBot, web: WebSettings, *, limiter: Limiter | None = None,
               feedback: FeedbackStore, state: ServerState | None = None,
               slots: AnswerSlots | None = None,
               ready_check: Callable[[], bool] | None = None) -> APIRouter:
    """The /api/v1 routes and the OpenAI-compatible /v1 ones, answering with `bot` under the
    given controls; `state` holds the limits, conversations and recent answers (web/state.py),
    `limiter` overrides its ask limit, `slots` bounds the answers made and waiting
    (web/server.py), `ready_check` says whether the server can answer now (default: the model is
    loaded)."""
    from web.openai_compat import OPENAI_PREFIX, openai_app  # it reuses this module's models

    state = state or make_state(web)
    slots = slots or AnswerSlots(web.answer_concurrency, web.answer_queue)
    ready_check = ready_check or (lambda: bool(bot.model_ready))
    limiter = limiter or state.ask_limiter
    feedback_limiter, conversations, answers = (state.vote_limiter, state.conversations,
                                                state.answers)
    router = APIRouter(tags=["assistant"])

    # A dependency, so that a stream's refusals are made before its response starts. A full
    # queue is told first: a question turned away for it does not count against the visitor.
    def admitted(body: AskRequest, request: Request) -> Admitted:
        slots.admit()
        wait = limiter.retry_after(client_key(request))
        if wait is not None:
            raise HTTPException(429, texts.RATE_LIMITED, headers=retry_after_header(wait))
        conversation_id, history = _conversation(conversations, body)
        if web.log_questions:
            log.info("question: %r", body.question[:200])
        return Admitted(body.question, conversation_id, history, body.lang)

    def finished(asked: Admitted, answer: Answer) -> AskResponse:
        if asked.conversation_id is not None and not answer.error:
            # Stored as the model will see it: no more than history_turn_chars a side.
            conversations.add_turn(asked.conversation_id,
                                   abridged(asked.question, web.history_turn_chars),
                                   abridged(answer.text, web.history_turn_chars))
        answer_id = secrets.token_urlsafe(12)
        answers.put(answer_id, answer_subject(compact(answer)))
        return _response(answer, answer_id, asked.conversation_id)

    # The bot works in the thread pool once one of the answer slots is free, so a long answer
    # blocks no other request and a burst waits its turn instead of slowing every answer.
    @router.post(f"{PREFIX}/ask", response_model=AskResponse, responses=_ASK_ERRORS,
                 summary="Ask a question and get a cited answer")
    async def ask(asked: Admitted = Depends(admitted)) -> AskResponse:
        answer = await slots.run(bot.ask, asked.question, asked.history, asked.lang)
        return await run_in_threadpool(finished, asked, answer)  # Redis, when shared

    # The stream's events are made in the thread pool, one bot event at a time, in a slot.
    @router.post(f"{PREFIX}/ask/stream", response_class=EventSourceResponse,
                 responses=_STREAM_ERRORS, description=_STREAM_DESCRIPTION,
                 summary="Ask a question; the answer streams as Server-Sent Events")
    async def ask_stream(asked: Admitted = Depends(admitted)) -> AsyncIterator[ServerSentEvent]:
        events = answer_events(bot.stream(asked.question, asked.history, asked.lang),
                               lambda answer: finished(asked, answer))
        async for event in slots.iterate(events):
            yield event

    @router.post(f"{PREFIX}/feedback", response_model=FeedbackResponse,
                 responses={
                     400: _ASK_ERRORS[400],
                     403: _ASK_ERRORS[403],
                     404: {"model": Problem, "description": "Unknown or expired answer_id."},
                     413: {"model": Problem, "description": "Request body too large."},
                     429: {"model": Problem, "description": "Too many votes; see Retry-After."}},
                 summary="Thumbs up or down on an answer (the latest vote on an answer counts)")
    def give_feedback(body: FeedbackRequest, request: Request) -> FeedbackResponse:
        wait = feedback_limiter.retry_after(client_key(request))
        if wait is not None:
            raise HTTPException(429, messages.FEEDBACK_RATE_LIMITED,
                                headers=retry_after_header(wait))
        answer = answers.get(body.answer_id)
        if answer is None:
            raise HTTPException(404, texts.ANSWER_NOT_FOUND)
        feedback.record(answer, body.rating, "api", body.answer_id)
        return FeedbackResponse(recorded=True)

    @router.get(f"{PREFIX}/health", response_model=Health,
                summary="Is the server up, is the model loaded")
    def health() -> Health:
        return Health(status="ok", model_ready=bot.model_ready)

    @router.get(f"{PREFIX}/ready", response_model=Readiness,
                responses={503: {"model": Readiness, "description": "Still loading."}},
                summary="Can the server answer now (for a load balancer's readiness check)")
    def ready() -> JSONResponse:
        is_ready = bool(ready_check())
        return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)

    # Mounted, not included: its own schema and error shapes (/api/v1/openapi.json keeps this
    # API's routes only).
    router.mount(OPENAI_PREFIX, openai_app(bot, web, limiter, slots))
    return router


class ApiMethods:
    """405 with Allow for a method an API path does not take (TRACE, QUERY, GET on /ask...).
    Without it the Gradio page mounted at "/" would catch the request and answer 404."""

    def __init__(self, app: ASGIApp, routes: Iterable) -> None:
        self.app = app
        self.allowed: dict[str, set[str]] = {}
        for route in routes:
            if getattr(route, "path", "").startswith(PREFIX + "/") and getattr(route, "methods", None):
                self.allowed.setdefault(route.path, set()).update(route.methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        methods = self.allowed.get(scope["path"]) if scope["type"] == "http" else None
        if methods and scope["method"] not in methods and scope["method"] != "OPTIONS":
            response = JSONResponse({"detail": "Method Not Allowed"}, status_code=405,
                                    headers={"Allow": ", ".join(sorted(methods))})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _conversation(conversations: Conversations, body: AskRequest
                  ) -> tuple[str | None, list[tuple[str, str]]]:
    """(conversation id or None, earlier turns) for a request."""
    if body.history is not None:
        return None, [(turn.question, turn.answer) for turn in body.history]
    if body.conversation_id is None:
        return conversations.start(), []
    turns = conversations.turns(body.conversation_id)
    if turns is None:
        raise HTTPException(404, texts.CONVERSATION_NOT_FOUND)
    return body.conversation_id, list(turns)


def citations_out(answer: Answer) -> list[CitationOut]:
    return [CitationOut(number=c.number, title=c.passage.title, section=c.passage.section,
                        text=c.passage.text, original=c.passage.original,
                        supporting_sentence=c.supporting_sentence,
                        supporting_translation=c.supporting_translation, source=c.passage.source,
                        passage_id=c.passage.id, page=c.passage.page, url=c.passage.url or "",
                        reviewed_by=c.passage.reviewed_by or "",
                        reviewed_on=c.passage.reviewed_on or "")
            for c in answer.citations]


def _response(answer: Answer, answer_id: str, conversation_id: str | None) -> AskResponse:
    return AskResponse(
        answer=answer.text, disclaimer=answer.disclaimer,
        citations=citations_out(answer),
        declined=answer.declined, red_flag=answer.red_flag, error=answer.error,
        extractive=answer.extractive, verified_fraction=answer.verified_fraction,
        answer_id=answer_id, conversation_id=conversation_id, lang=answer.lang,
    )
