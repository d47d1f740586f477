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

import oversight
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
    listed = _oversight("list", "protocols", inc=inc)
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith("my_variant"))
    assert "invalid preset" in line and needle in line, line


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


def test_few_shot_examples_never_share_the_item_s_article_and_shots_counts_those_shown(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"name": "k", "tasks": ["quality"], "limit": 7, "judges": ["sim/weak"],
                                    "protocols": ["qa"], "judge": {"mode": "fewshot", "shots": 6}}))
    out = tmp_path / "r"
    assert cli.main(["run", str(spec), "--out", str(out)]) == 0
    res = oversight.load(out)
    items = res.items.set_index("item_id")
    shared = items.groupby("article_sha256").size()
    assert (shared > 1).all()  # the bundled sample asks several questions about each story
    for _, row in res.judgments.iterrows():
        prompt = res.judge_prompt(row)
        mine = items.loc[row.item_id, "article_sha256"]
        shown = [i for i, it in items.iterrows() if i != row.item_id and it.question in prompt]
        assert shown and not [i for i in shown if items.loc[i, "article_sha256"] == mine], (row.item_id, shown)
        # Only the other story's questions can be shown: fewer than the 6 asked, and `shots` says so.
        assert row.shots == len(shown) == int((items.article_sha256 != mine).sum())


def test_in_an_interactive_sequential_debate_both_debaters_are_told_to_answer_the_judge(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"name": "i", "tasks": ["boolq"], "limit": 2, "agent": "sim/strong",
                                    "judges": ["sim/weak"], "protocols": ["debate"],
                                    "debate": {"rounds": 3, "turns": "sequential", "interactive": True}}))
    out = tmp_path / "r"
    assert cli.main(["run", str(spec), "--out", str(out)]) == 0
    res = oversight.load(out)
    turns = res.turns[res.turns.speaker.isin(["Alice", "Bob"])]
    told = "The judge asked a question before this round"
    for _, t in turns.iterrows():
        asked = int(t["round"]) > 1  # the judge asks one question before every later round
        assert (told in res.prompt(t.prompt_id)) == asked, (t.speaker, t["round"])
    assert set(turns[turns["round"] > 1].speaker) == {"Alice", "Bob"}


def test_tournament_rows_have_their_own_variant_and_never_join_the_grid(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "t", "tasks": ["boolq"], "limit": 4, "agent": "sim/strong", "judges": ["sim/weak"],
        "protocols": ["debate", "open_debate"], "debate": {"rounds": 2},
        "tournament": {"debaters": [{"model": "sim/strong"}, {"model": "sim/weak", "best_of": 2}],
                       "judge": "sim/weak"}}))
    out = tmp_path / "r"
    assert cli.main(["run", str(spec), "--out", str(out)]) == 0
    assert cli.main(["report", str(out), "--resamples", "100", "--elo-bootstrap", "10"]) == 0
    j = pd.read_parquet(out / "judgments.parquet")
    tour = j[j.rounds == 1]
    assert len(tour) and set(tour.variant) == {"tournament"}
    assert set(j[j.variant == "debate"].rounds) == {2}
    # open debate follows the grid's self-play debates only (a tournament debater shares the agent's name)
    assert set(j[j.protocol == "open_debate"].rounds) == {2}
    grid_sp = j[(j.variant == "debate")]
    assert len(j[j.protocol == "open_debate"]) <= len(grid_sp)
    comparisons = pd.read_parquet(out / "comparisons.parquet")
    assert not comparisons.condition_a.str.contains("tournament").any()
    assert not comparisons.condition_b.str.contains("tournament").any()
    elo = pd.read_parquet(out / "elo.parquet")
    sp = elo[(elo.kind == "aggregate") & (elo.group == "all")].set_index("player")
    tour_sp = tour[tour.agent == tour.agent_b]
    assert sp.loc["sim/strong", "selfplay_n_items"] == tour_sp[tour_sp.agent == "sim/strong"].item_id.nunique()
    # Cross-play rows record each debater's best-of-N.
    cross = tour[tour.agent != tour.agent_b]
    bo = {"sim/strong": 1, "sim/weak+bo2": 2}
    assert (cross.best_of == cross.agent.map(bo)).all() and (cross.best_of_b == cross.agent_b.map(bo)).all()
    assert len(cross) and (cross.best_of != cross.best_of_b).all()


def test_tournament_games_sample_their_own_openings(tmp_path: Path) -> None:
    """A debater's simultaneous opening on one item and seat is one prompt in all its games
    there; each game samples it anew, so no tournament game is served another game's turn."""
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "g", "tasks": ["boolq"], "limit": 2, "protocols": [], "judges": [],
        "tournament": {"debaters": [{"model": "sim/weak"}, {"model": "sim/medium"}, {"model": "sim/strong"}],
                       "judge": "sim/medium"}}))
    out = tmp_path / "r"
    assert cli.main(["run", str(spec), "--out", str(out)]) == 0
    res = oversight.load(out)
    debaters = res.calls[res.calls.role == "debater"]
    assert len(debaters) and not debaters.cache_hit.any()
    # The same prompt (debater, item, seat, order) recurs across games, each time sampled afresh.
    t = res.turns[res.turns.speaker.isin(["Alice", "Bob"])]
    repeated = t.groupby("prompt_id").filter(lambda g: g.transcript_id.nunique() > 1)
    assert len(repeated)
    assert repeated.groupby("prompt_id").visible.nunique().gt(1).any()
