"""Running one episode: hand it to its protocol (the registry's), then turn the outcome into stored rows.

A failing model call (or any other failure inside the episode) fails that episode only: it
is recorded with `verdict_status = "error"` and the error text, and the run goes on. An
authentication, permission or not-found error is different: every later call to that
model would fail the same way, so it is raised to the run as `Fatal` through `on_fatal`,
which stops scheduling new episodes.

A shared transcript (a protocol's `env.shared`, e.g. a debate's) already in the journal (an
earlier pass of a resumed run) is reused, never generated again: every judge of one
transcript judges the same text, and a resume with the cache off repeats no finished call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from oversight.dialogue.context import CallRecord, Context, Options
from oversight.dialogue.prompts import Templates
from oversight.dialogue.transcript import Transcript, Turn, Verdict
from oversight.engine.plan import Debater, Episode
from oversight.judge.fewshot import shots_shown
from oversight.model.redact import scrub
from oversight.model.wrapper import CallFailure, Model
from oversight.protocol import registry
from oversight.protocol.base import Env, Outcome
from oversight.task.item import Item

FATAL_KINDS = ("auth", "not_found", "unreachable")


@dataclass
class Shared:
    """A transcript that several episodes judge; generated once per run."""

    transcript: Transcript
    calls: list[CallRecord]
    cost_usd: float


@dataclass
class Runtime:
    models: dict[str, Model]
    options: Options
    templates: Templates
    items: dict[str, list[Item]]  # by task: the few-shot pool
    judges_per_transcript: dict[str, int]
    debaters: dict[str, Debater]  # agent names in episodes -> model label and best-of-N
    run_id: str
    on_transcript: Callable[[dict[str, Any], dict[str, str]], None]
    seed: int = 0
    # Transcript records already journaled (by transcript id), reused instead of regenerated.
    journaled: dict[str, dict[str, Any]] = field(default_factory=dict)
    on_fatal: Callable[[CallFailure], None] = lambda failure: None
    # Where each prompt goes as it is sent (the journal); None: into the episode's record.
    on_prompt: Callable[[str, str], None] | None = None
    # The settings each protocol variant runs with (engine/prepare.py); `options` otherwise.
    variant_options: dict[str, Options] = field(default_factory=dict)
    _shared: dict[str, asyncio.Task[Shared]] = field(default_factory=dict)
    _templates: dict[str | None, Templates] = field(default_factory=dict)

    def templates_for(self, opts: Options) -> Templates:
        if opts.prompt_set is None:
            return self.templates
        if opts.prompt_set not in self._templates:
            self._templates[opts.prompt_set] = Templates(opts.prompt_set)
        return self._templates[opts.prompt_set]

    def shared(self, key: str, make: Callable[[], Awaitable[Shared]]) -> Awaitable[Shared]:
        if key not in self._shared:
            self._shared[key] = asyncio.ensure_future(make())
        return self._shared[key]

    def forget(self, key: str) -> None:
        """Drop a finished shared transcript once its last judge is done (bounded memory)."""
        self._shared.pop(key, None)


def _options_for(rt: Runtime, ep: Episode) -> Options:
    opts = rt.variant_options.get(ep.variant, rt.options)
    from oversight.engine.tournament import TournamentEpisode

    if isinstance(ep, TournamentEpisode):
        opts = ep.options(opts)  # the tournament's own rounds and turns, never the spec's `debate:`
    if ep.qa_role == "agent":
        opts = dataclasses.replace(opts, judge_mode=opts.agent_qa_mode)  # its own setting, not judge.mode
    if opts.judge_mode == "fewshot":
        # Built only when used: it is O(items) per episode.
        pool = tuple(i for i in rt.items.get(ep.task, []) if i.item_id != ep.item.item_id)
        opts = dataclasses.replace(opts, fewshot_pool=pool)
    return opts


class EpisodeEnv(Env):
    """The engine's side of one episode, as its protocol sees it (oversight/protocol/base.py)."""

    def __init__(self, rt: Runtime, ep: Episode, ctx: Context) -> None:
        self.rt, self.ep, self.ctx = rt, ep, ctx
        self.judge = rt.models[ep.judge]

    def agent(self, name: str) -> Model:
        return self.rt.models[self.rt.debaters[name].model]

    async def shared(self, generate: Callable[[Context], Awaitable[Transcript]]) -> tuple[Transcript, float]:
        rt, ep, ctx = self.rt, self.ep, self.ctx
        key = ep.transcript_key
        if key is None:
            raise ValueError(f"protocol {ep.protocol} asked for a shared transcript, but its episode has no key")

        async def make() -> Shared:
            if key in rt.journaled:
                return shared_from_record(rt.journaled[key])
            tctx = Context(ep.item, ep.order, ctx.options, ctx.templates, episode_id="", transcript_id=key,
                           seed=rt.seed, replicate=ep.replicate, on_prompt=rt.on_prompt, draw=game_draw(ep))
            transcript = await generate(tctx)
            cost = sum(c.cost_usd for c in tctx.calls)
            rt.on_transcript(transcript_record(ep, transcript, tctx.calls), tctx.prompts)
            return Shared(transcript, tctx.calls, cost)

        shared = await rt.shared(key, make)
        return shared.transcript, shared.cost_usd / max(1, rt.judges_per_transcript.get(key, 1))


def game_draw(ep: Episode) -> str:
    """A tournament game's own draw (engine/tournament.py, "Independent games"); "" elsewhere."""
    from oversight.engine.tournament import TournamentEpisode

    return f"game:{ep.agent} vs {ep.agent_b}" if isinstance(ep, TournamentEpisode) else ""


async def run_protocol(rt: Runtime, ep: Episode, ctx: Context) -> Outcome:
    return await registry.get(ep.protocol).run(EpisodeEnv(rt, ep, ctx), ep, ctx)


async def execute(rt: Runtime, ep: Episode) -> tuple[dict[str, Any], dict[str, str]]:
    """Run an episode; return its journal record and the prompts its calls sent."""
    tid = ep.transcript_key or ep.episode_id
    opts = _options_for(rt, ep)
    ctx = Context(ep.item, ep.order, opts, rt.templates_for(opts), ep.episode_id, tid,
                  seed=rt.seed, replicate=ep.replicate, on_prompt=rt.on_prompt)
    transcript: Transcript | None = None
    verdict: Verdict
    share, offset = 0.0, 0
    error: str | None = None
    try:
        outcome = await run_protocol(rt, ep, ctx)
        transcript, verdict, share, offset = outcome.transcript, outcome.verdict, outcome.share_usd, outcome.offset
    except CallFailure as failure:
        error = str(failure)
        verdict = Verdict(None, "", "error", error=error)
        if failure.error.kind in FATAL_KINDS:
            rt.on_fatal(failure)
    except Exception as exc:  # noqa: BLE001 - one broken episode must not end the run
        error = scrub(f"internal error: {type(exc).__name__}: {exc}")
        verdict = Verdict(None, "", "error", error=error)
    row = judgment_row(rt, ep, ctx, verdict, tid, share, error)
    own = transcript.turns if transcript else []
    turns = [turn_row(ep, tid, offset + i, t, ep.judge) for i, t in enumerate(own)]
    return {
        "type": "episode",
        "episode_id": ep.episode_id,
        "row": row,
        "turns": turns,
        "calls": [record_dict(c) for c in ctx.calls],
    }, ctx.prompts


def record_dict(obj: object) -> dict[str, Any]:
    """A flat dataclass as a dict: `dataclasses.asdict` deep-copies, which these records of
    plain values do not need and which costs more than the rest of the journaling."""
    return dict(vars(obj))


def judgment_row(
    rt: Runtime, ep: Episode, ctx: Context, v: Verdict, tid: str, share: float, error: str | None
) -> dict[str, Any]:
    correct = Item.correct_position(ep.order)
    o = ctx.options
    judge_calls = [c for c in ctx.calls if c.speaker == "Judge"]
    verdict_calls = [c for c in judge_calls if c.role == "judge"]
    p_correct = v.probs[correct - 1] if v.probs else None
    labels = [ep.judge, *(rt.debaters[a].model for a in (ep.agent, ep.agent_b) if a)]
    simulated = any(rt.models[m].simulated for m in labels)
    return {
        "run_id": rt.run_id,
        "task": ep.task,
        "group": ep.item.group,
        "item_id": ep.item.item_id,
        "protocol": ep.protocol,
        "judge": ep.judge,
        "agent": ep.agent,
        "agent_b": ep.agent_b,
        "order": ep.order,
        "correct_answer": correct,
        "judge_answer": v.answer if v.status == "ok" else None,
        "is_correct": v.status == "ok" and v.answer == correct,
        "verdict_status": v.status,
        "verdict_rule": v.rule,
        "p_correct": p_correct,
        "assigned": ep.assigned,
        "agent_choice": None,
        "rounds": ep.rounds,
        "turn_style": ep.turn_style,
        "best_of": ep.best_of,
        "best_of_b": ep.best_of_b,
        "transcript_id": tid,
        "judge_input_tokens": sum(c.input_tokens for c in judge_calls),
        "judge_output_tokens": sum(c.output_tokens for c in judge_calls),
        "episode_cost_usd": sum(c.cost_usd for c in ctx.calls) + share,
        "episode_id": ep.episode_id,
        "qa_role": ep.qa_role,
        "simulated": simulated,
        "error": error,
        "judge_raw": v.raw,
        "replicate": ep.replicate,
        "judge_prompt_id": verdict_calls[-1].prompt_id if verdict_calls else None,
        **setting_columns(ep, o),
        # The judge's card can force its format too (constrain: true), whatever the spec says.
        "constrained": bool(o.judge_constrain or rt.models[ep.judge].card.constrain),
    }


def setting_columns(ep: Episode, o: Options) -> dict[str, Any]:
    """The variant and the settings its judged instance ran with, as judgments columns:
    part of every condition key in reports (score/frame.py CONDITION). A setting that did
    not act on the row (a debate setting on a QA row) is null, so it never splits rows;
    word_limit, passage_match and interactive are as the protocol says its rows carry them."""
    proto = registry.get(ep.protocol)
    values = proto.row_settings(o)
    sequential = "first_round_simultaneous" in proto.reads and o.turns == "sequential"
    return {
        "variant": ep.variant or ep.protocol,
        "judge_mode": o.judge_mode,
        "constrained": o.judge_constrain,
        "shots": shots_shown(ep.item, o),
        **{k: values.get(k) for k in SETTINGS_COLUMNS},
        "first_round_simultaneous": o.first_round_simultaneous if sequential else None,
        # The agent's own QA mode: which side the open protocols follow (set on their rows when derived).
        "qa_mode": o.agent_qa_mode if ep.qa_role == "agent" else None,
        "prompt_set": o.prompt_set,
    }


SETTINGS_COLUMNS = ("word_limit", "passage_match", "interactive")


def turn_row(ep: Episode, tid: str, index: int, t: Turn, judge: str | None) -> dict[str, Any]:
    # Debater names (tournament configs) double as labels: "sim/strong+bo4".
    speaker_model = {"Alice": ep.agent, "Consultant": ep.agent, "Bob": ep.agent_b}.get(t.speaker)
    row = record_dict(t)
    row.update(
        transcript_id=tid,
        turn=index,
        task=ep.task,
        item_id=ep.item.item_id,
        protocol=ep.protocol,
        agent=speaker_model if speaker_model else (judge if t.speaker == "Judge" else None),
        judge=judge,
        # A shared transcript's turns belong to no one episode.
        episode_id=ep.episode_id if ep.transcript_key is None else None,
        replicate=ep.replicate,
        variant=ep.variant or ep.protocol,
    )
    return row


def transcript_record(ep: Episode, transcript: Transcript, calls: list[CallRecord]) -> dict[str, Any]:
    judge = ep.judge if any(t.speaker == "Judge" for t in transcript.turns) else None
    return {
        "type": "transcript",
        "transcript_id": transcript.transcript_id,
        "turns": [turn_row(ep, transcript.transcript_id, i, t, judge) for i, t in enumerate(transcript.turns)],
        "calls": [record_dict(c) for c in calls],
    }


TURN_FIELDS = tuple(f.name for f in dataclasses.fields(Turn))


def shared_from_record(record: dict[str, Any]) -> Shared:
    """A journaled debate transcript, as the judges of a resumed run read it."""
    turns = [Turn(**{k: r[k] for k in TURN_FIELDS if k in r}) for r in record.get("turns", [])]
    calls = record.get("calls", [])
    cost = sum(c.get("cost_usd") or 0.0 for c in calls)
    return Shared(Transcript(record["transcript_id"], turns), [], cost)


def item_row(item: Item) -> dict[str, Any]:
    """items.parquet: the item as the run showed it."""
    article = item.article
    return {
        "task": item.task,
        "item_id": item.item_id,
        "group": item.group,
        "question": item.question,
        "answer_0": item.answers[0],
        "answer_1": item.answers[1],
        "correct": item.correct,
        "article_sha256": hashlib.sha256(article.encode("utf-8")).hexdigest() if article else None,
        "article_chars": len(article) if article else None,
        "n_images": len(item.images),
        "meta": json.dumps(item.meta, default=str, ensure_ascii=False, sort_keys=True),
    }
