"""GoogleAPI through the real google-genai SDK, with an injected httpx2 transport or a
loopback server standing in for the Gemini API."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import httpx2
import pytest

from oversight.model.card import ModelCard
from oversight.model.providers.google import GoogleAPI
from oversight.model.types import ModelCallError

from .helpers import (
    IMAGE,
    Loopback,
    Recorder,
    connect_error,
    conversation,
    json_reply,
    simple,
    timeout_error,
)


def candidate(text: str | None, index: int = 0, **extra: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"index": index, "finishReason": "STOP", **extra}
    if text is not None:
        c["content"] = {"role": "model", "parts": [{"text": text}]}
    return c


def reply(*candidates: dict[str, Any], prompt: int = 20, out: int = 4, thoughts: int = 0):
    usage: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": out}
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return {"candidates": list(candidates), "usageMetadata": usage, "modelVersion": "gemini-test"}


def card(**kw: Any) -> ModelCard:
    return ModelCard(provider="google", model="gemini-test", **kw)


async def generate(http: httpx2.AsyncClient, request: Any, **kw: Any) -> Any:
    model = GoogleAPI(card(**kw), "g-test-key", http_client=http)
    try:
        return await model.generate(request)
    finally:
        await model.aclose()


def inline_data(part: dict[str, Any]) -> tuple[bytes, str]:
    blob = part["inlineData"]
    mime = blob.get("mimeType", blob.get("mime_type"))
    return base64.b64decode(blob["data"]), mime


# --- request translation ---------------------------------------------------------------


async def test_request_body_system_image_and_defaults(recorder: Recorder, mock_http) -> None:
    recorder.replies = [json_reply(200, reply(candidate("Answer: 1")))]
    out = await generate(mock_http, conversation())

    assert out.texts == ["Answer: 1"]
    req = recorder.requests[0]
    assert req.url.path.endswith("/models/gemini-test:generateContent")
    assert req.headers["x-goog-api-key"] == "g-test-key"
    body = recorder.body
    assert body["systemInstruction"]["parts"] == [{"text": "You are a judge."}]
    user, model, last = body["contents"]
    assert user["role"] == "user"
    assert user["parts"][0] == {"text": "Look at this:"}
    assert inline_data(user["parts"][1]) == (IMAGE.data, "image/png")
    assert model == {"role": "model", "parts": [{"text": "I see it."}]}
    assert last == {"role": "user", "parts": [{"text": "Answer: 1 or 2?"}]}
    config = body["generationConfig"]
    assert config == {"maxOutputTokens": 1024}  # no temperature, n or logprobs by default
    assert "secret_truth" not in req.content.decode()
    # Client-side switches of the SDK are not sent.
    assert "automaticFunctionCalling" not in json.dumps(body)


async def test_settings(recorder: Recorder, mock_http) -> None:
    recorder.replies = [json_reply(200, reply(candidate("a"), candidate("b", index=1)))]
    out = await generate(mock_http, simple(max_tokens=33, temperature=0.0, n=2))
    config = recorder.body["generationConfig"]
    assert config["maxOutputTokens"] == 33
    assert config["temperature"] == 0.0
    assert config["candidateCount"] == 2
    assert "systemInstruction" not in recorder.body
    assert out.texts == ["a", "b"]
    assert recorder.calls == 1

    recorder.replies = [json_reply(200, reply(candidate("a")))]
    await generate(mock_http, simple(), temperature=0.4)
    assert recorder.body["generationConfig"]["temperature"] == 0.4


async def test_candidates_are_ordered_by_index(recorder: Recorder, mock_http) -> None:
    recorder.replies = [json_reply(200, reply(candidate("second", 1), candidate("first", 0)))]
    out = await generate(mock_http, simple(n=2))
    assert out.texts == ["first", "second"]


async def test_usage_counts_thinking_as_output(recorder: Recorder, mock_http) -> None:
    thought = {"role": "model", "parts": [{"text": "musing", "thought": True}, {"text": "Hi!"}]}
    cand = {"index": 0, "finishReason": "STOP", "content": thought}
    recorder.replies = [json_reply(200, reply(cand, prompt=11, out=3, thoughts=40))]
    out = await generate(mock_http, simple())
    assert out.texts == ["Hi!"]  # thought summaries are not the answer
    assert (out.usage.input_tokens, out.usage.output_tokens) == (11, 43)
    assert out.latency_s > 0


async def test_images_refused_when_card_disables_them(recorder: Recorder, mock_http) -> None:
    with pytest.raises(ModelCallError) as info:
        await generate(mock_http, conversation(), images=False)
    assert info.value.kind == "bad_request"
    assert recorder.calls == 0


# --- logprobs --------------------------------------------------------------------------


def logprobs_result(chosen: list[tuple[str, float]], top: list[list[tuple[str, float]]]):
    return {
        "chosenCandidates": [{"token": t, "logProbability": lp} for t, lp in chosen],
        "topCandidates": [
            {"candidates": [{"token": t, "logProbability": lp} for t, lp in pos]} for pos in top
        ],
    }


async def test_logprobs(recorder: Recorder, mock_http) -> None:
    direct = logprobs_result([("2", -0.2)], [[("2", -0.2), ("1", -1.9), (" 2", -5.0)]])
    worded = logprobs_result(
        [("Answer", -0.01), (":", 0.0), (" 1", -0.4)],
        [[("Answer", -0.01)], [(":", 0.0)], [(" 1", -0.4), (" 2", -1.2)]],
    )
    recorder.replies = [
        json_reply(
            200,
            reply(
                candidate("2", 0, logprobsResult=direct),
                candidate("Answer: 1", 1, logprobsResult=worded),
            ),
        )
    ]
    out = await generate(mock_http, simple(n=2, logprob_choices=("1", "2")))

    config = recorder.body["generationConfig"]
    assert config["responseLogprobs"] is True
    assert config["logprobs"] == 5
    assert out.logprobs is not None
    [direct_at] = out.logprobs[0]
    assert (direct_at.start, direct_at.end) == (0, 1)
    assert direct_at.probs["2"] == pytest.approx(math.log(math.exp(-0.2) + math.exp(-5.0)))
    assert direct_at.probs["1"] == pytest.approx(-1.9)
    [worded_at] = out.logprobs[1]
    assert (worded_at.start, worded_at.end) == (7, 9) and worded_at.probs == pytest.approx({"1": -0.4, "2": -1.2})


async def test_logprobs_off_when_card_says_so(recorder: Recorder, mock_http) -> None:
    recorder.replies = [json_reply(200, reply(candidate("1")))]
    out = await generate(mock_http, simple(logprob_choices=("1", "2")), logprobs=False)
    assert "responseLogprobs" not in recorder.body["generationConfig"]
    assert out.logprobs is None


# --- error classification --------------------------------------------------------------


def google_error(code: int, status: str, details: list[Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": f"{status} happened", "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


RETRY_INFO = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}


@pytest.mark.parametrize(
    ("headers", "details", "expected"),
    [
        ({"retry-after": "9"}, None, 9.0),
        ({}, [RETRY_INFO], 17.0),
        ({}, [{"@type": "type.googleapis.com/google.rpc.QuotaFailure"}], None),
    ],
    ids=["header", "retry-info", "none"],
)
async def test_rate_limit_is_not_retried_by_the_sdk(
    recorder: Recorder, mock_http, headers: dict[str, str], details: Any, expected: float | None
) -> None:
    body = google_error(429, "RESOURCE_EXHAUSTED", details)
    recorder.replies = [json_reply(429, body, headers=headers)]
    with pytest.raises(ModelCallError) as info:
        await generate(mock_http, simple())
    assert info.value.kind == "rate_limit"
    assert info.value.status == 429
    assert info.value.retry_after == expected
    assert recorder.calls == 1


@pytest.mark.parametrize(
    ("status", "name", "kind"),
    [
        (400, "INVALID_ARGUMENT", "bad_request"),
        (403, "PERMISSION_DENIED", "auth"),
        (404, "NOT_FOUND", "not_found"),
        (500, "INTERNAL", "server"),
        (503, "UNAVAILABLE", "server"),
        (504, "DEADLINE_EXCEEDED", "server"),
    ],
)
async def test_http_status_kinds(
    recorder: Recorder, mock_http, status: int, name: str, kind: str
) -> None:
    recorder.replies = [json_reply(status, google_error(status, name))]
    with pytest.raises(ModelCallError) as info:
        await generate(mock_http, simple())
    assert info.value.kind == kind
    assert info.value.status == status
    assert f"{name} happened" in str(info.value)
    assert recorder.calls == 1  # tenacity is off: 5xx is tried once


async def test_timeout(recorder: Recorder, mock_http) -> None:
    recorder.replies = [timeout_error()]
    with pytest.raises(ModelCallError) as info:
        await generate(mock_http, simple())
    assert info.value.kind == "timeout"
    assert recorder.calls == 1


async def test_connection_error(recorder: Recorder, mock_http) -> None:
    recorder.replies = [connect_error()]
    with pytest.raises(ModelCallError) as info:
        await generate(mock_http, simple())
    assert info.value.kind == "connection"
    assert recorder.calls == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"candidates": [], "promptFeedback": {"blockReason": "SAFETY"}},
        {"promptFeedback": {"blockReason": "OTHER"}},
        reply(candidate(None, finishReason="SAFETY")),  # a blocked candidate has no content
        reply(candidate("")),
        reply(candidate("fine"), candidate(None, index=1, finishReason="SAFETY")),
        {"candidates": [{"index": 0, "content": {"role": "model", "parts": []}}]},
        {"candidates": "not a list"},
    ],
    ids=[
        "blocked-prompt",
        "no-candidates",
        "blocked",
        "empty",
        "one-blocked",
        "no-parts",
        "wrong-shape",
    ],
)
async def test_malformed_replies(recorder: Recorder, mock_http, payload: dict[str, Any]) -> None:
    recorder.replies = [json_reply(200, payload)]
    candidates = payload.get("candidates")
    n = len(candidates) if isinstance(candidates, list) and candidates else 1
    with pytest.raises(ModelCallError) as info:
        await generate(mock_http, simple(n=n))
    assert info.value.kind == "malformed"


async def test_blocked_prompt_names_the_reason(recorder: Recorder, mock_http) -> None:
    recorder.replies = [json_reply(200, {"promptFeedback": {"blockReason": "SAFETY"}})]
    with pytest.raises(ModelCallError) as info:
        await generate(mock_http, simple())
    assert "SAFETY" in str(info.value)


async def test_non_json_body_is_malformed(recorder: Recorder, mock_http) -> None:
    recorder.replies = [httpx2.Response(200, text="<html>proxy page</html>")]
    with pytest.raises(ModelCallError) as info:
        await generate(mock_http, simple())
    assert info.value.kind == "malformed"


async def test_aclose_leaves_an_injected_client_open(mock_http) -> None:
    model = GoogleAPI(card(), "g-test-key", http_client=mock_http)
    await model.aclose()
    assert not mock_http.is_closed


# --- a real server on 127.0.0.1 ------------------------------------------------------------


async def test_base_url_reaches_a_local_server(loopback: Loopback) -> None:
    loopback.reply = reply(candidate("Answer: 2"), prompt=5, out=2)
    model = GoogleAPI(card(base_url=loopback.url), "g-test-key")
    try:
        out = await model.generate(conversation(temperature=0.3))
    finally:
        await model.aclose()
    assert out.texts == ["Answer: 2"]
    assert (out.usage.input_tokens, out.usage.output_tokens) == (5, 2)
    [seen] = loopback.requests
    assert seen["path"].endswith("/models/gemini-test:generateContent")
    assert seen["headers"]["x-goog-api-key"] == "g-test-key"
    assert seen["body"]["generationConfig"]["temperature"] == 0.3
    assert "secret_truth" not in json.dumps(seen["body"])


async def test_local_server_error_is_tried_once(loopback: Loopback) -> None:
    loopback.status, loopback.reply = 503, google_error(503, "UNAVAILABLE")
    model = GoogleAPI(card(base_url=loopback.url), "g-test-key")
    try:
        with pytest.raises(ModelCallError) as info:
            await model.generate(simple())
    finally:
        await model.aclose()
    assert info.value.kind == "server"
    assert len(loopback.requests) == 1


async def test_card_timeout_reaches_the_sdk(loopback: Loopback) -> None:
    loopback.reply, loopback.delay_s = reply(candidate("late")), 1.0
    model = GoogleAPI(card(base_url=loopback.url, timeout_s=0.1), "g-test-key")
    try:
        with pytest.raises(ModelCallError) as info:
            await model.generate(simple())
    finally:
        await model.aclose()
    assert info.value.kind == "timeout"
    assert len(loopback.requests) == 1


async def test_refused_connection(closed_port_url: str) -> None:
    model = GoogleAPI(card(base_url=closed_port_url), "g-test-key")
    try:
        with pytest.raises(ModelCallError) as info:
            await model.generate(simple())
    finally:
        await model.aclose()
    assert info.value.kind == "connection"
