"""A scripted generator for fast tests: replies from a queue, or echoes a cited sentence."""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

from bot.generation.base import ChatMessage


class FakeGenerator:
    """Queued replies (like simonw/llm's MockModel); when the queue is empty, a default reply."""

    name = "fake"

    def __init__(self, replies: Iterable[str] = (), default: str = "Cramps have many causes [1].") -> None:
        self.replies = deque(replies)
        self.default = default
        self.calls: list[list[ChatMessage]] = []

    def queue(self, *replies: str) -> None:
        self.replies.extend(replies)

    def stream(self, messages: list[ChatMessage], max_new_tokens: int) -> Iterator[str]:
        self.calls.append(list(messages))
        reply = self.replies.popleft() if self.replies else self.default
        for word in reply.split(" "):
            yield word + " "

    def count_tokens(self, text: str) -> int:
        return len(text.split())
