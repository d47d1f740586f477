"""The Elo tournament's schedule: cross-play debates between debater configs in a balanced
pairs × tasks design, plus self-play debates for judge accuracy against Elo.

Design. n debaters make P = n(n−1)/2 pairs; with T tasks there are P·T (pair, task) cells.
`pairings` must be a multiple k·P·T, so that every pair plays k pairings on every task: a
pair's rating then never leans on the tasks it happened to meet (pairs and tasks are
crossed, not confounded). A pairing is one item debated in both answer orders, so each of
the two configs argues the correct answer once and the incorrect answer once. Within a
task a pair never debates one item twice (so a task needs at least k items), and the pairs'
items are as distinct as the task allows: P·k different items when it has them, otherwise
every item serves the same number of pairs to within one. Who speaks first (Alice, answer
1, read first by the judge) alternates over each pair's games, which balances position to
within one game per pair.

Every judge reads every cross-play transcript (a debate transcript does not depend on its
judge), and ratings are fitted per judge (oversight/score/elo.py). With `self_play`, every
debater also debates itself on every item the tournament uses, in both orders: judge
accuracy on those debates is what is plotted against Elo.

Settings. Tournament debates use the tournament's own rounds and turn style (the paper's
default: one simultaneous round) and are never interactive, whatever the spec's `debate:`
block says. Each episode carries these settings (`TournamentEpisode`), so the engine runs,
the dry run counts and the judgments record what the tournament planned.

Independent games. A simultaneous opening does not depend on the opponent, so a debater's
opening on one item and side would be one prompt in every game it plays there, and the
response cache would serve the same text to all of them: its games on that item would
share a turn, while the bootstrap of the Elo fit resamples games as if each were drawn
on its own. Every game therefore samples its own turns (`GenerateRequest.draw`, which
enters the cache identity: the players and seats of the game; the item and order are in
the prompt). The cost is one opening per game instead of one per debater, item and side.

Its rows have
`variant: tournament`, so they never mix with the main grid's debates: not in the open
protocols (which select from their source variant's rows), not in the protocol comparisons,
and the Elo fits read tournament rows only.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from oversight.dialogue.context import Options
from oversight.engine.plan import Episode, digest
from oversight.errors import OversightError
from oversight.protocol.debate import Debate
from oversight.task.item import Item

TOURNAMENT = "tournament"  # the `variant` of every tournament row (a reserved protocol name)


@dataclass(frozen=True)
class Debater:
    """One tournament player: a model and its best-of-N."""

    name: str
    model: str  # model label
    best_of: int = 1


@dataclass(frozen=True)
class TournamentEpisode(Episode):
    """A judged tournament debate. Its rounds and turn style are the tournament's."""

    def options(self, base: Options) -> Options:
        """The options its debate runs with: the run's word limit, passage matching and
        judge settings, but the tournament's own debate settings."""
        return dataclasses.replace(
            base,
            rounds=self.rounds or 1,
            turns=self.turn_style or "simultaneous",
            first_round_simultaneous=True,
            interactive=False,
            best_of=self.best_of or 1,
        )


@dataclass(frozen=True)
class Design:
    """The numbers of a balanced tournament."""

    pairs: int
    tasks: int
    per_cell: int  # pairings of each pair on each task

    @property
    def cells(self) -> int:
        return self.pairs * self.tasks

    @property
    def pairings(self) -> int:
        return self.cells * self.per_cell


def balanced_design(n_debaters: int, n_tasks: int, pairings: int | None, where: str) -> Design:
    """The design for `pairings` (None: one pairing per pair per task), or a refusal that
    names the nearest values that balance."""
    if n_debaters < 2:
        raise OversightError(
            f"{where} (tournament.debaters): a tournament needs at least two debaters; got {n_debaters}."
        )
    pairs = n_debaters * (n_debaters - 1) // 2
    cells = pairs * n_tasks
    if pairings is None:
        return Design(pairs, n_tasks, 1)
    if pairings % cells:
        below = pairings // cells * cells
        nearest = [v for v in (below, below + cells) if v > 0]
        raise OversightError(
            f"{where} (tournament.pairings): {pairings} pairings cannot be spread evenly. "
            f"{n_debaters} debaters make {pairs} pairs and {n_tasks} task(s) make {cells} pair × task "
            f"cells; every pair plays the same number of games on every task only when pairings is a "
            f"multiple of {cells}. Nearest values that balance: "
            + " or ".join(f"{v} ({v // cells} per pair per task)" for v in nearest)
            + "."
        )
    return Design(pairs, n_tasks, pairings // cells)


def check_items(design: Design, items: dict[str, list[Item]], limit: int | None, where: str) -> None:
    """Refuse a design in which a pair would debate one item twice."""
    short = {t: len(its) for t, its in items.items() if len(its) < design.per_cell}
    if not short:
        return
    fit = min(len(its) for its in items.values())
    have = ", ".join(f"'{t}' has {n}" for t, n in sorted(short.items()))
    sampled = f" (after sampling `limit: {limit}`)" if limit else ""
    raise OversightError(
        f"{where} (tournament.pairings): {design.pairings} pairings give each of the {design.pairs} pairs "
        f"{design.per_cell} pairings on every task, each on a different item, so every task needs at least "
        f"{design.per_cell} items; task {have}{sampled}. Use at most {fit * design.cells} pairings "
        f"({fit} per pair per task), drop the smaller tasks, or point their task cards at larger files."
    )


def plan_tournament(
    items: dict[str, list[Item]],
    debaters: list[Debater],
    judges: list[str],
    *,
    pairings: int | None = None,
    rounds: int = 1,
    turns: str = "simultaneous",
    self_play: bool = True,
    seed: int = 0,
    limit: int | None = None,
    where: str = "spec",
) -> list[Episode]:
    """Every judge's episodes of a balanced tournament (see the module docstring)."""
    tasks = sorted(items)
    design = balanced_design(len(debaters), len(tasks), pairings, where)
    check_items(design, items, limit, where)
    pairs = [(a, b) for i, a in enumerate(debaters) for b in debaters[i + 1 :]]
    games: list[tuple[Item, Debater, Debater]] = []
    for ti, task in enumerate(tasks):
        pool = random.Random(f"tournament:{seed}:{task}").sample(items[task], len(items[task]))
        for p, (a, b) in enumerate(pairs):
            for g in range(design.per_cell):
                # Consecutive slots of a cyclic pool: distinct within a pair (k ≤ pool), and
                # spread evenly over the pool when the pairs need more items than it holds.
                item = pool[(p * design.per_cell + g) % len(pool)]
                # Alternating seats over the pair's games balances who speaks first.
                swap = (ti * design.per_cell + g + p) % 2 == 1
                games.append((item, b, a) if swap else (item, a, b))
    if self_play:
        used = {(item.task, item.item_id): item for item, _, _ in games}
        games += [(item, d, d) for item in used.values() for d in debaters]
    episodes: list[Episode] = []
    for item, alice, bob in games:
        for order in (0, 1):
            key = digest("tournament", item.task, item.item_id, order, _player(alice), _player(bob), rounds, turns)
            for judge in judges:
                episodes.append(
                    TournamentEpisode(
                        digest("tournament-judge", key, judge), Debate.name, item, order, judge, alice.name,
                        bob.name, "correct" if order == 0 else "incorrect", key, best_of=alice.best_of,
                        best_of_b=bob.best_of, rounds=rounds, turn_style=turns, variant=TOURNAMENT,
                    )
                )
    return episodes


def _player(d: Debater) -> tuple[str, str, int]:
    return (d.name, d.model, d.best_of)

