"""Where the server keeps what outlives one request: the rate limits, API conversations and the
recent answers that can still get a vote. settings.web.state chooses:

- "memory" (default): in this process (web/security.py, web/conversations.py,
  web/feedback.py). Each replica then counts its own share of a limit and knows only its own
  conversations.
- "redis": in Redis (redis-py, settings.web.redis_url), so replicas behind one load balancer
  enforce one limit per visitor, continue each other's conversations and keep one vote per
  answer in a feedback log they share. Keys expire by themselves (the conversation
  time-to-live), so Redis holds no more than the memory store.

If Redis cannot be reached, a question is still answered (the rate limit lets it through and
says so in the log) but conversations and votes get 503 until it is back.
"""
from __future__ import annotations

import json
import logging
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

from bot.settings import WebSettings
from web.conversations import MAX_TURNS_KEPT, ConversationStore, ExpiringStore, Turns
from web.feedback import CHANGES_PER_ANSWER, VoteKind, VoteMemory, Votes
from web.security import RateLimiter

log = logging.getLogger("crampbot.state")

RECENT_ANSWERS = 5000  # answers that can still receive feedback (memory store)
_WINDOW_S = 60.0


class Limiter(Protocol):
    def retry_after(self, client: str) -> float | None: ...


class Conversations(Protocol):
    def start(self) -> str: ...
    def turns(self, conversation_id: str) -> Turns | None: ...
    def add_turn(self, conversation_id: str, question: str, answer_text: str) -> None: ...


class Answers(Protocol):
    def get(self, key: str) -> dict | None: ...
    def put(self, key: str, value: dict) -> None: ...


@dataclass
class ServerState:
    """The stores one server uses; build with `make_state`."""

    ask_limiter: Limiter
    vote_limiter: Limiter
    conversations: Conversations
    answers: Answers
    votes: Votes


def make_state(web: WebSettings) -> ServerState:
    ttl_s = web.conversation_ttl_minutes * 60
    if web.state == "redis":
        import redis

        client = redis.Redis.from_url(web.redis_url, socket_timeout=2, socket_connect_timeout=2)
        prefix = web.redis_prefix
        return ServerState(
            RedisRateLimiter(client, f"{prefix}rate:ask:", web.rate_limit_per_minute),
            RedisRateLimiter(client, f"{prefix}rate:vote:", web.feedback_per_minute),
            RedisConversations(client, f"{prefix}conversation:", ttl_s),
            RedisAnswers(client, f"{prefix}answer:", ttl_s),
            RedisVotes(client, f"{prefix}vote:", ttl_s),
        )
    return ServerState(
        RateLimiter(web.rate_limit_per_minute), RateLimiter(web.feedback_per_minute),
        ConversationStore(web.max_conversations, ttl_s), ExpiringStore(RECENT_ANSWERS, ttl_s),
        VoteMemory(),
    )


# A sliding 60-second log per client in a sorted set, checked and updated in one step.
_SLIDING_WINDOW = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(window - (now - tonumber(oldest[2])))
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(window))
return false
"""


class RedisRateLimiter:
    """RateLimiter's contract, counted in Redis for all replicas."""

    def __init__(self, client, prefix: str, per_minute: int) -> None:
        self.client = client
        self.prefix = prefix
        self.per_minute = per_minute
        self._script = client.register_script(_SLIDING_WINDOW)

    def retry_after(self, client: str) -> float | None:
        import redis

        try:
            wait = self._script(keys=[self.prefix + client],
                                args=[time.time(), _WINDOW_S, self.per_minute,
                                      secrets.token_hex(8)])
        except redis.RedisError as error:
            log.warning("rate limit not checked, Redis unavailable: %s", error)
            return None
        return None if wait is None else max(0.0, float(wait))


class RedisConversations:
    """ConversationStore's contract in Redis: one JSON list of turns per conversation id."""

    def __init__(self, client, prefix: str, ttl_s: float) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_s = math.ceil(ttl_s)

    def start(self) -> str:
        conversation_id = secrets.token_urlsafe(16)
        self.client.set(self.prefix + conversation_id, "[]", ex=self.ttl_s)
        return conversation_id

    def turns(self, conversation_id: str) -> Turns | None:
        key = self.prefix + conversation_id
        stored = self.client.getex(key, ex=self.ttl_s)  # read and keep alive
        if stored is None:
            return None
        return tuple((question, answer) for question, answer in json.loads(stored))

    def add_turn(self, conversation_id: str, question: str, answer_text: str) -> None:
        earlier = self.turns(conversation_id) or ()
        turns = [*earlier, (question, answer_text)][-MAX_TURNS_KEPT:]
        self.client.set(self.prefix + conversation_id, json.dumps(turns), ex=self.ttl_s)


class RedisAnswers:
    """Recent answers (what a vote stores about them) in Redis, by answer id."""

    def __init__(self, client, prefix: str, ttl_s: float) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_s = math.ceil(ttl_s)

    def get(self, key: str) -> dict | None:
        stored = self.client.get(self.prefix + key)
        return None if stored is None else json.loads(stored)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.client.set(self.prefix + key, json.dumps(value), ex=self.ttl_s)


# An answer's latest rating and its number of changes, decided and updated in one step.
_CAST_VOTE = """
local rating, changes = unpack(redis.call('HMGET', KEYS[1], 'rating', 'changes'))
local kind = 'first'
if rating then
  if rating == ARGV[1] or tonumber(changes) >= tonumber(ARGV[2]) then return 'same' end
  kind = 'changed'
end
redis.call('HSET', KEYS[1], 'rating', ARGV[1], 'changes', rating and tonumber(changes) + 1 or 0)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return kind
"""


class RedisVotes:
    """VoteMemory's contract in Redis, so that replicas writing one feedback log agree on
    which vote on an answer is its first and which a change; kept as long as the answer."""

    def __init__(self, client, prefix: str, ttl_s: float) -> None:
        self.prefix = prefix
        self.ttl_s = math.ceil(ttl_s)
        self._script = client.register_script(_CAST_VOTE)

    def cast(self, answer_id: str, rating: str) -> VoteKind:
        kind = self._script(keys=[self.prefix + answer_id],
                            args=[rating, CHANGES_PER_ANSWER, self.ttl_s])
        return kind.decode() if isinstance(kind, bytes) else kind


async def shared_state_unavailable(request, error) -> "JSONResponse":
    """503 when Redis does not answer (app.py registers it for redis.RedisError)."""
    from fastapi.responses import JSONResponse

    from web import messages

    log.warning("shared state unavailable: %s", error)
    return JSONResponse({"detail": messages.STATE_UNAVAILABLE}, status_code=503,
                        headers={"Retry-After": "5"})
