"""The Elo outputs follow the report's rules: failed self-play episodes are treated as in
every other accuracy (left out by default, wrong with --errors-as-wrong), and the Elo scale
is a spec and report setting shown wherever ratings are (issue 22, items 2 and 9)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest
import yaml

from oversight import cli
from oversight.testing import FakeOpenAI, Fault, RandomFaults

FAST = ("--resamples", "200", "--elo-bootstrap", "20")


def _selfplay_accuracy(j: pd.DataFrame, errors_as_wrong: bool) -> dict[str, float]:
    """Independent: self-play rows, failed ones dropped (or scored wrong), item means, then their mean."""
    sp = j[(j.agent == j.agent_b) & j.agent.notna()].copy()
    if not errors_as_wrong:
        sp = sp[sp.verdict_status != "error"]
    sp["ok"] = (sp.verdict_status == "ok") & sp.is_correct.fillna(False).astype(bool)
    items = sp.groupby(["agent", "task", "item_id"]).ok.mean()
    return {str(k): float(v) for k, v in items.groupby(level=0).mean().items()}


def _report(run: Path, folder: str, *extra: str) -> Path:
    out = run / folder
    if not (out / "elo.parquet").exists():
        assert cli.main(["report", str(run), "--out", str(out), *FAST, *extra]) == 0
    return out


@pytest.fixture(scope="module")
def tournament(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("elo") / "run"
    replies = itertools.cycle(["Answer: 1", "Answer: 2", "Answer: 2"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FAKE_KEY", "sk-test")
        plan = RandomFaults([(0.35, Fault(500))], seed=4)
        with FakeOpenAI(reply=lambda body: next(replies), fault_plan=plan) as server:
            judge = {"name": "flaky", "provider": "openai", "model": "m", "base_url": server.base_url,
                     "api_key_env": "FAKE_KEY", "max_retries": 0}
            spec = out.parent / "elo.yaml"
            spec.write_text(yaml.safe_dump({
                "name": "elo", "tasks": ["boolq", "prontoqa"], "limit": 4, "protocols": [], "judges": [],
                "concurrency": 1,
                "tournament": {"debaters": [{"model": "sim/weak"}, {"model": "sim/medium"},
                                            {"model": "sim/strong"}],
                               "pairings": 6, "judge": judge, "elo_scale": 500}}))
            assert cli.main(["run", str(spec), "--out", str(out)]) == 1  # some episodes failed
    return out


def test_selfplay_accuracy_leaves_failed_episodes_out_like_the_summary(
        tournament: Path, capsys: pytest.CaptureFixture[str]) -> None:
    j = pd.read_parquet(tournament / "judgments.parquet")
    sp = j[(j.agent == j.agent_b)]
    failed = sp[sp.verdict_status == "error"].groupby("agent").size()
    assert failed.sum() > 0
    for errors_as_wrong, folder in ((False, "s500"), (True, "wrong")):
        out = _report(tournament, folder, *(["--errors-as-wrong"] if errors_as_wrong else []))
        elo = pd.read_parquet(out / "elo.parquet")
        agg = elo[(elo.kind == "aggregate") & (elo.group == "all")].set_index("player")
        expected = _selfplay_accuracy(j, errors_as_wrong)
        for player, acc in expected.items():
            assert agg.loc[player, "selfplay_accuracy"] == pytest.approx(acc), (player, errors_as_wrong)
            assert agg.loc[player, "selfplay_n_errors"] == failed.get(player, 0)
    # The two rules give different numbers here, so the default really leaves failures out.
    assert _selfplay_accuracy(j, False) != _selfplay_accuracy(j, True)
    capsys.readouterr()


def test_the_elo_scale_is_the_spec_s_and_report_can_set_it(tournament: Path, capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    capsys.readouterr()
    assert cli.main(["report", str(tournament), "--out", str(tournament / "s500"), *FAST]) == 0
    assert "Elo scale s = 500" in capsys.readouterr().out
    e500 = pd.read_parquet(tournament / "s500" / "elo.parquet")
    assert set(e500.scale) == {500.0}
    assert set(pd.read_parquet(tournament / "s500" / "elo_slope.parquet").scale) == {500.0}
    html = (tournament / "s500" / "report.html").read_text(encoding="utf-8")
    assert "Elo scale s = 500" in html and "Elo scale s" in html
    assert cli.main(["report", str(tournament), "--out", str(tournament / "s400"), *FAST,
                     "--elo-scale", "400"]) == 0
    assert "Elo scale s = 400" in capsys.readouterr().out
    e400 = pd.read_parquet(tournament / "s400" / "elo.parquet")
    a5 = e500[(e500.kind == "aggregate") & (e500.group == "all")].set_index("player").elo
    a4 = e400[(e400.kind == "aggregate") & (e400.group == "all")].set_index("player").elo
    assert (a5 / a4).dropna().to_numpy() == pytest.approx([500 / 400] * len(a5.dropna()), rel=1e-4)
