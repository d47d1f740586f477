"""Settings that mislead when silently ignored: preset options a base protocol never reads,
a preset's `groups:`, and derived rows' costs (issue 22, items 1 and 7). Driven through
the CLI on the sim models, as a researcher meets them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from oversight import cli

ROOT = Path(__file__).resolve().parents[2]
PRICED = {"provider": "sim", "model": "medium", "name": "priced-judge",
          "price": {"input_per_mtok": 3.0, "output_per_mtok": 15.0}}
PRICED_AGENT = {"provider": "sim", "model": "strong", "name": "priced-agent",
                "price": {"input_per_mtok": 1.0, "output_per_mtok": 5.0}}


def _oversight(*args: str, inc: Path | None = None) -> subprocess.CompletedProcess[str]:
    pre = ["--include", str(inc)] if inc else []
    return subprocess.run([sys.executable, "-m", "oversight", *pre, *args], capture_output=True, text=True,
                          cwd=ROOT)


def _preset(folder: Path, name: str, **fields: object) -> None:
    (folder / "protocols").mkdir(parents=True, exist_ok=True)
    (folder / "protocols" / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, "description": "x", **fields}))


@pytest.mark.parametrize(("kind", "options", "needle"), [
    ("consultancy", {"rounds": 1, "best_of": 4}, "options.rounds does not apply to the consultancy protocol"),
    ("consultancy", {"best_of": 4}, "options.best_of does not apply to the consultancy protocol"),
    ("qa", {"word_limit": 50}, "options.word_limit does not apply to the qa protocol"),
    ("debate", {"turns": "simultaneous", "first_round_simultaneous": False}, "first_round_simultaneous only"),
    ("debate", {"judge_mode": "cot", "shots": 3}, "options.shots is set but options.judge_mode is 'cot'"),
])
def test_a_preset_setting_its_base_protocol_never_reads_is_refused(
        tmp_path: Path, kind: str, options: dict[str, object], needle: str) -> None:
    inc = tmp_path / "inc"
    _preset(inc, "my_variant", kind=kind, options=options)
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"name": "s", "tasks": ["boolq"], "limit": 2, "agent": "sim/strong",
                                    "judges": ["sim/weak"], "protocols": ["my_variant"]}))
    for command in (["validate", str(spec)], ["run", str(spec), "--dry-run"]):
        p = _oversight(*command, inc=inc)
        assert p.returncode == 2, p.stdout + p.stderr
        assert needle in p.stderr and "my_variant.yaml" in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_a_consultancy_preset_s_own_rounds_key_runs_those_rounds(tmp_path: Path) -> None:
    inc = tmp_path / "inc"
    _preset(inc, "consult_1", kind="consultancy", options={"consultancy_rounds": 1})
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"name": "s", "tasks": ["boolq"], "limit": 2, "agent": "sim/strong",
                                    "judges": ["sim/weak"], "protocols": ["consultancy", "consult_1"]}))
    assert cli.main(["--include", str(inc), "run", str(spec), "--out", str(tmp_path / "r")]) == 0
    j = pd.read_parquet(tmp_path / "r" / "judgments.parquet")
    t = pd.read_parquet(tmp_path / "r" / "turns.parquet")
    assert set(j[j.variant == "consult_1"].rounds) == {1} and set(j[j.variant == "consultancy"].rounds) == {3}
    consultant = t[t.speaker == "Consultant"]
    assert consultant[consultant.variant == "consult_1"].groupby("transcript_id").size().eq(1).all()


def test_a_preset_s_groups_decide_which_tasks_it_runs_on(tmp_path: Path) -> None:
    inc = tmp_path / "inc"
    _preset(inc, "debate_closed", kind="debate", groups=["closed"], options={"rounds": 1})
    _preset(inc, "open_closed", kind="open", base="open_debate", groups=["closed"], derived_from=["debate"])
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"name": "s", "tasks": ["boolq", "prontoqa"], "limit": 2, "agent": "sim/strong",
                                    "judges": ["sim/weak"], "debate": {"rounds": 1},
                                    "protocols": ["debate", "debate_closed", "open_closed"]}))
    dry = _oversight("run", str(spec), "--dry-run", inc=inc)
    assert dry.returncode == 0 and "debate_closed runs on closed tasks only" in dry.stdout, dry.stdout + dry.stderr
    assert cli.main(["--include", str(inc), "run", str(spec), "--out", str(tmp_path / "r")]) == 0
    j = pd.read_parquet(tmp_path / "r" / "judgments.parquet")
    assert set(j[j.variant == "debate_closed"].task) == {"prontoqa"}
    assert set(j[j.variant == "debate"].task) == {"boolq", "prontoqa"}
    assert len(j[j.variant == "open_closed"]) and set(j[j.variant == "open_closed"].task) == {"prontoqa"}


def test_derived_rows_cost_nothing_and_cost_totals_equal_the_calls(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "c", "tasks": ["boolq", "prontoqa"], "limit": 3, "agent": PRICED_AGENT, "judges": [PRICED],
        "debate": {"rounds": 2}, "consultancy": {"rounds": 2},
        "protocols": ["qa", "consultancy", "debate", "open_consultancy", "open_debate"]}))
    out = tmp_path / "r"
    assert cli.main(["run", str(spec), "--out", str(out)]) == 0
    assert cli.main(["report", str(out)]) == 0
    calls = pd.read_parquet(out / "calls.parquet")
    spent = float(calls.cost_usd.sum())
    assert spent > 0
    j = pd.read_parquet(out / "judgments.parquet")
    derived = j[j.protocol.str.startswith("open_")]
    assert len(derived) and (derived.episode_cost_usd == 0).all() and (derived.judge_input_tokens == 0).all()
    assert float(j.episode_cost_usd.sum()) == pytest.approx(spent, rel=1e-9)
    costs = pd.read_parquet(out / "diag_costs.parquet")
    assert float(costs.total_cost_usd.sum()) == pytest.approx(spent, rel=1e-9)
    assert (costs[costs.protocol.str.startswith("open_")].total_cost_usd == 0).all()
