"""Turn a question, its passages and the recent conversation into chat messages for the model.

User text only ever lands in the user turn, quoted as data; it never joins the system rules.
"""
from __future__ import annotations

from collections.abc import Sequence

from bot.generation.base import ChatMessage
from bot.texts import SOURCE_LINE, SYSTEM_PROMPT, USER_PROMPT, without_disclaimer
from corpus.passage import Passage


def shorten(text: str, limit: int) -> str:
    """Cut at a sentence or word boundary so the prompt stays short (speed on 2 CPU cores)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    for stop in (". ", "? ", "! "):
        at = cut.rfind(stop)
        if at > limit // 2:
            return cut[: at + 1]
    return cut.rsplit(" ", 1)[0] + "…"


def format_sources(passages: Sequence[Passage], max_chars: int) -> str:
    return "\n".join(
        SOURCE_LINE.format(n=n, section=p.section or p.title, text=shorten(p.text, max_chars))
        for n, p in enumerate(passages, start=1)
    )


def build_messages(
    question: str,
    passages: Sequence[Passage],
    history: Sequence[tuple[str, str]],
    *,
    history_turns: int,
    max_passage_chars: int,
) -> list[ChatMessage]:
    """System rules, the last few turns (answers without disclaimer or sources), then the question."""
    messages: list[ChatMessage] = [{"role": "system", "content": SYSTEM_PROMPT}]
    recent = list(history)[-history_turns:] if history_turns else []
    for user_text, answer_text in recent:
        messages.append({"role": "user", "content": user_text})
        # The disclaimer is ours, not the model's: never teach the model to write it.
        messages.append({"role": "assistant", "content": without_disclaimer(answer_text).strip()})
    messages.append({
        "role": "user",
        "content": USER_PROMPT.format(
            sources=format_sources(passages, max_passage_chars), question=question
        ),
    })
    return messages
