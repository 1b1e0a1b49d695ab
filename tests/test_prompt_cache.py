"""The prompt cache: which kept cache a prompt gets, cut to what it shares, and the real model."""
from __future__ import annotations

import pytest

from bot.generation.prompt_cache import PromptCache


class FakeCache:
    """Just the two calls PromptCache makes on a transformers Cache."""

    def __init__(self, length: int) -> None:
        self.length = length

    def get_seq_length(self) -> int:
        return self.length

    def crop(self, tokens_to_remove: int) -> None:
        assert tokens_to_remove < 0  # transformers 5: a negative count removes that many
        self.length += tokens_to_remove


PREFIX = list(range(100, 140))  # 40 tokens: system rules and worked example


def test_a_prompt_gets_the_cache_of_its_longest_shared_beginning_cut_to_it():
    store = PromptCache()
    store.keep(PREFIX + [1, 2, 3], FakeCache(43 + 20))  # prompt + 20 answer tokens
    store.keep([7] * 30, FakeCache(30))
    cache = store.take(PREFIX + [1, 9, 9, 9])
    assert cache is not None and cache.get_seq_length() == 41 and store.reused_tokens == 41
    assert store.take(PREFIX + [1, 9]) is None  # lent out: one generate() at a time uses it


def test_the_last_prompt_token_is_always_read_and_short_overlaps_are_not_reused():
    store = PromptCache()
    store.keep(PREFIX, FakeCache(60))
    assert store.take(PREFIX).get_seq_length() == len(PREFIX) - 1  # generate() needs one token
    store.keep(PREFIX, FakeCache(40))
    assert store.take(PREFIX[:10] + [0] * 30) is None and store.reused_tokens == 0


def test_only_a_few_caches_are_kept():
    store = PromptCache(entries=2)
    for first in (1, 2, 3):
        store.keep([first] * 20, FakeCache(20))
    assert store.take([1] * 20 + [0]) is None  # the oldest went
    assert store.take([3] * 20 + [0]) is not None


@pytest.mark.slow
def test_the_real_model_reads_only_what_a_prompt_does_not_share(tmp_path):
    from bot.generation.factory import make_generator
    from bot.settings import load_settings

    settings = load_settings("tiny")  # float32: reading a prompt in pieces gives the same numbers
    cached = make_generator(settings.generation, settings.models_dir)
    plain = make_generator(settings.generation.model_copy(update={"prompt_cache": False}),
                           settings.models_dir)
    rules = {"role": "system", "content": "You answer questions about leg cramps in one short "
             "sentence, using only the numbered source sentences, and cite them like [1]. " * 3}

    def ask(generator, question):
        return "".join(generator.stream([rules, {"role": "user", "content": question}], 16))

    ask(cached, "[1] Massage helps. Does massage help?")
    second = ask(cached, "[1] Coffee can cause cramps. Can coffee cause cramps?")
    assert cached.prompt_cache.reused_tokens >= 50
    assert second == ask(plain, "[1] Coffee can cause cramps. Can coffee cause cramps?")
