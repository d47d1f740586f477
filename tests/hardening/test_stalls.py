"""Class 6 of issue 21: stalls and partial results. A 429's Retry-After is capped by the
card (`max_retry_after_s`) and the progress line says which model backs off until when; a
401 stops the model's queued calls instead of sending each; `report` on a run that did
not finish says so first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from oversight.testing import FakeOpenAI, Fault
from tests.hardening.helpers import cli, write_spec


def judge(server: FakeOpenAI, **card: Any) -> dict[str, Any]:
    return {"name": "j", "provider": "openai", "model": "m", "base_url": server.base_url, **card}


def test_an_hour_long_retry_after_is_capped_and_shown(tmp_path: Path, _isolated_cache: Path) -> None:
    with FakeOpenAI(faults=[Fault(429, retry_after=3600)]) as server:
        spec = write_spec(tmp_path / "s.yaml", limit=1, judges=[judge(server, max_retry_after_s=1)])
        # Uncapped, the call would wait an hour and the subprocess's timeout fail the test.
        done = cli("run", str(spec), "--out", str(tmp_path / "run"), env={"OVERSIGHT_CACHE_DIR": str(_isolated_cache)},
                   timeout=120)
        assert server.injected["429+retry_after"] == 1
    assert done.returncode == 0, done.stderr
    assert "backing off" in done.stderr and "j until " in done.stderr, done.stderr
    j = pd.read_parquet(tmp_path / "run" / "judgments.parquet")
    assert j["error"].isna().all() and len(j) == 2


def test_a_refused_model_sends_none_of_its_queued_calls(tmp_path: Path, _isolated_cache: Path) -> None:
    with FakeOpenAI(fault_plan=lambda body: Fault(401), latency_s=0.2) as server:
        spec = write_spec(tmp_path / "s.yaml", limit=10, concurrency=8,
                          judges=[judge(server, max_concurrency=1, max_retries=0)])
        done = cli("run", str(spec), "--out", str(tmp_path / "run"), env={"OVERSIGHT_CACHE_DIR": str(_isolated_cache)})
        sent = len(server.requests)
    assert "refused the request" in done.stderr, done.stderr
    assert sent == 1, sent  # the episodes already started were queued behind the one slot
    errors = pd.read_parquet(tmp_path / "run" / "judgments.parquet")["error"].dropna()
    assert errors.str.contains("401").all()
    assert errors.str.contains("not sent").sum() == len(errors) - 1


def test_report_on_a_run_that_did_not_finish_says_it_is_partial(tmp_path: Path, _isolated_cache: Path) -> None:
    with FakeOpenAI() as server:
        card = judge(server, price={"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}, max_concurrency=1)
        spec = write_spec(tmp_path / "s.yaml", limit=10, budget_usd=0.01, judges=[card])
        ran = cli("run", str(spec), "--out", str(tmp_path / "run"), env={"OVERSIGHT_CACHE_DIR": str(_isolated_cache)})
    assert "budget" in ran.stdout + ran.stderr
    done = cli("report", str(tmp_path / "run"), "--resamples", "20")
    assert done.returncode == 0, done.stderr
    head = done.stdout.lstrip()
    assert head.startswith("PARTIAL RUN") and "budget_exhausted" in head[:300], done.stdout[:500]


def test_report_on_a_complete_run_says_nothing_of_the_kind(tmp_path: Path) -> None:
    ran = cli("run", str(write_spec(tmp_path / "s.yaml")), "--out", str(tmp_path / "run"))
    assert ran.returncode == 0, ran.stderr
    done = cli("report", str(tmp_path / "run"), "--resamples", "20")
    assert done.returncode == 0 and "PARTIAL" not in done.stdout
