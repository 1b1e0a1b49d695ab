"""The key/value cache of a prompt's fixed beginning, read once and reused by every prompt.

Every composed answer's prompt starts with the same system rules and worked example; reading
them again costs about a third of the prompt time on 2 cores. transformers reuses a cache passed
to generate() and reads only the tokens it lacks (its documented "re-use a prompt cache"); this
module only keeps which cache belongs to which beginning. transformers has no store of caches
keyed by prefix, which is why this is written here.

Only the fixed beginning (everything before the last message's text) is ever reused, never a
longer overlap with an earlier visitor's prompt: with int8 dynamic quantization the numbers
depend on how a prompt is cut into forward passes, so an answer must not depend on what was
asked before. Every prompt is read the same way, beginning then rest, the first one included.
"""
from __future__ import annotations

from typing import Any

_MIN_SHARED_TOKENS = 16  # a shorter beginning is not worth keeping a cache for


class PromptCache:
    """A few (beginning token ids, cache) pairs; a cache is lent out and kept again after use."""

    def __init__(self, entries: int = 3) -> None:
        self.entries = entries
        self._kept: list[tuple[tuple[int, ...], Any]] = []
        self.reused_tokens = 0  # of the last take(): how many prompt tokens were not read again

    @staticmethod
    def worth_caching(beginning: list[int]) -> bool:
        return len(beginning) >= _MIN_SHARED_TOKENS

    def take(self, beginning: list[int]) -> Any | None:
        """The kept cache of exactly this beginning, cut back to it, or None."""
        key = tuple(beginning)
        self.reused_tokens = 0
        for k, (kept, cache) in enumerate(self._kept):
            if kept == key:
                del self._kept[k]
                excess = cache.get_seq_length() - len(key)
                if excess > 0:
                    cache.crop(-excess)  # transformers: a negative count removes that many tokens
                self.reused_tokens = len(key)
                return cache
        return None

    def keep(self, beginning: list[int], cache: Any) -> None:
        """Keep `cache` (after generate(): the beginning, the rest and the answer) for later
        prompts with the same beginning; it is cut back to the beginning when taken."""
        if cache is None or not self.worth_caching(beginning) or cache.get_seq_length() < len(beginning):
            return
        self._kept.insert(0, (tuple(beginning), cache))
        del self._kept[self.entries:]
