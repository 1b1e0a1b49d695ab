"""int8 linear weights for the transformers backend: quantized once, cached, and loaded fast.

torch's dynamic quantization keeps each linear layer's weight in int8 (one scale per output
channel) and quantizes activations on the fly, with fbgemm's int8 kernels (AVX-512 VNNI here).
fbgemm runs on its own packed copy of each weight, which cannot be saved: the cache holds the
plain int8 weights and every start packs them again. What a start can avoid is everything else
(bench/README.md, "End to end"): reading the bfloat16 linear weights that are replaced anyway,
and packing a full-size zero matrix per layer before the real one.
"""
from __future__ import annotations

import ctypes
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)


def cache_file(cache_dir: Path) -> Path:
    """Where the int8 weights of the dequantized model in `cache_dir` are kept (per torch version:
    the saved quantized tensors are torch's own format)."""
    return cache_dir / f"int8-dynamic-torch-{torch.__version__}.pt"


def linear_names(model: Any) -> list[str]:
    # Names only: holding the modules themselves would keep every float32 copy alive to the end.
    return [name for name, module in model.named_modules() if type(module) is torch.nn.Linear]


def replace(model: Any, name: str, build: Callable[[Any], Any]) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, build(getattr(parent, child)))


def quantize(model: Any) -> Any:
    """The model with every nn.Linear replaced by torch's dynamic int8 Linear, the rest float32."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear
    from torch.ao.quantization import per_channel_dynamic_qconfig

    def build(linear: Any) -> Any:
        linear.qconfig = per_channel_dynamic_qconfig
        return DynamicInt8Linear.from_float(linear.to(torch.float32))

    # Layer by layer, not torch's quantize_dynamic on a float32 copy of the whole model: that
    # would hold every weight in float32 at once (about 10 GB peak for 1.5B parameters).
    for name in linear_names(model):
        replace(model, name, build)
    return model.to(torch.float32)


def save(model: Any, path: Path) -> None:
    """Write every int8 layer's state atomically; failure only costs speed at the next start."""
    layers = {name: module.state_dict() for name, module in model.named_modules()
              if type(module).__module__.startswith("torch.ao.nn.quantized.dynamic")}
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        torch.save(layers, partial)
        os.replace(partial, path)
    except OSError as error:
        logger.warning("Could not cache the int8 weights in %s: %s", path, error)
    finally:
        partial.unlink(missing_ok=True)


def load_into(model: Any, path: Path, workers: int = 1) -> Any:
    """Replace the model's linear layers (real or on the meta device) by int8 layers read from `path`.

    Each layer packs its saved weight once; the packing (about 5 s of CPU for 1.5B parameters
    on a quiet machine) releases the GIL, so `workers` threads share it.
    """
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

    # weights_only: plain tensors and dtypes only, never arbitrary pickled objects. Read, not
    # memory-mapped: each saved weight is freed once packed, while a mapped file's pages would
    # stay resident to the end (1.5 GB more at the peak for the default model).
    saved = torch.load(path, weights_only=True)
    names = linear_names(model)
    if sorted(saved) != sorted(names):
        raise KeyError("its layers do not match the model's")

    def restore(name: str) -> Any:
        linear = model.get_submodule(name)
        # Built 1x1, then given the saved weight: built at full size, the constructor would pack a
        # zero matrix first (as long as packing the real one, for nothing).
        layer = DynamicInt8Linear(1, 1, bias_=linear.bias is not None, dtype=torch.qint8)
        layer.load_state_dict(saved.pop(name))
        layer.in_features, layer.out_features = linear.in_features, linear.out_features
        _trim()  # the saved weight was just freed: without this the peak is 1.2 GB higher
        return layer

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        layers = dict(zip(names, pool.map(restore, names)))
    for name, layer in layers.items():
        replace(model, name, lambda _linear, layer=layer: layer)
    return model


def load_model(folder: Path, path: Path, workers: int = 1, phases: dict[str, float] | None = None) -> Any:
    """The causal LM saved in `folder` (safetensors), its linear layers from the int8 file `path`:
    the bfloat16 linear weights in `folder` are never read. `phases` gets each step's seconds."""
    phases = {} if phases is None else phases
    started = time.perf_counter()
    from accelerate import init_empty_weights
    from accelerate.utils import set_module_tensor_to_device
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    # Parameters on the meta device (no memory, no initialization); buffers such as the rotary
    # frequencies are computed for real, as from_pretrained would.
    with init_empty_weights(include_buffers=False):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig.from_pretrained(folder, local_files_only=True)
    phases["model_skeleton_s"], started = _since(started), time.perf_counter()
    load_into(model, path, workers)
    phases["int8_read_and_pack_s"], started = _since(started), time.perf_counter()
    layers = {name for name, module in model.named_modules()
              if type(module).__module__.startswith("torch.ao.nn.quantized.dynamic")}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(file, framework="pt") as weights:
            for key in weights.keys():
                if key.rpartition(".")[0] not in layers:
                    # Tensor by tensor: load_state_dict would also ask the int8 layers for theirs.
                    set_module_tensor_to_device(model, key, "cpu", value=weights.get_tensor(key),
                                                dtype=torch.float32)
    phases["other_weights_s"] = _since(started)
    empty = [name for name, tensor in (*model.named_parameters(), *model.named_buffers()) if tensor.is_meta]
    if empty:
        raise KeyError(f"no weights for {', '.join(empty[:3])}")
    return model.eval()


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 2)


def release_freed_memory() -> None:
    """Hand freed memory back to the system (glibc keeps freed blocks under 32 MB for reuse).

    Measured on the default model: resident memory after int4 quantization 11.2 GB, 8.1 GB after
    this. A no-op where glibc's malloc_trim is missing.
    """
    import gc

    gc.collect()
    _trim()


def _trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
