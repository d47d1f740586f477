"""Expanding a spec into episodes: one episode = one judged instance = one judgments row.

tasks × items × answer orders × protocol variants × replicates; each protocol's `plan`
(oversight/protocol/base.py) turns one of these slots into its episodes (one per judge, per
assigned side, with a transcript key where judges share a transcript). Derived protocols
(the open ones) add no episodes of their own beyond what their `plan` asks for (the agent's
own QA); their source variants are planned for them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from oversight.errors import OversightError
from oversight.protocol import registry
from oversight.protocol.base import Slot
from oversight.protocol.episode import Episode as Episode
from oversight.protocol.episode import digest as digest
from oversight.task.item import Item

if TYPE_CHECKING:
    from oversight.engine.tournament import Debater as Debater
    from oversight.engine.tournament import plan_tournament as plan_tournament

from oversight.protocol.presets import Variant


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
    needs_agent = [v.name for v in variants if registry.get(v.base).needs_agent]
    if needs_agent and agent is None:
        raise OversightError(
            f"{where}: protocols {', '.join(needs_agent)} need an agent (the debater/consultant "
            f"model); add e.g. `agent: sim/strong` to the spec."
        )


def make_plan(items: dict[str, list[Item]], s: PlanSettings) -> Plan:
    """Episodes of every variant the spec lists and of the sources of derived ones."""
    listed = [s.variants[n] for n in s.protocols]
    planned = [v for v in s.variants.values() if v.name in s.protocols or any(
        o.source == v.name for o in listed if o.is_open)]
    protos = {v.name: registry.get(v.base) for v in planned}
    episodes: dict[str, Episode] = {}
    notes: list[str] = []

    def add(ep: Episode) -> None:
        if ep.episode_id in episodes and ep.qa_role == "agent":
            # The agent is also one of the judges: the same QA call serves both purposes.
            episodes[ep.episode_id] = ep
        episodes.setdefault(ep.episode_id, ep)

    for task, task_items in items.items():
        group = task_items[0].group if task_items else None
        for v in planned:
            if group is None:
                continue
            if group not in protos[v.name].groups:
                notes.append(f"{v.name} applies to {' and '.join(protos[v.name].groups)} tasks only; "
                             f"not run on '{task}'.")
            elif group not in v.groups:
                notes.append(f"{v.name} runs on {', '.join(v.groups)} tasks only (its preset's groups); "
                             f"not run on '{task}' ({group}).")
    for rep, task_items in ((r, ti) for r in range(s.replicates) for ti in items.values()):
        for item in task_items:
            for order in orders_for(item, s.orders, s.seed):
                for v in planned:
                    proto = protos[v.name]
                    if item.group not in proto.groups or item.group not in v.groups:
                        continue
                    slot = Slot(item, order, v.name, s.options[v.name], tuple(s.judges), s.agent, rep)
                    for ep in proto.plan(slot):
                        add(ep)
    return Plan(list(episodes.values()), notes)


def __getattr__(name: str) -> Any:
    # Debater and plan_tournament live in oversight/engine/tournament.py, which imports this
    # module; re-exporting them lazily keeps `from oversight.engine.plan import Debater`
    # working without an import cycle.
    if name in ("Debater", "plan_tournament"):
        from oversight.engine import tournament

        return getattr(tournament, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
