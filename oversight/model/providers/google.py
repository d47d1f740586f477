"""Google Gemini through the google-genai SDK (Gemini Developer API)."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable
from typing import Any

import httpx2
import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from oversight.model.api import Capabilities, ModelAPI
from oversight.model.card import ModelCard
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
    parse_retry_after,
    retry_after_from_headers,
)

_TOP_LOGPROBS = 5
_MAX_ERROR_CHARS = 500
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


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

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        contents, config = self._build(request)
        start = time.perf_counter()
        try:
            response = await self._client.aio.models.generate_content(
                model=self.card.model, contents=contents, config=config
            )
        except Exception as exc:
            # Not chained: the SDK's exception holds the raw reply, which may echo our
            # headers; the classified error carries its type and scrubbed text instead.
            raise _classify(exc) from None
        latency = time.perf_counter() - start
        parsed = _parse(response, request, want_logprobs=bool(config.response_logprobs))
        parsed.latency_s = latency
        return parsed

    async def aclose(self) -> None:
        self._client.close()  # the unused sync client the SDK makes for itself
        await self._client.aio.aclose()
        if self._own_http:
            await self._http.aclose()

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
            int(getattr(meta, "prompt_token_count", 0) or 0),
            # Thinking tokens are billed as output.
            int(getattr(meta, "candidates_token_count", 0) or 0)
            + int(getattr(meta, "thoughts_token_count", 0) or 0),
        )
        logprobs = None
        if want_logprobs and request.logprob_choices:
            logprobs = [_candidate_logprobs(c, request.logprob_choices) for c in candidates]
    except ModelCallError:
        raise
    except (AttributeError, TypeError, ValueError) as exc:
        raise ModelCallError(
            "malformed", clip(f"unexpected response shape: {exc}", _MAX_ERROR_CHARS)
        ) from None
    if len(texts) != request.n:
        raise ModelCallError("bad_request", f"asked for {request.n} candidates, got {len(texts)}")
    return GenerateResponse(texts=texts, usage=usage, logprobs=logprobs)


def _candidate_logprobs(candidate: Any, wanted: tuple[str, ...]) -> dict[str, float]:
    result = candidate.logprobs_result
    chosen = (result.chosen_candidates or []) if result else []
    top = (result.top_candidates or []) if result else []
    if not chosen:
        return {}
    # The answer is decided at the first token that is one of the choices; a model that
    # writes "Answer: 1" puts it there rather than at position 0.
    i = next((k for k, t in enumerate(chosen) if (t.token or "").strip() in wanted), 0)
    alternatives = {
        t.token or "": t.log_probability for t in (top[i].candidates or [] if i < len(top) else [])
    }
    alternatives.setdefault(chosen[i].token or "", chosen[i].log_probability)
    return _merge_choice_logprobs(alternatives.items(), wanted)


def _merge_choice_logprobs(
    alternatives: Iterable[tuple[str, float | None]], wanted: tuple[str, ...]
) -> dict[str, float]:
    """Sum the probabilities of token variants of each choice ("1", " 1")."""
    out: dict[str, float] = {}
    for token, logprob in alternatives:
        key = token.strip()
        if key in wanted and logprob is not None:
            if key in out:
                hi, lo = max(out[key], logprob), min(out[key], logprob)
                out[key] = hi + math.log1p(math.exp(lo - hi))
            else:
                out[key] = float(logprob)
    return out


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
