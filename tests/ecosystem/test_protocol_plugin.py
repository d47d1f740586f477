"""A protocol written outside oversight (docs/examples/cross_examination/, one Python file and
its pyproject.toml), installed from a temporary directory through its entry point, used as a
user would: the command line with the response cache, a kill -9 and `--resume`, `--dry-run`
(its call count equal to the real run's), `--batch` against the loopback Batch API, `report`
and judge-ui. Nothing in the package names it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import oversight
from oversight.errors import OversightError
from oversight.testing import FakeOpenAI
from tests.batch.helpers import sorted_rows
from tests.ecosystem.helpers import ROOT, clean_env, cli
from tests.engine.test_integrity import no_traceback, scripted, wait_for_lines
from tests.humanui.helpers import HttpJudge, human_rows, open_null, start_server

EXAMPLE = ROOT / "docs" / "examples" / "cross_examination"
NAME = "cross_examination"
KEY_ENV = "FAKE_PLUGIN_KEY"
STABLE = ["episode_id", "task", "item_id", "protocol", "judge", "order", "judge_answer", "verdict_status",
          "transcript_id", "judge_prompt_id", "word_limit", "passage_match", "interactive"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed the way a user installs a package: from its own folder."""
    pytest.importorskip("hatchling", reason="the dev extra's hatchling builds the plugin offline")
    tmp = tmp_path_factory.mktemp("plugin")
    pkg = tmp / "cross_examination"
    shutil.copytree(EXAMPLE, pkg)
    target = tmp / "site"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                        "-q", "--target", str(target), str(pkg)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert (target / "oversight_cross_examination-0.1.0.dist-info" / "entry_points.txt").exists()
    return target


def fake_card(server: FakeOpenAI, **kw: Any) -> dict[str, Any]:
    return {"name": "fake", "provider": "openai", "model": "fake-model", "base_url": server.base_url,
            "api_key_env": KEY_ENV, "max_retries": 0, "timeout_s": 10,
            "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}, **kw}


def write_spec(path: Path, server: FakeOpenAI, **kw: Any) -> Path:
    spec = {"name": "xexam", "tasks": ["boolq", "quality"], "limit": 2, "protocols": [NAME, "debate"],
            "agent": fake_card(server, **kw), "judges": [fake_card(server, **kw), "sim/weak"],
            "debate": {"rounds": 2}, "concurrency": 1}
    path.write_text(yaml.safe_dump(spec))
    return path


def run_cli(args: list[str], work: Path, site: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    p = cli(args, work, clean_env(PYTHONPATH=str(site), OVERSIGHT_CACHE_DIR=str(cache), **{KEY_ENV: "sk-plugin"}))
    no_traceback(p)
    return p


def dry_run_calls(stdout: str) -> int:
    """The dry run's calls: requests sent plus those the response cache answers."""
    m = re.search(r"^\s+total\s+([\d,]+) requests\s+([\d,]+) from cache", stdout, re.M)
    assert m, stdout
    return sum(int(g.replace(",", "")) for g in m.groups())


def stable(run_dir: Path) -> pd.DataFrame:
    j = pd.read_parquet(run_dir / "judgments.parquet")
    return j[STABLE].sort_values(["episode_id", "judge"]).reset_index(drop=True)


def test_the_example_runs_with_cache_resume_dry_run_and_report(tmp_path: Path, site: Path) -> None:
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    with FakeOpenAI(reply=scripted, latency_s=0.02) as server:
        write_spec(work / "spec.yaml", server)
        listing = run_cli(["list", "protocols"], work, site, cache)
        line = next(ln for ln in listing.stdout.splitlines() if ln.startswith(NAME))
        assert "plugin oversight-cross-examination" in line

        dry = run_cli(["run", "spec.yaml", "--dry-run"], work, site, cache)
        assert dry.returncode == 0, dry.stderr
        assert not server.requests  # a dry run calls nothing
        first = run_cli(["run", "spec.yaml", "--out", "clean"], work, site, cache)
        assert first.returncode == 0, first.stderr
        sent = len(server.requests)

        # The rehearsal's count is the run's: every call made is a row of calls.parquet.
        res = oversight.load(work / "clean")
        assert dry_run_calls(dry.stdout) == len(res.calls)
        # 2 tasks × 2 items × 2 orders = 8 cross-examinations of 6 agent calls, each made once for
        # its two judges; the fake judge calls once per transcript, the sim judge too.
        x = res.judgments[res.judgments.protocol == NAME]
        assert len(x) == 16 and x.transcript_id.nunique() == 8 and (x.verdict_status == "ok").all()
        xt = res.turns[res.turns.protocol == NAME]
        agent_turns = xt[xt.role == "debater"]
        assert len(agent_turns) == 8 * 6
        assert sorted(agent_turns.groupby("transcript_id")["round"].apply(list).iloc[0]) == [1, 1, 2, 2, 3, 3]
        assert set(xt[xt.role == "judge"]["round"]) == {4}
        assert (x.word_limit == 150).all() and x.interactive.isna().all()
        debater_calls = res.calls[res.calls.role == "debater"]
        assert len(debater_calls) == len(agent_turns) + 8 * 2 * 2  # + the debates' 2 rounds × 2 sides

        # The response cache: the same spec again sends nothing and gives the same rows.
        again = run_cli(["run", "spec.yaml", "--out", "again"], work, site, cache)
        assert again.returncode == 0 and len(server.requests) == sent
        pd.testing.assert_frame_equal(stable(work / "clean"), stable(work / "again"))

        # kill -9 in the middle, then --resume with the cache off: the finished work is read
        # back from the journal, never made again, and the rows are the clean run's.
        env = {**clean_env(PYTHONPATH=str(site), OVERSIGHT_CACHE_DIR=str(cache)), KEY_ENV: "sk-plugin"}
        proc = subprocess.Popen([sys.executable, "-m", "oversight", "run", "spec.yaml", "--cache", "off",
                                 "--out", "resumed"], cwd=work, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        wait_for_lines(work / "resumed" / "journal.jsonl", 6, proc)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        before = len(server.requests)
        resumed = run_cli(["run", "spec.yaml", "--cache", "off", "--resume", "--out", "resumed"], work, site, cache)
        assert resumed.returncode == 0, resumed.stderr
        assert killed  # the kill came before the end (the fake server answers slowly)
        pd.testing.assert_frame_equal(stable(work / "clean"), stable(work / "resumed"))
        assert len(server.requests) - before < sent  # only what the killed run had not finished

        report = run_cli(["report", "clean"], work, site, cache)
        assert report.returncode == 0, report.stderr
    page = next((work / "clean").rglob("report.html")).read_text(encoding="utf-8")
    assert NAME in page and "The cross-examination" not in page  # the judge-ui title is judge-ui's
    summary = pd.read_parquet(next((work / "clean").rglob("summary.parquet")))
    assert NAME in set(summary.protocol)
    comparisons = pd.read_parquet(next((work / "clean").rglob("comparisons.parquet")))
    assert ((comparisons.protocol_a == NAME) & (comparisons.protocol_b == "debate")).any()
    assert NAME in report.stdout  # the headline names its comparison with debate


def test_the_example_runs_with_batch_and_gives_the_online_rows(tmp_path: Path, site: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    with FakeOpenAI(reply=scripted) as server:
        write_spec(work / "spec.yaml", server, batch=True)
        plan = run_cli(["run", "spec.yaml", "--dry-run", "--batch"], work, site, tmp_path / "c0")
        assert plan.returncode == 0, plan.stderr
        waves = next(ln for ln in plan.stdout.splitlines() if ln.strip().startswith(NAME) and "waves" in ln)
        assert " 4 waves " in waves  # openings, questions, answers, the judges
        online = run_cli(["run", "spec.yaml", "--out", "online"], work, site, tmp_path / "c1")
        assert online.returncode == 0, online.stderr
        n_online = len(server.requests)
        batched = run_cli(["run", "spec.yaml", "--batch", "--batch-poll", "0.001", "--out", "batched"], work, site,
                          tmp_path / "c2")
        assert batched.returncode == 0, batched.stderr
        assert len(server.requests) == n_online  # nothing more went online
    on, off = (pd.read_parquet(work / d / "judgments.parquet") for d in ("online", "batched"))
    pd.testing.assert_frame_equal(sorted_rows(on), sorted_rows(off))
    calls = pd.read_parquet(work / "batched" / "calls.parquet")
    paid = calls[(calls.model == "fake") & ~calls.cache_hit]
    assert len(paid) and paid.batch_id.notna().all()


def test_a_person_judges_the_example_in_judge_ui(tmp_path: Path, site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(site))  # the registry reads entry points again when the path changes
    spec = {"name": "xexam-ui", "tasks": ["quality"], "limit": 1, "protocols": [NAME], "agent": "sim/strong",
            "judges": ["sim/weak"], "cache_dir": str(tmp_path / "cache")}
    result = oversight.run(spec, out=tmp_path / "run", stream=open_null())
    assert result.status == "complete" and len(result.judgments) == 2
    server, _ = start_server(result.run_dir)
    try:
        judge = HttpJudge(server, "Ann")
        assert "<h2>The cross-examination</h2>" in judge.page and "asked the other one question" in judge.page
        assert judge.step() == "verdict"  # nothing to ask: the exchange is the debaters' own
        judge.decide(answer=1)
        judge.close()
    finally:
        server.stop()
    rows = human_rows(result.run_dir)
    assert len(rows) == 1 and rows.iloc[0]["protocol"] == NAME
    llm = result.judgments[result.judgments.order == rows.iloc[0]["order"]].iloc[0]
    assert rows.iloc[0]["transcript_id"] == llm["transcript_id"]  # the very transcript the LLM judged
    turns = oversight.load(result.run_dir).turns
    human_turn = turns[(turns.judge == "human/ann") & (turns.role == "judge")]
    assert list(human_turn["round"]) == [4]


def test_a_notebook_registers_the_example_and_settings_are_checked(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from oversight.protocol import registry

    monkeypatch.setattr(registry, "_registered", {})  # registered for this test only

    spec_obj = importlib.util.spec_from_file_location("xexam_nb", EXAMPLE / "cross_examination.py")
    assert spec_obj is not None and spec_obj.loader is not None
    module = importlib.util.module_from_spec(spec_obj)
    spec_obj.loader.exec_module(module)
    oversight.register_protocol(module.CrossExamination)
    spec = {"name": "nb", "tasks": ["boolq"], "limit": 1, "protocols": [NAME], "agent": "sim/strong",
            "judges": ["sim/weak"], "cache_dir": str(tmp_path / "cache")}
    result = oversight.run(spec, out=tmp_path / "run", stream=open_null())
    assert set(result.judgments.protocol) == {NAME} and len(result.judgments) == 2
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["identity"]["protocols"][NAME]["origin"] == "registered"
    # The protocol's own validation, with the usual one-paragraph error.
    with pytest.raises(OversightError, match=r"cross_examination cannot run .* best_of is 4"):
        oversight.run({**spec, "debate": {"best_of": 4}}, out=tmp_path / "bad", stream=open_null())
    with pytest.raises(OversightError, match="built-in protocol"):
        oversight.register_protocol(module.CrossExamination, name="debate")
    # Registered under a name its class does not set: named in the error, not run.
    oversight.register_protocol(module.CrossExamination, name="xexam2")
    with pytest.raises(OversightError, match=r"'xexam2' protocol .* sets name = 'cross_examination'"):
        oversight.run({**spec, "protocols": ["xexam2"]}, out=tmp_path / "bad2", stream=open_null())
