"""`oversight judge`: new judges (or a new judge mode) on a finished run's stored transcripts.

The re-judged run is planned as a run of the source spec with the new judges would be:
the same items, orders, variants and settings, so that its rows equal, column for column,
the rows of a run that had the new judges from the start (only the run's own identity
differs: run_id, episode_id, transcript_id, and the cost share of transcripts it did not
pay for). Before it starts, every episode whose transcript does not depend on the judge is
given the source run's transcript: each such debate transcript, and the agent's own QA rows
that open protocols follow, are journaled into the new run (marked with their source ids),
so the engine reuses them as it reuses a resumed run's transcripts and calls no agent.

What is left needs an agent: a transcript that depends on the judge (consultancy, an
interactive debate) is made anew for each new judge. Those episodes are planned only with
`allow_agent_calls`; otherwise they are left out and a note says how many agent calls they
would need (the dry run's estimate, exact for sim models).

Everything else is `run`'s: lock, budget, resume, progress, journal, exit codes, and the
audit trail (every new verdict's `judge_prompt_id` names the prompt its judge received).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import yaml

from oversight.dialogue.prompts import Templates
from oversight.engine.identity import identity_hash, run_identity
from oversight.engine.plan import Episode, Plan, digest
from oversight.engine.prepare import Prepared, prepare
from oversight.engine.rundir import MANIFEST, choose_run_dir, holds_run, read_manifest
from oversight.engine.spec import RunSpec
from oversight.errors import OversightError
from oversight.model import redact
from oversight.protocol import registry
from oversight.store.collect import Collected, collect
from oversight.store.journal import Journal, journal_prompts


def transcript_depends_on_judge(protocol: str, interactive: bool) -> bool:
    """Whether the judge takes part in making the transcript (asks questions), so a new
    judge needs a new transcript and agent calls: the protocol's own answer."""
    return registry.get(protocol).transcript_depends_on_judge(bool(interactive))


def shared_key(protocol: str, variant: str, task: str, item_id: str, replicate: int, order: int,
                agent: Any, agent_b: Any, best_of: Any, rounds: Any, turn_style: Any) -> tuple[Any, ...]:
    """What makes two runs' debate transcripts the same transcript, whoever judges it."""
    return (protocol, variant, task, str(item_id), int(replicate), int(order), agent, agent_b,
            best_of, rounds, turn_style)


def _agent_qa_key(protocol: str, task: str, item_id: str, replicate: int, order: int, agent: Any) -> tuple[Any, ...]:
    return ("agent-qa", protocol, task, str(item_id), int(replicate), int(order), agent)


@dataclass
class Source:
    """The finished run being re-judged."""

    run_dir: Path
    spec: RunSpec
    manifest: dict[str, Any]
    collected: Collected
    transcripts: dict[tuple[Any, ...], str] = field(default_factory=dict)  # shared key -> transcript id
    agent_qa: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)  # key -> episode record


def read_source(run_dir: str | Path) -> Source:
    d = Path(run_dir)
    if not d.is_dir() or not holds_run(d):
        raise OversightError(
            f"oversight judge: {d} is not a run directory (it holds no {MANIFEST} or journal.jsonl); "
            f"give the directory of a finished run, e.g. runs/quickstart/<run_id>."
        )
    spec_path = d / "spec.yaml"
    try:
        data = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
        spec = RunSpec.model_validate(_localise_tasks(data, d))
    except FileNotFoundError:
        raise OversightError(f"oversight judge: {spec_path} is missing; the run's settings are unknown.") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise OversightError(f"oversight judge: {spec_path} cannot be read as a run spec ({exc}).") from None
    manifest = read_manifest(d)
    if "identity_sha256" not in manifest:
        raise OversightError(f"oversight judge: {d / MANIFEST} records no run identity; the run cannot be "
                             f"matched to its transcripts. Re-judge a run made by this version of oversight.")
    if spec.tournament is not None:
        raise OversightError(f"oversight judge: {d} is an Elo tournament run; re-judging covers protocol runs only.")
    src = Source(d, spec, manifest, collect(d))
    for tid, rec in src.collected.transcripts.items():
        if isinstance(rec.get("shared_key"), list):  # written by `oversight import`
            src.transcripts[tuple(rec["shared_key"])] = tid
    records = {r["episode_id"]: r for r in _episode_records(d)}
    for row in src.collected.judgments:
        if row.get("verdict_status") == "error":
            continue
        if row.get("qa_role") == "agent":
            key = _agent_qa_key(row["protocol"], row["task"], row["item_id"], row["replicate"], row["order"],
                                row["judge"])
            if row["episode_id"] in records:
                src.agent_qa[key] = records[row["episode_id"]]
        elif row["transcript_id"] in src.collected.transcripts and not transcript_depends_on_judge(
                row["protocol"], bool(row.get("interactive"))):
            src.transcripts[shared_key(row["protocol"], row["variant"], row["task"], row["item_id"], row["replicate"],
                                        row["order"], row["agent"], row["agent_b"], row["best_of"], row["rounds"],
                                        row["turn_style"])] = row["transcript_id"]
    return src


def _localise_tasks(data: Any, run_dir: Path) -> Any:
    """Task cards written into the run directory (by `oversight import`) are found there."""
    if isinstance(data, dict) and isinstance(data.get("tasks"), list):
        data["tasks"] = [str(run_dir / t) if isinstance(t, str) and (run_dir / t).is_file() else t
                         for t in data["tasks"]]
    return data


def _episode_records(d: Path) -> list[dict[str, Any]]:
    from oversight.store.journal import read_journal

    return [r for r in read_journal(d) if r.get("type") == "episode" and isinstance(r.get("row"), dict)]


@dataclass
class Rejudge:
    prep: Prepared
    identity: dict[str, Any]
    reused_transcripts: dict[str, str]  # new transcript key -> source transcript id
    reused_agent_qa: dict[str, dict[str, Any]]  # new episode id -> source episode record
    left_out: list[Episode]  # episodes that need agent calls, not planned
    agent_calls: int  # agent calls the planned episodes make (or the left-out ones would make)
    notes: list[str]


def plan_rejudge(source: Source, judges: list[str], mode: str | None, shots: int | None,
                 allow_agent_calls: bool, where: str = "oversight judge", budget_usd: float | None = None) -> Rejudge:
    if allow_agent_calls and "imported" in source.manifest:
        raise OversightError(f"{where}: {source.run_dir} holds imported transcripts; their agent is not a model "
                             f"oversight can call, so --allow-agent-calls cannot make new ones. Drop the flag.")
    data = source.spec.model_dump(mode="json")
    data["judges"] = list(judges)
    if mode is not None:
        data["judge"]["mode"] = mode
    if shots is not None:
        data["judge"]["shots"] = shots
    if budget_usd is not None:
        data["budget_usd"] = budget_usd  # the source's budget otherwise; operational, not identity
    try:
        spec = RunSpec.model_validate(data)
    except ValueError as exc:
        raise OversightError(f"{where}: the new judges or mode are not valid ({exc}).") from None
    prep = prepare(spec, f"{where} {source.run_dir}", check_keys=False)
    identity = run_identity(prep, Templates())
    _check_same_items(source, identity, where)
    identity["rejudge"] = {"source_identity_sha256": source.manifest["identity_sha256"],
                           "allow_agent_calls": allow_agent_calls}
    salted = prep.plan.salted(identity_hash(identity))
    reused_t: dict[str, str] = {}
    reused_q: dict[str, dict[str, Any]] = {}
    keep: list[Episode] = []
    needs_agent: list[Episode] = []
    for ep in salted.episodes:
        depends = transcript_depends_on_judge(
            ep.protocol, prep.variant_options.get(ep.variant, prep.options).interactive)
        if ep.qa_role == "agent":
            rec = source.agent_qa.get(_agent_qa_key(ep.protocol, ep.task, ep.item.item_id, ep.replicate, ep.order,
                                                    ep.judge))
            if rec is not None:
                reused_q[ep.episode_id] = rec
            else:
                needs_agent.append(ep)
                continue
        elif ep.transcript_key is not None and not depends:  # one transcript that every judge reads
            tid = source.transcripts.get(shared_key(ep.protocol, ep.variant, ep.task, ep.item.item_id,
                                                     ep.replicate, ep.order, ep.agent, ep.agent_b, ep.best_of,
                                                     ep.rounds, ep.turn_style))
            if tid is None:
                needs_agent.append(ep)
                continue
            reused_t[ep.transcript_key] = tid
        elif depends:
            needs_agent.append(ep)
            continue
        keep.append(ep)
    notes = list(prep.plan.notes)
    agent_calls = _agent_calls(prep, needs_agent)
    if needs_agent and allow_agent_calls:
        keep.extend(needs_agent)
        left_out: list[Episode] = []
    else:
        left_out = needs_agent
    if left_out:
        dependent = [e for e in left_out if transcript_depends_on_judge(
            e.protocol, prep.variant_options.get(e.variant, prep.options).interactive)]
        missing = [e for e in left_out if e not in dependent]
        parts = [f"{_count(dependent)} whose transcript depends on the judge" if dependent else "",
                 f"{_count(missing)} whose transcript or agent answer the source run does not hold" if missing else ""]
        fix = ("an imported run has no agent to call" if "imported" in source.manifest
               else "add --allow-agent-calls to run them")
        notes.append(f"left out {len(left_out)} episode(s): {'; '.join(p for p in parts if p)}. They would need "
                     f"{agent_calls:,} agent call(s); {fix} (open protocols derived from them need them too).")
    prep.plan = Plan(keep, notes)
    return Rejudge(prep, identity, reused_t, reused_q, left_out, agent_calls, notes)


def _count(episodes: list[Episode]) -> str:
    by: dict[str, int] = {}
    for ep in episodes:
        by[ep.variant or ep.protocol] = by.get(ep.variant or ep.protocol, 0) + 1
    return ", ".join(f"{n} {v}" for v, n in sorted(by.items()))


def _check_same_items(source: Source, identity: dict[str, Any], where: str) -> None:
    old = source.manifest.get("identity", {}).get("tasks", {})
    for task, t in identity["tasks"].items():
        before = (old.get(task) or {}).get("items_sha256")
        if before is not None and before != t["items_sha256"]:
            raise OversightError(
                f"{where}: the items of task '{task}' are not the ones the run in {source.run_dir} judged (its "
                f"data file or task card changed since), so its transcripts cannot be matched to them. Restore the "
                f"task's data file, or re-judge with the files the run used."
            )


def _agent_calls(prep: Prepared, episodes: list[Episode]) -> int:
    """The agent calls these episodes make, counted by rehearsing them as the dry run does."""
    if not episodes:
        return 0
    from oversight.engine.estimate import estimate

    # The agent's own QA is a call of role "judge" made by the agent: all of its calls count.
    own_qa = [e for e in episodes if e.qa_role == "agent"]
    others = [e for e in episodes if e.qa_role != "agent"]
    n = sum(t.calls for t in estimate(replace(prep, plan=Plan(own_qa, []))).roles.values()) if own_qa else 0
    if others:
        est = estimate(replace(prep, plan=Plan(others, [])))
        n += sum(t.calls for role, t in est.roles.items() if not role.startswith("judge"))
    return n


def dry_run(rj: Rejudge, source: Source) -> Any:
    """The estimate of what the re-judged run calls: the reused transcripts and agent-QA rows
    are given, so only the new calls are counted."""
    from oversight.engine.estimate import estimate

    plan = Plan([e for e in rj.prep.plan.episodes if e.episode_id not in rj.reused_agent_qa], rj.prep.plan.notes)
    journaled = {k: source.collected.transcripts[v] for k, v in rj.reused_transcripts.items()}
    return estimate(replace(rj.prep, plan=plan), journaled)


def seed_journal(run_dir: Path, run_id: str, source: Source, rj: Rejudge, stream: TextIO) -> None:
    """Journal the source run's reused transcripts and agent-QA rows into the new run, once
    (a resume finds them there already)."""
    have = collect(run_dir)
    known = set(have.transcripts)
    done = {r["episode_id"] for r in have.judgments}
    if known >= set(rj.reused_transcripts) and done >= set(rj.reused_agent_qa):
        return  # a resume: leave the journal (and any torn last line) to the run, which reports it
    # The source's prompt texts stay in its journal (collect keeps only their ids).
    wanted = {t.get("prompt_id") for old_id in rj.reused_transcripts.values()
              for t in source.collected.transcripts[old_id].get("turns") or []}
    wanted |= {x for rec in rj.reused_agent_qa.values()
               for x in [rec["row"].get("judge_prompt_id"), *(t.get("prompt_id") for t in rec.get("turns") or [])]}
    prompts = {pid: blob for pid, blob in journal_prompts(source.run_dir) if pid in wanted}
    journal = Journal(run_dir, set(have.prompt_ids), scrub=redact.scrub_known)
    if journal.torn_bytes:
        print(f"note: cut a torn final journal line ({journal.torn_bytes} bytes) left by an interrupted run; "
              f"the work it described is done again.", file=stream, flush=True)
    try:
        for new_key, old_id in rj.reused_transcripts.items():
            if new_key in known:
                continue
            rec = source.collected.transcripts[old_id]
            turns = [{**t, "transcript_id": new_key} for t in rec.get("turns") or []]
            journal.write({"type": "transcript", "transcript_id": new_key, "source_transcript_id": old_id,
                           "turns": turns, "calls": []}, _prompts_of(turns, prompts))
        for new_id, rec in rj.reused_agent_qa.items():
            if new_id in done:
                continue
            row = {**rec["row"], "run_id": run_id, "episode_id": new_id, "transcript_id": new_id}
            turns = [{**t, "transcript_id": new_id, "episode_id": new_id} for t in rec.get("turns") or []]
            journal.write({"type": "episode", "episode_id": new_id, "source_episode_id": rec["episode_id"],
                           "row": row, "turns": turns, "calls": []},
                          _prompts_of([*turns, {"prompt_id": row.get("judge_prompt_id")}], prompts))
    finally:
        journal.close()


def _prompts_of(rows: list[dict[str, Any]], prompts: dict[str, str]) -> dict[str, str]:
    ids = {r.get("prompt_id") for r in rows}
    return {k: prompts[k] for k in ids if k and k in prompts}


def default_out(source: Path, judges: list[str], mode: str | None, shots: int | None) -> Path:
    """Beside the source run, named by what is new, so `--resume` finds it again."""
    return source.parent / f"{source.name}.judged-{digest(sorted(judges), mode, shots)[:8]}"


def judge(
    run_dir: str | Path,
    judges: list[str],
    mode: str | None = None,
    *,
    shots: int | None = None,
    out: str | Path | None = None,
    allow_agent_calls: bool = False,
    resume: bool = False,
    stream: TextIO | None = None,
    http_clients: dict[str, Any] | None = None,
    cache: str = "on",
    keep_errors: bool = False,
    budget_usd: float | None = None,
) -> Any:
    """Judge a finished run's transcripts with `judges` (and `mode`); returns a RunResult
    whose directory's manifest links the source run (`rejudge_of`)."""
    from oversight.engine.runner import run_prepared

    if not judges:
        raise OversightError("oversight judge: name at least one judge (--judges sim/medium ...).")
    source = read_source(run_dir)
    rj = plan_rejudge(source, judges, mode, shots, allow_agent_calls, budget_usd=budget_usd)
    target = Path(out) if out is not None else default_out(source.run_dir, judges, mode, shots)
    target = choose_run_dir(rj.prep.spec, target, resume)
    command = f"oversight judge {source.run_dir} --judges {' '.join(judges)}" + (f" --mode {mode}" if mode else "") + \
        (" --allow-agent-calls" if allow_agent_calls else "")
    out_stream = stream or sys.stderr
    for note in rj.notes:
        print(f"note: {note}", file=out_stream, flush=True)
    link = {"rejudge_of": {"run_id": source.manifest.get("run_id", source.run_dir.name),
                           "path": str(source.run_dir.resolve()),
                           "identity_sha256": source.manifest["identity_sha256"],
                           "judges": list(judges), "judge_mode": rj.prep.spec.judge.mode,
                           "reused_transcripts": len(rj.reused_transcripts),
                           "reused_agent_qa": len(rj.reused_agent_qa),
                           "left_out_episodes": len(rj.left_out),
                           "left_out_agent_calls": rj.agent_calls if rj.left_out else 0}}
    return run_prepared(rj.prep, rj.identity, target, resume, command, stream=out_stream,
                        http_clients=http_clients, cache=cache, keep_errors=keep_errors,
                        before_start=lambda run_id: seed_journal(target, run_id, source, rj, out_stream),
                        manifest_extra=link)
