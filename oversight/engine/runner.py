"""`oversight.run`: prepare, plan, run episodes concurrently, journal, seal.

A run directory holds spec.yaml, manifest.json, journal.jsonl (the crash-safe record of
finished work) and, once sealed, judgments/turns/calls/items/prompts.parquet. Killing the
process at any point loses nothing that had finished. `resume=True` continues the same
experiment only (engine/rundir.py checks its identity), skips finished episodes, runs the
ones that ended in error again (unless `keep_errors`), and reuses journaled transcripts;
every call they already made is answered from the response cache.

Totals and the budget span every invocation of a run: they are computed from the journal,
whose `pass` records also account for calls made by episodes an invocation did not finish.

`run` works in a script and inside a running event loop (Jupyter, or called from a
coroutine); `await run_async(...)` is the same run for async code. Either way the run's
own event loop lives in a worker thread when the caller's thread already runs one.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import platform
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO, overload

import yaml

import oversight
from oversight.dialogue.prompts import Templates
from oversight.engine.execute import Runtime, execute, item_row
from oversight.engine.heap import quiet_collector
from oversight.engine.identity import identity_hash, run_identity
from oversight.engine.prepare import Prepared, prepare
from oversight.engine.progress import Reporter, Snapshot
from oversight.engine.rundir import (
    MANIFEST,
    check_same_experiment,
    choose_run_dir,
    git_commit,
    point_latest,
    read_manifest,
    write_json,
)
from oversight.engine.spec import RunSpec, spec_from_any
from oversight.errors import RunStopped
from oversight.model import redact
from oversight.model.cache import ResponseCache
from oversight.model.local_server import LocalServers
from oversight.model.providers import make_api
from oversight.model.wrapper import CallFailure, Model
from oversight.protocol.presets import Variant
from oversight.store.collect import Collected, collect, totals
from oversight.store.journal import Journal, JournalWriteError, journal_prompts
from oversight.store.lock import RunLock
from oversight.store.safe_io import write_file

if TYPE_CHECKING:
    import pandas as pd

    from oversight.engine.estimate import Estimate

# Exit codes: 0 success; 1 errored episodes or a fail-fast stop; 2 bad input; 130 interrupted.
EXIT_OK, EXIT_ERRORS, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class RunResult:
    run_dir: Path
    run_id: str
    status: str  # complete | budget_exhausted | stopped | interrupted
    judgments: pd.DataFrame
    totals: dict[str, Any] = field(default_factory=dict)
    derived_excluded: dict[str, Any] = field(default_factory=dict)  # per open variant
    fatal: str | None = None  # why a fail-fast error stopped the run
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.status == "interrupted":
            return EXIT_INTERRUPTED
        if self.status == "stopped" or self.totals.get("episode_errors"):
            return EXIT_ERRORS
        return EXIT_OK


class Run:
    def __init__(self, prep: Prepared, run_dir: Path, run_id: str, stream: TextIO, keep_errors: bool) -> None:
        self.prep = prep
        self.run_dir = run_dir
        self.run_id = run_id
        self.stream = stream
        self.keep_errors = keep_errors
        self.templates = Templates()
        self.status = "complete"
        self.fatal: str | None = None
        self.notes: list[str] = []
        self.started = dt.datetime.now(dt.UTC).isoformat()
        self.before = collect(run_dir)  # what earlier invocations finished
        self.spent_before = totals(self.before)["cost_usd"]
        self.done = 0
        self.errors = 0
        # Provider batch APIs (oversight/model/batch.py): set by run(); with them every
        # episode runs at once, so that each wave holds every call that is ready.
        self.batch: dict[str, Any] = {}
        self.batch_wide = False
        self.batch_summary: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}  # more manifest keys (a re-judged run's source)
        self._models: dict[str, Model] = {}

    def note(self, message: str) -> None:
        """A warning: printed now, and kept for the manifest and the end-of-run summary."""
        if message not in self.notes:
            self.notes.append(message)
            print(f"note: {message}", file=self.stream, flush=True)

    def on_fatal(self, failure: CallFailure) -> None:
        model = self._models.get(failure.model)
        if model is not None and model.stopped is None:
            model.stopped = failure.error  # its queued calls fail without being sent
        if self.fatal is not None:
            return
        card = self.prep.cards.get(failure.model)
        where = f"'{failure.model}'"
        if card is not None:
            where += f" ({card.provider}/{card.model}" + (f" at {card.base_url}" if card.base_url else "") + ")"
        if failure.error.kind == "auth":
            env = card.key_env() if card is not None else None
            fix = (f"check the key in ${env} and that it may use this model" if env
                   else "check the server's credentials")
        elif failure.error.kind == "unreachable":
            fix = (f"start the server at {card.base_url if card is not None else 'its base_url'} "
                   "(or correct base_url in the card)")
        else:
            # An in-process model has no base_url to check.
            fix = ("check the model id and base_url in its card" if card is None or card.base_url
                   else "check the model in its card")
        self.fatal = (f"model {where} refused the request ({failure.error}); every call to it would fail "
                      f"the same way, so no new episodes were started. To fix: {fix}, then resume.")

    def spent(self, models: dict[str, Model]) -> float:
        return self.spent_before + sum(m.stats.cost_usd for m in models.values())

    async def execute(self, models: dict[str, Model], journal: Journal) -> None:
        prep = self.prep
        self._models = models
        finished = self.before.finished(self.keep_errors)
        todo = [e for e in prep.plan.episodes if e.episode_id not in finished]
        retried = sum(1 for r in self.before.judgments
                      if r.get("verdict_status") == "error" and r["episode_id"] not in finished)
        if retried:
            self.note(f"running again {retried} episode(s) that ended in error before "
                      f"(--keep-errors keeps them instead).")
        self.done = len(prep.plan.episodes) - len(todo)
        self.errors = sum(1 for r in self.before.judgments
                          if r.get("verdict_status") == "error" and r["episode_id"] in finished)
        pending_judges = dict(prep.plan.judges_per_transcript())
        rt = Runtime(models, prep.options, self.templates, prep.items, dict(pending_judges), prep.debaters,
                     self.run_id, on_transcript=journal.write, seed=prep.spec.seed,
                     journaled=self.before.transcripts, on_fatal=self.on_fatal,
                     variant_options=prep.variant_options, on_prompt=journal.write_prompt)
        budget = prep.spec.budget_usd
        queue = iter(todo)

        def snapshot() -> Snapshot:
            s = [m.stats for m in models.values()]
            return Snapshot(self.done, len(prep.plan.episodes), self.errors, sum(x.calls for x in s),
                            sum(x.cache_hits for x in s), sum(x.input_tokens + x.output_tokens for x in s),
                            self.spent(models), sum(x.cached_input_tokens for x in s),
                            {label: m.stats.backoff_until for label, m in models.items() if m.stats.backoff_until})

        reporter = Reporter(snapshot, f"{prep.spec.name} {self.run_id}", self.stream,
                            simulated=any(m.simulated for m in models.values()))
        for m in models.values():
            m.on_backoff = lambda: reporter.update(force=True)

        async def worker() -> None:
            for ep in queue:
                if self.fatal is not None:
                    return
                if budget is not None and self.spent(models) >= budget:
                    self.status = "budget_exhausted"
                    return
                record, prompts = await execute(rt, ep)
                try:
                    journal.write(record, prompts)
                except JournalWriteError as exc:
                    self.fatal = f"{exc} Everything journaled before is kept; free space, then resume."
                    return
                self.done += 1
                self.errors += record["row"]["verdict_status"] == "error"
                if ep.transcript_key:
                    pending_judges[ep.transcript_key] -= 1
                    if pending_judges[ep.transcript_key] == 0:
                        rt.forget(ep.transcript_key)
                reporter.update()

        with reporter:
            try:
                width = len(todo) if self.batch_wide else min(prep.spec.concurrency, len(todo))
                await asyncio.gather(*(worker() for _ in range(max(1, width))))
            finally:
                # Shared transcripts still generating when the run stops (Ctrl-C) are
                # cancelled and awaited here, so none is left to complain at shutdown.
                for task in rt._shared.values():
                    task.cancel()
                await asyncio.gather(*rt._shared.values(), return_exceptions=True)
        if self.fatal is not None:
            self.status = "stopped"

    def pass_record(self, models: dict[str, Model], journal: Journal) -> dict[str, Any]:
        """This invocation's accounting: what it spent on calls whose episodes it did not
        finish is not in any other record."""
        s = [m.stats for m in models.values()]
        w = journal.written
        unjournaled = {
            "calls": max(0, sum(x.calls for x in s) - w.calls),
            "cost_usd": max(0.0, sum(x.cost_usd for x in s) - w.cost_usd),
            "input_tokens": max(0, sum(x.input_tokens for x in s) - w.input_tokens),
            "output_tokens": max(0, sum(x.output_tokens for x in s) - w.output_tokens),
        }
        return {"type": "pass", "started": self.started, "ended": dt.datetime.now(dt.UTC).isoformat(),
                "status": self.status, "unjournaled": unjournaled}

    def manifest(self, old: dict[str, Any], identity: dict[str, Any], collected: Collected,
                 end: str | None, extra: dict[str, Any]) -> dict[str, Any]:
        spec = self.prep.spec
        return {
            "run_id": self.run_id,
            "name": spec.name,
            "oversight_version": oversight.__version__,
            "git_commit": git_commit(),
            "python": platform.python_version(),
            "seed": spec.seed,
            "replicates": spec.replicates,
            "status": self.status if end else "running",
            "started": old.get("started", self.started),
            "ended": end,
            "invocations": [*old.get("invocations", []), {"started": self.started, "ended": end,
                                                          "status": self.status if end else "running"}],
            "simulated": any(c.provider == "sim" for c in self.prep.cards.values()),
            "models": {label: c.public_dict() for label, c in self.prep.cards.items()},
            "roles": self.prep.roles,
            "tasks": {t: {"card": c, "skipped": self.prep.skipped.get(t, {})} for t, c in self.prep.task_cards.items()},
            "templates": self.templates.hashes(),
            "identity_sha256": identity_hash(identity),
            "identity": identity,
            "budget_usd": spec.budget_usd,
            "plan": {"episodes": len(self.prep.plan.episodes), "by_protocol": self.prep.plan.by_protocol(),
                     "notes": self.prep.plan.notes},
            "totals": totals(collected, len(self.prep.plan.episodes)),
            "fatal": self.fatal,
            "notes": self.notes,
            **self.extra,
            **extra,
        }


def seal_run(
    run_dir: Path, variants: list[Variant], items: list[dict[str, Any]] | None = None
) -> tuple[pd.DataFrame, dict[str, Any], Collected]:
    """The journal's rows as parquet, with the rows of each open variant derived from its
    source variant's rows and the agent's own QA."""
    # Imported here: pandas is not needed until the run is over, and costs startup time.
    import pandas as pd

    from oversight.store.tables import JUDGMENT_COLUMNS, conform, frame, seal

    c = collect(run_dir, rows=True)
    judgments = frame(c.judgments, JUDGMENT_COLUMNS)
    excluded: dict[str, Any] = {}
    open_variants = [v for v in variants if v.is_open]
    if open_variants and len(judgments):
        from oversight.protocol import registry

        usable = judgments[judgments["verdict_status"] != "error"]
        agent_qa = usable[usable["qa_role"] == "agent"]
        parts = [judgments]
        for v in open_variants:
            source = usable[(usable["variant"] == v.source) & usable["qa_role"].isna()]
            derived, counts = registry.get(v.base).derive(pd.concat([source, agent_qa], ignore_index=True))
            derived = derived[derived["group"].isin(v.groups)]
            # A derived row made no call: its cost and tokens are its source row's, already counted.
            derived = derived.assign(variant=v.name, episode_cost_usd=0.0, judge_input_tokens=0,
                                     judge_output_tokens=0)
            parts.append(derived)
            excluded[v.name] = counts
        judgments = conform(pd.concat(parts, ignore_index=True), JUDGMENT_COLUMNS)
    assert c.turns is not None and c.calls is not None
    sealed = seal(run_dir, judgments, c.turns, c.calls, items, journal_prompts(run_dir))
    return sealed.judgments, excluded, c


@overload
def run(spec: RunSpec | dict[str, Any] | str | Path, out: str | Path | None = None, resume: bool = False, *,
        overrides: list[str] | None = None, stream: TextIO | None = None,
        http_clients: dict[str, Any] | None = None, cache: str = "on", keep_errors: bool = False,
        batch: bool = False, detach: bool = False, batch_fallback: str = "retry",
        batch_poll_s: float | None = None, dry_run: Literal[False] = False) -> RunResult: ...
@overload
def run(spec: RunSpec | dict[str, Any] | str | Path, out: str | Path | None = None, resume: bool = False, *,
        overrides: list[str] | None = None, stream: TextIO | None = None,
        http_clients: dict[str, Any] | None = None, cache: str = "on", keep_errors: bool = False,
        batch: bool = False, detach: bool = False, batch_fallback: str = "retry",
        batch_poll_s: float | None = None, dry_run: Literal[True]) -> Estimate: ...
def run(
    spec: RunSpec | dict[str, Any] | str | Path,
    out: str | Path | None = None,
    resume: bool = False,
    *,
    overrides: list[str] | None = None,
    stream: TextIO | None = None,
    http_clients: dict[str, Any] | None = None,
    cache: str = "on",
    keep_errors: bool = False,
    batch: bool = False,
    detach: bool = False,
    batch_fallback: str = "retry",
    batch_poll_s: float | None = None,
    dry_run: bool = False,
) -> RunResult | Estimate:
    """Run a spec end to end and return its results (what `oversight run` calls).

    `cache` is on | off | read | write. `http_clients` maps a model label to an
    httpx.AsyncClient (tests and benchmarks point providers at a loopback server this way).
    `batch` sends every call of a model with a batch API through it (oversight/model/batch.py;
    `batch: true` on a card does it for that model); `detach` returns once the first wave is
    submitted (status `detached`; `--resume` collects it); `batch_fallback` is retry (a
    failed request goes into the next wave) or online; `batch_poll_s` overrides the cards'.
    `dry_run=True` calls nothing and writes nothing: it returns the `Estimate` of episodes,
    calls, tokens and dollars that `oversight run --dry-run` prints.
    """
    source = str(spec) if isinstance(spec, str | Path) else "spec"
    out_stream = stream or sys.stderr
    rspec = spec_from_any(spec, overrides)
    if dry_run:  # the plan, calls, tokens and dollars `oversight run --dry-run` prints; calls nothing
        from oversight.engine.estimate import estimate

        return estimate(prepare(rspec, source, check_keys=False))
    prep = prepare(rspec, source)
    identity = run_identity(prep, Templates())
    prep.plan = prep.plan.salted(identity_hash(identity))
    run_dir = choose_run_dir(rspec, out, resume)
    if out is None and not resume:
        point_latest(run_dir)
    command = f"oversight run {source}" + "".join(f" --set {o}" for o in overrides or [])
    batch_opts = {"batch_all": batch, "detach": detach, "fallback": batch_fallback, "poll_s": batch_poll_s}
    return run_prepared(prep, identity, run_dir, resume, command, stream=out_stream, http_clients=http_clients,
                        cache=cache, keep_errors=keep_errors, batch=batch_opts)


def run_prepared(
    prep: Prepared, identity: dict[str, Any], run_dir: Path, resume: bool, command: str, *,
    stream: TextIO, http_clients: dict[str, Any] | None = None, cache: str = "on", keep_errors: bool = False,
    batch: dict[str, Any] | None = None, before_start: Callable[[str], None] | None = None,
    manifest_extra: dict[str, Any] | None = None,
) -> RunResult:
    """Run a prepared, salted plan in `run_dir` (claimed, checked and locked here).

    `before_start(run_id)` runs under the lock before the journal is read (`oversight judge`
    journals the source run's transcripts there); `manifest_extra` goes into manifest.json."""
    with RunLock(run_dir):
        old = read_manifest(run_dir) if resume else {}
        if resume:
            check_same_experiment(run_dir, old, identity, command)
        else:
            dumped = yaml.safe_dump(redact.scrub_data(prep.spec.model_dump(mode="json")), sort_keys=False)
            write_file(run_dir / "spec.yaml", dumped, root=run_dir)
        run_id = str(old.get("run_id", run_dir.name))
        if before_start is not None:
            before_start(run_id)
        state = Run(prep, run_dir, run_id, stream, keep_errors)
        state.batch = batch or {}
        state.extra = dict(manifest_extra or {})
        if state.before.unreadable:
            state.note(f"{state.before.unreadable} journal line(s) in {run_dir} could not be read and were skipped.")
        with quiet_collector():
            return _execute(state, identity, old, cache, http_clients or {}, command)


def _execute(state: Run, identity: dict[str, Any], old: dict[str, Any], cache_mode: str,
             clients: dict[str, Any], command: str) -> RunResult:
    prep, run_dir = state.prep, state.run_dir
    rspec = prep.spec
    cache = ResponseCache.for_mode(Path(rspec.cache_dir).expanduser() if rspec.cache_dir else None,
                                   cache_mode, warn=state.note)
    journal = Journal(run_dir, state.before.prompt_ids, scrub=redact.scrub_known)
    if journal.torn_bytes:
        state.note(f"cut a torn final journal line ({journal.torn_bytes} bytes) left by an interrupted run; "
                   f"the work it described is done again.")
    write_json(run_dir / MANIFEST, state.manifest(old, identity, state.before, None, {}))
    models: dict[str, Model] = {}
    servers = LocalServers(state.stream)
    cards = dict(prep.cards)

    async def main() -> None:
        models.update({
            label: Model(card, make_api(card, http_client=clients.get(label)), cache)
            for label, card in cards.items()
        })
        from oversight.model.batch import attach

        opts = state.batch
        batch_ctx = attach(models, run_dir, cache.put if cache is not None else None,
                           batch_all=bool(opts.get("batch_all")), poll_s=opts.get("poll_s"),
                           fallback=opts.get("fallback", "retry"))
        state.batch_wide = batch_ctx is not None
        if batch_ctx is not None:
            # A wave may take hours: say when each goes out, so a quiet progress line is not a hang.
            batch_ctx.on_wave = lambda label, n, wave: print(
                f"batch wave {wave}: {n:,} call(s) of {label} submitted; waiting for the provider",
                file=state.stream, flush=True)
        try:
            running = asyncio.ensure_future(state.execute(models, journal))
            if batch_ctx is not None:
                budget = prep.spec.budget_usd
                if budget is not None:
                    batch_ctx.stop_before_wave = lambda: state.spent(models) >= budget
                halted = asyncio.ensure_future(batch_ctx.halted.wait())
                submitted = asyncio.ensure_future(batch_ctx.wait_detachable() if opts.get("detach")
                                                  else asyncio.Event().wait())
                await asyncio.wait({running, submitted, halted}, return_when=asyncio.FIRST_COMPLETED)
                for waiter in (submitted, halted):
                    waiter.cancel()
                if not running.done():
                    # Detached: the first wave is with the provider and nothing more can happen
                    # until it ends, possibly hours from now. Halted: the budget is spent. Either
                    # way `--resume` goes on from the journaled batches.
                    running.cancel()
                    await asyncio.gather(running, return_exceptions=True)
                    state.status = "budget_exhausted" if halted.done() and not halted.cancelled() else "detached"
            if not running.cancelled():
                await running
        finally:
            if batch_ctx is not None:
                await batch_ctx.aclose()
                state.batch_summary = batch_ctx.summary()
            # Stop and collect every task still running (Ctrl-C), so that none calls a
            # closed client or leaves an error for asyncio to print at shutdown.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in others:
                t.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            for m in models.values():
                await m.api.aclose()

    try:
        # Managed local models (gguf: on a card) get their llama.cpp servers for this run only.
        cards.update(servers.start(prep.cards))
        _drive(main)
    except (KeyboardInterrupt, asyncio.CancelledError):
        # Ctrl-C in a script, the stop button in Jupyter, or a cancelled `await run_async()`.
        state.status = "interrupted"
    finally:
        servers.stop()
        # If the journal cannot be written, the fatal message already says so.
        with contextlib.suppress(JournalWriteError):
            journal.write(state.pass_record(models, journal))
        journal.close()
    # Sealing reads the whole journal again: what a resume kept of earlier invocations'
    # work (rows and transcripts of half a grid, hundreds of MB) is no longer needed.
    state.before = Collected()
    items = [item_row(i) for its in prep.items.values() for i in its]
    try:
        listed = [prep.variants[n] for n in rspec.protocols]
        judgments, excluded, collected = seal_run(run_dir, listed, items)
        end = dt.datetime.now(dt.UTC).isoformat()
        extra: dict[str, Any] = {"open_protocols_excluded": excluded}
        if state.batch_summary:
            extra["batch"] = state.batch_summary  # waves, batches and requests per model; open batch ids
        manifest = state.manifest(old, identity, collected, end, extra)
        write_json(run_dir / MANIFEST, manifest)
    except OSError as exc:
        why = exc.strerror or str(exc)
        first = f"{state.fatal} " if state.fatal else ""
        raise RunStopped(
            f"{first}The run's tables could not be written in {run_dir} ({why}). Everything finished "
            f"is kept in its journal; once there is room, `{command} --resume --out {run_dir}` "
            f"finishes the run and writes them."
        ) from None
    result = RunResult(run_dir, state.run_id, state.status, judgments, manifest["totals"], excluded,
                       state.fatal, state.notes)
    if state.status == "detached":
        print(f"\nDetached: the first batch wave is submitted and journaled in {run_dir}/batches.jsonl. "
              f"Check it with `oversight batch status {run_dir}`; collect it and go on with: "
              f"{command} --resume --out {run_dir}", file=state.stream)
    if state.status == "interrupted":
        t = manifest["totals"]
        print(f"\nInterrupted: {t['episodes_done'] + t['episode_errors']} of {t['episodes_planned']} episodes "
              f"are kept in {run_dir}. Finish with: {command} --resume --out {run_dir}", file=state.stream)
    return result


def _run_full(spec: RunSpec | dict[str, Any] | str | Path, out: str | Path | None, resume: bool,
              **options: Any) -> RunResult:
    return run(spec, out, resume, **options)


class _Stopper:
    """Stops a run from another thread: cancels the main task of the run's own loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped = False
        self._target: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None

    def attach(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        with self._lock:
            self._target = (asyncio.get_running_loop(), task)
            stopped = self._stopped
        if stopped:  # asked to stop before the run's loop existed
            task.cancel()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            target = self._target
        if target is not None:
            loop, task = target
            with contextlib.suppress(RuntimeError):  # the loop has already closed: nothing to stop
                loop.call_soon_threadsafe(task.cancel)


# Set by run_async for the run() it starts in a worker thread (to_thread copies the context).
_STOPPER: contextvars.ContextVar[_Stopper | None] = contextvars.ContextVar("oversight_run_stopper", default=None)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _drive(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `main()` to completion on an event loop of its own.

    In a script that is asyncio.run here. In a thread that already runs a loop (Jupyter),
    asyncio.run refuses to nest, and the run's clean-up, which cancels every task of its
    loop, must not touch the caller's tasks: so the loop runs in a worker thread, and an
    interrupt of the waiting caller stops the run as Ctrl-C would.
    """
    stopper = _STOPPER.get() or _Stopper()

    async def guarded() -> None:
        stopper.attach()
        await main()

    if not _loop_running():
        asyncio.run(guarded())
        return
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(guarded())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            failure.append(exc)

    worker = threading.Thread(target=target, name="oversight-run", daemon=True)
    worker.start()
    try:
        worker.join()
    except KeyboardInterrupt:
        stopper.stop()
        worker.join()
        raise
    if failure:
        raise failure[0]


async def run_async(
    spec: RunSpec | dict[str, Any] | str | Path,
    out: str | Path | None = None,
    resume: bool = False,
    **options: Any,
) -> RunResult:
    """`run` for async code (`await oversight.run_async(spec)` in Jupyter): the run goes on in
    a worker thread, so the caller's event loop stays responsive. Cancelling the await stops
    the run as Ctrl-C would: what finished is kept and sealed, and the cancellation is
    re-raised once the run directory is consistent."""
    stopper = _Stopper()
    token = _STOPPER.set(stopper)
    try:
        pending = asyncio.ensure_future(asyncio.to_thread(_run_full, spec, out, resume, **options))
    finally:
        _STOPPER.reset(token)
    try:
        return await asyncio.shield(pending)
    except asyncio.CancelledError:
        stopper.stop()
        with contextlib.suppress(BaseException):
            await pending  # let the run seal what it finished before giving up the directory
        raise
