"""Every setting that changes what a judge sees is a column and part of the condition key
(issue 22, item 5). The settings are read from the spec's schema, so a setting added later
is tested without touching this file: two runs that differ only in it must never be
reported as one condition."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel

import oversight
from oversight.engine.spec import RunSpec
from oversight.protocol.presets import PresetOptions
from oversight.score.accuracy import summary_table
from oversight.score.frame import CONDITION

BASE: dict[str, Any] = {
    "name": "c", "tasks": ["boolq"], "limit": 3, "agent": "sim/strong", "judges": ["sim/weak"],
    "protocols": ["qa", "consultancy", "debate", "open_consultancy", "open_debate"],
    # Settings chosen so that each other one acts: sequential turns (first_round_simultaneous),
    # few-shot judging (shots), two rounds (turn style).
    "debate": {"rounds": 2, "turns": "sequential"}, "consultancy": {"rounds": 2},
    "judge": {"mode": "fewshot", "shots": 1},
}
KEY = ["task", "item_id", "order", "judge", "assigned", "qa_role", "protocol"]


def _settings() -> list[tuple[str, str, Any]]:
    """(block, key, another valid value) for every setting of the spec's protocol blocks."""
    out = []
    for block, info in RunSpec.model_fields.items():
        model = info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue  # tournament (its own experiment) and plain values
        current = BASE.get(block, {})
        for key, field in model.model_fields.items():
            value = current.get(key, field.default)
            choices = typing.get_args(field.annotation)
            if field.annotation is bool:
                other: Any = not value
            elif choices and all(isinstance(c, str) for c in choices):
                other = next(c for c in choices if c != value)
            elif field.annotation is int:
                other = value + 1
            else:
                raise AssertionError(f"{block}.{key}: teach this test another value of {field.annotation}")
            out.append((block, key, other))
    return out


SETTINGS = _settings()


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> oversight.RunResult:
    return oversight.run(BASE, out=tmp_path_factory.mktemp("cond") / "base")


def _prompts(result: oversight.RunResult) -> pd.DataFrame:
    res = oversight.load(result.run_dir)
    # Judges' rows: the agent's own QA is no judge's condition (it has its own table).
    j = res.judgments[(res.judgments.verdict_status == "ok") & res.judgments.qa_role.isna()].copy()
    j["prompt"] = [res.judge_prompt(r) for _, r in j.iterrows()]
    return j


def test_the_settings_come_from_the_schema() -> None:
    names = {f"{b}.{k}" for b, k, _ in SETTINGS}
    assert {"debate.first_round_simultaneous", "agents.qa_mode", "judge.shots", "debate.interactive"} <= names
    # A preset sets the same settings: each is a column of the condition key under its own name.
    columns = {"consultancy_rounds": "rounds", "turns": "turn_style"}
    for key in PresetOptions.model_fields:
        assert columns.get(key, key) in CONDITION, key


@pytest.mark.parametrize(("block", "key", "value"), SETTINGS, ids=[f"{b}.{k}" for b, k, _ in SETTINGS])
def test_runs_differing_in_one_setting_are_never_one_condition(
        tmp_path: Path, base_run: oversight.RunResult, block: str, key: str, value: Any) -> None:
    spec = {**BASE, block: {**BASE.get(block, {}), key: value}}
    other = oversight.run(spec, out=tmp_path / "other")
    a, b = _prompts(base_run), _prompts(other)
    both = pd.concat([a, b], ignore_index=True)
    table = summary_table(both.drop(columns="prompt"))  # what `oversight report A B` shows
    task_rows = table[table.level == "task"]
    merged = task_rows.groupby("protocol").size()
    pairs = a.merge(b, on=[c for c in KEY], suffixes=("_a", "_b"))
    changed = pairs[pairs.prompt_a != pairs.prompt_b].protocol.unique()
    # Wherever the judges saw something else, the two runs are two conditions ...
    for protocol in changed:
        assert merged.get(protocol, 0) == 2, (f"{block}.{key}", protocol, task_rows[["protocol", "condition"]])
    # ... and the setting is recorded on some row (a column, so a reader sees which is which).
    assert (merged == 2).any(), f"{block}.{key}={value} left no trace in the condition key"
