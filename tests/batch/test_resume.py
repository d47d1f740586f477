"""Durability across processes: a run killed (SIGKILL) between submitting a batch and its
completion, then resumed, fetches the batch it already paid for; `detach=True` exits
once the first wave is submitted and `--resume` collects it. Checked by counting what the
loopback server was sent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import oversight
from oversight.engine.rundir import read_manifest
from oversight.model.batch import read_batches
from oversight.testing import FakeOpenAI, LoopbackServer
from oversight.testing_providers import FakeAnthropic, FakeGemini
from tests.batch.helpers import reply, sorted_rows, spec


def _online(server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-online"))
    result = oversight.run(spec("openai", server), out=tmp_path / "online")
    monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-batch"))
    server.requests.clear()
    return result.judgments


def _sent_once(server: LoopbackServer) -> None:
    """No request was put into two batches: nothing paid for was sent again."""
    sent = Counter(json.dumps(body, sort_keys=True) for b in server.batches.values() for _, body in b.items)
    assert sent and max(sent.values()) == 1


def test_a_run_killed_after_submitting_resumes_by_fetching_its_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOpenAI(reply=reply) as server:
        online = _online(server, tmp_path, monkeypatch)
        server.batch_hold = True  # the provider takes its time: the batch stays in progress
        out = tmp_path / "batch"
        script = ("import json, sys, oversight; from oversight import catalogue; catalogue.include(sys.argv[3]); "
                  "oversight.run(json.loads(sys.argv[1]), out=sys.argv[2], batch=True, batch_poll_s=0.01)")
        batch_spec = json.dumps(spec("openai", server, batch=True))
        proc = subprocess.Popen([sys.executable, "-c", script, batch_spec, str(out), str(tmp_path / "catalogue")],
                                env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # Wait (by polling state, not by timing) until the first batch is journaled.
            for _ in range(6000):
                if any(r["type"] == "submitted" for r in read_batches(out)) or proc.poll() is not None:
                    break
                time.sleep(0.01)
            assert proc.poll() is None, "the run ended before its batch was submitted"
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
        first = list(server.batches)
        assert len(first) == 1
        server.batch_hold = False
        resumed = oversight.run(spec("openai", server), out=out, resume=True, batch_poll_s=0.001)
        assert not server.requests
    assert resumed.status == "complete"
    pd.testing.assert_frame_equal(sorted_rows(online), sorted_rows(resumed.judgments))
    _sent_once(server)
    records = read_batches(out)
    assert first[0] in {r["batch_id"] for r in records if r["type"] == "collected"}


SERVERS: dict[str, type[LoopbackServer]] = {"openai": FakeOpenAI, "anthropic": FakeAnthropic, "google": FakeGemini}


@pytest.mark.parametrize("provider", sorted(SERVERS))
def test_detach_then_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: str) -> None:
    with SERVERS[provider](reply=reply) as server:
        monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-online"))
        online = oversight.run(spec(provider, server), out=tmp_path / "online").judgments
        monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-batch"))
        server.requests.clear()
        server.batch_hold = True
        out = tmp_path / "batch"
        detached = oversight.run(spec(provider, server, batch=True), out=out, batch=True, detach=True,
                                 batch_poll_s=0.001)
        assert detached.status == "detached" and detached.exit_code == 0
        assert read_manifest(out)["status"] == "detached"
        assert len(server.batches) == 1 and not any(b.ended for b in server.batches.values())
        server.batch_hold = False
        # No --batch needed: the journaled batches say this run's model is batch-enabled.
        resumed = oversight.run(spec(provider, server), out=out, resume=True, batch_poll_s=0.001)
        assert not server.requests
    assert resumed.status == "complete"
    pd.testing.assert_frame_equal(sorted_rows(online), sorted_rows(resumed.judgments))
    _sent_once(server)


def test_a_spent_budget_stops_a_batch_run_before_the_next_wave(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI(reply=reply) as server:
        online = _online(server, tmp_path, monkeypatch)
        out = tmp_path / "batch"
        capped = {**spec("openai", server, batch=True), "budget_usd": 0.001}
        stopped = oversight.run(capped, out=out, batch=True, batch_poll_s=0.001)
        assert stopped.status == "budget_exhausted"
        waves_before = len(server.batches)
        assert 1 <= waves_before < 6
        resumed = oversight.run(spec("openai", server, batch=True), out=out, resume=True, batch_poll_s=0.001)
        assert not server.requests
    assert resumed.status == "complete"
    pd.testing.assert_frame_equal(sorted_rows(online), sorted_rows(resumed.judgments))
    _sent_once(server)


@pytest.mark.parametrize("provider", ["openai", "google"])
def test_a_batch_sent_by_a_process_killed_before_journaling_it_is_found_not_resent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    """The process dies between the provider creating a batch and `submitted` reaching the
    journal (here: os._exit at that write). Only the intent, written before sending, is on
    disk; the resume finds the batch by the token it carried and waits for it."""
    with SERVERS[provider](reply=reply) as server:
        monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-online"))
        online = oversight.run(spec(provider, server), out=tmp_path / "online").judgments
        monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-batch"))
        server.requests.clear()
        server.batch_hold = True
        out = tmp_path / "batch"
        script = ("import json, os, sys, oversight; from oversight import catalogue; "
                  "from oversight.model import batch; catalogue.include(sys.argv[3]); write = batch.BatchStore.write\n"
                  "def dying(self, record):\n"
                  "    if record['type'] == 'submitted': os._exit(9)\n"
                  "    write(self, record)\n"
                  "batch.BatchStore.write = dying\n"
                  "oversight.run(json.loads(sys.argv[1]), out=sys.argv[2], batch=True, batch_poll_s=0.01)")
        batch_spec = json.dumps(spec(provider, server, batch=True))
        done = subprocess.run([sys.executable, "-c", script, batch_spec, str(out), str(tmp_path / "catalogue")],
                              env=dict(os.environ), capture_output=True, timeout=120)
        assert done.returncode == 9, done.stderr.decode()[-2000:]
        records = read_batches(out)
        assert [r["type"] for r in records] == ["intent"] and len(server.batches) == 1
        server.batch_hold = False
        resumed = oversight.run(spec(provider, server, batch=True), out=out, resume=True, batch_poll_s=0.001)
        assert not server.requests
    assert resumed.status == "complete"
    pd.testing.assert_frame_equal(sorted_rows(online), sorted_rows(resumed.judgments))
    _sent_once(server)
    recovered = [r for r in read_batches(out) if r.get("recovered")]
    assert [r["batch_id"] for r in recovered] == [next(iter(server.batches))]
