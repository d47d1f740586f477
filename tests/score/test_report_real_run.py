"""`oversight report` on real run directories: a sim run of every protocol, and a run whose
judge (a loopback OpenAI server) fails some calls and gives invalid answers to others."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import oversight
from oversight.cli import main
from oversight.testing import FakeOpenAI, Fault


def test_report_for_a_sim_run_of_every_protocol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = {"name": "r", "tasks": ["quality", "gsm8kqa"], "limit": 3, "agent": "sim/strong",
            "judges": ["sim/weak", "sim/medium"], "debate": {"rounds": 2, "best_of": 2},
            "protocols": ["qa", "qa_with_article", "consultancy", "debate", "open_consultancy", "open_debate"]}
    run = oversight.run(spec, out=tmp_path / "run")
    assert main(["report", str(run.run_dir), "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "SIMULATED" in out and "open_debate" in out
    html = (run.run_dir / "report.html").read_text()
    assert "SIMULATED" in html and "verified" in html
    for name in ("summary.parquet", "comparisons.parquet", "open.parquet", "accuracy.png"):
        assert (run.run_dir / name).exists(), name


def test_report_with_failed_episodes_and_invalid_verdicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    replies = itertools.cycle(["Answer: 1", "I cannot decide.", "Answer: 2", "Answer: 1 or 2"])
    with FakeOpenAI(reply=lambda body: next(replies), faults=[Fault(400), Fault(422)]) as server:
        judge = {"name": "flaky", "provider": "openai", "model": "m", "base_url": server.base_url,
                 "api_key_env": "FAKE_KEY", "max_retries": 0}
        spec = {"name": "f", "tasks": ["boolq"], "limit": 4, "protocols": ["qa", "qa_with_article"],
                "judges": [judge], "concurrency": 1}
        run = oversight.run(spec, out=tmp_path / "run")
    statuses = run.judgments.verdict_status.value_counts().to_dict()
    # "I cannot decide." is a refusal; "Answer: 1 or 2" names both answers: invalid
    assert statuses.get("error") == 2 and statuses.get("refused", 0) >= 3 and statuses.get("invalid", 0) >= 3
    assert main(["report", str(run.run_dir), "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "not ok" in out and "failed" in out
    html = (run.run_dir / "report.html").read_text()
    assert "bad_request" in html or "auth" in html  # the failed episodes are listed with their errors


def test_capped_transcript_browser_keeps_every_protocol(tmp_path: Path) -> None:
    from oversight.score.report import build_report

    spec = {"name": "c", "tasks": ["boolq"], "limit": 4, "agent": "sim/strong", "judges": ["sim/weak"],
            "protocols": ["qa", "qa_with_article", "consultancy", "debate"], "debate": {"rounds": 1}}
    run = oversight.run(spec, out=tmp_path / "run")
    build_report([run.run_dir], None, n_resamples=100, write_plots=False, max_transcripts=8)
    html = (run.run_dir / "report.html").read_text()
    shown = html.count('<section class="transcript"')
    assert shown == 8
    for protocol in ("qa", "qa_with_article", "consultancy", "debate"):
        assert f'data-protocol="{protocol}"' in html
