"""OpenAIAPI through the real openai SDK, with an injected httpx2 transport or a loopback
server standing in for the API."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx2
import pytest

from oversight.model.card import ModelCard
from oversight.model.providers.openai import OpenAIAPI
from oversight.model.types import ModelCallError

from .helpers import (
    IMAGE_B64,
    Loopback,
    Recorder,
    connect_error,
    conversation,
    json_reply,
    simple,
    timeout_error,
)


def completion(
    *texts: str | None, logprobs: list[Any] | None = None, usage: bool = True
) -> dict[str, Any]:
    choices = []
    for i, text in enumerate(texts):
        choice: dict[str, Any] = {
            "index": i,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
        }
        if logprobs is not None:
            choice["logprobs"] = {"content": logprobs[i]}
        choices.append(choice)
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-test",
        "choices": choices,
    }
    if usage:
        body["usage"] = {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
    return body


def card(**kw: Any) -> ModelCard:
    return ModelCard(provider="openai", model="gpt-test", **kw)


def api(http: httpx2.AsyncClient, **kw: Any) -> OpenAIAPI:
    return OpenAIAPI(card(**kw), "sk-test", http_client=http)


def token(tok: str, logprob: float, top: list[tuple[str, float]]) -> dict[str, Any]:
    return {
        "token": tok,
        "logprob": logprob,
        "bytes": None,
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top],
    }


# --- request translation ---------------------------------------------------------------


async def test_request_body_messages_image_and_defaults(recorder: Recorder, mock_http) -> None:
    recorder.replies = [json_reply(200, completion("Answer: 1"))]
    out = await api(mock_http).generate(conversation())

    assert out.texts == ["Answer: 1"]
    req = recorder.requests[0]
    assert req.url.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-test"
    body = recorder.body
    assert body["model"] == "gpt-test"
    assert body["messages"] == [
        {"role": "system", "content": "You are a judge."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look at this:"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE_B64}"}},
            ],
        },
        {"role": "assistant", "content": "I see it."},
        {"role": "user", "content": "Answer: 1 or 2?"},
    ]
    # OpenAI's own endpoint gets the parameter reasoning models accept.
    assert body["max_completion_tokens"] == 1024
    assert "max_tokens" not in body
    # Provider defaults: no temperature, no n, no logprobs, and never the episode metadata.
    for key in ("temperature", "n", "logprobs", "top_logprobs", "metadata"):
        assert key not in body
    assert "secret_truth" not in req.content.decode()


async def test_max_tokens_and_temperature(recorder: Recorder, mock_http) -> None:
    recorder.replies = [json_reply(200, completion("ok"))]
    await api(mock_http).generate(simple(max_tokens=50, temperature=0.7))
    assert recorder.body["max_completion_tokens"] == 50
    assert recorder.body["temperature"] == 0.7

    await api(mock_http, temperature=0.2, max_tokens=300).generate(simple())
    assert recorder.body["temperature"] == 0.2
    assert recorder.body["max_completion_tokens"] == 300

    # Zero is a temperature, not "unset".
    await api(mock_http, temperature=0.9).generate(simple(temperature=0.0))
    assert recorder.body["temperature"] == 0.0


async def test_n_is_native_and_choices_are_ordered(recorder: Recorder, mock_http) -> None:
    body = completion("first", "second", "third")
    body["choices"].reverse()
    recorder.replies = [json_reply(200, body)]
    out = await api(mock_http).generate(simple(n=3))
    assert recorder.calls == 1
    assert recorder.body["n"] == 3
    assert out.texts == ["first", "second", "third"]


async def test_fewer_samples_than_n_is_an_error(recorder: Recorder, mock_http) -> None:
    # e.g. a local server that ignores n
    recorder.replies = [json_reply(200, completion("only one"))]
    with pytest.raises(ModelCallError) as info:
        await api(mock_http).generate(simple(n=2))
    assert info.value.kind == "bad_request"


async def test_usage_and_latency(recorder: Recorder, mock_http) -> None:
    recorder.replies = [json_reply(200, completion("ok"))]
    out = await api(mock_http).generate(simple())
    assert (out.usage.input_tokens, out.usage.output_tokens) == (42, 7)
    assert out.latency_s > 0
    assert out.logprobs is None


async def test_missing_usage_counts_zero(recorder: Recorder, mock_http) -> None:
    recorder.replies = [json_reply(200, completion("ok", usage=False))]
    out = await api(mock_http).generate(simple())
    assert (out.usage.input_tokens, out.usage.output_tokens) == (0, 0)


async def test_images_refused_when_card_disables_them(recorder: Recorder, mock_http) -> None:
    with pytest.raises(ModelCallError) as info:
        await api(mock_http, images=False).generate(conversation())
    assert info.value.kind == "bad_request"
    assert recorder.calls == 0


# --- logprobs --------------------------------------------------------------------------


async def test_logprobs_of_the_answer_token(recorder: Recorder, mock_http) -> None:
    first = [token("1", -0.1, [("1", -0.1), ("2", -2.5), (" 1", -4.0), ("The", -5.0)])]
    # A model that writes "Answer: 2": the answer is read where it is decided, not at "Answer".
    second = [
        token("Answer", -0.01, [("Answer", -0.01), ("1", -6.0)]),
        token(":", 0.0, [(":", 0.0)]),
        token(" 2", -0.3, [(" 2", -0.3), (" 1", -1.5)]),
    ]
    recorder.replies = [json_reply(200, completion("1", "Answer: 2", logprobs=[first, second]))]
    out = await api(mock_http).generate(simple(n=2, logprob_choices=("1", "2")))

    assert recorder.body["logprobs"] is True
    assert recorder.body["top_logprobs"] == 5
    assert out.logprobs is not None
    [p1] = out.logprobs[0]
    # "1" and " 1" are the same answer: their probabilities add.
    assert (p1.start, p1.end) == (0, 1)
    assert p1.probs["1"] == pytest.approx(math.log(math.exp(-0.1) + math.exp(-4.0)))
    assert p1.probs["2"] == pytest.approx(-2.5)
    [p2] = out.logprobs[1]  # only the " 2" token is a choice; it spans "Answer: 2"[7:9]
    assert (p2.start, p2.end) == (7, 9) and p2.probs == pytest.approx({"2": -0.3, "1": -1.5})


async def test_logprobs_off_when_card_says_so(recorder: Recorder, mock_http) -> None:
    recorder.replies = [json_reply(200, completion("1"))]
    out = await api(mock_http, logprobs=False).generate(simple(logprob_choices=("1", "2")))
    assert "logprobs" not in recorder.body
    assert out.logprobs is None


async def test_logprobs_absent_in_reply(recorder: Recorder, mock_http) -> None:
    recorder.replies = [json_reply(200, completion("1"))]
    out = await api(mock_http).generate(simple(logprob_choices=("1", "2")))
    assert out.logprobs == [[]]


# --- error classification --------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"retry-after": "7"}, 7.0), ({"retry-after-ms": "1500"}, 1.5), ({}, None)],
)
async def test_rate_limit_is_not_retried_by_the_sdk(
    recorder: Recorder, mock_http, headers: dict[str, str], expected: float | None
) -> None:
    error = {"error": {"message": "slow down", "type": "rate_limit_exceeded"}}
    recorder.replies = [json_reply(429, error, headers=headers)]
    with pytest.raises(ModelCallError) as info:
        await api(mock_http).generate(simple())
    assert info.value.kind == "rate_limit"
    assert info.value.status == 429
    assert info.value.retry_after == expected
    assert info.value.retryable
    assert recorder.calls == 1


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "bad_request"),
        (401, "auth"),
        (403, "auth"),
        (404, "not_found"),
        (422, "bad_request"),
        (500, "server"),
        (503, "server"),
    ],
)
async def test_http_status_kinds(recorder: Recorder, mock_http, status: int, kind: str) -> None:
    recorder.replies = [json_reply(status, {"error": {"message": "nope"}})]
    with pytest.raises(ModelCallError) as info:
        await api(mock_http).generate(simple())
    assert info.value.kind == kind
    assert info.value.status == status
    assert "nope" in str(info.value)
    assert recorder.calls == 1  # 5xx too: the SDK's own retries are off


async def test_timeout(recorder: Recorder, mock_http) -> None:
    recorder.replies = [timeout_error()]
    with pytest.raises(ModelCallError) as info:
        await api(mock_http).generate(simple())
    assert info.value.kind == "timeout"
    assert recorder.calls == 1


async def test_connection_error(recorder: Recorder, mock_http) -> None:
    recorder.replies = [connect_error()]
    with pytest.raises(ModelCallError) as info:
        await api(mock_http).generate(simple())
    assert info.value.kind == "connection"
    assert recorder.calls == 1


async def test_unexpected_transport_exception_is_wrapped(recorder: Recorder, mock_http) -> None:
    recorder.replies = [RuntimeError("boom")]
    with pytest.raises(ModelCallError) as info:
        await api(mock_http).generate(simple())
    assert info.value.kind == "other"


@pytest.mark.parametrize(
    "payload",
    [
        completion(),  # no choices
        completion(None),  # null content
        completion(""),  # empty text
        completion("   \n"),
        {"id": "x", "object": "chat.completion"},  # no choices key at all
        ["Answer: 1"],  # JSON, but not an object
        {"choices": ["Answer: 1"]},  # a choice that is not an object
        {"choices": [{"index": 0, "message": "Answer: 1"}]},  # a message that is not an object
        {"choices": [{"index": 0, "message": {"content": "Answer: 1"}}], "usage": {"prompt_tokens": "many"}},
    ],
    ids=["no-choices", "null-content", "empty", "blank", "no-choices-key", "list-body", "choice-str",
         "message-str", "usage-not-a-number"],
)
async def test_malformed_replies(recorder: Recorder, mock_http, payload: dict[str, Any]) -> None:
    recorder.replies = [json_reply(200, payload)]
    with pytest.raises(ModelCallError) as info:
        await api(mock_http).generate(simple())
    assert info.value.kind == "malformed"
    assert info.value.retryable


async def test_refusal_is_malformed_and_says_so(recorder: Recorder, mock_http) -> None:
    body = completion(None)
    body["choices"][0]["message"]["refusal"] = "I can't help with that."
    recorder.replies = [json_reply(200, body)]
    with pytest.raises(ModelCallError) as info:
        await api(mock_http).generate(simple())
    assert info.value.kind == "malformed"
    assert "can't help" in str(info.value)


async def test_json_labelled_as_text_is_read(recorder: Recorder, mock_http) -> None:
    """Some compatible servers send JSON as text/plain; the SDK then hands back text."""
    recorder.replies = [httpx2.Response(200, text=json.dumps(completion("Answer: 2")),
                                        headers={"content-type": "text/plain"})]
    out = await api(mock_http).generate(simple())
    assert out.texts == ["Answer: 2"]


async def test_non_json_body_is_malformed(recorder: Recorder, mock_http) -> None:
    recorder.replies = [httpx2.Response(200, text="<html>gateway</html>")]
    with pytest.raises(ModelCallError) as info:
        await api(mock_http).generate(simple())
    assert info.value.kind == "malformed"


async def test_aclose_leaves_an_injected_client_open(mock_http) -> None:
    model = api(mock_http)
    await model.aclose()
    assert not mock_http.is_closed


# --- a real server on 127.0.0.1 ------------------------------------------------------------


async def test_local_openai_compatible_server(
    loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-secret")
    loopback.reply = completion("Answer: 2")
    local = ModelCard.model_validate(
        {"provider": "openai", "model": "local-llama", "base_url": f"{loopback.url}/v1"}
    )
    model = OpenAIAPI(local, None)  # local servers need no key
    try:
        out = await model.generate(simple(max_tokens=64))
    finally:
        await model.aclose()
    assert out.texts == ["Answer: 2"]
    assert out.usage.input_tokens == 42
    [seen] = loopback.requests
    assert seen["path"] == "/v1/chat/completions"
    # Compatible servers get the classic parameter name, and no real key leaks to them.
    assert seen["body"]["max_tokens"] == 64
    assert "max_completion_tokens" not in seen["body"]
    assert seen["headers"]["authorization"] == "Bearer not-needed"


async def test_local_server_error_status(loopback: Loopback) -> None:
    loopback.status, loopback.reply = 503, {"error": {"message": "loading model"}}
    model = OpenAIAPI(card(base_url=f"{loopback.url}/v1"), "sk-test")
    try:
        with pytest.raises(ModelCallError) as info:
            await model.generate(simple())
    finally:
        await model.aclose()
    assert info.value.kind == "server"
    assert len(loopback.requests) == 1


async def test_card_timeout_reaches_the_sdk(loopback: Loopback) -> None:
    loopback.reply, loopback.delay_s = completion("late"), 1.0
    model = OpenAIAPI(card(base_url=f"{loopback.url}/v1", timeout_s=0.1), "sk-test")
    try:
        with pytest.raises(ModelCallError) as info:
            await model.generate(simple())
    finally:
        await model.aclose()
    assert info.value.kind == "timeout"
    assert len(loopback.requests) == 1


async def test_refused_connection(closed_port_url: str) -> None:
    model = OpenAIAPI(card(base_url=f"{closed_port_url}/v1"), "sk-test")
    try:
        with pytest.raises(ModelCallError) as info:
            await model.generate(simple())
    finally:
        await model.aclose()
    assert info.value.kind == "connection"


async def test_explicit_openai_base_url_counts_as_official(recorder: Recorder, mock_http) -> None:
    recorder.replies = [json_reply(200, completion("ok"))]
    await api(mock_http, base_url="https://api.openai.com/v1").generate(simple())
    assert recorder.body["max_completion_tokens"] == 1024
    assert recorder.requests[0].url.host == "api.openai.com"


async def test_sharded_clients_each_send(loopback: Loopback) -> None:
    """Many calls in flight are spread over several client pools that share one TLS context;
    every shard must reach the server with the SDK's headers and the card's timeout."""
    local = ModelCard.model_validate({"provider": "openai", "model": "m", "base_url": f"{loopback.url}/v1",
                                      "max_concurrency": 64, "timeout_s": 7})
    loopback.reply = completion("Answer: 2")
    model = OpenAIAPI(local, "sk-test")
    try:
        assert len(model._clients) == 4
        for _ in range(8):  # round robin: each shard sends twice
            assert (await model.generate(simple())).texts == ["Answer: 2"]
        assert {c.timeout for c in model._clients} == {7}
    finally:
        await model.aclose()
    assert len(loopback.requests) == 8
    assert {r["headers"]["authorization"] for r in loopback.requests} == {"Bearer sk-test"}
    assert all(model_client.is_closed() for model_client in model._clients)
