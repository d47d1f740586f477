"""One human's episode: the agents' turns between the human's questions, and the verdict.

The agents speak through the engine's own pieces: the same Context (item, answer order,
the variant's options and templates, the run's seed and replicate), the protocol's own
turns (its `human_round`, made of the pieces its `run` uses) and the run's models with the response cache and
their limits. So a consultant's opening, which no question has shaped yet, is the very
call the run made (a cache hit), and every later reply answers the human's question.

Interactive (`ask`) episodes follow one schedule, whatever the protocol:
agents' round 1; then, while rounds remain, the human asks one question and the agents
answer it in the next round; after the last round the human gives the verdict. The
human's question is held to the agents' word limit, like an LLM judge's.

A verdict is journaled (the run's journal.jsonl, judge `human/NAME`) the moment it is
submitted. An episode still in progress is kept in `human_drafts.jsonl` after each step,
so a server killed between two questions resumes the episode where it was, without the
human retyping a question or a model being called again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oversight.dialogue.context import Context, Options
from oversight.dialogue.transcript import JUDGE, Transcript, Turn
from oversight.dialogue.words import enforce_word_limit
from oversight.engine.execute import TURN_FIELDS, record_dict, setting_columns, turn_row
from oversight.engine.plan import Episode
from oversight.humanui.run import HumanRun, Unit, human_episode_id
from oversight.model.cache import ResponseCache
from oversight.model.card import ModelCard
from oversight.model.wrapper import Model
from oversight.protocol.base import Env
from oversight.store.journal import Journal, cut_torn_tail
from oversight.store.safe_io import open_append
from oversight.task.item import Item

DRAFTS = "human_drafts.jsonl"
MAX_QUESTION_CHARS = 2000
MAX_NOTE_CHARS = 2000
# A human must not be able to forge what the harness certifies: passage tags they type are
# dropped, so only an agent's checked quote is ever shown as verified.
_PASSAGE_TAG = re.compile(r"</?\s*(?:v_|u_)?passage\s*>", re.IGNORECASE)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


@dataclass
class Live:
    """An episode a human has opened and not yet decided."""

    hid: str  # the human's episode id (judgments.episode_id)
    label: str  # human/NAME
    unit: Unit
    turns: list[Turn] = field(default_factory=list)  # the human's own transcript (interactive)
    calls: list[dict[str, Any]] = field(default_factory=list)
    prompts: dict[str, str] = field(default_factory=dict)
    opened: str = field(default_factory=now)
    # Changes after every step: a form submitted twice (double click, back button) or for
    # an older step is ignored instead of acting twice.
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    def rotate(self) -> None:
        self.nonce = secrets.token_urlsafe(12)

    @property
    def tid(self) -> str:
        ep = self.unit.ep
        if self.unit.mode == "read":
            assert ep.transcript_key is not None
            return ep.transcript_key
        return self.hid


def rounds_of(unit: Unit, opts: Options) -> int:
    return unit.protocol.human_rounds(opts)


def agent_rounds_done(turns: list[Turn]) -> int:
    return max((t.round for t in turns if t.role in ("consultant", "debater")), default=0)


def questions_asked(turns: list[Turn]) -> int:
    return sum(1 for t in turns if t.role == "judge_question")


def next_step(live: Live, opts: Options) -> str:
    """What the episode waits for: `agents` (to speak), `question` (from the human) or
    `verdict`."""
    if not live.unit.interactive:
        return "verdict"
    done, asked = agent_rounds_done(live.turns), questions_asked(live.turns)
    if done == 0:
        return "agents"
    if done >= rounds_of(live.unit, opts):
        return "verdict"
    return "question" if asked < done else "agents"


def assigned_side(unit: Unit) -> int | None:
    """The answer position the consultant argues (it sees it, and so does its judge)."""
    return unit.protocol.assigned_side(unit.ep)


def clean_question(text: str, word_limit: int) -> tuple[str, bool]:
    text = _PASSAGE_TAG.sub("", text[:MAX_QUESTION_CHARS]).strip()
    return enforce_word_limit(text, word_limit)


class ModelPool:
    """The run's models, made on first use inside the server's event loop (their limits are
    asyncio objects) with the run's own cards and the response cache."""

    def __init__(self, cards: dict[str, ModelCard], cache: ResponseCache | None) -> None:
        self.cards = cards
        self.cache = cache
        self._models: dict[str, Model] = {}

    def __getitem__(self, label: str) -> Model:
        if label not in self._models:
            from oversight.model.providers import make_api

            card = self.cards[label]
            card.api_key()  # a missing key is a clear message, not a provider's error
            self._models[label] = Model(card, make_api(card), self.cache)
        return self._models[label]

    async def aclose(self) -> None:
        for m in self._models.values():
            with contextlib.suppress(Exception):
                await m.api.aclose()
        self._models.clear()


class HumanEnv(Env):
    """The agents of a person's episode: the run's models, through the response cache. The
    judge is the person, so there is no judge model and no shared transcript to make."""

    def __init__(self, episodes: Episodes, ep: Episode) -> None:
        self.episodes, self.ep = episodes, ep

    def agent(self, name: str) -> Model:
        return self.episodes.models[self.episodes.run.prep.debaters[name].model]

    async def shared(self, generate: Callable[[Context], Awaitable[Transcript]]) -> tuple[Transcript, float]:
        raise RuntimeError(f"protocol {self.ep.protocol}: an `ask` episode's transcript is the person's own")


class Episodes:
    """The live episodes of every judge, the models they call, and the two files they write."""

    def __init__(self, run: HumanRun, journal: Journal, models: ModelPool) -> None:
        self.run = run
        self.journal = journal
        self.models = models
        self.live: dict[str, Live] = {}
        self.drafts_path = run.run_dir / DRAFTS
        self._drafts = _load_drafts(self.drafts_path, run.done)
        cut_torn_tail(self.drafts_path)
        self._drafts_file = os.fdopen(open_append(self.drafts_path, root=run.run_dir), "a", encoding="utf-8")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._drafts_file.flush()
            os.fsync(self._drafts_file.fileno())
            self._drafts_file.close()

    def context(self, live: Live) -> Context:
        ep = live.unit.ep
        opts = self.run.options(live.unit)
        return Context(ep.item, ep.order, opts, self.run.templates_for(opts), live.hid, live.tid,
                       seed=self.run.prep.spec.seed, replicate=ep.replicate)

    def open(self, label: str, unit: Unit) -> Live:
        hid = human_episode_id(label, unit)
        if hid not in self.live:
            live = Live(hid, label, unit)
            draft = self._drafts.pop(hid, None)
            if draft is not None:
                live.turns = [Turn(**{k: t[k] for k in TURN_FIELDS if k in t}) for t in draft.get("turns") or []]
                live.calls = list(draft.get("calls") or [])
                live.prompts = dict(draft.get("prompts") or {})
                live.opened = str(draft.get("opened") or live.opened)
            self.live[hid] = live
        return self.live[hid]

    def transcript(self, live: Live) -> list[Turn]:
        """What the human reads: the run's debate transcript or their own; chosen turns only."""
        if live.unit.mode == "alone":
            return []
        turns = live.turns if live.unit.interactive else self.run.transcripts.get(live.tid, [])
        return [t for t in turns if t.chosen]

    # --- the agents' turns -------------------------------------------------------------

    async def agents_speak(self, live: Live) -> None:
        """Generate the agents' next round; on a failed call the episode stays as it was."""
        unit, ep = live.unit, live.unit.ep
        ctx = self.context(live)
        r = agent_rounds_done(live.turns) + 1
        try:
            new = await unit.protocol.human_round(HumanEnv(self, ep), ep, ctx, r, list(live.turns))
        finally:
            # Every call made is kept, failed ones too: they were made (and maybe paid for).
            live.calls += [record_dict(c) for c in ctx.calls]
            live.prompts.update(ctx.prompts)
        live.turns += new
        live.rotate()
        self._save_draft(live)

    def ask(self, live: Live, text: str) -> bool:
        """Add the human's question; False if it is empty once cleaned."""
        opts = self.run.options(live.unit)
        question, truncated = clean_question(text, opts.word_limit)
        if not question:
            return False
        r = agent_rounds_done(live.turns) + 1
        live.turns.append(Turn(round=r, speaker=JUDGE, role="judge_question", side=None, visible=question,
                               truncated=truncated))
        live.rotate()
        self._save_draft(live)
        return True

    def _save_draft(self, live: Live) -> None:
        record = {"hid": live.hid, "judge": live.label, "unit": live.unit.key, "opened": live.opened,
                  "turns": [record_dict(t) for t in live.turns], "calls": live.calls, "prompts": live.prompts}
        self._drafts_file.write(json.dumps(record, default=str, separators=(",", ":"), ensure_ascii=False) + "\n")
        self._drafts_file.flush()

    # --- the verdict -------------------------------------------------------------------

    def decide(self, live: Live, answer: int, confidence: float, note: str, view: str) -> dict[str, Any]:
        """Journal the verdict (one write, flushed: durable once this returns)."""
        unit, ep = live.unit, live.unit.ep
        opts = self.run.options(unit)
        correct = Item.correct_position(ep.order)
        p_answer = {answer: confidence, 3 - answer: 1.0 - confidence}
        raw = f"Answer: {answer}\nConfidence: {round(confidence * 100)}%"
        if note:
            raw += f"\nNote: {note}"
        view_id, view_blob = view_prompt(view)
        shown = self.transcript(live)
        # Rounds as an LLM judge's final turn has them (engine/execute.py): after the last
        # round in a debate, 0 elsewhere.
        final = Turn(round=unit.protocol.judge_turn_round(shown),
                     speaker=JUDGE, role="judge", side=answer, visible=raw, prompt_id=view_id)
        hep = dataclasses.replace(ep, judge=live.label, episode_id=live.hid)
        own = [*live.turns, final] if unit.interactive else [final]
        offset = len(self.run.transcripts.get(live.tid, [])) if unit.mode == "read" else 0
        labels = [self.run.prep.debaters[a].model for a in (ep.agent, ep.agent_b) if a]
        row = {
            "run_id": self.run.run_id,
            "task": ep.task,
            "group": ep.item.group,
            "item_id": ep.item.item_id,
            "protocol": ep.protocol,
            "judge": live.label,
            "agent": ep.agent,
            "agent_b": ep.agent_b,
            "order": ep.order,
            "correct_answer": correct,
            "judge_answer": answer,
            "is_correct": answer == correct,
            "verdict_status": "ok",
            "verdict_rule": "constrained",  # a form that offers only answer 1 or answer 2
            "p_correct": p_answer[correct],
            "assigned": ep.assigned,
            "agent_choice": None,
            "rounds": ep.rounds,
            "turn_style": ep.turn_style,
            "best_of": ep.best_of,
            "best_of_b": ep.best_of_b,
            "transcript_id": live.tid,
            # A person reads, but spends no tokens.
            "judge_input_tokens": None,
            "judge_output_tokens": None,
            "episode_cost_usd": sum(c.get("cost_usd") or 0.0 for c in live.calls),
            "episode_id": live.hid,
            "qa_role": None,
            "simulated": any(self.run.cards[m].provider == "sim" for m in labels if m in self.run.cards),
            "error": None,
            "judge_raw": raw,
            "replicate": ep.replicate,
            "judge_prompt_id": view_id,
            # The variant's settings exactly as its LLM judges' rows have them: a human
            # verdict is the same condition with another judge, never a condition of its own.
            **setting_columns(ep, dataclasses.replace(
                opts, fewshot_pool=tuple(self.run.prep.items.get(ep.task, [])))),
        }
        record = {
            "type": "episode",
            "episode_id": live.hid,
            "row": row,
            "turns": [turn_row(hep, live.tid, offset + i, t, live.label) for i, t in enumerate(own)],
            "calls": live.calls,
            # Not a table column: who decided, how sure, what they noted, when.
            "human": {"name": live.label.split("/", 1)[1], "confidence": confidence, "note": note,
                      "opened": live.opened, "submitted": now()},
        }
        self.journal.write(record, {**live.prompts, view_id: view_blob})
        self.run.done.add(live.hid)
        self.live.pop(live.hid, None)
        return record


def view_prompt(view: str) -> tuple[str, str]:
    """What the human was shown, stored like a model's prompt (prompts.parquet), so that
    `Results.judge_prompt(row)` works for a human verdict too."""
    blob = json.dumps([{"role": "human_view", "parts": [{"text": view}]}], ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24], blob


def _load_drafts(path: Path, done: set[str]) -> dict[str, dict[str, Any]]:
    """The latest snapshot of every episode still in progress."""
    out: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return out
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line: the step before it is kept
            if isinstance(rec, dict) and isinstance(rec.get("hid"), str) and rec["hid"] not in done:
                out[rec["hid"]] = rec
    return out
