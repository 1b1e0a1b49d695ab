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


def test_a_prompt_gets_the_cache_of_its_own_beginning_cut_back_to_it():
    store = PromptCache()
    store.keep(PREFIX, FakeCache(43 + 20))  # beginning + rest of the prompt + 20 answer tokens
    store.keep([7] * 30, FakeCache(30))
    cache = store.take(PREFIX)
    assert cache is not None and cache.get_seq_length() == 40 and store.reused_tokens == 40
    assert store.take(PREFIX) is None  # lent out: one generate() at a time uses it


def test_a_longer_overlap_with_an_earlier_prompt_is_never_reused():
    """Reusing 41 tokens of an earlier visitor's prompt would read this one in other passes."""
    store = PromptCache()
    store.keep(PREFIX, FakeCache(60))
    assert store.take(PREFIX + [1]) is None and store.reused_tokens == 0
    assert store.take(PREFIX[:30]) is None  # nor a shorter one: the beginning is read whole


def test_short_beginnings_are_not_kept_and_only_a_few_caches_are():
    store = PromptCache(entries=2)
    store.keep([5] * 10, FakeCache(30))
    assert not PromptCache.worth_caching([5] * 10) and store.take([5] * 10) is None
    for first in (1, 2, 3):
        store.keep([first] * 20, FakeCache(20))
    assert store.take([1] * 20) is None  # the oldest went
    assert store.take([3] * 20) is not None


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


@pytest.mark.slow
def test_an_int8_answer_does_not_depend_on_what_was_asked_before():
    """int8 dynamic quantization scales activations per forward pass, so reading a prompt in
    other pieces changes the numbers; every prompt is read as fixed beginning, then the rest."""
    from bot.generation.factory import make_generator
    from bot.settings import load_settings

    generation = load_settings("tiny").generation.model_copy(update={"quantization": "int8-dynamic"})
    rules = {"role": "system", "content": "You answer questions about leg cramps in one short "
             "sentence, using only the numbered source sentences, and cite them like [1]. " * 3}
    question = "[1] Massage helps. [2] Coffee can cause cramps. Does massage help?"

    def ask(generator, text):
        return "".join(generator.stream([rules, {"role": "user", "content": text}], 16))

    first_visitor = make_generator(generation, load_settings("tiny").models_dir)
    alone = ask(first_visitor, question)
    later = make_generator(generation, load_settings("tiny").models_dir)
    ask(later, "[1] Coffee can cause cramps. Can coffee cause cramps?")
    ask(later, question)
    assert later.prompt_cache.reused_tokens >= 50  # the beginning was not read again
    assert ask(later, question) == alone  # asked a third time: still read in the same passes
