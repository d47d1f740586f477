"""Loopback fake servers speaking the Anthropic Messages and Gemini generateContent wire
formats, with the same fault injection as `oversight.testing.FakeOpenAI`.

A card reaches them with `base_url: server.base_url`. Replies come from `reply(body)`,
where `body` is the provider's own request body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from oversight.testing import LoopbackServer

_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}

_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _text_chars(value: Any) -> int:
    """Characters of text anywhere in a request body, for a rough token count."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_text_chars(v) for k, v in value.items() if k != "data")
    if isinstance(value, list):
        return sum(_text_chars(v) for v in value)
    return 0


@dataclass
class FakeAnthropic(LoopbackServer):
    """POST /v1/messages. The API has no `n`: every request is one sample."""

    def __enter__(self) -> FakeAnthropic:
        super().__enter__()
        return self

    def success(self, body: dict[str, Any], path: str) -> dict[str, Any]:
        [text] = self.texts(body, 1)
        chars = _text_chars(body.get("messages")) + _text_chars(body.get("system"))
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "fake"),
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": chars // 4 + 1, "output_tokens": 3},
        }

    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def empty(self, body: dict[str, Any], path: str, kind: Literal["samples", "text"]) -> dict[str, Any]:
        reply = self.success(body, path)
        reply["content"] = [] if kind == "samples" else [{"type": "text", "text": ""}]
        return reply


@dataclass
class FakeGemini(LoopbackServer):
    """POST /{version}/models/{model}:generateContent; `candidateCount` is `n`."""

    def __enter__(self) -> FakeGemini:
        super().__enter__()
        return self

    def success(self, body: dict[str, Any], path: str) -> dict[str, Any]:
        n = int((body.get("generationConfig") or {}).get("candidateCount") or 1)
        texts = self.texts(body, n)
        chars = _text_chars(body.get("contents")) + _text_chars(body.get("systemInstruction"))
        candidates = [
            {"index": i, "finishReason": "STOP", "content": {"role": "model", "parts": [{"text": t}]}}
            for i, t in enumerate(texts)
        ]
        usage = {"promptTokenCount": chars // 4 + 1, "candidatesTokenCount": 3 * n,
                 "totalTokenCount": chars // 4 + 1 + 3 * n}
        model = path.rsplit("/", 1)[-1].split(":", 1)[0]
        return {"candidates": candidates, "usageMetadata": usage, "modelVersion": model}

    def error(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": message, "status": _GOOGLE_STATUS.get(status, "UNKNOWN")}}

    def empty(self, body: dict[str, Any], path: str, kind: Literal["samples", "text"]) -> dict[str, Any]:
        reply = self.success(body, path)
        if kind == "samples":
            reply["candidates"] = []
        else:
            reply["candidates"][0]["content"]["parts"] = [{"text": ""}]
        return reply
