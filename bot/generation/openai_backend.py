"""Answers from an OpenAI-compatible inference server (vLLM, llama.cpp server, TGI, Ollama, ...).

The app then holds no model: replicas of it stay small and the server, which batches requests
from all of them, scales on its own machines. Streaming chat completions over Server-Sent
Events, greedy (temperature 0), through httpx (already installed with Gradio).
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx

from bot.errors import ConfigError, CrampbotError
from bot.generation.base import ChatMessage

if TYPE_CHECKING:
    from bot.settings import GenerationSettings

logger = logging.getLogger(__name__)

# Used only when the server reports no token count: about four characters per token for
# English with the BPE vocabularies of current chat models.
_CHARS_PER_TOKEN = 4
_CONNECT_TIMEOUT_S = 5.0


class InferenceServerError(CrampbotError):
    """The inference server could not be reached or refused or broke off a request."""


class OpenAICompatibleGenerator:
    """The Generator for a remote `/v1/chat/completions` endpoint; safe to use from many threads."""

    def __init__(self, settings: GenerationSettings, transport: httpx.BaseTransport | None = None) -> None:
        if not settings.base_url:
            raise ConfigError(
                "generation.base_url must name the inference server (e.g. http://127.0.0.1:8080/v1) "
                "when generation.backend is 'openai'."
            )
        self.name = f"{settings.model} at {settings.base_url}"
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        headers = {"Accept": "text/event-stream"}
        api_key = os.environ.get(settings.api_key_env, "") if settings.api_key_env else ""
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        timeout = httpx.Timeout(settings.request_timeout_s, connect=_CONNECT_TIMEOUT_S)
        # trust_env=False: a proxy configured for the desktop must not see clinic questions.
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport, trust_env=False)
        self._last_answer: tuple[str, int] | None = None  # (text, completion tokens) of the last stream
        self._last_lock = threading.Lock()
        self._ready = False

    @property
    def loaded(self) -> bool:
        return self._ready

    def load(self) -> None:
        """Check once that the server answers `GET /models`; InferenceServerError if it does not."""
        if self._ready:
            return
        try:
            response = self._client.get(f"{self.base_url}/models")
        except httpx.HTTPError as error:
            raise self._unreachable(error) from error
        self._raise_for_status(response)
        self._ready = True

    def stream(self, messages: list[ChatMessage], max_new_tokens: int) -> Iterator[str]:
        """Yield the server's greedy answer as it streams; closing the iterator drops the request."""
        body = {
            "model": self.settings.model,
            "messages": list(messages),
            "max_tokens": max_new_tokens,
            "temperature": 0,
            "stream": True,
        }
        pieces: list[str] = []
        usage: int | None = None
        try:
            with self._client.stream("POST", f"{self.base_url}/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    self._raise_for_status(response)
                for event in _sse_data(response.iter_lines()):
                    piece, tokens = _delta(event)
                    usage = tokens if tokens is not None else usage
                    if piece:
                        pieces.append(piece)
                        yield piece
        except httpx.HTTPError as error:
            raise self._unreachable(error) from error
        text = "".join(pieces)
        with self._last_lock:
            self._last_answer = (text, usage if usage is not None else len(pieces))

    def count_tokens(self, text: str) -> int:
        """The server's count for the answer just streamed; otherwise an estimate from length.

        The server's tokenizer is not available here, and a standard tokenization endpoint
        does not exist in the OpenAI API, so only the answer just streamed is counted exactly
        (the server's usage figure, or one token per streamed piece, which is how servers send them).
        """
        with self._last_lock:
            last = self._last_answer
        if last is not None and last[0].strip() == text.strip():
            return last[1]
        return max(1, round(len(text) / _CHARS_PER_TOKEN)) if text else 0

    def close(self) -> None:
        self._client.close()

    def _unreachable(self, error: Exception) -> InferenceServerError:
        logger.warning("inference server %s: %s", self.base_url, error)
        return InferenceServerError(
            f"The inference server at {self.base_url} did not answer ({type(error).__name__}); "
            "check that it is running, then ask again."
        )

    def _raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        logger.warning("inference server %s answered %s: %s", self.base_url, status, response.text[:300])
        if status in (401, 403):
            raise InferenceServerError(
                f"The inference server at {self.base_url} refused the API key (HTTP {status}); "
                f"set it in the environment variable {self.settings.api_key_env}."
            )
        if status in (429, 503):
            raise InferenceServerError(
                f"The inference server at {self.base_url} is busy (HTTP {status}); ask again in a minute."
            )
        raise InferenceServerError(f"The inference server at {self.base_url} failed the request (HTTP {status}).")


def _sse_data(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON payloads of a Server-Sent Events stream, up to `data: [DONE]`.

    Written out rather than taken from a library: chat-completion streams use only single-line
    `data:` fields, and the one SSE package around (httpx-sse) is not a dependency of the project.
    """
    for line in lines:
        if not line.startswith("data:"):
            continue  # comments (": ping"), event names, blank separators
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            return
        if data:
            try:
                payload = json.loads(data)
            except ValueError as error:
                raise InferenceServerError(
                    "The inference server sent an unreadable answer; check that base_url points "
                    "at an OpenAI-compatible API."
                ) from error
            if isinstance(payload, dict) and "error" in payload:
                raise InferenceServerError(
                    "The inference server broke off the answer with an error; ask again."
                )
            yield payload


def _delta(event: dict[str, Any]) -> tuple[str, int | None]:
    """(text piece, completion tokens if this event reports usage) of one stream event."""
    usage = event.get("usage") or {}
    tokens = usage.get("completion_tokens")
    choices = event.get("choices") or []
    piece = (choices[0].get("delta") or {}).get("content") or "" if choices else ""
    return piece, tokens
