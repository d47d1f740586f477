"""Provider batch APIs: calls collected into waves and sent at batch prices.

A debate is a chain of dependent calls, but at any moment every episode of a run knows its
next call. With `--batch`, `Model.generate` (oversight/model/wrapper.py) hands each call of
a batch-enabled model, after the cache lookup and single-flight, to that model's
`BatchCollector` and awaits a future. The collector forms a *wave*: once no new call has
arrived for a quiet period (every runnable episode is blocked on a call) it sends what it
holds as one provider batch (split by the provider's count and byte limits), polls the
batch until it ends, writes every result to the response cache, and resolves the futures.
The episodes then advance and form the next wave.

Durability: each submitted batch is journaled in the run directory's `batches.jsonl`
(batch id, provider, model, the cache keys of its requests) before any of its results is
used, and a `collected` record follows once its results are in the cache. A later
`--resume` re-creates the episodes; a call whose cache key lies in a journaled, uncollected
batch waits for that batch (polled and fetched) instead of being sent again, so nothing
already paid for is resubmitted. Results already in the cache never reach the collector.

Failures follow the online rules: a per-request error inside a batch raises the same
`ModelCallError` kinds, and the wrapper retries it in the next wave (or online, with
`fallback="online"`); a request the batch never ran (the batch expired or was cancelled)
fails as a retryable `timeout` and is resubmitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from oversight.errors import OversightError
from oversight.model.types import GenerateRequest, GenerateResponse, ModelCallError

# The same torn-tail rule and write error as the run journal (store/ is a peer bottom layer).
from oversight.store.journal import JournalWriteError, cut_torn_tail
from oversight.store.safe_io import open_append

if TYPE_CHECKING:
    from oversight.model.api import ModelAPI

BATCHES = "batches.jsonl"
# How long the collector waits with no new call before it sends a wave. Episodes run on one
# event loop, so a call that depends only on answered calls arrives within a few loop turns;
# the wall-clock part covers what runs between them (cache reads, prompt rendering).
QUIET_S = 0.05
IDLE_SPINS = 20
DEFAULT_POLL_S = 30.0

Fallback = Literal["retry", "online"]


@dataclass
class BatchPoll:
    """What a provider says about one batch. `results` is filled only once `done`: by the
    collector's custom id, a reply or the error of that one request; a request missing
    from a finished batch never ran (expired, cancelled)."""

    state: str
    done: bool
    results: dict[str, GenerateResponse | ModelCallError] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


class BatchStore:
    """The run's append-only batch journal (one JSON line per record, as journal.jsonl).

    `intent`: {token, label, keys, shapes}, written before a batch is sent, the token sent
    with it (where the provider keeps one: OpenAI metadata, Gemini display name);
    `submitted`: {batch_id, token, provider, model, label, keys, shapes} (keys in custom-id
    order: custom id `c{i}` is keys[i]); `abandoned`: {token}, an intent that made no batch;
    `collected`: {batch_id, state}. An intent with neither a `submitted` nor an `abandoned`
    record is a process killed between sending a batch and journaling it: a resume asks the
    provider for a batch with that token before sending its calls again. Opening cuts a
    torn tail."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / BATCHES
        self.submitted: dict[str, dict[str, Any]] = {}
        self.collected: set[str] = set()
        self.intents: dict[str, dict[str, Any]] = {}  # unresolved, by token
        self._open_keys: dict[tuple[str, str], str] = {}
        self._intent_keys: dict[tuple[str, str], str] = {}
        for record in read_batches(run_dir):
            self._remember(record)
        self._f: Any = None

    def _remember(self, record: dict[str, Any]) -> None:
        kind = record.get("type")
        if kind == "intent":
            self.intents[str(record["token"])] = record
            for k in record.get("keys", ()):
                self._intent_keys[(str(record["label"]), k)] = str(record["token"])
        elif kind == "submitted":
            self.submitted[str(record["batch_id"])] = record
            self.intents.pop(str(record.get("token")), None)
            for k in record.get("keys", ()):
                self._open_keys[(str(record["label"]), k)] = str(record["batch_id"])
        elif kind == "abandoned":
            self.intents.pop(str(record.get("token")), None)
        elif kind == "collected":
            self.collected.add(str(record["batch_id"]))

    def unresolved_intent(self, label: str, key: str) -> str | None:
        """The token of an intent holding this call that no later record resolved, if any."""
        token = self._intent_keys.get((label, key))
        return token if token is not None and token in self.intents else None

    def open_batch_for(self, label: str, key: str) -> str | None:
        """The journaled, not yet collected batch that holds this call, if any."""
        bid = self._open_keys.get((label, key))
        return None if bid is None or bid in self.collected else bid

    def write(self, record: dict[str, Any]) -> None:
        record = {**record, "at": dt.datetime.now(dt.UTC).isoformat()}
        try:
            if self._f is None:
                cut_torn_tail(self.path)
                self._f = os.fdopen(open_append(self.path, root=self.path.parent), "a", encoding="utf-8")
            # One write and an fsync: the record must outlive a SIGKILL a moment later.
            self._f.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._f.flush()
            os.fsync(self._f.fileno())
        except OSError as exc:
            raise JournalWriteError(f"Cannot write the batch journal {self.path}: {exc.strerror or exc}.") from None
        self._remember(record)

    def close(self) -> None:
        if self._f is not None:
            with contextlib.suppress(OSError):
                self._f.close()
            self._f = None


# Every provider's batch ids (OpenAI batch_…, Anthropic msgbatch_…, Gemini batches/…) and
# the harness's own tokens fit this; anything else read from a run directory is refused
# before it reaches a URL (a shared run directory is not trusted).
BATCH_ID = re.compile(r"(?:batches/)?[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")


def _record_problem(record: dict[str, Any]) -> str | None:
    for name in ("batch_id", "token"):
        value = record.get(name)
        if value is not None and not (isinstance(value, str) and BATCH_ID.fullmatch(value) and ".." not in value):
            return f"{name} {str(value)[:60]!r} is not a batch id (letters, digits, _ . : -)"
    keys = record.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return "keys must be a list of strings"
    if "label" in record and not isinstance(record["label"], str):
        return "label must be a string"
    return None


def _checked_id(batch_id: str | None) -> str | None:
    """A provider's batch id, refused (as a malformed reply) unless it looks like one: it is
    journaled and later put into URLs."""
    if batch_id is not None and (bad := _record_problem({"batch_id": batch_id})) is not None:
        raise ModelCallError("malformed", f"the provider answered a batch submission with {bad}")
    return batch_id


def read_batches(run_dir: Path) -> list[dict[str, Any]]:
    """Every whole record of a run's batch journal (a torn or unparseable line is skipped;
    a parseable record holding an id that is not one is an error naming the line)."""
    path = run_dir / BATCHES
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.endswith("\n"):
                break  # a torn tail: the submission it describes never completed its journaling
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line)
                if isinstance(record, dict) and ("batch_id" in record or "token" in record):
                    if (bad := _record_problem(record)) is not None:
                        raise OversightError(
                            f"{path} line {n}: {bad}. The batch journal was edited or damaged; "
                            f"oversight will not send a provider a value read from it unchecked. "
                            f"Remove that line (its calls are then sent again) or restore the file."
                        )
                    out.append(record)
    return out


@dataclass
class BatchStats:
    waves: int = 0  # flushes of a collector: one wave may be several provider batches
    batches: int = 0
    requests: int = 0  # requests sent inside batches
    resumed: int = 0  # calls answered by a batch journaled by an earlier invocation
    failed: int = 0  # per-request errors and never-run requests in finished batches


@dataclass
class _Watch:
    """One submitted batch being polled, and the calls waiting on it."""

    batch_id: str
    keys: list[str]
    requests: dict[str, GenerateRequest]  # by custom id: what the results are parsed against
    waiters: dict[str, list[asyncio.Future[GenerateResponse]]] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None


class BatchContext:
    """What a run's collectors share: the batch journal, the cache results are written to,
    the poll interval, the fallback rule and the detach signal."""

    def __init__(
        self,
        run_dir: Path,
        put: Callable[[str, GenerateResponse], None] | None = None,
        *,
        poll_s: float | None = None,
        fallback: Fallback = "retry",
        quiet_s: float | None = None,
        on_wave: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.store = BatchStore(run_dir)
        self.put = put
        self.poll_s = poll_s
        self.fallback: Fallback = fallback
        self.quiet_s = QUIET_S if quiet_s is None else quiet_s
        self.on_wave = on_wave
        self.collectors: list[BatchCollector] = []
        # Asked before each wave: true stops the run there (its budget is spent). Every
        # episode starts at once in a batch run, so the per-episode budget check never
        # fires after the start; this is where a batch run can stop cleanly.
        self.stop_before_wave: Callable[[], bool] | None = None
        self.halted = asyncio.Event()
        # Waves in time: flushes with no batch result delivered between them (several
        # models' collectors flushing at the same idle moment) are one wave.
        self.wave_no = 0
        self.deliveries = 0
        self._wave_deliveries = -1
        self.submitted = asyncio.Event()  # set once this invocation has submitted a batch

    def collector(self, label: str, api: ModelAPI, poll_s: float) -> BatchCollector:
        c = BatchCollector(label, api, self, self.poll_s if self.poll_s is not None else poll_s)
        self.collectors.append(c)
        return c

    def idle(self) -> bool:
        """No collector holds unsent calls or is sending a wave."""
        return all(not c._pending and not c._sending for c in self.collectors)

    async def wait_detachable(self) -> None:
        """Return once a wave has been submitted and every collector has sent what it held."""
        await self.submitted.wait()
        while True:
            for _ in range(IDLE_SPINS):
                await asyncio.sleep(0)
            await asyncio.sleep(self.quiet_s)
            if self.idle():
                return

    def summary(self) -> dict[str, Any]:
        """This invocation's batch work, per model, for the manifest."""
        open_ = [bid for bid in self.store.submitted if bid not in self.store.collected]
        return {"models": {c.label: vars(c.stats).copy() for c in self.collectors}, "open_batches": open_,
                "fallback": self.fallback}

    async def aclose(self) -> None:
        tasks = [t for c in self.collectors for t in c.tasks()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.store.close()


class BatchCollector:
    """One model's waves: collects calls, sends them as provider batches, and resolves each
    call's future from the batch's results."""

    def __init__(self, label: str, api: ModelAPI, ctx: BatchContext, poll_s: float) -> None:
        self.label = label
        self.api = api
        self.ctx = ctx
        self.poll_s = poll_s
        self.stats = BatchStats()
        self._pending: dict[str, tuple[GenerateRequest, asyncio.Future[GenerateResponse]]] = {}
        self._arrivals = 0
        self._sending = False
        self._flusher: asyncio.Task[None] | None = None
        self._watches: dict[str, _Watch] = {}
        self._submits: set[asyncio.Task[None]] = set()
        self._recovering: dict[str, asyncio.Task[None]] = {}

    def tasks(self) -> list[asyncio.Task[Any]]:
        out: list[asyncio.Task[Any]] = [*self._submits]
        if self._flusher is not None:
            out.append(self._flusher)
        out += [w.task for w in self._watches.values() if w.task is not None]
        out += [t for t in self._recovering.values() if not t.done()]
        return out

    async def call(self, key: str, request: GenerateRequest) -> GenerateResponse:
        """The reply to one call, from a batch: raises ModelCallError like an online call."""
        fut: asyncio.Future[GenerateResponse] = asyncio.get_running_loop().create_future()
        token = self.ctx.store.unresolved_intent(self.label, key)
        if token is not None:
            # An earlier process may have sent this call's batch and died before journaling
            # it: look for it (once per intent) before sending the call again.
            task = self._recovering.get(token)
            if task is None:
                task = self._recovering[token] = asyncio.create_task(self._recover(token))
            await asyncio.shield(task)
        journaled = self.ctx.store.open_batch_for(self.label, key)
        if journaled is not None:
            # Sent (and paid for) by an earlier invocation: wait for that batch instead.
            self.stats.resumed += 1
            watch = self._watches.get(journaled)
            if watch is None:
                record = self.ctx.store.submitted[journaled]
                shapes = record.get("shapes") or [[1, None]] * len(record["keys"])
                requests = {f"c{i}": GenerateRequest([], n=int(n), logprob_choices=tuple(c) if c else None)
                            for i, (n, c) in enumerate(shapes)}
                requests[f"c{record['keys'].index(key)}"] = request
                watch = self._watch(journaled, list(record["keys"]), requests)
            watch.waiters.setdefault(key, []).append(fut)
        else:
            if key in self._pending:  # the wrapper's single-flight makes this rare; share the slot
                return await asyncio.shield(self._pending[key][1])
            self._pending[key] = (request, fut)
            self._arrivals += 1
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.create_task(self._flush_when_quiet())
        return await fut

    # --- waves ------------------------------------------------------------------------

    async def _flush_when_quiet(self) -> None:
        while self._pending:
            seen = self._arrivals
            for _ in range(IDLE_SPINS):
                await asyncio.sleep(0)
            if self.ctx.quiet_s:
                await asyncio.sleep(self.ctx.quiet_s)
            if self._arrivals != seen and len(self._pending) < self.api.batch_max_requests:
                continue  # calls are still arriving: the wave is not complete yet
            if self.ctx.stop_before_wave is not None and self.ctx.stop_before_wave():
                self.ctx.halted.set()  # the run stops; the calls held are sent by a resume
                return
            wave, self._pending = self._pending, {}
            self.stats.waves += 1
            if self.ctx.deliveries != self.ctx._wave_deliveries:
                self.ctx.wave_no += 1
                self.ctx._wave_deliveries = self.ctx.deliveries
            if self.ctx.on_wave is not None:
                self.ctx.on_wave(self.label, len(wave), self.ctx.wave_no)
            self._sending = True
            try:
                for chunk in self._split(wave):
                    task = asyncio.create_task(self._submit(chunk))
                    self._submits.add(task)
                    task.add_done_callback(self._submits.discard)
                    await asyncio.sleep(0)
            finally:
                self._sending = False

    def _split(
        self, wave: dict[str, tuple[GenerateRequest, asyncio.Future[GenerateResponse]]]
    ) -> list[list[tuple[str, GenerateRequest, asyncio.Future[GenerateResponse]]]]:
        """Chunks within the provider's request-count and byte limits."""
        chunks: list[list[tuple[str, GenerateRequest, asyncio.Future[GenerateResponse]]]] = [[]]
        size = 0
        for key, (request, fut) in wave.items():
            n = self.api.batch_request_bytes(request)
            if chunks[-1] and (len(chunks[-1]) >= self.api.batch_max_requests or size + n > self.api.batch_max_bytes):
                chunks.append([])
                size = 0
            chunks[-1].append((key, request, fut))
            size += n
        return [c for c in chunks if c]

    async def _recover(self, token: str) -> None:
        intent = self.ctx.store.intents[token]
        try:
            batch_id = _checked_id(await self.api.batch_find(token))
        except ModelCallError:
            batch_id = None  # cannot tell: sending again risks paying twice, but never loses a call
        with contextlib.suppress(JournalWriteError):
            if batch_id is None:
                self.ctx.store.write({"type": "abandoned", "token": token, "label": self.label})
            else:
                self.ctx.store.write({**intent, "type": "submitted", "batch_id": batch_id, "recovered": True,
                                      "provider": self.api.card.provider, "model": self.api.card.model})

    async def _submit(self, chunk: list[tuple[str, GenerateRequest, asyncio.Future[GenerateResponse]]]) -> None:
        keys = [k for k, _, _ in chunk]
        # What parsing each result needs, so that a later invocation can read the batch.
        shapes = [[r.n, list(r.logprob_choices) if r.logprob_choices else None] for _, r, _ in chunk]
        token = uuid.uuid4().hex
        try:
            self.ctx.store.write({"type": "intent", "token": token, "label": self.label, "keys": keys,
                                  "shapes": shapes})
            batch_id = await self.api.batch_submit([(f"c{i}", r) for i, (_, r, _) in enumerate(chunk)], token)
            _checked_id(batch_id)
        except (ModelCallError, JournalWriteError) as err:
            with contextlib.suppress(JournalWriteError):
                self.ctx.store.write({"type": "abandoned", "token": token, "label": self.label})
            for _, _, fut in chunk:
                _fail(fut, err if isinstance(err, ModelCallError) else ModelCallError("other", str(err)))
            return
        except BaseException as exc:
            failed = ModelCallError("other", f"batch submission failed: {type(exc).__name__}: {exc}")
            for _, _, fut in chunk:
                _fail(fut, failed)
            raise
        try:
            self.ctx.store.write({"type": "submitted", "batch_id": batch_id, "token": token,
                                  "provider": self.api.card.provider, "model": self.api.card.model,
                                  "label": self.label, "keys": keys, "shapes": shapes})
        except JournalWriteError as exc:
            for _, _, fut in chunk:
                _fail(fut, ModelCallError("other", str(exc)))
            return
        self.stats.batches += 1
        self.stats.requests += len(chunk)
        self.ctx.submitted.set()
        watch = self._watch(batch_id, keys, {f"c{i}": r for i, (_, r, _) in enumerate(chunk)})
        for key, _, fut in chunk:
            watch.waiters.setdefault(key, []).append(fut)

    # --- polling ----------------------------------------------------------------------

    def _watch(self, batch_id: str, keys: list[str], requests: dict[str, GenerateRequest]) -> _Watch:
        watch = self._watches[batch_id] = _Watch(batch_id, keys, requests)
        watch.task = asyncio.create_task(self._poll(watch))
        return watch

    async def _poll(self, watch: _Watch) -> None:
        errors = 0
        while True:
            try:
                poll = await self.api.batch_poll(watch.batch_id, watch.requests)
            except ModelCallError as err:
                # A failed poll changes nothing on the provider's side: ask again later,
                # and give up on the calls (not the batch) only once it keeps failing.
                errors += 1
                if err.kind == "not_found":
                    # The provider no longer knows the batch (deleted, or past its retention):
                    # its calls can only be sent again. Marked collected so a resume does too.
                    with contextlib.suppress(JournalWriteError):
                        self.ctx.store.write({"type": "collected", "batch_id": watch.batch_id, "state": "not_found",
                                              "label": self.label})
                    self._resolve(watch, None, ModelCallError("timeout", f"batch {watch.batch_id} not found: {err}"))
                    return
                if not err.retryable or errors > self.api.card.max_retries:
                    self._resolve(watch, None, err)
                    return
                await asyncio.sleep(self.poll_s)
                continue
            errors = 0
            if poll.done:
                break
            await asyncio.sleep(self.poll_s)
        # Every result goes to the cache before any is used, and the batch is marked
        # collected only after that: a crash in between fetches it again on resume.
        for i, key in enumerate(watch.keys):
            result = poll.results.get(f"c{i}")
            if isinstance(result, GenerateResponse) and self.ctx.put is not None:
                self.ctx.put(key, result)
        with contextlib.suppress(JournalWriteError):
            self.ctx.store.write({"type": "collected", "batch_id": watch.batch_id, "state": poll.state,
                                  "label": self.label, "counts": poll.counts})
        self._resolve(watch, poll, None)

    def _resolve(self, watch: _Watch, poll: BatchPoll | None, error: ModelCallError | None) -> None:
        self._watches.pop(watch.batch_id, None)
        self.ctx.deliveries += 1
        index = {k: i for i, k in enumerate(watch.keys)}
        for key, futs in watch.waiters.items():
            result: GenerateResponse | ModelCallError | None = error
            if poll is not None:
                result = poll.results.get(f"c{index[key]}")
                if result is None:
                    result = ModelCallError("timeout", f"batch {watch.batch_id} ended ({poll.state}) "
                                                       f"before running this request")
            for fut in futs:
                if fut.done():
                    continue
                if isinstance(result, GenerateResponse):
                    fut.set_result(_copy(result, watch.batch_id))
                else:
                    assert result is not None
                    self.stats.failed += 1
                    _fail(fut, result)


def _copy(r: GenerateResponse, batch_id: str) -> GenerateResponse:
    out = GenerateResponse(r.texts, r.usage, r.logprobs, r.latency_s, reply_model=r.reply_model,
                           finish_reasons=r.finish_reasons)
    out.batch_id = batch_id
    return out


def _fail(fut: asyncio.Future[GenerateResponse], err: ModelCallError) -> None:
    if not fut.done():
        fut.set_exception(err)


HOSTED_BATCH_PROVIDERS = ("openai", "anthropic", "google")


def batch_eligible(card: Any, batch_all: bool) -> bool:
    """Whether a run sends this model's calls in batches: `batch: true` on its card, or
    `--batch` for a hosted provider's own endpoint. An `openai` card with another base_url
    is usually a local server (vLLM, Ollama) without the Batch API: only its card can opt in."""
    if card.batch:
        return True
    if not batch_all or card.provider not in HOSTED_BATCH_PROVIDERS:
        return False
    return card.provider != "openai" or card.base_url is None or "api.openai.com" in card.base_url


def attach(
    models: dict[str, Any],
    run_dir: Path,
    put: Callable[[str, GenerateResponse], None] | None,
    *,
    batch_all: bool,
    poll_s: float | None = None,
    fallback: Fallback = "retry",
    quiet_s: float | None = None,
) -> BatchContext | None:
    """Give every batch-enabled model (`batch_all`, or `batch: true` on its card) whose
    provider has a batch API a collector; None when no model is batch-enabled. A model
    whose label has batches journaled in this run directory is enabled too: its calls
    in those batches must be fetched, not sent again."""
    journaled = {str(r.get("label")) for r in read_batches(run_dir)}
    ctx: BatchContext | None = None
    for label, model in models.items():
        wanted = batch_eligible(model.card, batch_all) or label in journaled
        if not wanted or not model.api.supports_batch:
            continue
        if ctx is None:
            ctx = BatchContext(run_dir, put, poll_s=poll_s, fallback=fallback, quiet_s=quiet_s)
        model.batch = ctx.collector(label, model.api, model.card.batch_poll_s)
    return ctx
