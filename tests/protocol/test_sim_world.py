"""The sim world reproduces the paper's qualitative orderings.

N_ITEMS synthetic extractive items × both answer orders, sim/strong as the agent, sim/weak
and sim/medium as judges; sim/weak debaters for the debater-strength comparison. Every
model call is deterministic, so these numbers are fixed for a given sim world and prompt
wording; the test prints them (run with -s to see). A sim model's draws are seeded by the
prompt it reads, so rewording a template reshuffles them: N_ITEMS is large enough that the
orderings hold for the world itself, not for one lucky draw (with 40 items, a prompt
rewrite alone flipped the strong-vs-weak debater gap, which is about 0.78 vs 0.68 over
150 items).
"""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from oversight.protocol.consultancy import consultancy
from oversight.protocol.debate import debate, judge_debate
from oversight.protocol.open import derive_open
from oversight.protocol.qa import qa

from .protocol_helpers import extractive_items, make_ctx, sim_model

AGENT, WEAK_DEBATER = "sim/strong", "sim/weak"
JUDGES = ("sim/weak", "sim/medium")
N_ITEMS = 100


def _row(ctx, protocol, judge, verdict, **extra):  # type: ignore[no-untyped-def]
    return {
        "run_id": "r",
        "task": ctx.item.task,
        "group": ctx.item.group,
        "item_id": ctx.item.item_id,
        "protocol": protocol,
        "judge": judge,
        "agent": extra.pop("agent", None),
        "agent_b": extra.pop("agent_b", None),
        "order": ctx.order,
        "correct_answer": ctx.correct_position,
        "judge_answer": verdict.answer,
        "is_correct": verdict.answer == ctx.correct_position,
        "verdict_status": verdict.status,
        "assigned": extra.pop("assigned", None),
        "agent_choice": None,
        "qa_role": extra.pop("qa_role", "judge"),
        **extra,
    }


async def _world_rows() -> pd.DataFrame:
    rows = []
    judges = {name: sim_model(name) for name in JUDGES}
    agent, weak = sim_model(AGENT), sim_model(WEAK_DEBATER)
    for item in extractive_items(N_ITEMS):
        for order in (0, 1):
            ctx = make_ctx(item, order)
            _, v = await qa(ctx, agent, with_article=True)
            rows.append(_row(ctx, "qa_with_article", AGENT, v, qa_role="agent"))
            for debater, label in ((agent, AGENT), (weak, WEAK_DEBATER)):
                dctx = make_ctx(item, order)
                transcript = await debate(dctx, debater, debater)
                assigned = "correct" if dctx.correct_position == 1 else "incorrect"
                for jname, judge in judges.items():
                    v, _ = await judge_debate(dctx, judge, transcript)
                    rows.append(_row(dctx, "debate", jname, v, agent=label, agent_b=label, assigned=assigned))
            for jname, judge in judges.items():
                for with_article in (False, True):
                    _, v = await qa(ctx, judge, with_article=with_article)
                    rows.append(_row(ctx, "qa_with_article" if with_article else "qa", jname, v))
                for side in (1, 2):
                    cctx = make_ctx(item, order)
                    _, v = await consultancy(cctx, agent, judge, assigned_side=side)
                    assigned = "correct" if side == cctx.correct_position else "incorrect"
                    rows.append(_row(cctx, "consultancy", jname, v, agent=AGENT, assigned=assigned))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    rows = asyncio.run(_world_rows())
    opened, counts = derive_open(rows)
    # The weak debaters' self-play has no agent QA to follow: every item x 2 orders.
    assert counts["excluded_missing_agent_qa"] == 2 * N_ITEMS
    return pd.concat([rows, opened], ignore_index=True)


def _acc(df: pd.DataFrame, protocol: str, judge: str | None = None, agent: str | None = None) -> float:
    sel = df[(df.protocol == protocol) & (df.qa_role != "agent")]
    if judge is not None:
        sel = sel[sel.judge == judge]
    if agent is not None:
        sel = sel[sel.agent == agent]
    assert len(sel) > 0
    return float(sel.is_correct.mean())


def test_extractive_orderings(world: pd.DataFrame) -> None:
    for judge in JUDGES:
        with_article = _acc(world, "qa_with_article", judge)
        deb = _acc(world, "debate", judge, AGENT)
        without = _acc(world, "qa", judge)
        cons = _acc(world, "consultancy", judge)
        print(f"{judge}: qa_with_article {with_article:.3f} debate {deb:.3f} qa {without:.3f} consultancy {cons:.3f}")
        assert with_article > deb > without
        assert deb > cons


def test_stronger_debaters_raise_judge_accuracy(world: pd.DataFrame) -> None:
    strong, weak = _acc(world, "debate", agent=AGENT), _acc(world, "debate", agent=WEAK_DEBATER)
    print(f"debate judged by both judges: strong debaters {strong:.3f}, weak debaters {weak:.3f}")
    assert strong > weak


def test_open_debate_catches_wrong_choices_more_often(world: pd.DataFrame) -> None:
    opened = world[world.protocol.isin(["open_consultancy", "open_debate"]) & (world.agent == AGENT)]
    wrong = opened[opened.agent_choice != opened.correct_answer]
    agent_right = float((opened.agent_choice == opened.correct_answer).mean())
    oc = float(wrong[wrong.protocol == "open_consultancy"].is_correct.mean())
    od = float(wrong[wrong.protocol == "open_debate"].is_correct.mean())
    n = int((wrong.protocol == "open_debate").sum())
    print(f"agent chose right {agent_right:.3f}; when wrong (n={n}): open consultancy {oc:.3f}, open debate {od:.3f}")
    assert n >= 4
    assert od > oc
