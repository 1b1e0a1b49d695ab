"""The one interface every generation backend implements."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, TypedDict


class ChatMessage(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


class Generator(Protocol):
    """Turns chat messages into streamed text. Greedy and deterministic where the backend can be."""

    name: str

    def stream(self, messages: list[ChatMessage], max_new_tokens: int) -> Iterator[str]:
        """Yield the answer as text pieces as soon as they are decoded."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` by this backend's tokenizer (for tokens/s figures)."""
        ...
