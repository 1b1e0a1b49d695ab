"""A local model run by Hugging Face transformers on the CPU, offline, streaming greedy answers.

GGUF files are dequantized by transformers at load time (about a minute for 1.5B parameters);
with `cache_dequantized` the result is saved once under models_dir so later loads take seconds.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import pickle
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The hub must never be asked for anything: local_files_only=True below is the hard guarantee;
# this also makes huggingface_hub skip its network checks (it reads the variable at import).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402  (after the offline switch)
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoTokenizer,
    DynamicCache,
    GgufConfig,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from bot.errors import ModelNotAvailable  # noqa: E402
from bot.generation import int8_weights  # noqa: E402
from bot.generation.base import ChatMessage  # noqa: E402
from bot.generation.model_files import ResolvedModel  # noqa: E402
from bot.generation.prompt_cache import PromptCache  # noqa: E402

if TYPE_CHECKING:
    from bot.settings import GenerationSettings

logger = logging.getLogger(__name__)

_CACHE_MANIFEST = "crampbot-dequantized.json"
# Chat models end a turn with their own token, which GGUF metadata does not always name as EOS.
_END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")


class TransformersGenerator:
    """The Generator for a GGUF file or transformers folder; `load()` is explicit, or on first use."""

    def __init__(self, resolved: ResolvedModel, settings: GenerationSettings, models_dir: Path) -> None:
        self.name = resolved.display_name
        self.resolved = resolved
        self.settings = settings
        self.models_dir = Path(models_dir)
        self.load_seconds: float | None = None
        self.loaded_from: str | None = None  # "gguf", "dequantized cache", "int8 cache" or "folder"
        self.load_phases: dict[str, float] = {}  # seconds per loading step, for bench/
        self._model: Any = None
        self._tokenizer: Any = None
        self._stop_token_ids: list[int] = []
        self._pad_token_id: int | None = None
        self._prefill_model: Any = None
        self.prompt_cache = PromptCache() if settings.prompt_cache else None
        self._load_lock = threading.Lock()
        # One generate() at a time per model: concurrent calls would split the CPU threads and
        # both answers would arrive slowly; callers queue instead.
        self._generate_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load tokenizer and weights once (thread-safe); raises ModelNotAvailable if they cannot be read."""
        with self._load_lock:
            if self._model is not None:
                return
            torch.set_num_threads(self.settings.threads or os.cpu_count() or 1)
            started = time.perf_counter()
            try:
                model, tokenizer, source = self._load_weights()
                self.load_phases["weights_s"] = round(time.perf_counter() - started, 2)
            except (OSError, ValueError, KeyError, RuntimeError, ImportError) as error:
                raise ModelNotAvailable(
                    f"Loading {self.name} from {self.resolved.path} failed ({type(error).__name__}: "
                    f"{str(error).splitlines()[0] if str(error) else 'no details'})."
                ) from error
            if self.settings.quantization == "int4-weight" and self.settings.int4_prefill_bfloat16:
                # Read prompts with a bfloat16 copy (see _prefill): ~3 GB more for the default model.
                self._prefill_model = copy.deepcopy(model.to(torch.bfloat16))
            if source != "int8 cache":
                quantizing = time.perf_counter()
                model = _quantized(model, self.settings.quantization, self._cache_dir())
                self.load_phases["quantize_s"] = round(time.perf_counter() - quantizing, 2)
            if tokenizer.chat_template is None:
                raise ModelNotAvailable(f"{self.name} has no chat template, so it cannot be used as a chat model.")
            self._tokenizer = tokenizer
            self._stop_token_ids = _stop_token_ids(tokenizer, model)
            pad = tokenizer.pad_token_id
            self._pad_token_id = pad if pad is not None else self._stop_token_ids[0]
            self._model = model
            self.load_seconds = time.perf_counter() - started
            self.loaded_from = source
            logger.info("Loaded %s from %s in %.1f s (%s)", self.name, source, self.load_seconds,
                        ", ".join(f"{step} {seconds}" for step, seconds in self.load_phases.items()))

    def stream(self, messages: list[ChatMessage], max_new_tokens: int) -> Iterator[str]:
        """Yield the greedy answer as it is decoded; closing the iterator stops generation."""
        self.load()
        with self._generate_lock:
            yield from self._stream_locked(messages, max_new_tokens)

    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_tokens(self, messages: list[ChatMessage]) -> int:
        """Tokens the model reads for `messages`, chat template included."""
        self.load()
        return int(self._encode(messages)["input_ids"].shape[1])

    # -- generation ---------------------------------------------------------------------------

    def _encode(self, messages: list[ChatMessage]) -> Any:
        return self._tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    def _stream_locked(self, messages: list[ChatMessage], max_new_tokens: int) -> Iterator[str]:
        inputs = self._encode(messages)
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancelled = threading.Event()
        failure: list[BaseException] = []

        ids = inputs["input_ids"][0].tolist()
        beginning = self._fixed_beginning(messages, ids) if self.prompt_cache is not None else []

        def generate() -> None:
            cache = None
            try:
                cache = self._prefill(inputs) or self._reused(beginning)
                self._model.generate(
                    **inputs,
                    past_key_values=cache,
                    streamer=streamer,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    # Sampling defaults some models ship would only raise warnings under greedy.
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    eos_token_id=self._stop_token_ids,
                    pad_token_id=self._pad_token_id,
                    stopping_criteria=StoppingCriteriaList([_Cancelled(cancelled)]),
                    **self._assisted(),
                )
                if self.prompt_cache is not None and self._prefill_model is None:
                    self.prompt_cache.keep(beginning, cache)
            except BaseException as error:  # re-raised in the caller's thread below
                failure.append(error)
                streamer.end()  # unblocks the consumer, which would otherwise wait forever

        worker = threading.Thread(target=generate, name=f"generate-{self.name}", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            # Reached also when the caller stops reading early: stop decoding, free the model.
            cancelled.set()
            worker.join()
        if failure:
            raise failure[0]

    def _assisted(self) -> dict[str, Any]:
        """generate() arguments for prompt-lookup decoding, when it is on."""
        tokens = self.settings.prompt_lookup_tokens
        return {"prompt_lookup_num_tokens": tokens} if tokens else {}

    def _fixed_beginning(self, messages: list[ChatMessage], ids: list[int]) -> list[int]:
        """The prompt's tokens before the last message's text: what every prompt with these
        rules and this worked example shares, whatever the visitor asks."""
        if not messages:
            return []
        other = [*messages[:-1], {**messages[-1], "content": "\u2047"}]  # any other text
        other_ids = self._encode(other)["input_ids"][0].tolist()
        shared = next((n for n, (a, b) in enumerate(zip(ids, other_ids)) if a != b),
                      min(len(ids), len(other_ids)))
        return ids[:min(shared, len(ids) - 1)]  # generate() must read at least one token

    def _reused(self, beginning: list[int]) -> Any:
        """A cache holding exactly the prompt's fixed beginning (kept, or read now in a pass of
        its own), so every prompt is read in the same two passes; None when caching is off."""
        if self.prompt_cache is None or not self.prompt_cache.worth_caching(beginning):
            return None
        cache = self.prompt_cache.take(beginning)
        if cache is None:
            cache = DynamicCache(config=self._model.config)
            with torch.no_grad():  # not inference_mode: generate() appends to these tensors later
                self._model(input_ids=torch.tensor([beginning]), past_key_values=cache, use_cache=True)
        return cache

    def _prefill(self, inputs: Any) -> Any:
        """The prompt's key/value cache from the bfloat16 copy, or None (generate reads the prompt).

        int4 weights decode about 2.5x faster than bfloat16 here, but torch's int4 CPU kernel is
        built for one token at a time and reads a 400-token prompt about 2x slower
        (bench/README.md, "Generation"). So the bfloat16 copy reads all but the last prompt
        token and the int4 model continues from that cache: transformers' documented way to
        reuse a prompt cache (generate() then only runs the tokens the cache lacks).
        """
        if self._prefill_model is None or inputs["input_ids"].shape[1] < 2:
            return None
        cache = DynamicCache(config=self._prefill_model.config)
        with torch.no_grad():  # not inference_mode: generate() appends to these tensors later
            self._prefill_model(
                input_ids=inputs["input_ids"][:, :-1],
                attention_mask=inputs["attention_mask"][:, :-1],
                past_key_values=cache,
                use_cache=True,
            )
        return cache

    # -- loading ------------------------------------------------------------------------------

    def _load_weights(self) -> tuple[Any, Any, str]:
        if self.resolved.kind == "transformers":
            return (*self._from_folder(self.resolved.path), "folder")
        cache = self._cache_dir()
        if cache is not None and (cache / _CACHE_MANIFEST).is_file():
            int8 = self._from_int8_cache(cache)
            if int8 is not None:
                return (*int8, "int8 cache")
            return (*self._from_folder(cache), "dequantized cache")
        model, tokenizer = self._from_gguf()
        if cache is not None:
            self._save_dequantized(model, tokenizer, cache)
        return model, tokenizer, "gguf"

    def _from_int8_cache(self, cache: Path) -> tuple[Any, Any] | None:
        """The int8 model from its cached weights (the bfloat16 linear weights are not read), or
        None when quantization is not int8-dynamic or there is no usable int8 cache."""
        path = int8_weights.cache_file(cache)
        if self.settings.quantization != "int8-dynamic" or not path.is_file():
            return None
        try:
            with _quiet_quantization():
                model = int8_weights.load_model(cache, path, workers=torch.get_num_threads(),
                                                phases=self.load_phases)
        except (OSError, RuntimeError, KeyError, ValueError, ImportError,
                pickle.UnpicklingError) as error:
            logger.warning("Ignoring the int8 cache %s (%s); quantizing again", path, error)
            return None
        return model, AutoTokenizer.from_pretrained(cache, local_files_only=True)

    def _torch_dtype(self) -> Any:
        return {"bfloat16": torch.bfloat16, "float32": torch.float32, "auto": "auto"}[self.settings.dtype]

    def _from_folder(self, folder: Path) -> tuple[Any, Any]:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=self._torch_dtype(), local_files_only=True)
        return model, tokenizer

    def _from_gguf(self) -> tuple[Any, Any]:
        folder, file_name = self.resolved.path.parent, self.resolved.path.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file_name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            folder,
            gguf_file=file_name,
            # Plain dense weights: GGUF matmul kernels come from the hub (never reached here), and
            # only a dense model can be saved as the dequantized cache.
            quantization_config=GgufConfig(dequantize=True),
            dtype=self._torch_dtype(),
            local_files_only=True,
        )
        return model, tokenizer

    def _cache_dir(self) -> Path | None:
        """Folder for the dequantized copy, keyed by the GGUF's content (or identity) and dtype."""
        if not self.settings.cache_dequantized or self.resolved.kind != "gguf":
            return None
        path = self.resolved.path
        if self.resolved.sha256:
            key = self.resolved.sha256
        else:
            # Hashing a user's multi-GB file on every start would cost more than the cache saves;
            # its path, size and mtime identify it well enough (any change misses the cache).
            stat = path.stat()
            identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
            key = hashlib.sha256(identity.encode()).hexdigest()
        return self.models_dir / "dequantized" / f"{path.stem}-{key[:16]}-{self.settings.dtype}"

    def _save_dequantized(self, model: Any, tokenizer: Any, cache: Path) -> None:
        """Write the loaded model as safetensors into `cache`, atomically; failure only costs speed."""
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=cache.parent, prefix=f".{cache.name}.", suffix=".partial"))
        try:
            # The weights are plain tensors now; without this the saved config would claim to be
            # GGUF-quantized and loading the folder would look for a .gguf file.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(partial)
            tokenizer.save_pretrained(partial)
            manifest = {
                "source": str(self.resolved.path),
                "source_sha256": self.resolved.sha256,
                "dtype": self.settings.dtype,
                "transformers": transformers.__version__,
            }
            (partial / _CACHE_MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            os.chmod(partial, 0o755)  # mkdtemp makes it private; other users of the app may read it
            os.replace(partial, cache)  # an existing (concurrently written) cache makes this fail
        except OSError as error:
            logger.warning("Could not cache the dequantized model in %s: %s", cache, error)
        finally:
            shutil.rmtree(partial, ignore_errors=True)


def _quantized(model: Any, quantization: str, cache_dir: Path | None = None) -> Any:
    """The model with its linear layers' weights in int8 when asked ('int8-dynamic'), else as is.

    torch's dynamic quantization keeps int8 weights (one scale per output channel) and
    quantizes each activation on the fly, with int8 matrix kernels (fbgemm, AVX-512 VNNI here)
    that decode several times faster on CPU than bfloat16 (bench/README.md, "Generation").
    Those kernels take float32 activations, so the rest of the model (embeddings, norms) is
    float32 too. With a `cache_dir` (the dequantized cache's folder) the int8 weights are saved
    there once; later starts read them directly (`TransformersGenerator._load_weights`).
    """
    if quantization == "none":
        return model
    if quantization == "int4-weight":
        return _int4_weight_only(model)
    if quantization != "int8-dynamic":
        raise ValueError(f"unknown quantization {quantization!r}")
    with _quiet_quantization():
        model = int8_weights.quantize(model)
        if cache_dir is not None and cache_dir.is_dir():
            int8_weights.save(model, int8_weights.cache_file(cache_dir))
    return model


@contextlib.contextmanager
def _quiet_quantization() -> Iterator[None]:
    """torch deprecates its eager quantization API in favour of torchao (an optional extra
    here), and torch.load warns about the storages inside quantized tensors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning, UserWarning))
        yield


def _int4_weight_only(model: Any) -> Any:
    """Linear weights as 4-bit groups (128 weights share a scale), activations stay bfloat16.

    torchao's CPU int4 layout packs each weight for torch's tinygemm CPU kernel
    (`_weight_int4pack_mm_for_cpu`): a decode step reads a quarter of the bfloat16 bytes, and
    decoding on CPU is bound by memory reads (torchao: requirements-int4.txt, optional). The GGUF
    weights are themselves 4-6 bit, so little is lost. The default preset uses int8-dynamic,
    which decodes as fast and also reads prompts faster (bench/README.md, "Generation").
    """
    try:
        from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig
        from torchao.quantization import quantize_
    except ImportError:
        # Slower, not broken: answer with the bfloat16 weights rather than not at all.
        logger.warning("quantization 'int4-weight' needs torchao (pip install --no-deps -r "
                       "requirements-int4.txt); using bfloat16 weights, which decode about 2.5x slower")
        return model
    # set_inductor_config only tunes torch.compile, which this backend does not use.
    quantize_(model.to(torch.bfloat16), PrototypeInt4WeightOnlyConfig(group_size=128, set_inductor_config=False))
    int8_weights.release_freed_memory()
    return model


class _Cancelled(StoppingCriteria):
    """Stopping criterion that ends generate() once the reader has gone away."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool)


def _stop_token_ids(tokenizer: Any, model: Any) -> list[int]:
    """EOS ids from tokenizer and model, plus the model's end-of-turn token when it has one."""
    ids: list[int] = []
    configured = model.generation_config.eos_token_id
    candidates = [tokenizer.eos_token_id, *(configured if isinstance(configured, list) else [configured])]
    vocab = tokenizer.get_vocab()
    candidates += [vocab[token] for token in _END_OF_TURN_TOKENS if token in vocab]
    for token_id in candidates:
        if token_id is not None and token_id not in ids:
            ids.append(int(token_id))
    if not ids:
        raise ModelNotAvailable("The model names no end-of-sequence token, so answers would never stop.")
    return ids
