"""Open consultancy and open debate, derived from stored rows with no new generation.

The agent picks its own side: its QA answer (QA with the article for extractive tasks, QA
without it for the others) decides which assigned run counts.
- open consultancy: the consultancy row (same task, item, order, judge and consultant)
  whose assigned answer equals the agent's choice;
- open debate: the self-play debate row (agent == agent_b) for that order, with the
  protagonist being the debater whose side equals the agent's choice (Alice if the agent
  chose answer 1, Bob if answer 2); the antagonist holds the other side.

The agent's own QA rows are those with `qa_role == "agent"`, the right QA protocol for the
item's group, and `judge` equal to the agent's label. An (item, order) whose agent QA
verdict is not `ok` has no choice to follow; it is excluded and counted, as is one with no
agent QA row at all.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from oversight.dialogue.context import Options
from oversight.protocol.base import Protocol, Slot
from oversight.protocol.consultancy import Consultancy
from oversight.protocol.debate import Debate
from oversight.protocol.episode import Episode, digest
from oversight.protocol.qa import QA, QAWithArticle, own_qa_protocol

OPEN_CONSULTANCY, OPEN_DEBATE = "open_consultancy", "open_debate"

REQUIRED = (
    "task", "group", "item_id", "protocol", "judge", "agent", "agent_b", "order",
    "correct_answer", "judge_answer", "verdict_status", "assigned", "qa_role",
)  # fmt: skip


def _key(df: pd.DataFrame) -> list[str]:
    extra = [c for c in ("run_id", "replicate") if c in df.columns]
    return [*extra, "task", "item_id", "order"]


def _agent_choices(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    qa_protocol = np.where(df["group"] == "extractive", QAWithArticle.name, QA.name)
    own = df[(df["qa_role"] == "agent") & (df["protocol"] == qa_protocol)]
    mode = own["judge_mode"] if "judge_mode" in own.columns else pd.Series(None, index=own.index, dtype=object)
    choices = own[[*key, "judge", "judge_answer", "verdict_status"]].assign(_qa_mode=mode).rename(
        columns={"judge": "agent", "judge_answer": "_choice", "verdict_status": "_qa_status"}
    )
    return choices.drop_duplicates([*key, "agent"], keep="first")


def derive_open(judgments: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """(open_consultancy and open_debate rows, counts).

    The rows keep every input column; `protocol` is renamed, `agent_choice` is the agent's
    QA answer (1 or 2), and for open debate `assigned` is the protagonist's side
    (`correct` or `incorrect`). Counts: rows produced per open protocol, and the
    (agent, item, order) instances excluded for a missing or not-ok agent QA verdict.
    """
    missing = [c for c in REQUIRED if c not in judgments.columns]
    if missing:
        raise ValueError(f"derive_open needs the judgments columns {missing}")
    key = _key(judgments)
    df = judgments.reset_index(drop=True).assign(_pos=lambda d: np.arange(len(d)))
    is_consultancy = df["protocol"] == Consultancy.name
    is_selfplay = (df["protocol"] == Debate.name) & df["agent"].notna() & (df["agent"] == df["agent_b"])
    sources = df[is_consultancy | is_selfplay]
    merged = sources.merge(_agent_choices(df, key), on=[*key, "agent"], how="left", validate="many_to_one")

    no_qa = merged["_qa_status"].isna()
    not_ok = ~no_qa & ((merged["_qa_status"] != "ok") | merged["_choice"].isna())
    instance = [*key, "agent"]
    counts = {
        "excluded_missing_agent_qa": int(len(merged[no_qa].drop_duplicates(instance))),
        "excluded_agent_qa_not_ok": int(len(merged[not_ok].drop_duplicates(instance))),
    }
    usable = merged[~no_qa & ~not_ok].copy()
    usable["agent_choice"] = usable["_choice"].astype(int)
    correct = usable["correct_answer"].astype(int)

    consult = usable[usable["protocol"] == Consultancy.name]
    consult_side = np.where(consult["assigned"] == "correct", correct[consult.index], 3 - correct[consult.index])
    consult = consult[consult_side == consult["agent_choice"]].assign(protocol=OPEN_CONSULTANCY)

    debate = usable[usable["protocol"] == Debate.name]
    protagonist_right = debate["agent_choice"] == correct[debate.index]
    debate = debate.assign(protocol=OPEN_DEBATE, assigned=np.where(protagonist_right, "correct", "incorrect"))

    out = pd.concat([consult, debate]).sort_values("_pos", kind="stable")
    # Which mode the agent's own QA ran in decides the sides followed: part of the condition.
    if "qa_mode" in judgments.columns:
        out["qa_mode"] = out["_qa_mode"]
    out = out.drop(columns=["_pos", "_choice", "_qa_status", "_qa_mode"]).reset_index(drop=True)
    out["agent_choice"] = out["agent_choice"].astype("Int64")
    for name in (OPEN_CONSULTANCY, OPEN_DEBATE):
        counts[name] = int((out["protocol"] == name).sum())
    return out, counts


class OpenConsultancy(Protocol):
    """The consultancy rows whose assigned answer is the one the agent chose itself."""

    name = OPEN_CONSULTANCY
    reads: ClassVar[tuple[str, ...]] = ()  # derived: its rows are its source's, run with that variant's options
    title = "Open consultancy"
    colour = Consultancy.colour
    order = 4
    derived_from = Consultancy.name

    def transcript_depends_on_judge(self, interactive: bool) -> bool:
        return False  # derived: its rows are selected from its source's at sealing

    def plan(self, slot: Slot) -> list[Episode]:
        """No episodes of its own: the agent's own QA answer, which picks its side. It uses
        the spec's own settings (agents.qa_mode), never a variant's: which side an open
        protocol follows must not move with them."""
        if slot.agent is None:
            return []
        proto = own_qa_protocol(slot.item)
        base = (slot.item.task, slot.item.item_id, slot.replicate)
        return [Episode(digest(proto, "agent-qa", *base, slot.order, slot.agent), proto, slot.item, slot.order,
                        slot.agent, qa_role="agent", replicate=slot.replicate, variant=proto)]

    def derive(self, rows: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
        derived, counts = derive_open(rows)
        return derived[derived["protocol"] == self.name], counts

    def row_settings(self, options: Options) -> dict[str, Any]:
        return Consultancy().row_settings(options)


class OpenDebate(OpenConsultancy):
    """The self-play debate rows, with the agent's own choice as the protagonist's side."""

    name = OPEN_DEBATE
    title = "Open debate"
    colour = Debate.colour
    order = 5
    derived_from = Debate.name
    headline = (OPEN_CONSULTANCY,)
    headline_rank = 2

    def row_settings(self, options: Options) -> dict[str, Any]:
        return Debate().row_settings(options)
