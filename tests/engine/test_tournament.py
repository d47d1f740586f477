"""The tournament's design (balanced pairs × tasks, both orders, refusals that name the
numbers), several judges, and tournament debates run and recorded under the tournament's
own settings rather than the spec's `debate:` block."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import oversight
from oversight.dialogue.context import Options
from oversight.dialogue.prompts import Templates
from oversight.engine.execute import Runtime, _options_for
from oversight.engine.prepare import prepare
from oversight.engine.spec import spec_from_any
from oversight.engine.tournament import Debater, TournamentEpisode, plan_tournament
from oversight.errors import OversightError
from oversight.task.item import Item


def items_for(tasks: list[str], n: int) -> dict[str, list[Item]]:
    group = {t: "extractive" if i % 2 else "closed" for i, t in enumerate(tasks)}
    return {
        t: [Item(t, f"{t}-{k}", f"q{k}?", ("yes", "no"), k % 2, group[t]) for k in range(n)]  # type: ignore[arg-type]
        for t in tasks
    }


def players(n: int) -> list[Debater]:
    return [Debater(f"d{i}", f"sim/m{i}", 1 + (i == n - 1) * 3) for i in range(n)]


def cross(episodes: list[Any]) -> list[Any]:
    return [e for e in episodes if e.agent != e.agent_b]


def test_the_papers_design_is_balanced_over_pairs_and_tasks() -> None:
    """5 debaters = 10 pairs on 8 tasks: every pair meets every task equally often."""
    tasks = [f"task{i}" for i in range(8)]
    eps = plan_tournament(items_for(tasks, 64), players(5), ["J"], pairings=480, seed=3)
    games = cross(eps)
    assert len(games) == 480 * 2  # each pairing in both answer orders
    per_cell = Counter((frozenset((e.agent, e.agent_b)), e.task) for e in games)
    assert len(per_cell) == 10 * 8 and set(per_cell.values()) == {6 * 2}
    orders = Counter((frozenset((e.agent, e.agent_b)), e.task, e.item.item_id, e.order) for e in games)
    assert set(orders.values()) == {1} and len(orders) == 960  # both orders of every pairing, once
    # A pair never debates one item twice; here every pairing has an item of its own.
    assert len({(e.task, e.item.item_id) for e in games}) == 480
    # Who speaks first is balanced within each pair (48 games each: 24 and 24).
    first = Counter((frozenset((e.agent, e.agent_b)), e.agent) for e in games if e.order == 0)
    assert set(first.values()) == {24}
    # Each config argues the correct side in exactly half its cross-play debates.
    correct_side = Counter(e.agent if e.order == 0 else e.agent_b for e in games)
    assert set(correct_side.values()) == {4 * 48}


def test_small_tasks_share_items_across_pairs_evenly_but_never_within_a_pair() -> None:
    eps = cross(plan_tournament(items_for(["a", "b"], 5), players(4), ["J"], pairings=36, seed=0))
    # 6 pairs x 3 pairings = 18 item slots per task over 5 items: each item used 3 or 4 times.
    uses = Counter((e.task, e.item.item_id) for e in eps if e.order == 0)
    assert set(uses.values()) <= {3, 4} and len(uses) == 10
    per_pair = Counter((frozenset((e.agent, e.agent_b)), e.task, e.item.item_id) for e in eps if e.order == 0)
    assert set(per_pair.values()) == {1}


def test_self_play_covers_every_item_used_for_every_debater_and_judge() -> None:
    eps = plan_tournament(items_for(["a", "b"], 8), players(3), ["J1", "J2"], pairings=6, seed=0)
    used = {(e.task, e.item.item_id) for e in cross(eps)}
    selfplay = [e for e in eps if e.agent == e.agent_b]
    assert len(selfplay) == len(used) * 3 * 2 * 2  # debaters x orders x judges
    # every transcript is judged by both judges, with the same transcript key
    by_key = Counter(e.transcript_key for e in eps)
    assert set(by_key.values()) == {2}
    assert all(isinstance(e, TournamentEpisode) for e in eps)


def test_unbalanced_pairings_are_refused_with_the_nearest_balanced_values() -> None:
    tasks = [f"task{i}" for i in range(8)]
    with pytest.raises(OversightError) as err:
        plan_tournament(items_for(tasks, 64), players(5), ["J"], pairings=512, where="runs/x.yaml")
    msg = str(err.value)
    assert "runs/x.yaml (tournament.pairings)" in msg and "512" in msg
    assert "480" in msg and "560" in msg and "\n" not in msg
    with pytest.raises(OversightError, match=r"80 \(1 per pair per task\)"):
        plan_tournament(items_for(tasks, 64), players(5), ["J"], pairings=30)


def test_pairings_needing_more_items_than_a_task_has_are_refused() -> None:
    items = items_for(["big", "small"], 12)
    items["small"] = items["small"][:3]
    with pytest.raises(OversightError) as err:
        plan_tournament(items, players(3), ["J"], pairings=24, limit=16)  # 4 per pair per task
    msg = str(err.value)
    assert "needs at least 4 items" in msg and "'small' has 3" in msg and "18 pairings" in msg


def test_one_pairing_per_pair_and_task_by_default_and_too_few_debaters() -> None:
    eps = plan_tournament(items_for(["a", "b", "c"], 4), players(3), ["J"], self_play=False)
    assert len(eps) == 3 * 3 * 2
    with pytest.raises(OversightError, match="at least two debaters"):
        plan_tournament(items_for(["a"], 4), players(1), ["J"])


def spec(**tournament: Any) -> dict[str, Any]:
    t: dict[str, Any] = {"debaters": [{"model": "sim/weak"}, {"model": "sim/strong"},
                                      {"model": "sim/strong", "best_of": 2}], "judge": "sim/medium"}
    t.update(tournament)
    return {"name": "t", "tasks": ["boolq", "prontoqa"], "limit": 4, "judges": [], "protocols": [],
            "tournament": t}


def test_spec_judge_or_judges_exactly_one() -> None:
    prep = prepare(spec_from_any(spec(judge=None, judges=["sim/medium", "sim/strong"])))
    assert {e.judge for e in prep.plan.episodes} == {"sim/medium", "sim/strong"}
    assert "sim/strong" in prep.roles["judge"] and "sim/medium" in prep.roles["judge"]
    for bad in ({"judges": ["sim/strong"]}, {"judge": None}):
        with pytest.raises(OversightError, match="exactly one of the two"):
            prepare(spec_from_any(spec(**bad)), "runs/t.yaml")
    with pytest.raises(OversightError, match="multiple of 6"):
        prepare(spec_from_any(spec(pairings=8)))


def test_tournament_options_ignore_the_spec_debate_block() -> None:
    main = Options(rounds=3, turns="sequential", first_round_simultaneous=False, best_of=4, interactive=True)
    rt = Runtime({}, main, Templates(), {}, {}, {}, "r", on_transcript=lambda *a: None)
    item = items_for(["a"], 1)["a"][0]
    ep = TournamentEpisode("e", "debate", item, 0, "J", "x", "y", "correct", "k", best_of=2, best_of_b=1,
                           rounds=1, turn_style="simultaneous")
    got = _options_for(rt, ep)
    assert (got.rounds, got.turns, got.interactive, got.first_round_simultaneous) == (1, "simultaneous", False, True)
    seq = _options_for(rt, dataclasses.replace(ep, rounds=2, turn_style="sequential"))
    assert (seq.rounds, seq.turns, seq.interactive) == (2, "sequential", False)


def test_tournament_runs_and_records_its_own_settings(tmp_path: Path) -> None:
    """The main debates are sequential, interactive and 2 rounds; the tournament's are not."""
    s = spec(judge=None, judges=["sim/medium", "sim/strong"], pairings=6, rounds=2)
    s.update(agent="sim/strong", judges=["sim/weak"], protocols=["debate"],
             debate={"rounds": 2, "turns": "sequential", "interactive": True})
    r = oversight.run(s, out=tmp_path / "run")
    res = oversight.load(r.run_dir)
    j = res.judgments
    tour = j[j.judge.isin(["sim/medium", "sim/strong"])]
    main = j[j.judge.eq("sim/weak")]
    assert len(tour) and (tour.rounds == 2).all() and (tour.turn_style == "simultaneous").all()
    assert (main.turn_style == "sequential").all()
    calls = res.calls
    tour_calls = calls[calls.transcript_id.isin(tour.transcript_id)]
    # No judge questions in tournament debates, and per transcript 2 rounds x 2 sides of
    # best-of-N turns (N + 1 calls when N > 1) and one verdict per judge.
    assert not tour_calls.role.eq("judge_question").any()
    assert calls[calls.transcript_id.isin(main.transcript_id)].role.eq("judge_question").any()
    n = {"sim/weak": 1, "sim/strong": 1, "sim/strong+bo2": 3}
    for tid, rows in tour.groupby("transcript_id"):
        a, b = rows.agent.iloc[0], rows.agent_b.iloc[0]
        made = tour_calls[tour_calls.transcript_id.eq(tid)]
        assert len(made) == 2 * (n[a] + n[b]) + 2, tid
    seq = oversight.run({**s, "tournament": {**s["tournament"], "turns": "sequential"}}, out=tmp_path / "seq")
    assert (seq.judgments.query("judge != 'sim/weak'").turn_style == "sequential").all()
