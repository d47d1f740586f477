"""Loopback fake servers speaking the Anthropic Messages and Gemini generateContent wire
formats, with the same fault injection as `oversight.testing.FakeOpenAI`.

A card reaches them with `base_url: server.base_url`. Replies come from `reply(body)`,
where `body` is the provider's own request body.

Prompt caching, as the real APIs report it:
- Anthropic: a request with `cache_control` breakpoints writes the prefix up to each (if
  1024+ tokens) and reads the longest prefix, ending at one of its block boundaries, that
  an earlier request wrote; `usage.cache_read_input_tokens` and
  `cache_creation_input_tokens` count them and `input_tokens` only the rest. No
  breakpoint, no caching.
- Gemini: implicit caching of the longest prefix of 1024+ tokens shared with an earlier
  prompt, and explicit caches (POST/DELETE `cachedContents`, named in a request's
  `cachedContent`); `usageMetadata.cachedContentTokenCount` counts the cached tokens and
  `promptTokenCount` includes them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from oversight.model.prompt_cache import AutomaticPrefixCache, Block, BreakpointCache
from oversight.testing import FakeBatch, LoopbackServer, _json

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


def _anthropic_blocks(body: dict[str, Any]) -> list[Block]:
    """The request's content blocks in the order the model reads them: system, then each
    message's. A block is identified by its role, type and text (an image by its bytes)."""
    def blocks(role: str, content: Any) -> list[Block]:
        if isinstance(content, str):
            return [Block(f"{role}:text:{content}", len(content))]
        out = []
        for b in content or []:
            text = str(b.get("text", ""))
            ident = text if b.get("type") == "text" else hashlib.sha256(repr(b).encode()).hexdigest()
            out.append(Block(f"{role}:{b.get('type')}:{ident}", len(text), "cache_control" in b))
        return out

    out = blocks("system", body.get("system") or [])
    for m in body.get("messages", []):
        out += blocks(str(m.get("role")), m.get("content"))
    return out


@dataclass
class FakeAnthropic(LoopbackServer):
    """POST /v1/messages. The API has no `n`: every request is one sample."""

    prompt_cache: BreakpointCache = field(default_factory=BreakpointCache)
    _cached_at_arrival: dict[int, tuple[int, int]] = field(default_factory=dict, repr=False)

    def __enter__(self) -> FakeAnthropic:
        super().__enter__()
        return self

    def arrived(self, body: dict[str, Any], path: str) -> None:
        self._cached_at_arrival[id(body)] = self.prompt_cache.account(_anthropic_blocks(body), commit=False)

    def success(self, body: dict[str, Any], path: str) -> dict[str, Any]:
        [text] = self.texts(body, 1)
        chars = _text_chars(body.get("messages")) + _text_chars(body.get("system"))
        total = chars // 4 + 1
        blocks = _anthropic_blocks(body)
        found = self._cached_at_arrival.pop(id(body), None)
        read, written = found if found is not None else self.prompt_cache.account(blocks, commit=False)
        self.prompt_cache.commit(blocks)
        read, written = min(read, total), min(written, total - min(read, total))
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "fake"),
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": total - read - written, "output_tokens": 3,
                      "cache_creation_input_tokens": written, "cache_read_input_tokens": read},
        }

    # --- Message Batches: POST /v1/messages/batches, GET .../ID, GET .../ID/results (JSONL)

    def batch_route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes, str] | None:
        route = path.split("?", 1)[0]
        if not route.startswith("/v1/messages/batches"):
            return None
        if method == "POST" and route == "/v1/messages/batches":
            made = self.new_batch([(r["custom_id"], r["params"]) for r in json.loads(raw)["requests"]], "msgbatch_")
            return _json(200, self._batch_object(made))
        parts = route.split("/")
        batch = self.batches.get(parts[4]) if len(parts) > 4 else None
        if batch is None:
            return _json(404, self.error(404, "no such batch"))
        if len(parts) == 5:
            self.advance(batch, lambda body: "/v1/messages")
            return _json(200, self._batch_object(batch))
        if not batch.ended:
            return _json(400, self.error(400, "batch has not ended"))
        lines = []
        for cid, status, body in batch.results:
            if status == 200:
                result: dict[str, Any] = {"type": "succeeded", "message": body}
            elif status:
                result = {"type": "errored", "error": body}
            else:
                result = {"type": "expired"}
            lines.append(json.dumps({"custom_id": cid, "result": result}) + "\n")
        return 200, "".join(lines).encode(), "application/binary"

    def _batch_object(self, batch: FakeBatch) -> dict[str, Any]:
        counts = {"processing": 0 if batch.ended else len(batch.items), "succeeded": 0, "errored": 0,
                  "canceled": 0, "expired": 0}
        for _, status, _ in batch.results:
            counts["succeeded" if status == 200 else "errored" if status else "expired"] += 1
        return {"id": batch.id, "type": "message_batch", "processing_status": "ended" if batch.ended else "in_progress",
                "request_counts": counts, "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-02T00:00:00Z",
                "ended_at": "2026-01-01T01:00:00Z" if batch.ended else None, "cancel_initiated_at": None,
                "archived_at": None,
                "results_url": f"{self.url}/v1/messages/batches/{batch.id}/results" if batch.ended else None}

    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def empty(self, body: dict[str, Any], path: str, kind: Literal["samples", "text"]) -> dict[str, Any]:
        reply = self.success(body, path)
        reply["content"] = [] if kind == "samples" else [{"type": "text", "text": ""}]
        return reply


def _gemini_text(body: dict[str, Any]) -> str:
    """The prompt as the model reads it, for prefix matching: system, then each turn."""
    def parts(content: Any) -> str:
        return "".join(str(p.get("text", "")) if "text" in p else hashlib.sha256(repr(p).encode()).hexdigest()
                       for p in (content or {}).get("parts", []))

    out = f"system\n{parts(body.get('systemInstruction'))}\n"
    for c in body.get("contents", []):
        out += f"{c.get('role')}\n{parts(c)}\n"
    return out


@dataclass
class FakeGemini(LoopbackServer):
    """POST /{version}/models/{model}:generateContent; `candidateCount` is `n`. Explicit
    caches: POST /{version}/cachedContents (refused with 400 below `explicit_min_tokens`),
    DELETE /{version}/cachedContents/NAME."""

    implicit_cache: AutomaticPrefixCache = field(default_factory=lambda: AutomaticPrefixCache(1024, step=1))
    _cached_at_arrival: dict[int, int] = field(default_factory=dict, repr=False)
    explicit_min_tokens: int = 1024
    caches: dict[str, int] = field(default_factory=dict)  # live explicit cache name -> tokens
    deleted: list[str] = field(default_factory=list)

    def __enter__(self) -> FakeGemini:
        super().__enter__()
        return self

    def _respond(
        self, body: dict[str, Any], path: str, headers: dict[str, str], fault: Any
    ) -> tuple[int, bytes, list[str]]:
        if fault is None and path.split("?", 1)[0].endswith("/cachedContents"):
            chars = _text_chars(body.get("contents")) + _text_chars(body.get("systemInstruction"))
            if chars // 4 + 1 < self.explicit_min_tokens:
                message = (f"Cached content is too small. total_token_count={chars // 4 + 1}, "
                           f"min={self.explicit_min_tokens}")
                return 400, json.dumps(self.error(400, message)).encode(), []
        return super()._respond(body, path, headers, fault)

    def arrived(self, body: dict[str, Any], path: str) -> None:
        if ":generateContent" in path and not body.get("cachedContent"):
            self._cached_at_arrival[id(body)] = self.implicit_cache.lookup("", _gemini_text(body), commit=False)

    def success(self, body: dict[str, Any], path: str) -> dict[str, Any]:
        route = path.split("?", 1)[0]
        if route.endswith("/cachedContents"):
            return self._create_cache(body)
        if "/cachedContents/" in route:
            self.deleted.append("cachedContents/" + route.rsplit("/", 1)[-1])
            self.caches.pop(self.deleted[-1], None)
            return {}
        n = int((body.get("generationConfig") or {}).get("candidateCount") or 1)
        texts = self.texts(body, n)
        chars = _text_chars(body.get("contents")) + _text_chars(body.get("systemInstruction"))
        prompt = chars // 4 + 1
        if body.get("cachedContent"):
            cached = self.caches[str(body["cachedContent"])]  # an unknown name fails loudly in tests
            prompt += cached
        else:
            text = _gemini_text(body)
            found = self._cached_at_arrival.pop(id(body), None)
            cached = min(prompt, found if found is not None else self.implicit_cache.lookup("", text, commit=False))
            self.implicit_cache.commit("", text)
        candidates = [
            {"index": i, "finishReason": "STOP", "content": {"role": "model", "parts": [{"text": t}]}}
            for i, t in enumerate(texts)
        ]
        usage: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": 3 * n,
                                 "totalTokenCount": prompt + 3 * n}
        if cached:  # the real API leaves the field out when nothing was cached
            usage["cachedContentTokenCount"] = cached
        model = path.rsplit("/", 1)[-1].split(":", 1)[0]
        return {"candidates": candidates, "usageMetadata": usage, "modelVersion": model}

    def _create_cache(self, body: dict[str, Any]) -> dict[str, Any]:
        chars = _text_chars(body.get("contents")) + _text_chars(body.get("systemInstruction"))
        name = f"cachedContents/fake-{len(self.caches) + len(self.deleted)}"
        self.caches[name] = chars // 4 + 1
        return {"name": name, "model": body.get("model"), "usageMetadata": {"totalTokenCount": self.caches[name]},
                "createTime": "2026-01-01T00:00:00Z", "expireTime": "2026-01-01T01:00:00Z"}

    # --- batch mode: POST /{version}/models/M:batchGenerateContent (inline requests),
    # GET /{version}/batches/ID (an operation whose metadata holds state and responses)

    def batch_route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes, str] | None:
        route = path.split("?", 1)[0]
        if method == "POST" and route.endswith(":batchGenerateContent"):
            model = route.rsplit("/", 1)[-1].split(":", 1)[0]
            wanted = json.loads(raw)["batch"]["inputConfig"]["requests"]["requests"]
            made = self.new_batch([(str((r.get("metadata") or {}).get("key", i)), r["request"])
                                   for i, r in enumerate(wanted)], "batches/fake-")
            made.model = model  # type: ignore[attr-defined]
            made.tag = {"displayName": json.loads(raw)["batch"].get("displayName")}
            return _json(200, self._operation(made))
        if method == "GET" and route.endswith("/batches"):
            return _json(200, {"operations": [self._operation(b) for b in reversed(self.batches.values())]})
        if method == "GET" and "/batches/" in route:
            batch = self.batches.get("batches/" + route.rsplit("/", 1)[-1])
            if batch is None:
                return _json(404, self.error(404, "no such batch"))
            model = getattr(batch, "model", "fake")
            self.advance(batch, lambda body: f"/v1beta/models/{model}:generateContent")
            return _json(200, self._operation(batch))
        return None

    def _operation(self, batch: FakeBatch) -> dict[str, Any]:
        state = ("BATCH_STATE_EXPIRED" if batch.expired else
                 "BATCH_STATE_SUCCEEDED" if batch.ended else "BATCH_STATE_RUNNING")
        meta: dict[str, Any] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
                                "name": batch.id, "model": f"models/{getattr(batch, 'model', 'fake')}", "state": state,
                                "createTime": "2026-01-01T00:00:00Z"}
        if batch.tag.get("displayName"):
            meta["displayName"] = batch.tag["displayName"]
        if batch.ended:
            responses: list[dict[str, Any]] = []
            for cid, status, body in batch.results:
                if status == 200:
                    responses.append({"response": body, "metadata": {"key": cid}})
                elif status:
                    responses.append({"error": (body or {}).get("error", {}), "metadata": {"key": cid}})
            meta["output"] = {"inlinedResponses": {"inlinedResponses": responses}}
        return {"name": batch.id, "metadata": meta, "done": batch.ended}

    def error(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": message, "status": _GOOGLE_STATUS.get(status, "UNKNOWN")}}

    def empty(self, body: dict[str, Any], path: str, kind: Literal["samples", "text"]) -> dict[str, Any]:
        reply = self.success(body, path)
        if kind == "samples":
            reply["candidates"] = []
        else:
            reply["candidates"][0]["content"]["parts"] = [{"text": ""}]
        return reply
