"""Schemathesis fuzzes the JSON API from its own OpenAPI schema against the real server on
127.0.0.1 (issue 15): every default check (no 5xx, documented status codes and content types,
bodies matching the schema, valid data accepted, invalid data refused), and every 2xx answer
carries the disclaimer: /ask's reply, the `done` event of /ask/stream, the OpenAI-compatible
chat completion (streamed or not). Each test runs against the server with web.state = "memory"
and again with "redis" (limits, conversations, answers and votes in a redis-server of the
test's own). Bounded: a fixed number of examples per operation, no deadline."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

import app
from bot import texts
from bot.generation.fake import FakeGenerator
from bot.pipeline import CrampBot
from bot.settings import WebSettings
from served import REDIS_SERVER, redis_server, serve  # noqa: E402  (tests/served.py)

EXAMPLES_PER_OPERATION = 30
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module", params=["memory", "redis"])
def live_server(request, fake_settings, shared_retriever, tmp_path_factory):
    if request.param == "redis" and REDIS_SERVER is None:
        pytest.skip("redis-server missing (apt-get install redis-server)")
    bot = CrampBot(fake_settings, generator=FakeGenerator())
    bot.retriever = shared_retriever
    feedback_file = tmp_path_factory.mktemp("fuzz") / "feedback.jsonl"
    with contextlib.ExitStack() as stack:
        shared = ({"state": "redis", "redis_url": stack.enter_context(redis_server())}
                  if request.param == "redis" else {})
        web = WebSettings(rate_limit_per_minute=10_000, feedback_per_minute=10_000,
                          feedback_file=feedback_file, **shared)
        settings = fake_settings.model_copy(update={"web": web})
        url, _ = stack.enter_context(serve(app.build_server(bot, settings), web))
        yield url
        if request.param == "redis":  # the fuzzed requests did go through Redis
            keys = redis.Redis.from_url(web.redis_url).keys(f"{web.redis_prefix}*")
            assert any(b":answer:" in key for key in keys) and any(b":rate:" in key for key in keys)


# The assistant API's schema, and the OpenAI-compatible app's (mounted at /v1, paths under it).
SCHEMAS = (("/api/v1/openapi.json", ""), ("/v1/openapi.json", "/v1"))


def operations(url: str):
    """(operation, the base URL its path is under, its served path) of both schemas."""
    found = []
    for schema_path, mount in SCHEMAS:
        schema = schemathesis.openapi.from_url(f"{url}{schema_path}", timeout=10,
                                               config=SchemathesisConfig.from_path(CONFIG))
        found += [(result.ok(), url + mount, mount + result.ok().path)
                  for result in schema.get_all_operations()]
    return found


# Schemathesis's own pytest integration (schema.parametrize with a lazy fixture) does not run
# under pytest 9 ('Function' object has no attribute '_nodeid'), so each operation's strategy
# is driven by Hypothesis here, with the same call_and_validate and its default checks.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_holds_to_its_schema_under_fuzzing(live_server, mode):
    found = operations(live_server)
    assert {(op.method.upper(), path) for op, _, path in found} >= {
        ("POST", "/api/v1/ask"), ("POST", "/api/v1/ask/stream"), ("POST", "/api/v1/feedback"),
        ("GET", "/api/v1/health"), ("POST", "/v1/chat/completions"), ("GET", "/v1/models")}
    for operation, base_url, path in found:
        if mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # health, ready and models take (almost) no input: nothing invalid to send
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            response = case.call_and_validate(base_url=base_url, timeout=30)
            if 200 <= response.status_code < 300 and case.method.upper() == "POST":
                assert_disclaimer(path, response)

        fuzz()


def assert_disclaimer(path: str, response) -> None:
    """The reply a 2xx answer carries ends with (or names) one of the disclaimers."""
    if path == "/api/v1/ask":
        assert response.json()["disclaimer"] in texts.DISCLAIMERS
    elif path == "/api/v1/ask/stream":
        done = response.text.split("event: done\ndata: ", 1)[1].split("\n", 1)[0]
        assert json.loads(done)["disclaimer"] in texts.DISCLAIMERS
    elif path == "/v1/chat/completions":
        if "text/event-stream" in str(response.headers.get("content-type")):  # a list here
            assert response.text.endswith("data: [DONE]\n\n")
            chunks = [json.loads(line[6:]) for line in response.text.splitlines()
                      if line.startswith("data: {")]
            text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks)
        else:
            text = response.json()["choices"][0]["message"]["content"]
        assert text.endswith(texts.DISCLAIMERS), text[-200:]


@pytest.mark.parametrize("schema_path, mount", SCHEMAS)
def test_schemathesis_run_finds_no_failure(live_server, tmp_path, schema_path, mount):
    """`schemathesis run` as a person would use it: all its phases (examples, coverage,
    fuzzing, stateful) and default checks, bounded in examples and time."""
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
         f"{live_server}{schema_path}", "--url", live_server + mount,
         "--max-examples", "15", "--request-timeout", "30", "--workers", "1",
         "--report-dir", str(tmp_path), "--no-color"],
        capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
