"""End-to-end runs: the sim quickstart, caching across runs, failed episodes, crash and
resume, and secrets — through the real OpenAI SDK against a loopback server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import oversight
from oversight.store.tables import JUDGMENT_COLUMNS
from oversight.testing import FakeOpenAI, Fault

ROOT = Path(__file__).resolve().parents[2]
DESIGN_COLUMNS = [
    "run_id", "task", "group", "item_id", "protocol", "judge", "agent", "agent_b", "order",
    "correct_answer", "judge_answer", "is_correct", "verdict_status", "p_correct", "assigned",
    "agent_choice", "rounds", "turn_style", "best_of", "transcript_id", "judge_input_tokens",
    "judge_output_tokens", "episode_cost_usd",
]


def qa_spec(judge: Any, **kw: Any) -> dict[str, Any]:
    spec = {"name": "t", "tasks": ["boolq", "quality"], "limit": 4, "protocols": ["qa", "qa_with_article"],
            "judges": [judge]}
    spec.update(kw)
    return spec


def fake_card(server: FakeOpenAI, **kw: Any) -> dict[str, Any]:
    card = {"name": "fake", "provider": "openai", "model": "fake-model", "base_url": server.base_url,
            "api_key_env": "FAKE_OPENAI_KEY", "max_retries": 1, "timeout_s": 5,
            "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
    card.update(kw)
    return card


def test_sim_run_writes_every_table_with_the_documented_columns(tmp_path: Path) -> None:
    r = oversight.run(qa_spec("sim/medium"), out=tmp_path / "run")
    assert r.status == "complete"
    res = oversight.load(r.run_dir)
    assert list(res.judgments.columns[: len(DESIGN_COLUMNS)]) == DESIGN_COLUMNS
    j = res.judgments
    # 4 boolq items x 2 orders x 2 protocols + quality items x 2 orders x 2 protocols
    assert len(j) == j.groupby(["task", "item_id"]).ngroups * 4
    assert set(j["order"]) == {0, 1}
    assert (j.loc[j.order == 0, "correct_answer"] == 1).all() and (j.loc[j.order == 1, "correct_answer"] == 2).all()
    ok = j[j.verdict_status == "ok"]
    assert (ok.is_correct == (ok.judge_answer == ok.correct_answer)).all()
    assert j.simulated.all()
    assert len(res.calls) == len(j) and len(res.turns) == len(j)
    manifest = json.loads((r.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["templates"] and manifest["simulated"]
    assert (r.run_dir / "spec.yaml").exists()


def test_running_the_same_spec_again_makes_zero_model_calls(tmp_path: Path) -> None:
    first = oversight.run(qa_spec("sim/weak"), out=tmp_path / "a")
    second = oversight.run(qa_spec("sim/weak"), out=tmp_path / "b")
    assert first.totals["provider_requests"] > 0
    assert second.totals["provider_requests"] == 0
    assert second.totals["cache_hits"] == second.totals["calls"] == first.totals["calls"]
    cols = ["item_id", "protocol", "order", "judge_answer"]
    pd.testing.assert_frame_equal(first.judgments[cols], second.judgments[cols])


def test_failed_calls_fail_only_their_episode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test")
    with FakeOpenAI(faults=[Fault(400), Fault(500), Fault(500)]) as server:
        r = oversight.run(qa_spec(fake_card(server), limit=2, tasks=["boolq"], concurrency=1),
                          out=tmp_path / "run")
    j = r.judgments
    errors = j[j.verdict_status == "error"]
    # the 400 is not retried; the two 500s exhaust max_retries=1 on one call
    assert len(errors) == 2 and len(j) == 8
    assert errors.error.str.contains("bad_request").sum() == 1 and errors.error.str.contains("server").sum() == 1
    assert not errors.is_correct.any() and errors.judge_answer.isna().all()
    calls = oversight.load(r.run_dir).calls
    assert calls.error.notna().sum() == 2


def test_a_reply_with_a_lone_surrogate_is_stored_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               _isolated_cache: Path) -> None:
    """A provider can send "\\ud800" in its JSON: a string no UTF-8 file can hold. Through the
    CLI and the real SDK, the run finishes, and the reply is kept with U+FFFD in its place,
    in the journal, the tables and the cache (read back by a second run)."""
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test")
    with FakeOpenAI() as server:
        server.reply = lambda body: "Odd \ud800 bytes.\nAnswer: 1"
        Path(tmp_path / "s.yaml").write_text(yaml.safe_dump(qa_spec(fake_card(server), limit=2, tasks=["boolq"])))
        sent = []
        for name in ("a", "b"):
            done = subprocess.run([sys.executable, "-m", "oversight", "run", str(tmp_path / "s.yaml"), "--out",
                                   str(tmp_path / name)], capture_output=True, text=True, env=os.environ)
            assert done.returncode == 0, done.stderr
            assert "Traceback" not in done.stderr
            sent.append(len(server.requests))
    assert sent[0] > 0 and sent[1] == sent[0]  # the second run read every reply from the cache
    for name in ("a", "b"):
        j = oversight.load(tmp_path / name).judgments
        assert len(j) == sent[0] and (j.verdict_status == "ok").all()
        assert (j.judge_raw == "Odd \ufffd bytes.\nAnswer: 1").all()


def test_canary_secret_never_reaches_a_written_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     _isolated_cache: Path) -> None:
    canary = "sk-CANARY-7f3a9b1e-do-not-write"
    monkeypatch.setenv("FAKE_OPENAI_KEY", canary)
    with FakeOpenAI() as server:
        oversight.run(qa_spec(fake_card(server), limit=2), out=tmp_path / "run")
    assert any(canary in h.get("authorization", "") for h in server.headers)  # it was used...
    written = [p for d in (tmp_path / "run", _isolated_cache) for p in d.rglob("*") if p.is_file()]
    assert written
    for p in written:  # ...and is in no file the harness wrote
        assert canary.encode() not in p.read_bytes(), p


def test_killed_run_resumes_without_repeating_finished_calls(tmp_path: Path, _isolated_cache: Path) -> None:
    with FakeOpenAI(latency_s=0.03) as server:
        spec = qa_spec(fake_card(server, max_concurrency=2), limit=10)
        spec_path = tmp_path / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(spec))
        out = tmp_path / "run"
        env = {**os.environ, "FAKE_OPENAI_KEY": "sk-test", "OVERSIGHT_CACHE_DIR": str(_isolated_cache)}
        proc = subprocess.Popen([sys.executable, "-m", "oversight", "run", str(spec_path), "--out", str(out)],
                                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        journal = out / "journal.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if journal.exists() and journal.read_text().count('{"type":"episode"') >= 10:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        finished_before = journal.read_text().count('{"type":"episode"')
        cached_before = len(list(_isolated_cache.rglob("*.json")))
        sent_before = len(server.requests)
        assert finished_before >= 10 and not (out / "judgments.parquet").exists()

        monkey_env = {"FAKE_OPENAI_KEY": "sk-test"}
        os.environ.update(monkey_env)
        try:
            r = oversight.run(spec_path, out=out, resume=True)
        finally:
            os.environ.pop("FAKE_OPENAI_KEY")
        planned = len(r.judgments)
        sent_after = len(server.requests) - sent_before
    # Resume sent exactly the calls that had not finished before the kill, nothing more.
    assert sent_after == planned - cached_before
    assert r.status == "complete" and r.judgments.episode_id.is_unique
    assert r.totals["episodes_done"] == planned


def test_judgment_columns_are_the_design_contract() -> None:
    assert list(JUDGMENT_COLUMNS)[: len(DESIGN_COLUMNS)] == DESIGN_COLUMNS


def test_budget_stops_scheduling_cleanly_and_resume_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test")
    with FakeOpenAI() as server:
        pricey = fake_card(server, price={"input_per_mtok": 1000.0, "output_per_mtok": 1000.0})
        spec = qa_spec(pricey, limit=4, tasks=["boolq"], concurrency=1, budget_usd=0.5)
        first = oversight.run(spec, out=tmp_path / "run")
        assert first.status == "budget_exhausted"
        assert 0 < len(first.judgments) < 16
        assert first.totals["cost_usd"] >= 0.5
        manifest = json.loads((first.run_dir / "manifest.json").read_text())
        assert manifest["status"] == "budget_exhausted"
        spec["budget_usd"] = None
        second = oversight.run(spec, out=tmp_path / "run", resume=True)
    assert second.status == "complete" and len(second.judgments) == 16
    assert second.judgments.episode_id.is_unique


def test_public_api_names() -> None:
    import pandas as pd

    games = pd.DataFrame({"player_a": ["x", "x", "y"], "player_b": ["y", "y", "x"], "winner": ["x", "x", "y"]})
    ratings = oversight.fit_elo(games, bootstrap=10)
    assert list(ratings.columns[:4]) == ["player", "elo", "ci_low", "ci_high"]
    items = oversight.load_items("boolq", limit=3, seed=1)
    assert len(items) == 3 and all(isinstance(i, oversight.Item) for i in items)
    assert items == oversight.load_items("boolq", limit=3, seed=1)


def test_429_and_timeouts_are_retried_through_the_real_sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test")
    faults = [Fault(429, retry_after=0.05), Fault(hang=True), Fault(503)]
    with FakeOpenAI(faults=faults) as server:
        card = fake_card(server, max_retries=3, timeout_s=0.5)
        r = oversight.run(qa_spec(card, limit=1, tasks=["boolq"], protocols=["qa"], orders="random"),
                          out=tmp_path / "run")
        sent = len(server.requests)
    assert r.judgments.verdict_status.tolist() == ["ok"]
    assert sent == 4  # 429, timeout, 503, then the answer: one retry layer, no SDK retries
    calls = oversight.load(r.run_dir).calls
    assert calls.retries.tolist() == [3]


def test_judge_logprobs_become_p_correct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test")
    with FakeOpenAI(reply=lambda body: "Answer: 1") as server:
        r = oversight.run(qa_spec(fake_card(server), limit=2, tasks=["boolq"], protocols=["qa"]),
                          out=tmp_path / "run")
    assert all(body.get("logprobs") is True for body in server.requests)
    j = r.judgments
    # The judge always answers 1 with P(1) = 0.8 / (0.8 + 0.2): p_correct follows the order.
    assert j.loc[j.order == 0, "p_correct"].round(3).eq(0.8).all()
    assert j.loc[j.order == 1, "p_correct"].round(3).eq(0.2).all()
    from oversight.score import calibration

    cal = calibration(j)
    assert len(cal) >= 1 and cal.iloc[0]["brier"] > 0


def test_p_correct_is_read_at_the_token_of_the_parsed_verdict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test")
    # The reasoning names "1" first; the verdict is the last Answer line, "2". The server gives
    # every digit token P = 0.8 for itself, so reading the first digit would give P(2) = 0.2.
    with FakeOpenAI(reply=lambda body: "Answer 1 looks weak.\nAnswer: 2") as server:
        r = oversight.run(qa_spec(fake_card(server), limit=2, tasks=["boolq"], protocols=["qa"]),
                          out=tmp_path / "run")
    j = r.judgments
    assert (j.judge_answer == 2).all()
    # P(the judge's own answer, 2) = 0.8: p_correct is 0.8 where 2 is correct, 0.2 where 1 is.
    assert j.loc[j.order == 1, "p_correct"].round(3).eq(0.8).all()
    assert j.loc[j.order == 0, "p_correct"].round(3).eq(0.2).all()
