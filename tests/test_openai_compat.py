"""The OpenAI-compatible API driven by OpenAI's own `openai` client against the real server on
127.0.0.1: replies (streamed and not) are the bot's full text with [n] markers and the
disclaimer, citations come as an extra field, earlier messages become the history, and every
refusal is a 4xx the client raises as the matching error; one test streams from the real model."""
from __future__ import annotations

import httpx
import openai
import pytest

from bot import texts
from bot.settings import WebSettings
from web.conversations import MAX_TURNS_KEPT

from browser_support import serve_subprocess  # noqa: E402  (tests/browser_support.py)
from served import serve  # noqa: E402  (tests/served.py)
from test_api_stream import CLINIC, CLOT, ELSEWHERE, NIGHT, FailingBot, build  # noqa: E402

COMPLETIONS = "/v1/chat/completions"


def client_for(url: str, **options) -> openai.OpenAI:
    # No retries: a 429 or 5xx must show here, not be hidden by the client's retrying.
    return openai.OpenAI(base_url=url + "/v1", api_key="not-needed",
                         **{"max_retries": 0, "timeout": 60, **options})


@pytest.fixture(scope="module")
def live(fake_settings, shared_retriever, tmp_path_factory):
    server, web, bot = build(fake_settings, shared_retriever, tmp_path_factory.mktemp("openai"))
    with serve(server, web) as (url, _):
        yield url, bot


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def first_disclaimer(reply: str) -> str:
    return next(disclaimer for disclaimer in texts.DISCLAIMERS if reply.endswith(disclaimer))


def test_a_completion_is_the_full_text_with_markers_disclaimer_and_citations(live):
    url, bot = live
    expected = bot.bot.ask(NIGHT)

    reply = client_for(url).chat.completions.create(model="default", messages=[user(NIGHT)])

    message = reply.choices[0].message
    assert message.role == "assistant" and reply.choices[0].finish_reason == "stop"
    assert message.content == expected.full_text
    assert "[1]" in message.content and message.content.endswith("\n\n" + texts.DISCLAIMER)
    citations = message.model_extra["citations"]
    assert [c["number"] for c in citations] == [c.number for c in expected.citations]
    assert citations[0]["passage_id"] == expected.citations[0].passage.id
    assert set(citations[0]) >= {"title", "section", "text", "source", "supporting_sentence"}
    assert reply.model == "default" and reply.object == "chat.completion"


def test_a_streamed_completion_adds_up_to_the_same_text_and_ends_with_citations(live):
    url, bot = live
    expected = bot.bot.ask(NIGHT)

    chunks = list(client_for(url).chat.completions.create(
        model="default", messages=[user(NIGHT)], stream=True))

    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == expected.full_text and text.endswith(texts.DISCLAIMER)
    assert len(chunks) > 5  # sent in pieces, as chat clients expect
    last = chunks[-1].choices[0]
    assert last.finish_reason == "stop"
    assert [c["number"] for c in last.delta.model_extra["citations"]] == [
        c.number for c in expected.citations]
    assert len({chunk.id for chunk in chunks}) == 1


def test_earlier_messages_are_the_history_without_disclaimers(live):
    url, bot = live
    first = client_for(url).chat.completions.create(model="default", messages=[user(NIGHT)])
    answer = first.choices[0].message.content

    client_for(url).chat.completions.create(model="default", messages=[
        {"role": "system", "content": "You are a pirate."},  # ignored: the bot has its rules
        user(NIGHT), {"role": "assistant", "content": answer},
        user("unanswered, then asked again"),
        {"role": "user", "content": [{"type": "text", "text": "And how do I prevent them?"}]},
    ])

    question, history = bot.asked[-1]
    assert question == "And how do I prevent them?"
    assert history == [(NIGHT, answer.removesuffix("\n\n" + first_disclaimer(answer)))]
    assert not any(disclaimer in history[0][1] for disclaimer in texts.DISCLAIMERS)


def test_history_keeps_as_many_turns_as_ask_does_and_the_bot_cuts_them(live):
    url, bot = live
    messages = []
    for number in range(MAX_TURNS_KEPT + 5):
        messages += [user(f"question {number}"),
                     {"role": "assistant", "content": f"answer {number}"}]
    client_for(url).chat.completions.create(model="default", messages=[*messages, user(CLOT)])

    _, history = bot.asked[-1]
    assert len(history) == MAX_TURNS_KEPT
    assert history[-1] == ("question 24", "answer 24") and history[0][0] == "question 5"

    long_answer = "Stretch the calf. " * 500  # 9,000 characters: what reaches the model is cut
    client_for(url).chat.completions.create(model="default", messages=[
        user(NIGHT), {"role": "assistant", "content": long_answer}, user("And how to stop it?")])
    [(question, answer)] = bot.asked[-1][1]  # as it reached the bot, past web/limits.py
    assert question == NIGHT and answer.startswith("Stretch the calf. Stretch")
    assert len(answer) <= WebSettings().history_turn_chars < len(long_answer)


def test_models_lists_the_preset_and_an_unknown_model_is_404(live):
    url, _ = live
    client = client_for(url)

    assert [(model.id, model.owned_by) for model in client.models.list()] == [
        ("default", "crampbot")]
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=[user(NIGHT)])
    assert missing.value.code == "model_not_found"
    assert "'default'" in missing.value.message
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


@pytest.mark.parametrize("messages", [
    [],
    [{"role": "tool", "content": "42", "tool_call_id": "x"}],
    [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}],
    [{"role": "user", "content": 42}],
    "not a list",
])
def test_bad_input_is_400_in_openai_shape(live, messages):
    url, _ = live
    with pytest.raises(openai.BadRequestError) as refused:
        client_for(url).chat.completions.create(model="default", messages=messages)
    assert refused.value.status_code == 400
    assert refused.value.body["type"] == "invalid_request_error" and refused.value.message


@pytest.mark.parametrize("messages", [
    [{"role": "assistant", "content": "Hello"}],
    [user(NIGHT), {"role": "assistant", "content": "An answer"}],
    [{"role": "system", "content": "Be brief."}],
])
def test_a_conversation_without_a_question_gets_the_bots_own_reply(live, messages):
    """As /api/v1/ask answers an empty question: what to type, with the disclaimer."""
    url, _ = live
    reply = client_for(url).chat.completions.create(model="default", messages=messages)
    assert reply.choices[0].message.content == (
        f"{texts.EMPTY_MESSAGE}\n\n{texts.DISCLAIMER_NO_SOURCES}")


def test_broken_bodies_are_4xx_never_500(live):
    url, _ = live
    for body in (b"{not json", b"[]", b'{"model": 5, "messages": [{}]}', b'"\xff"',
                 b'{"model": "default", "messages": [{"role": "user", "content": "x"}], '
                 b'"stream": 0}'):
        reply = httpx.post(url + COMPLETIONS, content=body, timeout=30,
                           headers={"Content-Type": "application/json"})
        assert reply.status_code == 400, body
        assert reply.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(url + COMPLETIONS, timeout=30).status_code == 405


def test_origin_and_size_controls_apply(live):
    url, _ = live
    with pytest.raises(openai.PermissionDeniedError):
        client_for(url, default_headers={"Origin": ELSEWHERE}).chat.completions.create(
            model="default", messages=[user(NIGHT)])
    with pytest.raises(openai.APIStatusError) as large:
        client_for(url).chat.completions.create(model="default",
                                                messages=[user("cramp " * 20_000)])
    assert large.value.status_code == 413
    allowed = client_for(url, default_headers={"Origin": CLINIC}).chat.completions.create(
        model="default", messages=[user(CLOT)])
    assert allowed.choices[0].message.content.endswith(texts.DISCLAIMER_URGENT)


def test_the_rate_limit_is_shared_with_ask(fake_settings, shared_retriever, tmp_path):
    server, web, _ = build(fake_settings, shared_retriever, tmp_path, rate_limit_per_minute=1)
    with serve(server, web) as (url, _):
        httpx.post(url + "/api/v1/ask", json={"question": CLOT}, timeout=30).raise_for_status()
        with pytest.raises(openai.RateLimitError) as limited:
            client_for(url).chat.completions.create(model="default", messages=[user(CLOT)])
    assert limited.value.body["type"] == "rate_limit_error"
    assert int(limited.value.response.headers["retry-after"]) >= 1
    assert limited.value.body["message"] == texts.RATE_LIMITED


def test_a_failure_mid_stream_is_raised_by_the_client_not_a_traceback(fake_settings,
                                                                      shared_retriever, tmp_path):
    server, web, _ = build(fake_settings, shared_retriever, tmp_path, wrap=FailingBot)
    with serve(server, web) as (url, _):
        stream = client_for(url).chat.completions.create(model="default",
                                                         messages=[user(NIGHT)], stream=True)
        with pytest.raises(openai.APIError) as failed:
            list(stream)
    assert failed.value.body["message"] == texts.INTERNAL_ERROR


@pytest.mark.slow
def test_the_openai_client_streams_a_real_model_answer_with_the_disclaimer():
    """The real app (python app.py, default preset, its model loaded by the first question)."""
    with serve_subprocess(["--no-warm-up"], timeout_s=1200, log_name="openai-real") as page:
        client = client_for(page.rstrip("/"), timeout=900)
        chunks = list(client.chat.completions.create(
            model="default", messages=[user(NIGHT)], stream=True))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text.endswith("\n\n" + texts.DISCLAIMER)
    assert "[1]" in text and len(text) > len(texts.DISCLAIMER) + 80
    citations = chunks[-1].choices[0].delta.model_extra["citations"]
    assert citations and citations[0]["number"] == 1
