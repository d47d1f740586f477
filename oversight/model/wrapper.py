"""The shared model wrapper: everything between a protocol and a provider.

`Model` owns, for every provider alike: the in-flight limit (`max_concurrency`), the
requests- and tokens-per-minute limits (`rpm`, `tpm`), the per-attempt timeout, the one
retry layer (exponential backoff with jitter, honouring Retry-After), the response cache,
and usage/cost accounting. Providers only translate (oversight/model/api.py).

Empty or malformed responses are classified by the provider as `malformed`, which is
retryable; if every attempt is malformed the call fails like any other exhausted call,
and the episode is recorded as an error.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiolimiter import AsyncLimiter

from oversight.model.api import ModelAPI
from oversight.model.cache import ResponseCache, cache_key
from oversight.model.card import ModelCard
from oversight.model.types import GenerateRequest, GenerateResponse, ModelCallError, is_local_url

if TYPE_CHECKING:
    from oversight.model.batch import BatchCollector

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0


@dataclass
class ModelStats:
    calls: int = 0  # finished calls, cached or not
    cache_hits: int = 0
    attempts: int = 0  # requests actually sent to the provider
    retries: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    # Parts of input_tokens the provider read from / wrote to its prompt cache.
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    # Wall-clock time (epoch seconds) until which a call of this model is waiting to retry.
    backoff_until: float = 0.0


@dataclass
class CallFailure(Exception):
    """A call that failed for good: a non-retryable error or exhausted retries."""

    error: ModelCallError
    retries: int
    model: str = ""

    def __str__(self) -> str:
        tries = f" after {self.retries} retries" if self.retries else ""
        return f"{self.model}: {self.error}{tries}"


@dataclass
class Model:
    card: ModelCard
    api: ModelAPI
    cache: ResponseCache | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    # Set for a batch-enabled model (oversight/model/batch.py): calls go into its waves.
    batch: BatchCollector | None = None
    # Told whenever a call starts waiting to retry (the run's progress line shows it).
    on_backoff: Callable[[], None] | None = None
    # Set when the provider refused a call in a way every call would repeat (401/403/404):
    # calls still queued for a slot fail at once instead of each being sent.
    stopped: ModelCallError | None = None

    def __post_init__(self) -> None:
        self.stats = ModelStats()
        self._sem = asyncio.Semaphore(self.card.max_concurrency)
        self._rpm = AsyncLimiter(self.card.rpm, 60) if self.card.rpm else None
        self._tpm = AsyncLimiter(self.card.tpm, 60) if self.card.tpm else None
        self._inflight: dict[str, asyncio.Future[GenerateResponse]] = {}
        self._identity: dict[str, Any] = {
            "provider": self.card.provider,
            "model": self.card.model,
            "base_url": self.card.base_url,
            "card_temperature": self.card.temperature,
            "card_max_tokens": self.card.max_tokens,
            "api_version": self.api.cache_version,
        }
        if self.card.sim is not None:
            self._identity["sim"] = self.card.sim.model_dump()
        if self.card.gguf is not None:
            # A managed server's port changes every run; its weights and server are what count.
            from oversight.model.local_server import identity

            self._identity["base_url"] = None
            self._identity["local"] = identity(self.card)

    @property
    def label(self) -> str:
        return self.card.label

    @property
    def simulated(self) -> bool:
        return self.card.provider == "sim"

    def key(self, request: GenerateRequest) -> str:
        return cache_key(self._identity, request.cache_payload(self.api.reads_metadata))

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """One call with caching and retries; raises CallFailure when it fails for good."""
        if request.max_tokens is None:
            request.max_tokens = self.card.max_tokens
        key = self.key(request)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                hit.cache_hit = True
                self._account(hit)
                return hit
        # Identical concurrent requests share one provider call.
        while (pending := self._inflight.get(key)) is not None:
            try:
                shared = await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if pending.cancelled() and not (task and task.cancelling()):
                    continue  # the caller that owned the call was cancelled, not us: call again
                raise
            copy = GenerateResponse(shared.texts, shared.usage, shared.logprobs, shared.latency_s, cache_hit=True,
                                    reply_model=shared.reply_model, finish_reasons=shared.finish_reasons)
            self._account(copy)
            return copy
        fut: asyncio.Future[GenerateResponse] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            response = await self._call_with_retries(request, key)
            if self.cache is not None:
                self.cache.put(key, response)
        except BaseException as exc:
            # Whatever ends this call (a failure, a bug, a cancellation) must also end the
            # identical calls waiting on it; a future left pending would hang them forever.
            if isinstance(exc, asyncio.CancelledError):
                fut.cancel()
            else:
                failure = exc if isinstance(exc, CallFailure) else CallFailure(
                    ModelCallError("other", f"{type(exc).__name__}: {exc}"), 0, self.label
                )
                fut.set_exception(failure)
                fut.exception()  # mark retrieved: waiters re-raise it themselves
                if failure is not exc:
                    raise failure from exc
            raise
        finally:
            self._inflight.pop(key, None)
        fut.set_result(response)
        self._account(response)
        return response

    def _account(self, r: GenerateResponse) -> None:
        s = self.stats
        s.calls += 1
        s.cache_hits += r.cache_hit
        s.retries += r.retries
        u = r.usage
        r.cost_usd = self.card.cost(u.input_tokens, u.output_tokens, u.cached_input_tokens, u.cache_write_tokens,
                                    batch=bool(r.batch_id))
        if not r.cache_hit:
            s.input_tokens += u.input_tokens
            s.output_tokens += u.output_tokens
            s.cached_input_tokens += u.cached_input_tokens
            s.cache_write_tokens += u.cache_write_tokens
            s.cost_usd += r.cost_usd

    def _estimate_tokens(self, request: GenerateRequest) -> int:
        chars = sum(len(m.plain_text) for m in request.messages)
        return chars // 4 + (request.max_tokens or self.card.max_tokens) * request.n

    async def _call_with_retries(self, request: GenerateRequest, key: str = "") -> GenerateResponse:
        retries = 0
        while True:
            # A batch call's retry goes into the next wave, or online with fallback "online".
            in_batch = self.batch is not None and (retries == 0 or self.batch.ctx.fallback != "online")
            try:
                if in_batch:
                    assert self.batch is not None
                    self.stats.attempts += 1
                    response = await self.batch.call(key or self.key(request), request)
                else:
                    response = await self._attempt(request)
                if (bad := response.problem()) is not None:
                    # Retried like any malformed reply, and never cached.
                    raise ModelCallError("malformed", f"the reply cannot be used: {bad}")
                response.scrub_secrets()
                response.retries = retries
                return response
            except ModelCallError as caught:
                err = await self._down_locally(caught) or caught
                if not err.retryable or retries >= self.card.max_retries:
                    self.stats.errors += 1
                    self.stats.retries += retries
                    raise CallFailure(err, retries, self.label) from None
                if not in_batch:  # waiting for the next wave is a batch call's backoff
                    delay = self._backoff(retries, err.retry_after)
                    self.stats.backoff_until = max(self.stats.backoff_until, time.time() + delay)
                    if self.on_backoff is not None:
                        self.on_backoff()
                    await self.sleep(delay)
                retries += 1

    async def _down_locally(self, err: ModelCallError) -> ModelCallError | None:
        """A failed connection to a server on this machine where nothing listens, as an
        `unreachable` error, which is not retried: a local server that is down stays down
        through minutes of backoff, like a wrong key. The port is probed directly, because
        the SDKs word a refusal differently (httpx: "All connection attempts failed")."""
        url = self.card.base_url
        if err.kind != "connection" or not is_local_url(url):
            return None
        assert url is not None
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            async with asyncio.timeout(5):
                _, writer = await asyncio.open_connection(parts.hostname, port)
            writer.close()
            return None  # something listens: a dropped connection, worth another try
        except (OSError, TimeoutError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            return ModelCallError("unreachable", f"nothing answers at {url} ({why}): {err.args[0]}")

    def _backoff(self, retries: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.card.max_retry_after_s)
        # Full jitter: spreads out clients that failed together.
        return self.rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**retries))

    def _check_stopped(self) -> None:
        if self.stopped is not None:
            raise ModelCallError(self.stopped.kind, f"not sent: an earlier call to this model was refused "
                                 f"({self.stopped.args[0]})", status=self.stopped.status)

    async def _attempt(self, request: GenerateRequest) -> GenerateResponse:
        self._check_stopped()
        async with self._sem:
            self._check_stopped()  # stopped while this call waited for a slot
            if self._rpm is not None:
                await self._rpm.acquire()
            if self._tpm is not None:
                await self._tpm.acquire(min(self._estimate_tokens(request), self.card.tpm or 0))
            self._check_stopped()
            self.stats.attempts += 1
            start = time.perf_counter()
            try:
                # asyncio.timeout, not wait_for: wait_for wraps every call in a task of its own.
                async with asyncio.timeout(None if self.api.times_itself else self.card.timeout_s):
                    response = await self.api.generate(request)
            except TimeoutError:
                raise ModelCallError("timeout", f"no response within {self.card.timeout_s:g}s") from None
            if not response.latency_s:
                response.latency_s = time.perf_counter() - start
            return response
