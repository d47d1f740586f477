"""Expanding a spec into episodes: one episode = one judged instance = one judgments row.

tasks × items × answer orders × protocols × judges (× assigned side for consultancy). A
debate transcript does not depend on the judge, so debate episodes of one (item, order,
debaters, options) share a `transcript_key` and the transcript is generated once. Open
protocols add no episodes of their own: they need the assigned runs and the agent's own QA
answer (QA with the article on extractive tasks), which the plan adds by itself.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from oversight.errors import OversightError
from oversight.task.item import Item

if TYPE_CHECKING:
    from oversight.engine.tournament import Debater as Debater
    from oversight.engine.tournament import plan_tournament as plan_tournament

from oversight.protocol.presets import Variant

RUNNABLE = ("qa", "qa_with_article", "consultancy", "debate")
DERIVED = {"open_consultancy": "consultancy", "open_debate": "debate"}
PROTOCOLS = (*RUNNABLE, *DERIVED)


@dataclass(frozen=True)
class Episode:
    episode_id: str
    protocol: str
    item: Item = field(compare=False)
    order: int
    judge: str
    agent: str | None = None
    agent_b: str | None = None
    assigned: str | None = None  # correct | incorrect: the side the (first) agent argues
    transcript_key: str | None = None  # debates: shared by every judge of the transcript
    qa_role: str | None = None  # "agent": the agent's own QA answer, used by open protocols
    best_of: int | None = None
    best_of_b: int | None = None
    rounds: int | None = None
    turn_style: str | None = None
    replicate: int = 0  # independent repeats of the same episode (fresh samples)
    variant: str = ""  # the protocol as the spec lists it (protocols/NAME.yaml); "" = `protocol`

    @property
    def task(self) -> str:
        return self.item.task


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class PlanSettings:
    protocols: list[str]  # variant names, as the spec lists them
    judges: list[str]
    agent: str | None
    orders: str
    seed: int
    variants: dict[str, Variant]  # every listed variant, and the sources of open ones
    options: dict[str, dict[str, Any]]  # variant name -> its resolved option values
    replicates: int = 1


@dataclass
class Plan:
    episodes: list[Episode]
    notes: list[str]

    def by_protocol(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.episodes:
            out[e.protocol] = out.get(e.protocol, 0) + 1
        return out

    def salted(self, salt: str) -> Plan:
        """The plan with every episode id and transcript key bound to `salt`, the hash of
        the run's resolved identity (engine/identity.py): ids of runs whose settings differ
        never coincide, so one journal can only ever hold one experiment."""
        def bind(ep: Episode) -> Episode:
            key = digest(ep.transcript_key, salt) if ep.transcript_key else None
            return replace(ep, episode_id=digest(ep.episode_id, salt), transcript_key=key)

        return Plan([bind(e) for e in self.episodes], self.notes)

    def judges_per_transcript(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.episodes:
            if e.transcript_key:
                out[e.transcript_key] = out.get(e.transcript_key, 0) + 1
        return out


def orders_for(item: Item, orders: str, seed: int) -> list[int]:
    if orders == "both":
        return [0, 1]
    return [random.Random(f"order:{seed}:{item.task}:{item.item_id}").randrange(2)]


def check_protocols(variants: list[Variant], agent: str | None, where: str) -> None:
    needs_agent = [v.name for v in variants if v.base not in ("qa", "qa_with_article")]
    if needs_agent and agent is None:
        raise OversightError(
            f"{where}: protocols {', '.join(needs_agent)} need an agent (the debater/consultant "
            f"model); add e.g. `agent: sim/strong` to the spec."
        )


def make_plan(items: dict[str, list[Item]], s: PlanSettings) -> Plan:
    """Episodes of every runnable variant (and of the sources of open ones), and the agent's
    own QA wherever an open variant needs it."""
    listed = [s.variants[n] for n in s.protocols]
    runnable = [v for v in s.variants.values() if not v.is_open and (v.name in s.protocols or any(
        o.source == v.name for o in listed if o.is_open))]
    needs_agent_qa = any(v.is_open for v in listed)
    episodes: dict[str, Episode] = {}
    notes: list[str] = []

    def add(ep: Episode) -> None:
        if ep.episode_id in episodes and ep.qa_role == "agent":
            # The agent is also one of the judges: the same QA call serves both purposes.
            episodes[ep.episode_id] = ep
        episodes.setdefault(ep.episode_id, ep)

    for task, task_items in items.items():
        if task_items and task_items[0].group != "extractive":
            for v in runnable:
                if v.base == "qa_with_article":
                    notes.append(f"{v.name} applies to extractive tasks only; not run on '{task}'.")
        for v in runnable:
            if task_items and task_items[0].group not in v.groups and v.base != "qa_with_article":
                notes.append(f"{v.name} runs on {', '.join(v.groups)} tasks only (its preset's groups); "
                             f"not run on '{task}' ({task_items[0].group}).")
    for rep, task_items in ((r, ti) for r in range(s.replicates) for ti in items.values()):
        for item in task_items:
            base = (item.task, item.item_id, rep)
            for order in orders_for(item, s.orders, s.seed):
                assigned_first = "correct" if order == 0 else "incorrect"
                for v in runnable:
                    if item.group not in v.groups:
                        continue
                    o = s.options[v.name]
                    tag = (v.name, digest(o))
                    for judge in s.judges:
                        if v.base == "qa" or (v.base == "qa_with_article" and item.group == "extractive"):
                            add(Episode(digest(*tag, *base, order, judge), v.base, item, order, judge,
                                        replicate=rep, variant=v.name))
                        elif v.base == "consultancy":
                            for assigned in ("correct", "incorrect"):
                                eid = digest(*tag, *base, order, judge, s.agent, assigned)
                                add(Episode(eid, "consultancy", item, order, judge, s.agent, None, assigned,
                                            rounds=o["consultancy_rounds"], replicate=rep, variant=v.name))
                        elif v.base == "debate":
                            key = digest(*tag, "debate", *base, order, s.agent, s.agent,
                                         judge if o["interactive"] else None)
                            add(Episode(digest("debate-judge", key, judge), "debate", item, order, judge,
                                        s.agent, s.agent, assigned_first, key, best_of=o["best_of"],
                                        best_of_b=o["best_of"], rounds=o["rounds"], turn_style=o["turns"],
                                        replicate=rep, variant=v.name))
                if needs_agent_qa and s.agent is not None:
                    # The agent's own QA uses the spec's own settings (agents.qa_mode), never a
                    # variant's: which side an open protocol follows must not move with it.
                    proto = "qa_with_article" if item.group == "extractive" else "qa"
                    add(Episode(digest(proto, "agent-qa", *base, order, s.agent), proto, item, order, s.agent,
                                qa_role="agent", replicate=rep, variant=proto))
    return Plan(list(episodes.values()), notes)


def __getattr__(name: str) -> Any:
    # Debater and plan_tournament live in oversight/engine/tournament.py, which imports this
    # module; re-exporting them lazily keeps `from oversight.engine.plan import Debater`
    # working without an import cycle.
    if name in ("Debater", "plan_tournament"):
        from oversight.engine import tournament

        return getattr(tournament, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
