"""`oversight export inspect RUN_DIR`: Inspect eval logs written with inspect_ai's own
classes, read back with `inspect_ai.log.read_eval_log`: one log per task x protocol
variant x judge, a sample per judged instance with the judge's full prompt and reply, the
transcript's calls as model events, and scores that agree with judgments.parquet."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import oversight
from oversight.cli import main
from tests.ecosystem.helpers import cli

log = pytest.importorskip("inspect_ai.log")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    spec = {"name": "insp", "tasks": ["boolq", "prontoqa"], "limit": 2, "agent": "sim/strong",
            "judges": ["sim/weak", "sim/medium"], "protocols": ["qa", "consultancy", "debate", "open_debate"],
            "debate": {"rounds": 2}, "consultancy": {"rounds": 2}}
    oversight.run(spec, out=out)
    return out


def test_the_export_reads_back_with_inspect(run_dir: Path, tmp_path: Path) -> None:
    p = cli(["export", "inspect", str(run_dir), "--out", str(tmp_path / "logs")], tmp_path)
    assert p.returncode == 0, p.stderr
    assert f"inspect view --log-dir {tmp_path / 'logs'}" in p.stdout
    res = oversight.load(run_dir)
    j = res.judgments
    judged = j[j["qa_role"].isna()]
    groups = judged.groupby(["task", "variant", "judge"]).size()
    files = sorted((tmp_path / "logs").glob("*.eval"))
    agent_qa = [f for f in files if f.stem.endswith("_agent-qa")]
    assert len(files) - len(agent_qa) == len(groups) == 2 * 4 * 2
    assert agent_qa  # the agent's own QA answers, which open_debate used, have their own logs

    seen = 0
    for f in files:
        if f in agent_qa:
            continue
        ev = log.read_eval_log(str(f))
        task, variant = ev.eval.task.split("/")
        judge = ev.eval.metadata["judge"]
        rows = judged[(judged["task"] == task) & (judged["variant"] == variant) & (judged["judge"] == judge)]
        assert ev.status == "success" and ev.eval.model == judge and len(ev.samples) == len(rows)
        correct = {(s.id, s.epoch): s.scores["oversight"].value == "C" for s in ev.samples}
        assert sorted(correct.values()) == sorted(bool(x) for x in rows["is_correct"])
        accuracy = ev.results.scores[0].metrics["accuracy"].value
        assert accuracy == pytest.approx(rows["is_correct"].astype(float).mean())
        for s in ev.samples:
            row = rows[rows["episode_id"] == s.metadata["episode_id"]].iloc[0]
            # The full message history: the exact prompt the judge was sent, then its reply.
            assert s.messages[-1].role == "assistant" and s.messages[-1].text == row["judge_raw"]
            assert s.messages[0].text in res.judge_prompt(row)
            assert s.target == str(row["correct_answer"]) and len(s.choices) == 2
            item = res.item(row)
            assert item["question"] in res.judge_prompt(row)
            models = [e for e in s.events if e.event == "model"]
            assert models[-1].role == "judge" and models[-1].output.completion == row["judge_raw"]
            if variant in ("debate", "open_debate"):
                speakers = [e.role for e in models[:-1]]
                assert speakers == ["debater"] * 4  # two rounds of Alice and Bob, then the verdict
                reasoning = [c for c in models[0].output.message.content if c.type == "reasoning"]
                assert reasoning and reasoning[0].reasoning  # private thinking, kept apart from the argument
            if variant == "consultancy":
                assert [e.role for e in models[:-1]] == ["consultant", "judge_question", "consultant"]
            seen += 1
    assert seen == len(judged)


def test_an_errored_episode_carries_its_error_and_no_score(run_dir: Path, tmp_path: Path) -> None:
    import pandas as pd

    broken = tmp_path / "broken"
    broken.mkdir()
    for f in run_dir.glob("*.parquet"):
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "manifest.json").write_text((run_dir / "manifest.json").read_text())
    j = pd.read_parquet(broken / "judgments.parquet")
    first = j.index[(j["variant"] == "qa") & j["qa_role"].isna()][0]
    j.loc[first, ["verdict_status", "error", "judge_raw", "judge_answer", "is_correct", "judge_prompt_id"]] = [
        "error", "server HTTP 503: overloaded", None, None, False, None]
    j.to_parquet(broken / "judgments.parquet", index=False)
    from oversight.export.inspect_log import export_inspect

    written = export_inspect(broken)
    assert all(p.parent == broken / "inspect" for p in written)
    row = j.loc[first]
    path = next(p for p in written if p.name == f"{row['task']}_qa_{row['judge'].replace('/', '-')}.eval")
    ev = log.read_eval_log(str(path))
    failed = [s for s in ev.samples if s.metadata["episode_id"] == row["episode_id"]][0]
    assert failed.error is not None and "503" in failed.error.message and not failed.scores
    assert ev.results.scores[0].unscored_samples == 1


def test_without_inspect_installed_the_export_says_how_to_get_it(
        run_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "inspect_ai.log", None)  # what an import of a missing package does
    assert main(["export", "inspect", str(run_dir)]) == 2
    assert "pip install 'oversight[inspect]'" in capsys.readouterr().err


def test_a_missing_run_directory_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "inspect", str(tmp_path / "nope")]) == 2
    assert "Run directory not found" in capsys.readouterr().err


def test_inspect_views_own_listing_shows_every_judges_log(run_dir: Path, tmp_path: Path) -> None:
    """`inspect view` lists logs through its /api/logs endpoint and hides all but one log per
    (folder, task_id) as "retried" (its computeLogsWithRetried); every exported log,
    the second judge's and the agent's QA included, must be a group of its own."""
    import json
    import socket
    import subprocess
    import time
    import urllib.request

    out = tmp_path / "logs"
    assert cli(["export", "inspect", str(run_dir), "--out", str(out)], tmp_path).returncode == 0
    files = sorted(out.glob("*.eval"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    view = subprocess.Popen([str(Path(sys.executable).parent / "inspect"), "view", "--log-dir", str(out),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        listing = None
        for _ in range(600):  # bounded wait for the server to come up; not a timing assertion
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/logs", timeout=5) as r:
                    listing = json.loads(r.read())
                break
            except OSError:
                assert view.poll() is None, "inspect view exited"
                time.sleep(0.1)
        assert listing is not None
    finally:
        view.terminate()
        view.wait(timeout=30)
    entries = listing["files"]
    assert len(entries) == len(files) == 2 * 4 * 2 + 2
    groups = {(e["name"].rsplit("/", 1)[0], e["task_id"]) for e in entries}
    assert len(groups) == len(entries), "inspect view would hide some logs as retries"
    judges = {(e["task"], e["name"].rsplit("_", 1)[-1]) for e in entries if e["task"] == "boolq/debate"}
    assert len(judges) == 2  # both judges' debate logs are listed
