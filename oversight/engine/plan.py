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

from oversight.errors import OversightError, unknown_name
from oversight.task.item import Item

if TYPE_CHECKING:
    from oversight.engine.tournament import Debater as Debater
    from oversight.engine.tournament import plan_tournament as plan_tournament

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

    @property
    def task(self) -> str:
        return self.item.task


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class PlanSettings:
    protocols: list[str]
    judges: list[str]
    agent: str | None
    orders: str
    seed: int
    debate: dict[str, Any]
    consultancy_rounds: int
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


def check_protocols(protocols: list[str], agent: str | None, where: str) -> None:
    for p in protocols:
        if p not in PROTOCOLS:
            raise unknown_name("protocol", p, PROTOCOLS, where)
    needs_agent = [p for p in protocols if p not in ("qa", "qa_with_article")]
    if needs_agent and agent is None:
        raise OversightError(
            f"{where}: protocols {', '.join(needs_agent)} need an agent (the debater/consultant "
            f"model); add e.g. `agent: sim/strong` to the spec."
        )


def make_plan(items: dict[str, list[Item]], s: PlanSettings) -> Plan:
    wanted = set(s.protocols)
    runnable = {p for p in wanted if p in RUNNABLE} | {DERIVED[p] for p in wanted if p in DERIVED}
    needs_agent_qa = bool(wanted & set(DERIVED))
    episodes: dict[str, Episode] = {}
    notes: list[str] = []
    d = s.debate
    debate_opts = (d["rounds"], d["turns"], d["first_round_simultaneous"], d["best_of"], d["interactive"])

    def add(ep: Episode) -> None:
        if ep.episode_id in episodes and ep.qa_role == "agent":
            # The agent is also one of the judges: the same QA call serves both purposes.
            episodes[ep.episode_id] = ep
        episodes.setdefault(ep.episode_id, ep)

    for task, task_items in items.items():
        if "qa_with_article" in wanted and task_items and task_items[0].group != "extractive":
            notes.append(f"qa_with_article applies to extractive tasks only; not run on '{task}'.")
    for rep, task_items in ((r, ti) for r in range(s.replicates) for ti in items.values()):
        for item in task_items:
            base = (item.task, item.item_id, rep)
            for order in orders_for(item, s.orders, s.seed):
                correct_first = order == 0
                for judge in s.judges:
                    if "qa" in runnable:
                        add(Episode(digest("qa", *base, order, judge), "qa", item, order, judge, replicate=rep))
                    if "qa_with_article" in runnable and item.group == "extractive":
                        eid = digest("qa_with_article", *base, order, judge)
                        add(Episode(eid, "qa_with_article", item, order, judge, replicate=rep))
                    if "consultancy" in runnable:
                        for assigned in ("correct", "incorrect"):
                            eid = digest("consultancy", *base, order, judge, s.agent, assigned, s.consultancy_rounds)
                            add(Episode(eid, "consultancy", item, order, judge, s.agent, None, assigned,
                                        rounds=s.consultancy_rounds, replicate=rep))
                    if "debate" in runnable:
                        key = digest("debate", *base, order, s.agent, s.agent, *debate_opts,
                                     judge if d["interactive"] else None)
                        eid = digest("debate-judge", key, judge)
                        add(Episode(eid, "debate", item, order, judge, s.agent, s.agent,
                                    "correct" if correct_first else "incorrect", key,
                                    best_of=d["best_of"], best_of_b=d["best_of"], rounds=d["rounds"],
                                    turn_style=d["turns"], replicate=rep))
                if needs_agent_qa and s.agent is not None:
                    proto = "qa_with_article" if item.group == "extractive" else "qa"
                    add(Episode(digest(proto, *base, order, s.agent), proto, item, order, s.agent,
                                qa_role="agent", replicate=rep))
    return Plan(list(episodes.values()), notes)


def __getattr__(name: str) -> Any:
    # Debater and plan_tournament live in oversight/engine/tournament.py, which imports this
    # module; re-exporting them lazily keeps `from oversight.engine.plan import Debater`
    # working without an import cycle.
    if name in ("Debater", "plan_tournament"):
        from oversight.engine import tournament

        return getattr(tournament, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
