"""A GGUF model run in-process by llama.cpp (the optional `llama-cpp-python` extra), greedy, streaming.

llama.cpp runs the quantized GGUF weights directly with its own CPU kernels, so the default
model decodes several times faster than the dequantized transformers path on a small CPU
(bench/README.md, "Generation"). The chat template is the one stored in the GGUF.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bot.errors import ModelNotAvailable
from bot.generation.base import ChatMessage
from bot.generation.model_files import ResolvedModel

if TYPE_CHECKING:
    from bot.settings import GenerationSettings

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install -r requirements-llamacpp.txt"


_NOT_INSTALLED = (
    "The llama.cpp backend needs the optional llama-cpp-python package, which is not installed; "
    f"install it with `{INSTALL_HINT}` (it compiles llama.cpp, about 10 minutes) or choose "
    "generation.backend 'transformers'."
)


def llama_cpp_installed() -> bool:
    """True when llama_cpp can be imported (checked without importing it, which loads the library)."""
    return importlib.util.find_spec("llama_cpp") is not None


def import_llama_cpp() -> Any:
    """The llama_cpp module, or ModelNotAvailable saying how to install the extra."""
    try:
        import llama_cpp
    except ImportError as error:
        raise ModelNotAvailable(_NOT_INSTALLED) from error
    return llama_cpp


class LlamaCppGenerator:
    """The Generator for a GGUF file through llama.cpp; `load()` is explicit, or on first use."""

    def __init__(self, resolved: ResolvedModel, settings: GenerationSettings) -> None:
        if not llama_cpp_installed():
            raise ModelNotAvailable(_NOT_INSTALLED)
        if resolved.kind != "gguf":
            raise ModelNotAvailable(
                f"The llama.cpp backend reads .gguf files only, and {resolved.path} is a "
                "transformers folder; choose generation.backend 'transformers' for it."
            )
        self.name = resolved.display_name
        self.resolved = resolved
        self.settings = settings
        self.load_seconds: float | None = None
        self._llama: Any = None
        self._load_lock = threading.Lock()
        # A llama.cpp context holds one KV cache: two answers at once would corrupt each other.
        self._generate_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    def load(self) -> None:
        """Map the GGUF into memory once (thread-safe); ModelNotAvailable if it cannot be read."""
        with self._load_lock:
            if self._llama is not None:
                return
            llama_cpp = import_llama_cpp()
            threads = self.settings.threads or os.cpu_count() or 1
            started = time.perf_counter()
            try:
                llama = llama_cpp.Llama(
                    model_path=str(self.resolved.path),
                    n_ctx=self.settings.context_tokens,
                    n_threads=threads,
                    n_threads_batch=threads,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as error:
                raise ModelNotAvailable(
                    f"llama.cpp could not load {self.name} from {self.resolved.path} "
                    f"({type(error).__name__}: {error})."
                ) from error
            if "tokenizer.chat_template" not in llama.metadata:
                raise ModelNotAvailable(
                    f"{self.name} has no chat template in its GGUF, so it cannot be used as a chat model."
                )
            self._llama = llama
            self.load_seconds = time.perf_counter() - started
            logger.info("Loaded %s with llama.cpp in %.1f s", self.name, self.load_seconds)

    def stream(self, messages: list[ChatMessage], max_new_tokens: int) -> Iterator[str]:
        """Yield the greedy answer as it is decoded; closing the iterator stops generation."""
        self.load()
        with self._generate_lock:
            chunks = self._llama.create_chat_completion(
                messages=list(messages),
                max_tokens=max_new_tokens,
                temperature=0.0,  # llama-cpp-python samples greedily at exactly 0
                repeat_penalty=1.0,
                stream=True,
            )
            try:
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            finally:
                # Closing the chunk generator stops llama.cpp between two tokens.
                chunks.close()

    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))
