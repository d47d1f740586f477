"""A QA + consultancy + debate run through OpenAI's Batch API (files upload, batches
create/retrieve, output and error files) on the loopback server, with the real SDK."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import oversight
from oversight.model.batch import read_batches
from oversight.testing import FakeOpenAI
from tests.batch.helpers import reply, sorted_rows, spec


def test_batch_run_gives_the_online_judgments_at_half_price(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI(reply=reply) as server:
        monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-online"))
        online = oversight.run(spec("openai", server), out=tmp_path / "online")
        online_calls = len(server.requests)
        monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-batch"))
        batched = oversight.run(spec("openai", server, batch=True), out=tmp_path / "batch", batch=True,
                                batch_poll_s=0.001)
        assert len(server.requests) == online_calls  # nothing went online
        assert len(server.batch_requests) == online_calls
    assert online.status == batched.status == "complete"
    pd.testing.assert_frame_equal(sorted_rows(online.judgments), sorted_rows(batched.judgments))
    assert batched.totals["cost_usd"] == pytest.approx(online.totals["cost_usd"] / 2)
    records = read_batches(batched.run_dir)
    submitted = [r for r in records if r["type"] == "submitted"]
    assert len(submitted) == len(server.batches) >= 3  # a debate needs several waves
    assert {r["batch_id"] for r in records if r["type"] == "collected"} == {r["batch_id"] for r in submitted}
    # Every paid call names its batch in calls.parquet; the manifest counts waves and batches.
    calls = oversight.load(batched.run_dir).calls
    paid = calls[~calls.cache_hit.astype(bool)]
    assert paid.batch_id.notna().all() and set(paid.batch_id) == {r["batch_id"] for r in submitted}
    manifest = json.loads((batched.run_dir / "manifest.json").read_text())
    stats = manifest["batch"]["models"]["openai-batch"]
    assert stats["batches"] == len(submitted) and stats["requests"] == online_calls
    assert not manifest["batch"]["open_batches"]
    assert manifest["totals"]["cost_usd"] == pytest.approx(online.totals["cost_usd"] / 2)


def _online(server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-online"))
    result = oversight.run(spec("openai", server), out=tmp_path / "online")
    monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-batch"))
    server.requests.clear()
    return result.judgments


def test_per_request_errors_and_an_expired_batch_are_retried_in_later_waves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOpenAI(reply=reply) as server:
        online = _online(server, tmp_path, monkeypatch)
        server.batch_item_faults = [500, 429, 503]
        server.batch_expire = 1  # the first batch runs only half of its requests
        batched = oversight.run(spec("openai", server, batch=True), out=tmp_path / "batch", batch=True,
                                batch_poll_s=0.001)
        assert not server.requests  # every retry went into a batch
    assert batched.status == "complete"
    pd.testing.assert_frame_equal(sorted_rows(online), sorted_rows(batched.judgments))
    first = next(iter(server.batches.values()))
    assert first.expired
    # Three scripted errors and the expired half, each retried once.
    assert batched.totals["retries"] == 3 + len(first.items) - len(first.items) // 2


def test_fallback_online_retries_a_failed_batch_request_online(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI(reply=reply) as server:
        online = _online(server, tmp_path, monkeypatch)
        server.batch_item_faults = [500]
        batched = oversight.run(spec("openai", server, batch=True), out=tmp_path / "batch", batch=True,
                                batch_poll_s=0.001, batch_fallback="online")
        assert len(server.requests) == 1  # the failed one, online
    pd.testing.assert_frame_equal(sorted_rows(online), sorted_rows(batched.judgments))


def test_a_bad_request_inside_a_batch_fails_its_episode_like_online(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    with FakeOpenAI(reply=reply) as server:
        server.batch_item_faults = [400]
        batched = oversight.run(spec("openai", server, batch=True), out=tmp_path / "batch", batch=True,
                                batch_poll_s=0.001)
    errors = batched.judgments[batched.judgments.verdict_status == "error"]
    assert len(errors) >= 1 and errors.error.str.contains("scripted 400").all()


def test_batch_leaves_an_openai_compatible_server_online_unless_its_card_opts_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A base_url other than OpenAI's is usually vLLM or Ollama, which have no Batch API.
    monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    with FakeOpenAI(reply=reply) as server:
        result = oversight.run(spec("openai", server, limit=1), out=tmp_path / "run", batch=True, batch_poll_s=0.001)
        assert server.requests and not server.batches
    assert result.status == "complete"


def test_a_batch_the_provider_lost_is_sent_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A journaled batch the provider answers 404 for (deleted, past retention) is marked
    collected, and its calls go into a new wave instead of failing the run."""
    with FakeOpenAI(reply=reply) as server:
        online = _online(server, tmp_path, monkeypatch)
        server.batch_hold = True
        out = tmp_path / "batch"
        oversight.run(spec("openai", server, batch=True), out=out, batch=True, detach=True, batch_poll_s=0.001)
        [lost] = list(server.batches)
        del server.batches[lost]
        server.batch_hold = False
        resumed = oversight.run(spec("openai", server, batch=True), out=out, resume=True, batch_poll_s=0.001)
        assert not server.requests
    assert resumed.status == "complete"
    pd.testing.assert_frame_equal(sorted_rows(online), sorted_rows(resumed.judgments))
    states = {r["batch_id"]: r.get("state") for r in read_batches(out) if r["type"] == "collected"}
    assert states[lost] == "not_found"
