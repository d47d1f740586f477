"""Anthropic Messages API.

The SDK (2.x) speaks API version 2026-10-21, which rejects temperature, top_p and top_k at
any value, so this provider declares no temperature capability and never sends one.

Prompt caching: Anthropic caches a prompt only up to a `cache_control` breakpoint and reads
it back only at a content-block boundary where an earlier request put one. Our prompts are
one user message, so the adapter splits its text into blocks at the cuts a
`PrefixPlanner` learns from earlier prompts about the same item (see
oversight/model/prompt_cache.py) and marks each cut; a system prompt long enough to be
cached gets a breakpoint of its own, and a prompt sent again (another sample of it) is
also marked at its end. The joined text is exactly the prompt. Identical requests in
flight together wait for the first to write what they would all write. `usage`
reports cache reads and writes apart from `input_tokens`; they are added back, so
Usage.input_tokens counts the whole prompt as with every other provider.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import anthropic

from oversight.model.api import Capabilities, ModelAPI
from oversight.model.card import ModelCard
from oversight.model.prompt_cache import PrefixPlanner, WriteGate, routing_key, split_at
from oversight.model.redact import clip
from oversight.model.types import (
    GenerateRequest,
    GenerateResponse,
    ImagePart,
    Message,
    ModelCallError,
    TextPart,
    Usage,
    kind_for_status,
    retry_after_from_headers,
)

if TYPE_CHECKING:
    from oversight.model.batch import BatchPoll

_MAX_ERROR_CHARS = 500
_EPHEMERAL = {"type": "ephemeral"}  # the default five-minute cache (writes billed at 1.25x input)
log = logging.getLogger(__name__)


class AnthropicAPI(ModelAPI):
    provider = "anthropic"
    default_capabilities = Capabilities(images=True, logprobs=False, temperature=False)

    def __init__(self, card: ModelCard, api_key: str | None, http_client: Any = None) -> None:
        super().__init__(card, api_key, http_client)
        self._warned_temperature = False
        self._planner = PrefixPlanner() if card.prompt_cache else None
        self._gate = WriteGate()
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=card.base_url,
            # An explicit timeout also stops the SDK refusing large max_tokens without streaming.
            timeout=card.timeout_s,
            max_retries=0,  # the shared wrapper owns retries
            http_client=http_client,
        )

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        kwargs, prefixes = self._build(request)
        start = time.perf_counter()
        # The API has no `n`: draw the samples as independent concurrent calls.
        if request.n == 1:
            texts_usage = [await self._send(kwargs, prefixes)]
        else:
            texts_usage = await _gather_first_error([self._send(kwargs, prefixes) for _ in range(request.n)])
        latency = time.perf_counter() - start
        usage = Usage()
        for _, u in texts_usage:
            usage = usage + u
        return GenerateResponse(texts=[t for t, _ in texts_usage], usage=usage, latency_s=latency)

    async def _send(self, kwargs: dict[str, Any], prefixes: list[str]) -> tuple[str, Usage]:
        # Identical requests sent together (best-of-N candidates, samples) would each pay to
        # write the same prefix: the first writes it, the others wait and read (WriteGate).
        return await self._gate.run(prefixes, lambda: self._one(kwargs))

    async def aclose(self) -> None:
        # An injected client belongs to whoever made it.
        if self.http_client is None:
            await self._client.close()

    # --- Message Batches: up to 100,000 requests or 256 MB, results within 24 h ------------

    supports_batch = True
    batch_max_requests = 100_000
    batch_max_bytes = 240 * 1024 * 1024

    async def batch_submit(self, requests: list[tuple[str, GenerateRequest]], token: str = "") -> str:
        entries: list[dict[str, Any]] = []
        for cid, request in requests:
            kwargs, _ = self._build(request)
            # No `n` here either: each sample is an entry of its own, `{cid}-s{j}`.
            ids = [cid] if request.n == 1 else [f"{cid}-s{j}" for j in range(request.n)]
            entries += [{"custom_id": i, "params": kwargs} for i in ids]
        try:
            batch = await self._client.messages.batches.create(requests=entries)  # type: ignore[arg-type]
        except Exception as exc:
            raise _classify(exc) from None
        return str(batch.id)

    async def batch_poll(self, batch_id: str, expect: dict[str, GenerateRequest]) -> BatchPoll:
        from oversight.model.batch import BatchPoll

        samples: dict[str, dict[int, tuple[str, Usage] | ModelCallError]] = {}
        try:
            batch = await self._client.messages.batches.retrieve(batch_id)
            if batch.processing_status != "ended":
                return BatchPoll(str(batch.processing_status), False)
            async for entry in await self._client.messages.batches.results(batch_id):
                cid, _, sample = entry.custom_id.partition("-s")
                outcome = _batch_outcome(entry.result)
                if outcome is not None and cid in expect:
                    samples.setdefault(cid, {})[int(sample or 0)] = outcome
        except Exception as exc:
            raise _classify(exc) from None
        results: dict[str, GenerateResponse | ModelCallError] = {}
        for cid, got in samples.items():
            error = next((x for x in got.values() if isinstance(x, ModelCallError)), None)
            if error is not None:
                results[cid] = error
            elif len(got) == expect[cid].n:  # a sample that never ran leaves the call to be resent
                usage = Usage()
                for _, u in got.values():  # type: ignore[misc]
                    usage = usage + u
                results[cid] = GenerateResponse([got[j][0] for j in sorted(got)], usage)  # type: ignore[index]
        return BatchPoll("ended", True, results, batch.request_counts.model_dump())

    def _build(self, request: GenerateRequest) -> tuple[dict[str, Any], list[str]]:
        """The request's arguments, and the digests of the prefixes it marks for caching."""
        if not self.capabilities.images and any(
            isinstance(p, ImagePart) for m in request.messages for p in m.parts
        ):
            raise ModelCallError("bad_request", f"{self.card.label} is not configured for images")
        system = "\n\n".join(m.plain_text for m in request.messages if m.role == "system")
        messages = [_message(m) for m in request.messages if m.role != "system"]
        kwargs: dict[str, Any] = {
            "model": self.card.model,
            "max_tokens": request.max_tokens or self.card.max_tokens,
            "messages": messages,
        }
        if system:
            kwargs["system"] = system
        prefixes: list[str] = []
        if self._planner is not None:
            # Another sample of the same prompt (best-of-N candidates are calls with
            # sample=1..N-1; a retry keeps its sample) repeats it whole.
            again = request.n > 1 or request.sample > 0
            prefixes = self._mark_cache(kwargs, messages, system, routing_key(request.metadata, role=False) or "",
                                        again)
        temperature = (
            request.temperature if request.temperature is not None else self.card.temperature
        )
        if temperature is not None and not self._warned_temperature:
            self._warned_temperature = True
            log.warning(
                "%s: the Anthropic API no longer accepts a temperature; using its default",
                self.card.label,
            )
        return kwargs, prefixes

    def _mark_cache(
        self, kwargs: dict[str, Any], messages: list[dict[str, Any]], system: str, key: str, again: bool
    ) -> list[str]:
        """Cache breakpoints: on a long system prompt, and at the learned cuts of the first
        text of the first user message (where the stable part of every prompt lies); for a
        prompt sent `again`, also at its end. Returns a digest of each marked prefix."""
        assert self._planner is not None
        # The system prompt is part of every cached prefix: of the planner's key and digests.
        system_key = hashlib.sha256(system.encode()).hexdigest()[:16]
        prefixes = []
        if len(system) >= self._planner.min_chars:
            kwargs["system"] = [{"type": "text", "text": system, "cache_control": _EPHEMERAL}]
            prefixes.append(system_key)
        first = next((m for m in messages if m["role"] == "user"), None)
        blocks = first["content"] if first else []
        at = next((i for i, b in enumerate(blocks) if b["type"] == "text"), None)
        if at is None:
            return prefixes
        text = blocks[at]["text"]
        cuts = self._planner.cuts(f"{key}\x1f{system_key}", text, whole=again)
        pieces: list[dict[str, Any]] = [{"type": "text", "text": piece} for piece in split_at(text, cuts)]
        for piece, cut in zip(pieces, cuts, strict=False):
            piece["cache_control"] = _EPHEMERAL
            prefixes.append(hashlib.sha256(f"{system_key}\x1f{at}\x1f{text[:cut]}".encode()).hexdigest())
        if cuts:
            blocks[at : at + 1] = pieces
        return prefixes

    async def _one(self, kwargs: dict[str, Any]) -> tuple[str, Usage]:
        try:
            message = await self._client.messages.create(**kwargs)
        except Exception as exc:
            # Not chained: the SDK's exception holds the raw reply, which may echo our
            # headers; the classified error carries its type and scrubbed text instead.
            raise _classify(exc) from None
        try:
            blocks = message.content or []
            # Thinking and tool blocks are not part of the visible answer.
            text = "".join(b.text for b in blocks if getattr(b, "type", None) == "text")
            u = message.usage
            read = int(getattr(u, "cache_read_input_tokens", 0) or 0)
            written = int(getattr(u, "cache_creation_input_tokens", 0) or 0)
            usage = Usage(int(u.input_tokens or 0) + read + written, int(u.output_tokens or 0), read, written)
        except (AttributeError, TypeError, ValueError, OverflowError) as exc:
            raise ModelCallError(
                "malformed", clip(f"unexpected response shape: {exc}", _MAX_ERROR_CHARS)
            ) from None
        if not text.strip():
            raise ModelCallError(
                "malformed", f"response has no text (stop_reason={message.stop_reason})"
            )
        return text, usage


_ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                 "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
                 "api_error": 500, "overloaded_error": 529}


def _batch_outcome(result: Any) -> tuple[str, Usage] | ModelCallError | None:
    """One batch entry: its text and usage, its own error, or None if it never ran."""
    kind = getattr(result, "type", None)
    if kind == "succeeded":
        message = result.message
        try:
            text = "".join(b.text for b in message.content or [] if getattr(b, "type", None) == "text")
            u = message.usage
            read = int(getattr(u, "cache_read_input_tokens", 0) or 0)
            written = int(getattr(u, "cache_creation_input_tokens", 0) or 0)
            usage = Usage(int(u.input_tokens or 0) + read + written, int(u.output_tokens or 0), read, written)
        except (AttributeError, TypeError, ValueError, OverflowError) as exc:
            return ModelCallError("malformed", clip(f"unexpected response shape: {exc}", _MAX_ERROR_CHARS))
        if not text.strip():
            return ModelCallError("malformed", f"response has no text (stop_reason={message.stop_reason})")
        return text, usage
    if kind == "errored":
        error = getattr(getattr(result, "error", None), "error", None)
        status = _ERROR_STATUS.get(str(getattr(error, "type", "")), 500)
        return ModelCallError(kind_for_status(status), clip(str(getattr(error, "message", error)), _MAX_ERROR_CHARS),
                              status=status)
    return None  # expired or canceled: never ran


async def _gather_first_error(coros: list[Any]) -> list[tuple[str, Usage]]:
    """Run the calls together; on the first failure cancel the rest and raise it plainly."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as eg:
        errors = [e for e in eg.exceptions if isinstance(e, ModelCallError)]
        if errors:
            raise errors[0] from None
        raise
    return [t.result() for t in tasks]


def _message(m: Message) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for p in m.parts:
        if isinstance(p, TextPart):
            content.append({"type": "text", "text": p.text})
        else:
            content.append(
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": p.mime, "data": p.b64()},
                }
            )
    return {"role": m.role, "content": content}


def _classify(exc: Exception) -> ModelCallError:
    # APITimeoutError subclasses APIConnectionError, so it is checked first.
    if isinstance(exc, anthropic.APITimeoutError):
        return ModelCallError("timeout", "request timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        cause = exc.__cause__
        text = f"{exc} ({type(cause).__name__}: {cause})" if cause else str(exc)
        return ModelCallError("connection", clip(text, _MAX_ERROR_CHARS))
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        return ModelCallError(
            kind_for_status(status),
            clip(str(exc.api_message or exc.message), _MAX_ERROR_CHARS),
            status=status,
            retry_after=retry_after_from_headers(exc.response.headers),
        )
    if isinstance(exc, anthropic.APIResponseValidationError):
        return ModelCallError("malformed", clip(str(exc), _MAX_ERROR_CHARS), status=exc.status_code)
    # The SDK decodes a 200's body itself and lets a broken one (cut short by a proxy, not
    # UTF-8) through as the decoder's own error: a malformed reply, worth another try.
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return ModelCallError(
            "malformed",
            clip(f"reply body is not valid JSON: {type(exc).__name__}: {exc}", _MAX_ERROR_CHARS),
        )
    return ModelCallError("other", clip(f"{type(exc).__name__}: {exc}", _MAX_ERROR_CHARS))
