"""A finished run, opened for human judges: which episodes a person can judge, in what order.

The run is prepared again from its own `spec.yaml` (the same items, variants, settings and
salted episode ids as the run itself), and its identity is checked against the manifest,
exactly as `oversight run --resume` does: a human must judge the questions, answers and
transcripts the LLM judges judged, not what the task files or templates say today.

A **unit** is what one judge judges once: the plan's episodes with the judge left out. Each
protocol says how a person takes part (`human_mode`, oversight/protocol/base.py):
- `alone`: the question and the two answers (QA). The agent's own QA is left out (not a
  judge's verdict), and so is any protocol that says None (QA with the article: a human
  must never see the article);
- `read`: the run's journaled shared transcript, read as it is, shared with every LLM
  judge (debate);
- `ask`: the human asks the questions, so the agents generate each reply again through
  the run's models (consultancy, interactive debate).
Tournament debates are left out (they have a judge of their own).
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oversight.dialogue.context import Options
from oversight.dialogue.prompts import Templates
from oversight.dialogue.transcript import Turn
from oversight.engine.execute import TURN_FIELDS
from oversight.engine.identity import describe_differences, differences, identity_hash, run_identity
from oversight.engine.plan import Episode, digest
from oversight.engine.prepare import Prepared, prepare
from oversight.engine.rundir import MANIFEST, read_manifest
from oversight.engine.spec import load_spec
from oversight.errors import OversightError
from oversight.model.card import ModelCard
from oversight.protocol import registry
from oversight.protocol.base import Protocol
from oversight.store.collect import collect

HUMAN_PREFIX = "human/"
VIEWS = ("one", "all")  # views of an item per person: one (balanced over people), or all


@dataclass(frozen=True)
class Unit:
    key: str  # stable across restarts: the human's episode id is derived from it
    ep: Episode  # one of the plan's episodes for it (an LLM judge's); its judge is not used
    mode: str  # alone | read | ask (oversight/protocol/base.py)

    @property
    def kind(self) -> str:
        """The protocol's name."""
        return self.ep.protocol

    @property
    def interactive(self) -> bool:
        """The human asks questions between the agents' rounds."""
        return self.mode == "ask"

    @property
    def protocol(self) -> Protocol:
        return registry.get(self.ep.protocol)

    @property
    def variant(self) -> str:
        return self.ep.variant or self.ep.protocol


def human_label(name: str) -> str:
    return f"{HUMAN_PREFIX}{name}"


def human_episode_id(label: str, unit: Unit) -> str:
    return digest("human", label, unit.key)


@dataclass
class HumanRun:
    """Everything the server needs from the run directory, loaded once at start-up."""

    run_dir: Path
    prep: Prepared
    manifest: dict[str, Any]
    run_id: str
    units: list[Unit]
    transcripts: dict[str, list[Turn]]  # journaled debate transcripts by transcript key
    missing_transcripts: int  # debate units left out: their transcript is not journaled yet
    done: set[str]  # human episode ids already journaled
    known_prompts: set[str]
    cards: dict[str, ModelCard]
    templates: dict[str | None, Templates] = field(default_factory=dict)
    people: list[str] = field(default_factory=list)  # human judges in the order they came
    started: set[str] = field(default_factory=set)  # human episode ids half done (drafts)

    def options(self, unit: Unit) -> Options:
        return self.prep.variant_options.get(unit.variant, self.prep.options)

    def templates_for(self, opts: Options) -> Templates:
        if opts.prompt_set not in self.templates:
            self.templates[opts.prompt_set] = Templates(opts.prompt_set)
        return self.templates[opts.prompt_set]

    def person(self, label: str) -> int:
        """The judge's place in the order people came (journal first, then arrivals)."""
        if label not in self.people:
            self.people.append(label)
        return self.people.index(label)

    def queue(self, label: str, *, variants: list[str] | None = None, limit: int | None = None,
              views: str = "one") -> list[Unit]:
        """The judge's episodes in their own seeded order: the same name always gets the
        same order (so a judge who comes back continues it), two names differ.

        `views="one"` (default): one view per item. A person remembers what they read, so
        a second view of an item (the other order, the other consultancy side, another
        protocol) would be contaminated by the first. Which view a person gets rotates over
        the people in the order they came: an item's views (variant × order × side, in a
        fixed order) go to person k at offset k plus the item's seeded rank, so the first
        m people of an item with m views cover every one of them, and each person's views
        are spread evenly over protocols and orders. An item the person has already judged
        keeps the view they judged. `views="all"`: every view of every item (the old
        behaviour; later views are contaminated)."""
        if views not in VIEWS:
            raise ValueError(f"views must be one of {VIEWS}, got {views!r}")
        units = [u for u in self.units if variants is None or u.variant in variants]
        if views == "one":
            units = self._one_view_each(label, units)
        random.Random(f"humanui:{self.prep.spec.seed}:{label}").shuffle(units)
        return units[:limit] if limit is not None else units

    def _one_view_each(self, label: str, units: list[Unit]) -> list[Unit]:
        by_item: dict[tuple[str, str, int], list[Unit]] = {}
        for u in units:
            by_item.setdefault((u.ep.task, u.ep.item.item_id, u.ep.replicate), []).append(u)
        items = sorted(by_item)
        random.Random(f"humanui-views:{self.prep.spec.seed}").shuffle(items)
        k = self.person(label)
        chosen = []
        for rank, item in enumerate(items):
            views = interleaved(by_item[item])
            judged = [u for u in views if human_episode_id(label, u) in self.done | self.started]
            chosen += judged or [views[(k + rank) % len(views)]]
        return chosen


def _started(run_dir: Path, done: set[str]) -> set[str]:
    """Human episodes in progress (human_drafts.jsonl): each keeps its view after a restart."""
    from oversight.humanui.episode import DRAFTS, _load_drafts

    return set(_load_drafts(run_dir / DRAFTS, done))


def interleaved(units: list[Unit]) -> list[Unit]:
    """An item's views in a fixed order that takes the protocols in turn (and, within one,
    alternates the answer order), so consecutive offsets give a person different protocols."""
    by_variant: dict[str, list[Unit]] = {}
    for u in sorted(units, key=lambda u: (u.variant, u.ep.assigned or "", u.ep.order, u.key)):
        by_variant.setdefault(u.variant, []).append(u)
    queues = list(by_variant.values())
    out: list[Unit] = []
    while any(queues):
        out += [q.pop(0) for q in queues if q]
    return out


def load_run(run_dir: Path) -> HumanRun:
    """Prepare the run from its spec, check it is the same experiment, and list its units."""
    spec_path = run_dir / "spec.yaml"
    if not (run_dir / MANIFEST).exists() or not spec_path.exists():
        raise OversightError(
            f"{run_dir} is not a run directory (no {MANIFEST} or spec.yaml). Point judge-ui at a directory "
            f"written by `oversight run`, e.g. runs/NAME/<run_id>/."
        )
    manifest = read_manifest(run_dir)
    if manifest.get("status") == "running":
        # The caller holds the run's lock, so no `oversight run` is writing it: one was killed
        # (kill -9, a crash, a lost machine) before it could seal. Sealing or judging now
        # would present its half-written tables as a run.
        raise OversightError(
            f"{run_dir / MANIFEST} says the run is still running, but no process holds it: `oversight run` was "
            f"killed before it finished. Finish it first with `oversight run {spec_path} --resume --out {run_dir}` "
            f"(nothing journaled is lost), then judge or seal it."
        )
    spec = load_spec(spec_path)
    # Keys are checked when a model is first called: judging QA or a stored debate needs none.
    prep = prepare(spec, str(spec_path), check_keys=False)
    identity = run_identity(prep, Templates())
    if "identity" not in manifest:
        raise OversightError(
            f"{run_dir / MANIFEST} records no run identity (an older oversight wrote it), so it cannot be "
            f"checked that the items and prompts are still the run's own; judge a run made by this version."
        )
    # A setting that is null on both sides (a card field added since, with a null default)
    # changes nothing a judge sees.
    diffs = [d for d in differences(manifest["identity"], identity) if not (d[1] is None and d[2] is None)]
    if diffs:
        raise OversightError(
            f"The run in {run_dir} no longer resolves to the same experiment (its task files, templates or "
            f"model cards changed since it ran), so a human would judge other questions or prompts than its "
            f"LLM judges did. What differs (run → now): {describe_differences(diffs)}. Restore them, or run "
            f"the spec again and judge the new run."
        )
    # The run's own salt, as it ran (not today's identity, which may differ by null fields):
    # the episode ids and transcript keys in its journal were made with it.
    salt = str(manifest.get("identity_sha256") or identity_hash(manifest["identity"]))
    prep.plan = prep.plan.salted(salt)
    collected = collect(run_dir)
    transcripts = {
        tid: [Turn(**{k: r[k] for k in TURN_FIELDS if k in r}) for r in rec.get("turns") or []]
        for tid, rec in collected.transcripts.items()
    }
    units, missing = _units(prep, transcripts, salt)
    humans = [r for r in collected.judgments if str(r.get("judge") or "").startswith(HUMAN_PREFIX)]
    done = {str(r["episode_id"]) for r in humans}
    cards = dict(prep.cards)
    for label, data in (manifest.get("models") or {}).items():
        # The run's own cards (limits, prices) as it ran, where the manifest has them.
        # An older manifest's card that no longer validates: the spec's resolved card serves.
        with contextlib.suppress(ValueError):
            cards[label] = ModelCard.model_validate(data)
    return HumanRun(run_dir, prep, manifest, str(manifest.get("run_id") or run_dir.name), units, transcripts,
                    missing, done, set(collected.prompt_ids), cards,
                    people=list(dict.fromkeys(str(r["judge"]) for r in humans)), started=_started(run_dir, done))


def _units(prep: Prepared, transcripts: dict[str, list[Turn]], salt: str) -> tuple[list[Unit], int]:
    from oversight.engine.tournament import TournamentEpisode

    units: dict[str, Unit] = {}
    missing: set[str] = set()
    for ep in prep.plan.episodes:
        if isinstance(ep, TournamentEpisode) or ep.qa_role is not None:
            continue
        opts = prep.variant_options.get(ep.variant or ep.protocol, prep.options)
        mode = registry.get(ep.protocol).human_mode(ep, opts)
        if mode is None:
            continue
        shared = ep.transcript_key if mode == "read" else None
        if shared is not None and shared not in transcripts:
            missing.add(shared)
            continue
        # Salted like the plan's ids: units of two different experiments never share a key.
        key = digest(salt, ep.variant, ep.task, ep.item.item_id, ep.order, ep.replicate, ep.assigned, shared)
        units.setdefault(key, Unit(key, ep, mode))
    return sorted(units.values(), key=lambda u: u.key), len(missing)
