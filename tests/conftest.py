"""Shared fixtures: offline environment, settings with a fake generator, the real embedder."""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
for _name in [k for k in os.environ if k.startswith("CRAMPBOT_")]:
    del os.environ[_name]  # a developer's own overrides must not change what tests see

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def fake_settings(tmp_path_factory):
    """Default preset, fake generator, index built once per test session in a temp folder."""
    from bot.settings import load_settings

    return load_settings("default", generation={"backend": "fake"},
                         data_dir=tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def embedder():
    from index.embedding import load_embedder
    from index.settings import EmbeddingSettings

    return load_embedder(EmbeddingSettings())


@pytest.fixture(scope="session")
def shared_retriever(fake_settings, embedder):
    from bot.retrieval import PassageRetriever

    retriever = PassageRetriever(fake_settings, embedder=embedder)
    retriever.load()
    return retriever


@pytest.fixture
def make_bot(fake_settings, shared_retriever):
    """A CrampBot on the real index and embedder whose model replies from a queue."""
    from bot.generation.fake import FakeGenerator
    from bot.pipeline import CrampBot

    def factory(*replies: str, settings=None, mode: str | None = None):
        """`mode="generated"`: the model writes the whole answer (the default composes it)."""
        shared = settings is None
        settings = settings or fake_settings
        if mode is not None:
            settings = settings.model_copy(update={"answer": settings.answer.model_copy(update={"mode": mode})})
        bot = CrampBot(settings, generator=FakeGenerator(replies))
        if shared:
            bot.retriever = shared_retriever
        return bot

    return factory
