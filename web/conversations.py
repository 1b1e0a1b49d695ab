"""Bounded in-memory stores for the API: conversations by id, recent answers by id.

Memory of one server process only (settings.web.state = "memory"). With several replicas
behind a load balancer, use state = "redis" (web/state.py), route a client to the same replica
(sticky sessions), or let the client send its `history` with each question.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

Value = TypeVar("Value")

MAX_TURNS_KEPT = 20  # the model sees only the last few (settings.generation.history_turns)


class ExpiringStore(Generic[Value]):
    """A thread-safe mapping that forgets entries unused for `ttl_s` seconds and, when full,
    the least recently used one. Hand-written: no cache library is among the pinned
    dependencies, and an OrderedDict with timestamps is all this needs."""

    def __init__(self, max_items: int, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_items = max_items
        self.ttl_s = ttl_s
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, Value]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Value | None:
        """The value, now counted as used; None when unknown or expired."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            if key not in self._items:
                return None
            _, value = self._items.pop(key)
            self._items[key] = (now, value)
            return value

    def put(self, key: str, value: Value) -> None:
        now = self._clock()
        with self._lock:
            self._expire(now)
            self._items.pop(key, None)
            self._items[key] = (now, value)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._items)

    def _expire(self, now: float) -> None:
        # Entries are kept in order of last use, so the expired ones are at the front.
        while self._items:
            used, _ = next(iter(self._items.values()))
            if now - used < self.ttl_s:
                return
            self._items.popitem(last=False)


Turns = tuple[tuple[str, str], ...]  # (question, answer text without the disclaimer)


class ConversationStore:
    """API conversations: an unguessable id for each, and its earlier turns."""

    def __init__(self, max_conversations: int, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._conversations: ExpiringStore[Turns] = ExpiringStore(max_conversations, ttl_s, clock)

    def start(self) -> str:
        conversation_id = secrets.token_urlsafe(16)
        self._conversations.put(conversation_id, ())
        return conversation_id

    def turns(self, conversation_id: str) -> Turns | None:
        """The earlier turns; None when the conversation expired or never existed."""
        return self._conversations.get(conversation_id)

    def add_turn(self, conversation_id: str, question: str, answer_text: str) -> None:
        earlier = self._conversations.get(conversation_id) or ()
        turns = (*earlier, (question, answer_text))[-MAX_TURNS_KEPT:]
        self._conversations.put(conversation_id, turns)

    def __len__(self) -> int:
        return len(self._conversations)
