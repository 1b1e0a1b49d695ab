"""A local model run by Hugging Face transformers on the CPU, offline, streaming greedy answers.

GGUF files are dequantized by transformers at load time (about a minute for 1.5B parameters);
with `cache_dequantized` the result is saved once under models_dir so later loads take seconds.
"""
from __future__ import annotations

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
        self.loaded_from: str | None = None  # "gguf", "dequantized cache" or "folder"
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
            except (OSError, ValueError, KeyError, RuntimeError, ImportError) as error:
                raise ModelNotAvailable(
                    f"Loading {self.name} from {self.resolved.path} failed ({type(error).__name__}: "
                    f"{str(error).splitlines()[0] if str(error) else 'no details'})."
                ) from error
            if self.settings.quantization == "int4-weight" and self.settings.int4_prefill_bfloat16:
                # Read prompts with a bfloat16 copy (see _prefill): ~3 GB more for the default model.
                self._prefill_model = copy.deepcopy(model.to(torch.bfloat16))
            model = _quantized(model, self.settings.quantization, self._cache_dir())
            if tokenizer.chat_template is None:
                raise ModelNotAvailable(f"{self.name} has no chat template, so it cannot be used as a chat model.")
            self._tokenizer = tokenizer
            self._stop_token_ids = _stop_token_ids(tokenizer, model)
            pad = tokenizer.pad_token_id
            self._pad_token_id = pad if pad is not None else self._stop_token_ids[0]
            self._model = model
            self.load_seconds = time.perf_counter() - started
            self.loaded_from = source
            logger.info("Loaded %s from %s in %.1f s", self.name, source, self.load_seconds)

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

        def generate() -> None:
            cache = None
            try:
                cache = self._prefill(inputs) or self._reused(ids)
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
                    self.prompt_cache.keep(ids, cache)
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

    def _reused(self, ids: list[int]) -> Any:
        """A cache holding this prompt's beginning, or a new one that generate() fills and that is
        kept for the next prompt; None when prompt caching is off."""
        if self.prompt_cache is None:
            return None
        return self.prompt_cache.take(ids) or DynamicCache(config=self._model.config)

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
            return (*self._from_folder(cache), "dequantized cache")
        model, tokenizer = self._from_gguf()
        if cache is not None:
            self._save_dequantized(model, tokenizer, cache)
        return model, tokenizer, "gguf"

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
    there once and read back on later starts instead of being quantized again.
    """
    if quantization == "none":
        return model
    if quantization == "int4-weight":
        return _int4_weight_only(model)
    if quantization != "int8-dynamic":
        raise ValueError(f"unknown quantization {quantization!r}")
    cache_file = None
    if cache_dir is not None and cache_dir.is_dir():
        cache_file = cache_dir / f"int8-dynamic-torch-{torch.__version__}.pt"
    with warnings.catch_warnings():
        # torch deprecates its eager quantization API in favour of torchao (an optional extra
        # here), and torch.load warns about the storages inside quantized tensors.
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning, UserWarning))
        if cache_file is not None and cache_file.is_file():
            try:
                return _int8_from_cache(model, cache_file)
            except (OSError, RuntimeError, KeyError, pickle.UnpicklingError) as error:
                logger.warning("Ignoring the int8 cache %s (%s); quantizing again", cache_file, error)
        model = _int8_quantize(model)
        if cache_file is not None:
            _save_int8(model, cache_file)
    return model


def _linear_names(model: Any) -> list[str]:
    # Names only: holding the modules themselves would keep every float32 copy alive to the end.
    return [name for name, module in model.named_modules() if type(module) is torch.nn.Linear]


def _replace(model: Any, name: str, build: Any) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, build(getattr(parent, child)))


def _int8_quantize(model: Any) -> Any:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear
    from torch.ao.quantization import per_channel_dynamic_qconfig

    def quantize(linear: Any) -> Any:
        linear.qconfig = per_channel_dynamic_qconfig
        return DynamicInt8Linear.from_float(linear.to(torch.float32))

    # Layer by layer, not torch's quantize_dynamic on a float32 copy of the whole model: that
    # would hold every weight in float32 at once (about 10 GB peak for 1.5B parameters).
    for name in _linear_names(model):
        _replace(model, name, quantize)
    return model.to(torch.float32)


def _int8_from_cache(model: Any, cache_file: Path) -> Any:
    """Empty int8 layers in place of the linear ones, filled from the cache (no re-quantizing)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

    # weights_only: plain tensors and dtypes only, never arbitrary pickled objects.
    saved = torch.load(cache_file, weights_only=True)
    names = _linear_names(model)
    if sorted(saved) != sorted(names):
        raise KeyError("its layers do not match the model's")

    def restore(name: str) -> Any:
        def build(linear: Any) -> Any:
            layer = DynamicInt8Linear(linear.in_features, linear.out_features,
                                      bias_=linear.bias is not None, dtype=torch.qint8)
            layer.load_state_dict(saved.pop(name))
            return layer
        return build

    for name in names:
        _replace(model, name, restore(name))
    return model.to(torch.float32)


def _save_int8(model: Any, cache_file: Path) -> None:
    """Write every int8 layer's state atomically next to the dequantized cache; failure only costs speed."""
    layers = {name: module.state_dict() for name, module in model.named_modules()
              if type(module).__module__.startswith("torch.ao.nn.quantized.dynamic")}
    partial = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.partial")
    try:
        torch.save(layers, partial)
        os.replace(partial, cache_file)
    except OSError as error:
        logger.warning("Could not cache the int8 weights in %s: %s", cache_file, error)
    finally:
        partial.unlink(missing_ok=True)


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
    _release_freed_memory()
    return model


def _release_freed_memory() -> None:
    """Hand the replaced bfloat16 weights' memory back to the system (glibc keeps it otherwise).

    Measured on the default model: resident memory after int4 quantization 11.2 GB, 8.1 GB after
    this. A no-op where glibc's malloc_trim is missing.
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


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
