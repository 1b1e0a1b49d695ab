"""POST /api/v1/ask/stream's Server-Sent Events, made from the pipeline's event stream
(bot/events.py): `status`, `retrieved`, `delta` (the unverified draft), `done` (the verified
answer, the fields of /api/v1/ask's reply), or `error` if something fails after the stream began.

FastAPI's own SSE support (fastapi.sse, in the pinned FastAPI) writes the wire format, sends
the no-cache and no-proxy-buffering headers and a keep-alive comment every 15 s of silence (a
model loading for a minute); sse-starlette would add a runtime dependency for the same.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from fastapi.sse import ServerSentEvent
from pydantic import BaseModel, Field

from bot import texts
from bot.answer import Answer, RetrievedPassage
from bot.events import BotEvent, Delta, Done, Retrieved, Status

log = logging.getLogger("crampbot.api")


class StatusEvent(BaseModel):
    text: str = Field(description="Progress to show while waiting, e.g. that the model loads.")


class RetrievedSource(BaseModel):
    title: str
    section: str
    source: str = Field(description="File name of the source in the corpus.")
    passage_id: str


class RetrievedEvent(BaseModel):
    passages: list[RetrievedSource] = Field(
        description="Passages found for the question, best first, before the answer is written; "
        "the answer's citations (in `done`) are chosen from them.")


class DeltaEvent(BaseModel):
    text: str = Field(description="The next piece of the draft. The draft is unverified: "
                                  "`done`'s answer replaces it.")


class ErrorEvent(BaseModel):
    detail: str = Field(description="What went wrong; the stream ends after it.")


def _sources(passages: list[RetrievedPassage]) -> RetrievedEvent:
    return RetrievedEvent(passages=[
        RetrievedSource(title=r.passage.title, section=r.passage.section,
                        source=r.passage.source, passage_id=r.passage.id)
        for r in passages])


def answer_events(events: Iterable[BotEvent], finish: Callable[[Answer], BaseModel]
                  ) -> Iterator[ServerSentEvent]:
    """The SSE events of one reply; `finish` turns the final Answer into `done`'s payload
    (and keeps the turn). Never raises: a failure once the response has started can only be
    told in the stream, so it becomes an `error` event, never a traceback."""
    try:
        for event in events:
            if isinstance(event, Status):
                yield ServerSentEvent(event="status", data=StatusEvent(text=event.text))
            elif isinstance(event, Retrieved):
                yield ServerSentEvent(event="retrieved", data=_sources(event.passages))
            elif isinstance(event, Delta):
                yield ServerSentEvent(event="delta", data=DeltaEvent(text=event.text))
            elif isinstance(event, Done):
                yield ServerSentEvent(event="done", data=finish(event.answer))
                return
        log.error("the bot's stream ended without a final answer")
    except Exception:
        log.exception("internal error while streaming an answer")
    yield ServerSentEvent(event="error", data=ErrorEvent(detail=texts.INTERNAL_ERROR))
