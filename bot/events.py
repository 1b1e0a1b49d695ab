"""Events a streaming reply is made of, in order: Status*, Retrieved?, Delta*, Done."""
from __future__ import annotations

from dataclasses import dataclass

from bot.answer import Answer, RetrievedPassage


@dataclass(frozen=True)
class Status:
    """Progress a user may see while waiting ("Loading the model...")."""

    text: str


@dataclass(frozen=True)
class Retrieved:
    """Passages found for the question, before generation starts."""

    passages: list[RetrievedPassage]


@dataclass(frozen=True)
class Delta:
    """A piece of the answer as the model writes it (unverified draft text)."""

    text: str


@dataclass(frozen=True)
class Done:
    """The final, verified answer: replaces the draft. Always the last event."""

    answer: Answer


BotEvent = Status | Retrieved | Delta | Done
