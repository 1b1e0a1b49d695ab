"""Builds the configured Generator; callers never name a backend class.

A new backend is one more builder in `_BUILDERS` and one more name in
`GenerationSettings.backend`; nothing that calls `make_generator` changes. Each builder imports
its backend's module itself, so that unit tests (fake) never import torch and a missing
optional extra (llama-cpp-python) only matters to the one backend that needs it.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot.errors import ConfigError
from bot.generation.base import Generator
from bot.generation.fake import FakeGenerator
from bot.generation.model_files import resolve_model
from bot.settings import GenerationSettings


def _fake(settings: GenerationSettings, models_dir: Path) -> Generator:
    return FakeGenerator()


def _transformers(settings: GenerationSettings, models_dir: Path) -> Generator:
    # Imported here so that the fake backend (unit tests) never pays for importing torch.
    from bot.generation.transformers_backend import TransformersGenerator

    return TransformersGenerator(resolve_model(settings.model, models_dir), settings, models_dir)


def _llamacpp(settings: GenerationSettings, models_dir: Path) -> Generator:
    from bot.generation.llamacpp_backend import LlamaCppGenerator

    return LlamaCppGenerator(resolve_model(settings.model, models_dir), settings)


def _openai(settings: GenerationSettings, models_dir: Path) -> Generator:
    from bot.generation.openai_backend import OpenAICompatibleGenerator

    # `model` names the server's model here; nothing is read from models_dir.
    return OpenAICompatibleGenerator(settings)


_BUILDERS: dict[str, Callable[[GenerationSettings, Path], Generator]] = {
    "fake": _fake,
    "transformers": _transformers,
    "llamacpp": _llamacpp,
    "openai": _openai,
}


def backend_names() -> list[str]:
    return sorted(_BUILDERS)


def make_generator(settings: GenerationSettings, models_dir: Path) -> Generator:
    """The Generator `settings.backend` names, not yet loaded; ModelNotAvailable if its model is
    missing (or, for llamacpp, if the optional llama-cpp-python package is not installed).

    Packaged models are found (and joined, the first time) here, which is quick; the weights
    load on the generator's `load()` or first `stream()`.
    """
    try:
        build = _BUILDERS[settings.backend]
    except KeyError:
        raise ConfigError(
            f"Unknown generation backend '{settings.backend}'; choose one of: {', '.join(backend_names())}."
        ) from None
    return build(settings, Path(models_dir))
