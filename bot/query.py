"""What retrieval searches for: the user's message made standalone (follow-ups) and English."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.generation.base import ChatMessage
from bot.safety.input_guard import plain_text_for_retrieval
from bot.settings import Settings

# Runs the local model on chat messages with a token budget and returns its text; None when the
# model must not be used (retrieval-only evaluation).
Rewriter = Callable[[list[ChatMessage], int], str]


@dataclass(frozen=True)
class SearchQuery:
    text: str  # what the retrievers see
    standalone_question: str | None = None  # shown to the user when it differs from the message
    rewrite_ms: float = 0.0


def search_query(
    message: str, history: Sequence[tuple[str, str]], settings: Settings,
    rewriter: Rewriter | None = None,
) -> SearchQuery:
    return SearchQuery(text=plain_text_for_retrieval(message))
