"""The key/value cache of the last prompts, reused for the next prompt's shared beginning.

Every composed answer's prompt starts with the same system rules and worked example; reading
them again costs about a third of the prompt time on 2 cores. transformers reuses a cache passed
to generate() and reads only the tokens it lacks (its documented "re-use a prompt cache"); this
module only picks which cache to pass: the one sharing the longest token prefix, cut back to it.
transformers has no store of caches keyed by prefix, which is why this is written here.
"""
from __future__ import annotations

from typing import Any

_MIN_SHARED_TOKENS = 16  # fewer shared tokens are not worth keeping a cache for


class PromptCache:
    """A few (prompt token ids, cache) pairs; a cache is lent out and kept again after use."""

    def __init__(self, entries: int = 3) -> None:
        self.entries = entries
        self._kept: list[tuple[list[int], Any]] = []
        self.reused_tokens = 0  # of the last take(): how many prompt tokens were not read again

    def take(self, ids: list[int]) -> Any | None:
        """The kept cache sharing the longest prefix with `ids`, cut to that prefix (at most all
        but the last token, which generate() must read), or None."""
        best, shared = None, 0
        for k, (kept_ids, _) in enumerate(self._kept):
            n = _common_prefix(kept_ids, ids)
            if n > shared:
                best, shared = k, n
        shared = min(shared, len(ids) - 1)
        self.reused_tokens = 0
        if best is None or shared < _MIN_SHARED_TOKENS:
            return None
        kept_ids, cache = self._kept.pop(best)
        excess = cache.get_seq_length() - shared
        if excess > 0:
            cache.crop(-excess)  # transformers: a negative count removes that many tokens
        self.reused_tokens = shared
        return cache

    def keep(self, ids: list[int], cache: Any) -> None:
        """Keep `cache` (after generate(): the prompt `ids` and the answer) for later prompts."""
        if cache is None or cache.get_seq_length() < _MIN_SHARED_TOKENS:
            return
        self._kept.insert(0, (list(ids), cache))
        del self._kept[self.entries:]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
