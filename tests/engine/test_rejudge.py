"""`oversight judge` through the real command: re-judged rows equal a run that had the new
judge from the start, no agent call where the transcript does not depend on the judge,
agent calls only with --allow-agent-calls, the audit trail, resume, dry run, and the
report's paired comparison of new and old judges."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from oversight.score.compare import paired_permutation

ROOT = Path(__file__).resolve().parents[2]
SPEC = {"name": "rj", "seed": 0, "tasks": ["quality", "prontoqa"], "limit": 2, "orders": "both",
        "protocols": ["qa", "qa_with_article", "consultancy", "debate", "open_consultancy", "open_debate"],
        "agent": "sim/strong", "judges": ["sim/weak"], "debate": {"rounds": 2}, "consultancy": {"rounds": 2}}
RUN_IDENTITY = ["run_id", "episode_id", "transcript_id", "episode_cost_usd"]
KEY = ["task", "item_id", "protocol", "variant", "order", "replicate", "assigned"]


def oversight(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "oversight", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source run (judge sim/weak) and the run that had both judges from the start."""
    d = tmp_path_factory.mktemp("rejudge")
    (d / "one.yaml").write_text(yaml.safe_dump(SPEC))
    (d / "both.yaml").write_text(yaml.safe_dump({**SPEC, "judges": ["sim/weak", "sim/medium"]}))
    for name in ("one", "both"):
        r = oversight("run", f"{name}.yaml", "--out", name, "--cache", "off", cwd=d)
        assert r.returncode == 0, r.stderr
    return d


def rows(run_dir: Path, protocols: set[str] | None = None) -> pd.DataFrame:
    j = pd.read_parquet(run_dir / "judgments.parquet")
    j = j[j["judge"] == "sim/medium"]
    if protocols is not None:
        j = j[j["protocol"].isin(protocols)]
    return j.drop(columns=RUN_IDENTITY).sort_values(KEY).reset_index(drop=True)


def test_rejudged_rows_equal_a_run_with_the_judge_from_the_start(runs: Path) -> None:
    r = oversight("judge", "one", "--judges", "sim/medium", "--out", "new", "--cache", "off", cwd=runs)
    assert r.returncode == 0, r.stderr
    assert "16 consultancy whose transcript depends on the judge" in r.stderr
    new = rows(runs / "new")
    assert set(new["protocol"]) == {"qa", "qa_with_article", "debate", "open_debate"}
    pd.testing.assert_frame_equal(new, rows(runs / "both", set(new["protocol"])))
    calls = pd.read_parquet(runs / "new" / "calls.parquet")
    assert set(calls["model"]) == {"sim/medium"} and set(calls["role"]) == {"judge"}  # no agent call
    # The source's transcripts, not new ones: the same turns, under the new run's ids.
    src_turns = pd.read_parquet(runs / "one" / "turns.parquet")
    new_turns = pd.read_parquet(runs / "new" / "turns.parquet")
    debaters = ["speaker", "side", "round", "visible", "prompt_id"]
    src_turns = src_turns[src_turns["speaker"] != "Judge"]
    new_turns = new_turns[new_turns["speaker"] != "Judge"]
    a = new_turns[new_turns["protocol"] == "debate"][debaters].sort_values(debaters).reset_index(drop=True)
    b = src_turns[src_turns["protocol"] == "debate"][debaters].sort_values(debaters).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    m = json.loads((runs / "new" / "manifest.json").read_text())
    assert m["rejudge_of"]["run_id"] == "one" and Path(m["rejudge_of"]["path"]) == (runs / "one").resolve()
    assert m["rejudge_of"]["left_out_episodes"] == 16


def test_every_new_verdict_links_to_the_prompt_its_judge_received(runs: Path) -> None:
    d = runs / "audit"
    r = oversight("judge", "one", "--judges", "sim/medium", "--out", str(d), cwd=runs)
    assert r.returncode == 0, r.stderr
    j = pd.read_parquet(d / "judgments.parquet")
    prompts = pd.read_parquet(d / "prompts.parquet").set_index("prompt_id")
    calls = pd.read_parquet(d / "calls.parquet")
    new = j[(j["judge"] == "sim/medium") & j["protocol"].isin(["qa", "qa_with_article", "debate"])]
    assert len(new) and new["judge_prompt_id"].notna().all()
    assert new["judge_prompt_id"].isin(prompts.index).all()
    assert new["judge_prompt_id"].isin(calls["prompt_id"]).all()
    # A debate verdict's prompt holds the reused transcript's arguments.
    turns = pd.read_parquet(d / "turns.parquet")
    deb = new[new["protocol"] == "debate"].iloc[0]
    said = turns[(turns["transcript_id"] == deb["transcript_id"]) & (turns["speaker"] == "Alice")]["visible"]
    text = json.dumps(prompts.loc[deb["judge_prompt_id"], "messages"], default=str)
    assert all(json.dumps(s)[1:40] in text for s in said)


def test_agent_calls_only_when_allowed_and_then_equal_rows(runs: Path) -> None:
    dry = oversight("judge", "one", "--judges", "sim/medium", "--dry-run", cwd=runs)
    assert dry.returncode == 0, dry.stderr
    said = re.search(r"would need ([\d,]+) agent call", dry.stdout)
    assert said, dry.stdout
    assert not list(runs.glob("one.judged-*"))  # nothing written
    r = oversight("judge", "one", "--judges", "sim/medium", "--allow-agent-calls", "--out", "all", "--cache", "off",
                  cwd=runs)
    assert r.returncode == 0, r.stderr
    new = rows(runs / "all")
    assert {"consultancy", "open_consultancy"} <= set(new["protocol"])
    pd.testing.assert_frame_equal(new, rows(runs / "both", set(new["protocol"])))
    calls = pd.read_parquet(runs / "all" / "calls.parquet")
    assert set(calls[calls["role"] == "consultant"]["model"]) == {"sim/strong"}
    assert "debater" not in set(calls["role"])  # debate transcripts are still reused
    agent_calls = calls[~calls["role"].str.startswith("judge")]
    assert len(agent_calls) == int(said.group(1).replace(",", "")) > 0


def test_default_out_is_beside_the_source_and_resume_finishes_it(runs: Path) -> None:
    r = oversight("judge", "one", "--judges", "sim/medium", "--mode", "cot", cwd=runs)
    assert r.returncode == 0, r.stderr
    (out,) = runs.glob("one.judged-*")
    j = pd.read_parquet(out / "judgments.parquet")
    assert set(j[j["judge"] == "sim/medium"]["judge_mode"]) == {"cot"}
    again = oversight("judge", "one", "--judges", "sim/medium", "--mode", "cot", cwd=runs)
    assert again.returncode == 2 and "already holds a run" in again.stderr
    before = len(pd.read_parquet(out / "calls.parquet"))
    resumed = oversight("judge", "one", "--judges", "sim/medium", "--mode", "cot", "--resume", cwd=runs)
    assert resumed.returncode == 0, resumed.stderr
    assert len(pd.read_parquet(out / "calls.parquet")) == before  # nothing was left to do
    other = oversight("judge", "one", "--judges", "sim/weak", "--resume", "--out", str(out), cwd=runs)
    assert other.returncode == 2 and "resolves differently" in other.stderr


def test_report_compares_new_and_old_judges_with_paired_tests(runs: Path) -> None:
    r = oversight("judge", "one", "--judges", "sim/medium", "--out", "rep", cwd=runs)
    assert r.returncode == 0, r.stderr
    rep = oversight("report", "rep", "--resamples", "500", cwd=runs)
    assert rep.returncode == 0, rep.stderr
    assert "New judges vs the source run's" in rep.stdout
    table = pd.read_parquet(runs / "rep" / "judge_comparison.parquet")
    row = table[table["variant"] == "qa"].iloc[0]
    # Independently: per-item means of each judge's qa rows, paired.
    def scores(d: str, judge: str) -> pd.Series:
        j = pd.read_parquet(runs / d / "judgments.parquet")
        j = j[(j["variant"] == "qa") & (j["judge"] == judge) & j["qa_role"].isna()]
        return j.groupby(["task", "item_id"])["is_correct"].mean()
    new, old = scores("rep", "sim/medium"), scores("one", "sim/weak")
    new, old = new.align(old, join="inner")
    expect = paired_permutation(new.to_numpy(float), old.to_numpy(float), 500, 0)
    assert row["n_items"] == expect["n_items"] == 4
    assert row["acc_new"] == pytest.approx(expect["acc_a"]) and row["acc_old"] == pytest.approx(expect["acc_b"])
    assert row["p_value"] == pytest.approx(expect["p_value"])


def test_bad_source_and_judge(runs: Path, tmp_path: Path) -> None:
    r = oversight("judge", str(tmp_path), "--judges", "sim/medium", cwd=runs)
    assert r.returncode == 2 and "is not a run directory" in r.stderr and "Traceback" not in r.stderr
    r = oversight("judge", "one", "--judges", "nosuch/model", "--dry-run", cwd=runs)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_killed_rejudging_resumes_without_repeating_a_call(runs: Path) -> None:
    """What kill -9 leaves (a prefix of the journal, its last line torn) resumes to the same
    rows as an uninterrupted re-judging, and makes only the calls that were not journaled."""
    full = oversight("judge", "one", "--judges", "sim/medium", "--out", "whole", "--cache", "off", cwd=runs)
    assert full.returncode == 0, full.stderr
    cut = oversight("judge", "one", "--judges", "sim/medium", "--out", "cut", "--cache", "off", cwd=runs)
    assert cut.returncode == 0, cut.stderr
    journal = runs / "cut" / "journal.jsonl"
    lines = journal.read_text(encoding="utf-8").splitlines(keepends=True)
    seeded = sum(1 for x in lines if '"source_transcript_id"' in x or '"source_episode_id"' in x)
    episodes = [x for x in lines[seeded:] if x.startswith('{"type":"episode"')]
    keep = lines[: seeded + len(episodes) // 2]
    journal.write_text("".join(keep) + lines[len(keep)][:50], encoding="utf-8")
    for p in (runs / "cut").glob("*.parquet"):
        p.unlink()
    kept_calls = sum(len(json.loads(x).get("calls", [])) for x in keep[seeded:])
    resumed = oversight("judge", "one", "--judges", "sim/medium", "--resume", "--out", "cut", "--cache", "off",
                        cwd=runs)
    assert resumed.returncode == 0, resumed.stderr
    assert "torn final journal line" in resumed.stderr
    a = pd.read_parquet(runs / "cut" / "judgments.parquet").drop(columns=["run_id"])
    b = pd.read_parquet(runs / "whole" / "judgments.parquet").drop(columns=["run_id"])
    key = [*KEY, "judge", "qa_role"]
    pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True))
    calls = pd.read_parquet(runs / "cut" / "calls.parquet")
    whole = pd.read_parquet(runs / "whole" / "calls.parquet")
    assert len(calls) == len(whole) and not calls["superseded"].any()
    assert 0 < kept_calls < len(whole)


def test_failed_judge_calls_exit_1_and_the_budget_stops_cleanly(runs: Path, tmp_path: Path) -> None:
    from oversight.testing import FakeOpenAI, Fault

    (tmp_path / "judges").mkdir()
    env_key = "REJUDGE_TEST_KEY"
    os.environ[env_key] = "sk-loopback"
    try:
        with FakeOpenAI(faults=[Fault(status=400), Fault(status=400)]) as srv:
            card = {"provider": "openai", "model": "judge-x", "base_url": srv.base_url, "api_key_env": env_key,
                    "max_retries": 0, "price": {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}}
            (tmp_path / "judges" / "loop.yaml").write_text(yaml.safe_dump(card))
            r = oversight("--include", str(tmp_path), "judge", "one", "--judges", "loop", "--out", "err",
                          "--cache", "off", cwd=runs)
            assert r.returncode == 1, r.stderr
            j = pd.read_parquet(runs / "err" / "judgments.parquet")
            assert (j["verdict_status"] == "error").sum() == 2 and "ended in error" in r.stderr
            again = oversight("--include", str(tmp_path), "judge", "one", "--judges", "loop", "--out", "err",
                              "--resume", "--cache", "off", cwd=runs)
            assert again.returncode == 0, again.stderr
            assert (pd.read_parquet(runs / "err" / "judgments.parquet")["verdict_status"] != "error").all()
            # One episode at a time (concurrency is operational: the same experiment), so the
            # budget is checked between calls as in `run`.
            shutil.copytree(runs / "one", tmp_path / "one")
            spec = yaml.safe_load((tmp_path / "one" / "spec.yaml").read_text())
            (tmp_path / "one" / "spec.yaml").write_text(yaml.safe_dump({**spec, "concurrency": 1}))
            b = oversight("--include", str(tmp_path), "judge", str(tmp_path / "one"), "--judges", "loop", "--out",
                          str(runs / "budget"), "--budget", "0.5", "--cache", "off", cwd=runs)
            assert b.returncode == 0, b.stderr
            m = json.loads((runs / "budget" / "manifest.json").read_text())
            assert m["status"] == "budget_exhausted"
            assert 0 < m["totals"]["episodes_done"] < m["totals"]["episodes_planned"]
    finally:
        del os.environ[env_key]


def test_interactive_debate_needs_agent_calls(tmp_path: Path) -> None:
    spec = {**SPEC, "tasks": ["prontoqa"], "limit": 1, "protocols": ["debate"],
            "debate": {"rounds": 2, "interactive": True}}
    (tmp_path / "i.yaml").write_text(yaml.safe_dump(spec))
    assert oversight("run", "i.yaml", "--out", "i", cwd=tmp_path).returncode == 0
    r = oversight("judge", "i", "--judges", "sim/medium", "--out", "j", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "left out 2 episode(s): 2 debate whose transcript depends on the judge" in r.stderr
    assert len(pd.read_parquet(tmp_path / "j" / "judgments.parquet")) == 0


def test_python_api(runs: Path, tmp_path: Path) -> None:
    import io

    import oversight as ov

    result = ov.judge(runs / "one", ["sim/medium"], out=tmp_path / "api", cache="off", stream=io.StringIO())
    assert result.exit_code == 0 and result.status == "complete"
    pd.testing.assert_frame_equal(rows(tmp_path / "api"), rows(runs / "both", set(rows(tmp_path / "api")["protocol"])))
