"""OpenAI chat completions, and any OpenAI-compatible server (vLLM, SGLang, Ollama,
llama.cpp) reached through the card's base_url.

Prompt caching is automatic on OpenAI for prompts of 1024+ tokens; each request carries a
`prompt_cache_key` (an opaque hash of task, item and role) so that the prompts of one
item and role, which share their long prefix, are routed to the same cache. Compatible
servers generally ignore unknown fields; for one that rejects it, `prompt_cache: false` on
the card leaves it out.
Repeats of a long prompt in flight together (best-of-N candidates) go one first and the
rest after it (WriteGate), so that they find it cached. `usage.prompt_tokens` includes the
cached tokens, reported in
`usage.prompt_tokens_details.cached_tokens` (and `cache_write_tokens` where a gateway in
front of a provider that bills writes reports them).

Calls go through the SDK's generic `post` (its documented way to reach any endpoint) with
the request as a plain dict and the reply as decoded JSON. The SDK still owns the
connection, headers, timeouts and error types; what this skips is its typed layer, which
walks every request through a TypedDict transform and builds a pydantic object for every
reply token's log-probabilities: about a fifth of the CPU of a call (py-spy on
benchmarks/overhead.py). The Batch API's result lines are parsed the same way.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import openai

from oversight.model.api import Capabilities, ModelAPI, newest_match
from oversight.model.card import ModelCard
from oversight.model.constrain import constraint
from oversight.model.prompt_cache import WriteGate, repeat_prefixes, routing_key
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
    finish_reason,
    kind_for_status,
    retry_after_from_headers,
)

if TYPE_CHECKING:
    from oversight.model.batch import BatchPoll

# Local servers usually need no key, but the SDK refuses to start without one and would
# otherwise fall back to OPENAI_API_KEY, sending a real secret to an arbitrary host.
_NO_KEY = "not-needed"
_TOP_LOGPROBS = 5
_MAX_ERROR_CHARS = 500
# httpcore scans every pooled connection on each request and response, so CPU per call
# grows with the pool; several smaller pools (one SDK client each) keep that scan short at
# high concurrency (benchmarks/overhead.py measured ~1/3 less CPU per call at 128 in flight).
_CONNECTIONS_PER_POOL = 16


class OpenAIAPI(ModelAPI):
    provider = "openai"
    # Constrained verdicts: a GBNF grammar for llama.cpp, a regex for vLLM and SGLang, a strict
    # JSON schema (structured outputs) for OpenAI and any other compatible server.
    default_capabilities = Capabilities(images=True, logprobs=True, constrain=True)

    def __init__(self, card: ModelCard, api_key: str | None, http_client: Any = None) -> None:
        super().__init__(card, api_key, http_client)
        shards = 1 if http_client is not None else math.ceil(card.max_concurrency / _CONNECTIONS_PER_POOL)
        tls = _tls_context() if http_client is None and shards > 1 else None
        self._clients = [
            openai.AsyncOpenAI(
                api_key=api_key or _NO_KEY,
                base_url=card.base_url,
                timeout=card.timeout_s,
                max_retries=0,  # the shared wrapper owns retries
                http_client=http_client if tls is None else openai.DefaultAsyncHttpxClient(verify=tls),
            )
            for _ in range(shards)
        ]
        self._next = 0
        self._gate = WriteGate()
        # OpenAI's own endpoint rejects max_tokens for reasoning models; many local
        # servers only understand max_tokens.
        official = card.base_url is None or "api.openai.com" in card.base_url
        self._tokens_param = "max_completion_tokens" if official else "max_tokens"
        # A model without a system role gets system text at the head of its first user
        # message: set on the card, or learnt from the server's own refusal (below).
        self._merge_system = not card.system_role

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        try:
            return await self._generate(request)
        except ModelCallError as err:
            if self._merge_system or err.kind != "bad_request" or not _SYSTEM_REFUSED.search(str(err)) \
                    or not any(m.role == "system" for m in request.messages):
                raise
            # The server's chat template has no system role ("System role not supported"):
            # from now on this model gets system text inside the first user message.
            self._merge_system = True
            return await self._generate(request)

    async def _generate(self, request: GenerateRequest) -> GenerateResponse:
        kwargs = self._build(request)
        client = self._clients[self._next % len(self._clients)]
        self._next += 1
        # Repeats of a long prompt sent together (best-of-N candidates) follow the first, so
        # that they find its prefix cached.
        repeats = repeat_prefixes(request.prompt_text(), kwargs.get("prompt_cache_key", "")) if (
            self.card.prompt_cache) else []
        start = time.perf_counter()
        try:
            body = await self._gate.run(repeats, lambda: client.post(_ENDPOINT, body=kwargs, cast_to=object))
        except Exception as exc:
            # Not chained: the SDK's exception holds the raw reply, which may echo our
            # headers; the classified error carries its type and scrubbed text instead.
            raise _classify(exc) from None
        latency = time.perf_counter() - start
        response = _parse(body, request, want_logprobs="logprobs" in kwargs)
        response.latency_s = latency
        return response

    async def aclose(self) -> None:
        # An injected client belongs to whoever made it.
        if self.http_client is None:
            for client in self._clients:
                await client.close()

    # --- the Batch API: a JSONL file of chat-completion requests, results within 24 h ------

    supports_batch = True
    batch_max_requests = 50_000  # the API's limits per batch: 50,000 requests, a 200 MB file
    batch_max_bytes = 190 * 1024 * 1024

    async def batch_submit(self, requests: list[tuple[str, GenerateRequest]], token: str = "") -> str:
        lines = [json.dumps({"custom_id": cid, "method": "POST", "url": _BATCH_ENDPOINT, "body": self._build(r)},
                            separators=(",", ":")) for cid, r in requests]
        client = self._clients[0]
        try:
            upload = await client.files.create(file=("batch.jsonl", ("\n".join(lines) + "\n").encode()),
                                               purpose="batch")
            batch = await client.batches.create(input_file_id=upload.id, endpoint=_BATCH_ENDPOINT,
                                                completion_window="24h", metadata={_TOKEN: token})
        except Exception as exc:
            raise _classify(exc) from None
        return str(batch.id)

    async def batch_find(self, token: str) -> str | None:
        try:
            found = await newest_match(self._clients[0].batches.list(limit=100),
                                       lambda b: (b.metadata or {}).get(_TOKEN) == token)
        except Exception as exc:
            raise _classify(exc) from None
        return str(found.id) if found is not None else None

    async def batch_poll(self, batch_id: str, expect: dict[str, GenerateRequest]) -> BatchPoll:
        from oversight.model.batch import BatchPoll

        client = self._clients[0]
        try:
            batch = await client.batches.retrieve(batch_id)
            state = str(batch.status)
            if state not in _BATCH_ENDED:
                return BatchPoll(state, False)
            lines: list[str] = []
            for file_id in (batch.output_file_id, batch.error_file_id):
                if file_id:
                    lines += (await client.files.content(file_id)).text.splitlines()
        except Exception as exc:
            raise _classify(exc) from None
        results: dict[str, GenerateResponse | ModelCallError] = {}
        for line in lines:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                cid = str(entry["custom_id"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line the provider damaged: its request counts as not run, and is resent
            if cid in expect:
                result = _batch_result(entry, expect[cid])
                if result is not None:
                    results[cid] = result
        if state == "failed" and not lines:
            # The whole input was refused (validation): every request fails the same way.
            errors = getattr(getattr(batch, "errors", None), "data", None) or []
            why = "; ".join(str(getattr(e, "message", e)) for e in errors) or "batch failed validation"
            results = {cid: ModelCallError("bad_request", clip(why, _MAX_ERROR_CHARS)) for cid in expect}
        counts = batch.request_counts.model_dump() if batch.request_counts is not None else {}
        return BatchPoll(state, True, results, counts)

    def _build(self, request: GenerateRequest) -> dict[str, Any]:
        if not self.capabilities.images and _has_images(request.messages):
            raise ModelCallError("bad_request", f"{self.card.label} is not configured for images")
        kwargs: dict[str, Any] = {
            "model": self.card.model,
            "messages": [_message(m) for m in (merge_system(request.messages) if self._merge_system
                                                 else request.messages)],
            self._tokens_param: request.max_tokens or self.card.max_tokens,
        }
        temperature = (
            request.temperature if request.temperature is not None else self.card.temperature
        )
        if temperature is not None:
            kwargs["temperature"] = temperature
        if request.n != 1:
            kwargs["n"] = request.n
        if request.logprob_choices and self.capabilities.logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = _TOP_LOGPROBS
        if request.constrain:
            kwargs.update(constraint(self.card.provider, request.constrain, kwargs[self._tokens_param]))
        if self.card.prompt_cache:
            # Only this hash leaves the process: never the metadata itself (it holds the truth).
            key = routing_key(request.metadata)
            if key is not None:
                kwargs["prompt_cache_key"] = key
        return kwargs


_ENDPOINT = "/chat/completions"  # relative to the client's base_url (which ends in /v1)
_BATCH_ENDPOINT: Literal["/v1/chat/completions"] = "/v1/chat/completions"
_BATCH_ENDED = ("completed", "failed", "expired", "cancelled")
_TOKEN = "oversight_token"  # batch metadata key: finds a batch sent by a process killed before journaling it
# Errors that say the batch never ran the request (not that the request was bad): resent.
_BATCH_NOT_RUN = ("batch_expired", "batch_cancelled")


def _batch_result(entry: dict[str, Any], request: GenerateRequest) -> GenerateResponse | ModelCallError | None:
    """One line of a batch's output or error file: the reply, the request's own error, or
    None for a request the batch did not run."""
    error = entry.get("error")
    response = entry.get("response") or {}
    status = int(response.get("status_code") or 0)
    if error and not status:
        code = str(error.get("code", "")) if isinstance(error, dict) else ""
        if code in _BATCH_NOT_RUN:
            return None
        message = error.get("message", error) if isinstance(error, dict) else error
        return ModelCallError("other", clip(f"{code}: {message}", _MAX_ERROR_CHARS))
    body = response.get("body")
    if status != 200 or not isinstance(body, dict):
        detail = body.get("error", body) if isinstance(body, dict) else body
        message = detail.get("message", detail) if isinstance(detail, dict) else detail
        return ModelCallError(kind_for_status(status) if status else "malformed",
                              clip(str(message), _MAX_ERROR_CHARS), status=status or None)
    try:
        return _parse(body, request, want_logprobs=bool(request.logprob_choices))
    except ModelCallError as err:
        return err


def _tls_context() -> Any:
    """One TLS context for all the shards' connection pools: each pool would otherwise load
    the CA bundle again (~20 ms a client). Made by the SDK's own HTTP library (httpx, or
    httpx2 in newer SDKs), so its certificate settings (SSL_CERT_FILE, ...) apply; None
    (each client makes its own) if that library has no public way to make one."""
    library = sys.modules.get(openai.DefaultAsyncHttpxClient.__mro__[1].__module__.partition(".")[0])
    make = getattr(library, "create_ssl_context", None)
    return make() if callable(make) else None


_SYSTEM_REFUSED = re.compile(r"system (?:role|message|prompt)s? (?:is |are )?not (?:supported|allowed)|"
                             r"(?:unsupported|unknown|invalid) role:? ['\"]?system", re.IGNORECASE)


def merge_system(messages: list[Message]) -> list[Message]:
    """The messages with every system message's text moved to the head of the first user
    message (for a model or template without a system role)."""
    system = "\n\n".join(m.plain_text for m in messages if m.role == "system")
    rest = [m for m in messages if m.role != "system"]
    if not system:
        return rest
    for i, m in enumerate(rest):
        if m.role == "user":
            return [*rest[:i], Message("user", (TextPart(f"{system}\n\n"), *m.parts)), *rest[i + 1 :]]
    return [Message.text("user", system), *rest]


def _has_images(messages: Iterable[Message]) -> bool:
    return any(isinstance(p, ImagePart) for m in messages for p in m.parts)


def _message(m: Message) -> dict[str, Any]:
    # Plain string content is what every OpenAI-compatible server accepts; the list form
    # is only needed when there is an image, and only user turns may carry one.
    if m.role != "user" or not any(isinstance(p, ImagePart) for p in m.parts):
        return {"role": m.role, "content": m.plain_text}
    content: list[dict[str, Any]] = []
    for p in m.parts:
        if isinstance(p, TextPart):
            content.append({"type": "text", "text": p.text})
        else:
            content.append(
                {"type": "image_url", "image_url": {"url": f"data:{p.mime};base64,{p.b64()}"}}
            )
    return {"role": "user", "content": content}


def _parse(body: Any, request: GenerateRequest, want_logprobs: bool) -> GenerateResponse:
    """A chat completion as decoded JSON (the wire format, not the SDK's objects)."""
    if isinstance(body, str):
        # The SDK hands back the text of a reply whose content-type is not JSON; some
        # compatible servers label JSON as text/plain.
        with contextlib.suppress(json.JSONDecodeError):
            body = json.loads(body)
    if not isinstance(body, dict):
        # A 200 whose body is not a JSON object (an HTML error page from a proxy, say).
        raise ModelCallError("malformed", clip(f"reply is not a JSON object: {body!r}", _MAX_ERROR_CHARS))
    try:
        choices = sorted(body.get("choices") or [], key=lambda c: c.get("index") or 0)
        texts: list[str] = []
        finish: list[str] = []
        for choice in choices:
            message = choice.get("message") or {}
            content = message.get("content")
            if not isinstance(content, str) or not content.strip():
                refusal = message.get("refusal")
                why = f"refusal: {refusal!r}" if refusal else f"finish_reason={choice.get('finish_reason')}"
                raise ModelCallError("malformed", f"choice {choice.get('index')} has no text ({why})")
            texts.append(content)
            finish.append(finish_reason(choice.get("finish_reason")) or "")
        if not texts:
            # Some compatible servers and gateways answer an error with status 200.
            error = body.get("error")
            detail = f" (error: {clip(str(error), _MAX_ERROR_CHARS)})" if error else ""
            raise ModelCallError("malformed", f"response has no choices{detail}")
        usage = body.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        parsed_usage = Usage(
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            int(details.get("cached_tokens") or 0),
            int(details.get("cache_write_tokens") or 0),
        )
        logprobs = None
        if want_logprobs and request.logprob_choices:
            logprobs = [_choice_logprobs(c, request.logprob_choices) for c in choices]
    except ModelCallError:
        raise
    except (AttributeError, TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ModelCallError("malformed", clip(f"unexpected response shape: {exc!r}", _MAX_ERROR_CHARS)) from None
    if len(texts) != request.n:
        # Some compatible servers silently ignore n; retrying would not help.
        raise ModelCallError(
            "bad_request",
            f"asked for {request.n} samples, got {len(texts)}; the server may not support n",
        )
    named = body.get("model")
    return GenerateResponse(texts=texts, usage=parsed_usage, logprobs=logprobs,
                            reply_model=named if isinstance(named, str) else "",
                            finish_reasons=finish if any(finish) else None)


def _choice_logprobs(choice: dict[str, Any], wanted: tuple[str, ...]) -> list[ChoiceLogprobs]:
    tokens = (choice.get("logprobs") or {}).get("content") or []
    return choice_positions(
        ((t["token"], t.get("logprob"), ((a["token"], a.get("logprob")) for a in t.get("top_logprobs") or []))
         for t in tokens),
        wanted,
    )


def _classify(exc: Exception) -> ModelCallError:
    # APITimeoutError subclasses APIConnectionError, so it is checked first.
    if isinstance(exc, openai.APITimeoutError):
        return ModelCallError("timeout", clip(str(exc), _MAX_ERROR_CHARS))
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        text = f"{exc} ({type(cause).__name__}: {cause})" if cause else str(exc)
        return ModelCallError("connection", clip(text, _MAX_ERROR_CHARS))
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return ModelCallError(
            kind_for_status(status),
            clip(str(exc.message), _MAX_ERROR_CHARS),
            status=status,
            retry_after=retry_after_from_headers(exc.response.headers),
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return ModelCallError("malformed", clip(str(exc), _MAX_ERROR_CHARS), status=exc.status_code)
    # The SDK decodes a 200's body itself and lets a broken one (cut short by a proxy, not
    # UTF-8) through as the decoder's own error: a malformed reply, worth another try.
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return ModelCallError("malformed", clip(f"reply body is not valid JSON: {type(exc).__name__}: {exc}",
                                                _MAX_ERROR_CHARS))
    return ModelCallError("other", clip(f"{type(exc).__name__}: {exc}", _MAX_ERROR_CHARS))
