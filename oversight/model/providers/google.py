"""Google Gemini through the google-genai SDK (Gemini Developer API).

Prompt caching: Gemini 2.5 and later cache long prompt prefixes implicitly;
`usage_metadata.cached_content_token_count` says how many prompt tokens were read from a
cache (`prompt_token_count` includes them). With `explicit_cache_ttl_s` on the card, the
adapter also uploads each item's shared prefix (learned as for Anthropic, see
oversight/model/prompt_cache.py) as an explicit cache and sends the rest of the prompt
after it: a guaranteed discount, at the price of storage, which Google bills per hour and
the harness does not count. The model then reads the prompt as two consecutive user turns
(the cached prefix, then the rest). A prefix the API refuses to cache (too short for the
model, say) is sent whole, as without the option. Caches are deleted on close. Repeats of
a long prompt in flight together (best-of-N candidates) go one first and the rest after it
(WriteGate), so that they find it cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any

import httpx2
import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from oversight.model.api import Capabilities, ModelAPI, newest_match
from oversight.model.card import ModelCard
from oversight.model.prompt_cache import PrefixPlanner, WriteGate, repeat_prefixes, routing_key
from oversight.model.redact import clip
from oversight.model.types import (
    ChoiceLogprobs,
    GenerateRequest,
    GenerateResponse,
    ImagePart,
    Message,
    ModelCallError,
    TextPart,
    Usage,
    choice_positions,
    kind_for_status,
    parse_retry_after,
    retry_after_from_headers,
)

if TYPE_CHECKING:
    from oversight.model.batch import BatchPoll

_TOP_LOGPROBS = 5
_MAX_ERROR_CHARS = 500
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
# An explicit cache is renewed this long before it expires, so no request names a dead one.
_RENEW_MARGIN_S = 30.0
log = logging.getLogger(__name__)


class _ExplicitCache:
    """One uploaded prefix: its resource name (None while being made, or if refused)."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.name: str | None = None
        self.tokens = 0
        self.expires = 0.0
        self.refused = False


class GoogleAPI(ModelAPI):
    provider = "google"
    default_capabilities = Capabilities(images=True, logprobs=True)

    def __init__(self, card: ModelCard, api_key: str | None, http_client: Any = None) -> None:
        super().__init__(card, api_key, http_client)
        # Always hand the SDK an httpx2 client: left alone it prefers aiohttp when that is
        # installed, whose errors differ and which retries connection errors on its own.
        self._own_http = http_client is None
        self._http = http_client if http_client is not None else httpx2.AsyncClient()
        self._client = genai.Client(
            vertexai=False,  # never switch backends because of GOOGLE_GENAI_USE_VERTEXAI
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=card.base_url,
                timeout=max(1, round(card.timeout_s * 1000)),  # milliseconds
                # One attempt: with no retry options tenacity already stops after one,
                # but setting them also turns off the SDK's implicit aiohttp retry.
                retry_options=types.HttpRetryOptions(attempts=1),
                httpx_async_client=self._http,
            ),
        )
        self._planner = PrefixPlanner() if card.explicit_cache_ttl_s and card.prompt_cache else None
        self._caches: dict[str, _ExplicitCache] = {}
        self._gate = WriteGate()

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        contents, config = self._build(request)
        start = time.perf_counter()
        created = 0
        if self._planner is not None:
            contents, config, created = await self._explicit(request, contents, config)
        # Repeats of a long prompt sent together (best-of-N candidates) follow the first, so
        # that they find its prefix cached (implicitly, or in an explicit cache).
        repeats = repeat_prefixes(request.prompt_text()) if self.card.prompt_cache else []
        try:
            response = await self._gate.run(repeats, lambda: self._client.aio.models.generate_content(
                model=self.card.model, contents=contents, config=config
            ))
        except Exception as exc:
            # Not chained: the SDK's exception holds the raw reply, which may echo our
            # headers; the classified error carries its type and scrubbed text instead.
            raise _classify(exc) from None
        latency = time.perf_counter() - start
        parsed = _parse(response, request, want_logprobs=bool(config.response_logprobs))
        parsed.latency_s = latency
        # The call that uploaded a cache pays for writing it (at the card's write price).
        parsed.usage.cache_write_tokens += created
        parsed.usage.input_tokens += created
        return parsed

    async def _explicit(
        self, request: GenerateRequest, contents: list[types.Content], config: types.GenerateContentConfig
    ) -> tuple[list[types.Content], types.GenerateContentConfig, int]:
        """Move the prompt's learned shared prefix (and the system instruction, which the
        API wants inside the cache) into an explicit cache, if one can be had."""
        assert self._planner is not None
        first = contents[0] if contents else None
        if first is None or first.role != "user" or not first.parts or not first.parts[0].text:
            return contents, config, 0
        text = first.parts[0].text
        system = config.system_instruction if isinstance(config.system_instruction, str) else ""
        key = f"{routing_key(request.metadata, role=False) or ''}\x1f{hashlib.sha256(system.encode()).hexdigest()[:16]}"
        # The most widely shared prefix (the shortest cut) changes least from prompt to prompt.
        cuts = [c for c in self._planner.cuts(key, text) if c < len(text)]
        if not cuts:
            return contents, config, 0
        prefix = text[: cuts[0]]
        cache, created = await self._cache_for(system, prefix)
        if cache.name is None:
            return contents, config, 0
        rest = types.Content(role="user", parts=[types.Part.from_text(text=text[cuts[0]:]), *first.parts[1:]])
        config = config.model_copy(update={"system_instruction": None, "cached_content": cache.name})
        return [rest, *contents[1:]], config, created

    async def _cache_for(self, system: str, prefix: str) -> tuple[_ExplicitCache, int]:
        """The live cache of this prefix, uploading it if there is none; also the tokens
        uploaded by this call (0 if another call made the cache)."""
        digest = hashlib.sha256(f"{system}\x1f{prefix}".encode()).hexdigest()
        while (cache := self._caches.get(digest)) is not None:
            await cache.ready.wait()
            if cache.refused or (cache.name is not None and time.monotonic() < cache.expires - _RENEW_MARGIN_S):
                return cache, 0
            if self._caches.get(digest) is cache:
                break  # expiring (or failed): this call makes the next one
        cache = self._caches[digest] = _ExplicitCache()
        ttl = self.card.explicit_cache_ttl_s or 0
        try:
            made = await self._client.aio.caches.create(
                model=self.card.model,
                config=types.CreateCachedContentConfig(
                    contents=[types.Content(role="user", parts=[types.Part.from_text(text=prefix)])],
                    system_instruction=system or None,
                    ttl=f"{ttl}s",
                ),
            )
            cache.name = made.name
            meta = made.usage_metadata
            cache.tokens = int(getattr(meta, "total_token_count", 0) or 0)
            cache.expires = time.monotonic() + ttl
        except Exception as exc:  # noqa: BLE001 - any failure: send this prompt uncached instead
            err = _classify(exc)
            # A refusal (too short for the model, say) is final for this prefix; a transient
            # failure is tried again by the next prompt that shares it.
            cache.refused = err.kind in ("bad_request", "not_found")
            log.info("%s: explicit cache not created (%s); sending the prompt whole", self.card.label, err)
            if not cache.refused:
                del self._caches[digest]
        finally:
            cache.ready.set()
        return cache, cache.tokens

    async def aclose(self) -> None:
        # Storage is billed while a cache lives: delete ours rather than wait for the TTL.
        for cache in list(self._caches.values()):
            if cache.name is not None:
                try:
                    await self._client.aio.caches.delete(name=cache.name)
                except Exception as exc:  # noqa: BLE001 - best effort: the TTL ends it anyway
                    log.info("%s: explicit cache %s not deleted (%s)", self.card.label, cache.name, _classify(exc))
        self._caches.clear()
        self._client.close()  # the unused sync client the SDK makes for itself
        await self._client.aio.aclose()
        if self._own_http:
            await self._http.aclose()

    # --- batch mode: inline requests (at most 20 MB a batch), results within 24 h -----------

    supports_batch = True
    batch_max_requests = 50_000
    batch_max_bytes = 18 * 1024 * 1024

    async def batch_submit(self, requests: list[tuple[str, GenerateRequest]], token: str = "") -> str:
        inlined = []
        for cid, request in requests:
            # No explicit caches here: a batch runs hours later, after any cache's TTL.
            contents, config = self._build(request)
            config = config.model_copy(update={"automatic_function_calling": None})
            inlined.append(types.InlinedRequest(model=self.card.model, contents=contents, config=config,
                                                metadata={"key": cid}))
        try:
            # The display name carries the token: it finds the batch again after a crash.
            job = await self._client.aio.batches.create(
                model=self.card.model, src=inlined,
                config=types.CreateBatchJobConfig(display_name=f"oversight-{token}" if token else None))
        except Exception as exc:
            raise _classify(exc) from None
        return str(job.name)

    async def batch_find(self, token: str) -> str | None:
        try:
            jobs = await self._client.aio.batches.list(config=types.ListBatchJobsConfig(page_size=100))
            found = await newest_match(jobs, lambda job: job.display_name == f"oversight-{token}")
        except Exception as exc:
            raise _classify(exc) from None
        return str(found.name) if found is not None else None

    async def batch_poll(self, batch_id: str, expect: dict[str, GenerateRequest]) -> BatchPoll:
        from oversight.model.batch import BatchPoll

        try:
            job = await self._client.aio.batches.get(name=batch_id)
        except Exception as exc:
            raise _classify(exc) from None
        state = str(job.state.value if job.state is not None else "JOB_STATE_UNSPECIFIED")
        if state not in _BATCH_ENDED:
            return BatchPoll(state, False)
        results: dict[str, GenerateResponse | ModelCallError] = {}
        for i, item in enumerate((job.dest.inlined_responses if job.dest else None) or []):
            cid = (item.metadata or {}).get("key") or f"c{i}"
            request = expect.get(cid)
            if request is None:
                continue
            if item.error is not None:
                status = int(item.error.code or 500)
                results[cid] = ModelCallError(kind_for_status(status), clip(str(item.error.message), _MAX_ERROR_CHARS),
                                              status=status)
            elif item.response is not None:
                want = bool(request.logprob_choices) and self.capabilities.logprobs
                try:
                    results[cid] = _parse(item.response, request, want_logprobs=want)
                except ModelCallError as err:
                    results[cid] = err
        if state == "JOB_STATE_FAILED" and not results:
            error = getattr(job, "error", None)
            why = clip(str(getattr(error, "message", None) or "batch failed"), _MAX_ERROR_CHARS)
            results = {cid: ModelCallError("bad_request", why) for cid in expect}
        return BatchPoll(state, True, results)

    def _build(
        self, request: GenerateRequest
    ) -> tuple[list[types.Content], types.GenerateContentConfig]:
        if not self.capabilities.images and any(
            isinstance(p, ImagePart) for m in request.messages for p in m.parts
        ):
            raise ModelCallError("bad_request", f"{self.card.label} is not configured for images")
        system = "\n\n".join(m.plain_text for m in request.messages if m.role == "system")
        contents = [_content(m) for m in request.messages if m.role != "system"]
        temperature = (
            request.temperature if request.temperature is not None else self.card.temperature
        )
        want_logprobs = bool(request.logprob_choices) and self.capabilities.logprobs
        config = types.GenerateContentConfig(
            system_instruction=system or None,
            max_output_tokens=request.max_tokens or self.card.max_tokens,
            temperature=temperature,
            candidate_count=request.n if request.n != 1 else None,
            response_logprobs=True if want_logprobs else None,
            logprobs=_TOP_LOGPROBS if want_logprobs else None,
            # Client-side only (never sent): no tool loop, one request per call.
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        return contents, config


_BATCH_ENDED = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED",
                "JOB_STATE_PARTIALLY_SUCCEEDED")


def _content(m: Message) -> types.Content:
    parts: list[types.Part] = []
    for p in m.parts:
        if isinstance(p, TextPart):
            parts.append(types.Part.from_text(text=p.text))
        else:
            parts.append(types.Part.from_bytes(data=p.data, mime_type=p.mime))
    return types.Content(role="model" if m.role == "assistant" else "user", parts=parts)


def _parse(response: Any, request: GenerateRequest, want_logprobs: bool) -> GenerateResponse:
    try:
        candidates = sorted(response.candidates or [], key=lambda c: c.index or 0)
        if not candidates:
            feedback = response.prompt_feedback
            reason = getattr(feedback, "block_reason", None) if feedback else None
            raise ModelCallError("malformed", f"response has no candidates (block_reason={reason})")
        texts: list[str] = []
        for c in candidates:
            parts = c.content.parts if c.content and c.content.parts else []
            # Thought summaries are not part of the visible answer.
            text = "".join(p.text for p in parts if p.text and not p.thought)
            if not text.strip():
                raise ModelCallError(
                    "malformed",
                    f"candidate {c.index} has no text (finish_reason={c.finish_reason})",
                )
            texts.append(text)
        meta = response.usage_metadata
        usage = Usage(
            # Includes the cached tokens, implicit or explicit.
            int(getattr(meta, "prompt_token_count", 0) or 0),
            # Thinking tokens are billed as output.
            int(getattr(meta, "candidates_token_count", 0) or 0)
            + int(getattr(meta, "thoughts_token_count", 0) or 0),
            int(getattr(meta, "cached_content_token_count", 0) or 0),
        )
        logprobs = None
        if want_logprobs and request.logprob_choices:
            logprobs = [_candidate_logprobs(c, request.logprob_choices) for c in candidates]
    except ModelCallError:
        raise
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        raise ModelCallError(
            "malformed", clip(f"unexpected response shape: {exc}", _MAX_ERROR_CHARS)
        ) from None
    if len(texts) != request.n:
        raise ModelCallError("bad_request", f"asked for {request.n} candidates, got {len(texts)}")
    named = getattr(response, "model_version", None)
    return GenerateResponse(texts=texts, usage=usage, logprobs=logprobs,
                            reply_model=named if isinstance(named, str) else "")


def _candidate_logprobs(candidate: Any, wanted: tuple[str, ...]) -> list[ChoiceLogprobs]:
    result = candidate.logprobs_result
    chosen = (result.chosen_candidates or []) if result else []
    top = (result.top_candidates or []) if result else []

    def alternatives(i: int) -> list[tuple[str, float | None]]:
        return [(c.token or "", c.log_probability) for c in (top[i].candidates or [] if i < len(top) else [])]

    return choice_positions(((t.token or "", t.log_probability, alternatives(i)) for i, t in enumerate(chosen)), wanted)


def _retry_after(exc: genai_errors.APIError) -> float | None:
    seconds = retry_after_from_headers(getattr(exc.response, "headers", None))
    if seconds is not None:
        return seconds
    # Gemini usually says when to come back in the body, as a google.rpc.RetryInfo detail.
    body = exc.details if isinstance(exc.details, dict) else {}
    error = body.get("error", body)
    for detail in error.get("details", []) if isinstance(error, dict) else []:
        if isinstance(detail, dict) and detail.get("@type") == _RETRY_INFO:
            match = re.fullmatch(r"\s*([0-9.]+)s\s*", str(detail.get("retryDelay", "")))
            if match:
                return parse_retry_after(match.group(1))
    return None


def _classify(exc: Exception) -> ModelCallError:
    if isinstance(exc, genai_errors.APIError):
        status = int(exc.code) if isinstance(exc.code, int) else 0
        message = clip(str(exc.message or exc), _MAX_ERROR_CHARS)
        if not status:
            return ModelCallError("other", message)
        return ModelCallError(
            kind_for_status(status), message, status=status, retry_after=_retry_after(exc)
        )
    # The SDK lets the HTTP client's own exceptions through.
    if isinstance(exc, httpx2.TimeoutException):
        return ModelCallError("timeout", clip(f"{type(exc).__name__}: {exc}", _MAX_ERROR_CHARS))
    if isinstance(exc, httpx2.TransportError):
        return ModelCallError("connection", clip(f"{type(exc).__name__}: {exc}", _MAX_ERROR_CHARS))
    # A body that is not JSON, or JSON of the wrong shape (e.g. a proxy's error page).
    malformed = (
        genai_errors.UnknownApiResponseError,
        json.JSONDecodeError,
        UnicodeDecodeError,
        pydantic.ValidationError,
        httpx2.DecodingError,
    )
    if isinstance(exc, malformed):
        return ModelCallError("malformed", clip(f"{type(exc).__name__}: {exc}", _MAX_ERROR_CHARS))
    return ModelCallError("other", clip(f"{type(exc).__name__}: {exc}", _MAX_ERROR_CHARS))
