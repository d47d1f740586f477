"""Everything checked before the first model call: the spec, the model cards and their API
keys, the task files, image capability. Problems surface here as one-paragraph errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from oversight.engine.plan import Debater, Plan, PlanSettings, check_protocols, make_plan, plan_tournament
from oversight.engine.spec import RunSpec
from oversight.errors import OversightError
from oversight.model.card import ModelCard, resolve_model
from oversight.model.providers import provider_class
from oversight.protocol.context import Options
from oversight.task.card import load_card, load_task, sample
from oversight.task.item import Item


@dataclass
class Prepared:
    spec: RunSpec
    cards: dict[str, ModelCard]  # by label
    roles: dict[str, list[str]]  # role -> labels ("judge", "agent")
    debaters: dict[str, Debater]  # agent name in episodes -> model label and best-of-N
    items: dict[str, list[Item]]
    skipped: dict[str, dict[str, int]]
    plan: Plan
    options: Options
    task_cards: dict[str, dict[str, Any]] = field(default_factory=dict)


def options_from(spec: RunSpec) -> Options:
    return Options(
        rounds=spec.debate.rounds,
        turns=spec.debate.turns,
        first_round_simultaneous=spec.debate.first_round_simultaneous,
        best_of=spec.debate.best_of,
        interactive=spec.debate.interactive,
        consultancy_rounds=spec.consultancy.rounds,
        word_limit=spec.agents.word_limit,
        passage_match=spec.agents.passage_match,
        judge_mode=spec.judge.mode,
        shots=spec.judge.shots,
    )


def _card(ref: str | dict[str, Any], where: str, cards: dict[str, ModelCard]) -> str:
    card = resolve_model(ref, where)
    provider_class(card.provider)  # fails early if the provider's SDK is missing
    if card.label in cards and cards[card.label] != card:
        raise OversightError(f"{where}: two different models are both named '{card.label}'.")
    cards[card.label] = card
    return card.label


def prepare(spec: RunSpec, source: str = "spec", check_keys: bool = True) -> Prepared:
    if not spec.judges and spec.tournament is None:
        raise OversightError(f"{source}: 'judges' is empty; name at least one judge model (e.g. sim/weak).")
    cards: dict[str, ModelCard] = {}
    judges = [_card(j, f"{source} (judges)", cards) for j in spec.judges]
    agent = _card(spec.agent, f"{source} (agent)", cards) if spec.agent is not None else None
    check_protocols(spec.protocols, agent, source)

    items: dict[str, list[Item]] = {}
    skipped: dict[str, dict[str, int]] = {}
    task_cards: dict[str, dict[str, Any]] = {}
    for task in spec.tasks:
        tcard = load_card(task)
        result = load_task(tcard, seed=spec.seed)
        if not result.items:
            raise OversightError(
                f"Task '{tcard.name}' ({tcard.data_path()}) yielded no usable items"
                + (f"; skipped: {result.skipped}." if result.skipped else ".")
            )
        items[tcard.name] = sample(result.items, spec.limit, spec.seed)
        skipped[tcard.name] = result.skipped
        task_cards[tcard.name] = tcard.model_dump(mode="json")

    roles = {"judge": judges, "agent": [agent] if agent else []}
    debaters: dict[str, Debater] = {}
    if agent:
        debaters[agent] = Debater(agent, agent, spec.debate.best_of)
    tournament = []
    if spec.tournament is not None:
        t = spec.tournament
        key = "judge" if t.judge is not None else "judges"
        t_judges = [_card(j, f"{source} (tournament.{key})", cards) for j in t.judge_refs(source)]
        roles["judge"] = sorted({*judges, *t_judges})
        players: list[Debater] = []
        for i, d in enumerate(t.debaters):
            label = _card(d.model, f"{source} (tournament.debaters[{i}])", cards)
            name = d.name or (label if d.best_of == 1 else f"{label}+bo{d.best_of}")
            if any(p.name == name for p in players):
                raise OversightError(f"{source}: two tournament debaters are both named '{name}'; give them names.")
            players.append(Debater(name, label, d.best_of))
            roles["agent"].append(label)
        debaters.update({p.name: p for p in players})
        tournament = plan_tournament(
            items, players, t_judges, pairings=t.pairings, rounds=t.rounds, turns=t.turns,
            self_play=t.self_play, seed=spec.seed, limit=spec.limit, where=source,
        )
    if check_keys:
        for card in cards.values():
            card.api_key()  # a missing key is an error before any call is made
    _check_images(items, cards, roles, source)
    settings = PlanSettings(
        protocols=list(spec.protocols),
        judges=judges,
        agent=agent,
        orders=spec.orders,
        seed=spec.seed,
        debate=spec.debate.model_dump(),
        consultancy_rounds=spec.consultancy.rounds,
    )
    plan = make_plan(items, settings) if spec.judges else Plan([], [])
    plan.episodes.extend(tournament)
    return Prepared(spec, cards, roles, debaters, items, skipped, plan, options_from(spec), task_cards)

def _check_images(
    items: dict[str, list[Item]], cards: dict[str, ModelCard], roles: dict[str, list[str]], source: str
) -> None:
    multimodal = [t for t, its in items.items() if any(i.images for i in its)]
    if not multimodal:
        return
    for label in {*roles["judge"], *roles["agent"]}:
        card = cards[label]
        api = provider_class(card.provider)
        can = api.default_capabilities.images if card.images is None else card.images
        if not can:
            raise OversightError(
                f"{source}: task(s) {', '.join(multimodal)} have images, but model '{label}' cannot "
                f"read images (its card sets images: false). Use a multimodal model or drop the task."
            )

