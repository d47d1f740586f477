"""Everything checked before the first model call: the spec, the model cards and their API
keys, the task files, image capability. Problems surface here as one-paragraph errors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oversight import catalogue
from oversight.dialogue.context import Options
from oversight.dialogue.prompts import Templates
from oversight.engine.plan import Debater, Plan, PlanSettings, check_protocols, make_plan, plan_tournament
from oversight.engine.spec import RunSpec
from oversight.errors import OversightError, excerpt
from oversight.model.card import ModelCard, resolve_model
from oversight.model.providers import provider_class
from oversight.protocol import registry
from oversight.protocol.presets import Variant, resolve_variant
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
    task_paths: dict[str, Path] = field(default_factory=dict)  # each task's data file
    variants: dict[str, Variant] = field(default_factory=dict)
    variant_options: dict[str, Options] = field(default_factory=dict)  # the settings each variant runs with


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
        agent_qa_mode=spec.agents.qa_mode,
        judge_mode=spec.judge.mode,
        shots=spec.judge.shots,
        judge_constrain=spec.judge.constrain,
    )


def resolve_variants(names: list[str], source: str) -> dict[str, Variant]:
    """The listed variants, and the assigned variants open ones select from."""
    out: dict[str, Variant] = {}
    for name in names:
        if name == "tournament":
            raise OversightError(
                f"{source}: protocols: 'tournament' is the variant name of the Elo tournament's rows; list "
                f"the tournament under `tournament:` and give a protocol preset another name."
            )
        v = resolve_variant(name, source)
        prompt_set = v.overrides.get("prompt_set")
        if prompt_set is not None and not Templates.set_exists(prompt_set):
            raise OversightError(
                f"protocols/{name}.yaml: prompt_set '{prompt_set}' has no folder protocols/templates/{prompt_set}/; "
                f"create it with the templates to reword (the others come from the default set)."
            )
        out[name] = v
        if v.source is not None and v.source not in out:
            src = resolve_variant(v.source, f"{source} (the source of {name})")
            wanted = registry.get(v.base).derived_from
            if src.base != wanted:
                raise OversightError(
                    f"{source}: {name} is {v.base}, derived from {wanted}, but derives from '{v.source}', "
                    f"a {src.base} variant; name a {wanted} variant in its derived_from."
                )
            out[v.source] = src
    return out


def variant_options_for(base: Options, variant: Variant) -> Options:
    """The spec's settings with the variant's own options on top."""
    return dataclasses.replace(base, **variant.overrides) if variant.overrides else base


def _card(ref: str | dict[str, Any], where: str, cards: dict[str, ModelCard]) -> str:
    card = resolve_model(ref, where)
    api = provider_class(card.provider)  # fails early if the provider's SDK is missing
    path = catalogue.find("judges", ref) if isinstance(ref, str) else None
    api.check_card(card, str(path) if path is not None else f"{where}, model '{card.label}'")
    if card.label in cards and cards[card.label] != card:
        raise OversightError(f"{where}: two different models are both named '{card.label}'.")
    cards[card.label] = card
    return card.label


def prepare(spec: RunSpec, source: str = "spec", check_keys: bool = True) -> Prepared:
    _check_lists(spec, source)
    cards: dict[str, ModelCard] = {}
    judges = [_card(j, f"{source} (judges)", cards) for j in spec.judges]
    _check_repeated_judges(judges, source)
    agent = _card(spec.agent, f"{source} (agent)", cards) if spec.agent is not None else None
    variants = resolve_variants(spec.protocols, source)
    check_protocols([variants[n] for n in spec.protocols], agent, source)

    items: dict[str, list[Item]] = {}
    skipped: dict[str, dict[str, int]] = {}
    task_cards: dict[str, dict[str, Any]] = {}
    task_paths: dict[str, Path] = {}
    for task in spec.tasks:
        tcard = load_card(task, f"{source} (tasks)")
        if tcard.name in items:
            raise OversightError(f"{source}: tasks: '{task}' is task '{tcard.name}' again; list each task once.")
        result = load_task(tcard, seed=spec.seed)
        if not result.items:
            raise OversightError(
                f"Task '{tcard.name}' ({tcard.data_path()}) yielded no usable items"
                + (f"; skipped: {result.skipped}." if result.skipped else ".")
            )
        items[tcard.name] = sample(result.items, spec.limit, spec.seed)
        skipped[tcard.name] = result.skipped
        task_cards[tcard.name] = tcard.model_dump(mode="json")
        task_paths[tcard.name] = tcard.data_path()

    prep = _assemble(spec, source, check_keys, cards, judges, agent, variants, items, skipped, task_cards, task_paths)
    from oversight.engine.context import fit_context  # rehearses the plan: engine/estimate.py imports this module

    fitted = fit_context(prep, source)
    if fitted is None:
        return prep
    return _assemble(spec, source, False, cards, judges, agent, variants, fitted, skipped, task_cards, task_paths)


def _assemble(
    spec: RunSpec, source: str, check_keys: bool, cards: dict[str, ModelCard], judges: list[str], agent: str | None,
    variants: dict[str, Variant], items: dict[str, list[Item]], skipped: dict[str, dict[str, int]],
    task_cards: dict[str, dict[str, Any]], task_paths: dict[str, Path],
) -> Prepared:
    """The plan over these items, with the checks that need the roles."""
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
        _check_keys(cards, source)
    _check_images(items, cards, roles, source)
    _check_constrain(spec, cards, roles["judge"], source)
    _check_articles(items, spec, variants, source)
    base = options_from(spec)
    variant_options = {name: variant_options_for(base, v) for name, v in variants.items()}
    for name, v in variants.items():
        problem = registry.get(v.base).check(variant_options[name])
        if problem:
            raise OversightError(f"{source}: protocol {name} cannot run with these settings: {problem}.")
    settings = PlanSettings(
        protocols=list(spec.protocols),
        judges=judges,
        agent=agent,
        orders=spec.orders,
        seed=spec.seed,
        variants=variants,
        options={name: vars(opts) for name, opts in variant_options.items()},
        replicates=spec.replicates,
    )
    plan = make_plan(items, settings) if spec.judges else Plan([], [])
    plan.episodes.extend(tournament)
    return Prepared(spec, cards, roles, debaters, items, skipped, plan, base, task_cards, task_paths, variants,
                    variant_options)

def _check_keys(cards: dict[str, ModelCard], source: str) -> None:
    """A missing key is an error before any call is made; every missing one is named at
    once, so that one `validate` tells the user all the variables to export."""
    needed = {label: card.missing_key() for label, card in cards.items()}
    missing = {label: env for label, env in needed.items() if env}
    if len(missing) == 1:
        cards[next(iter(missing))].api_key()  # the single-model message, with its own hints
    if missing:
        listing = "; ".join(f"'{label}' needs {env}" for label, env in missing.items())
        raise OversightError(
            f"{source}: {len(missing)} models need API keys that are not set in the environment: {listing}. "
            f"Export them (e.g. `export NAME=...`) or point each card's api_key_env at the variable that "
            f"holds its key; local servers need none (give the card a base_url, or a provider such as vllm)."
        )
    for card in cards.values():
        card.api_key()  # reads each key once, which registers it for scrubbing from any error text


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


def _check_constrain(spec: RunSpec, cards: dict[str, ModelCard], judges: list[str], source: str) -> None:
    """`judge.constrain` (or a card's `constrain: true`) with a provider that cannot force a
    format is refused before any call: a silent fallback would mix constrained and free
    verdicts under one label."""
    for label in judges:
        card = cards[label]
        if not (spec.judge.constrain or card.constrain):
            continue
        if not provider_class(card.provider).default_capabilities.constrain:
            where = "the spec's judge.constrain" if spec.judge.constrain else "its card's constrain: true"
            raise OversightError(
                f"{source}: judge '{label}' (provider {card.provider}) cannot constrain its answer, but "
                f"{where} asks for it. Constrained verdicts work with llama_cpp, vllm, sglang, ollama, openai "
                f"(structured outputs), google (response schema) and sim judges; drop judge.constrain or "
                f"use one of those."
            )


def _check_lists(spec: RunSpec, source: str) -> None:
    """An empty or half-filled list would make a run that does nothing and reports success."""
    if spec.tournament is None:
        if not spec.protocols:
            raise OversightError(
                f"{source}: 'protocols' is empty, so the run would have nothing to do; list at least one "
                f"({', '.join(registry.names())}) or add a tournament."
            )
        if not spec.judges:
            raise OversightError(f"{source}: 'judges' is empty; name at least one judge model (e.g. sim/weak).")
    elif spec.protocols and not spec.judges:
        raise OversightError(
            f"{source}: 'protocols' lists {', '.join(spec.protocols)} but 'judges' is empty, so they would "
            f"never run (the tournament has its own judge); name their judges or set protocols: []."
        )
    elif spec.judges and not spec.protocols:
        raise OversightError(
            f"{source}: 'judges' are listed but 'protocols' is empty, so they would judge nothing (the "
            f"tournament has its own judge); list the protocols they should judge or set judges: []."
        )


def _check_repeated_judges(judges: list[str], source: str) -> None:
    repeated = sorted({j for j in judges if judges.count(j) > 1})
    if repeated:
        raise OversightError(
            f"{source}: judges: {', '.join(repeated)} listed more than once (each judge judges every "
            f"episode once); list each judge once, or give a copy its own card name to run it twice."
        )


def _check_articles(items: dict[str, list[Item]], spec: RunSpec, variants: dict[str, Variant], source: str) -> None:
    """An extractive item without an article would run every protocol as plain QA, silently."""
    # Whose participants read an extractive task's article (protocol/base.py `reads_article`).
    readers = [p for p in spec.protocols if registry.get(variants[p].base).reads_article]
    readers += ["tournament"] if spec.tournament else []
    if not readers:
        return
    for task, task_items in items.items():
        bare = [i.item_id for i in task_items if i.group == "extractive" and not (i.article or "").strip()]
        if bare:
            raise OversightError(
                f"{source}: task '{task}' is extractive, but {len(bare)} of its {len(task_items)} items have no "
                f"article (e.g. item {excerpt(bare[0])}), which {', '.join(readers)} need. Map the article in the task "
                f"card (fields.article), or make the task closed (group: closed)."
            )
