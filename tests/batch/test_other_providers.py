"""The same QA + consultancy + debate run through Anthropic Message Batches and Gemini batch
mode (batchGenerateContent with inline requests, batches.get) on the loopback servers, with
the real SDKs: the judgments equal the online run's, and per-request errors and an expired
batch are retried."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import oversight
from oversight.testing_providers import FakeAnthropic, FakeGemini
from tests.batch.helpers import reply, sorted_rows, spec


@pytest.mark.parametrize(
    ("provider", "server_class", "faults"),
    [("anthropic", FakeAnthropic, [529, 429]), ("google", FakeGemini, [503, 429])],
)
def test_batch_run_matches_online_with_errors_and_expiry_retried(
    provider: str, server_class: type, faults: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with server_class(reply=reply) as server:
        monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-online"))
        online = oversight.run(spec(provider, server), out=tmp_path / "online")
        calls = len(server.requests)
        server.requests.clear()
        monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-batch"))
        server.batch_item_faults = list(faults)
        server.batch_expire = 1
        batched = oversight.run(spec(provider, server), out=tmp_path / "batch", batch=True, batch_poll_s=0.001)
        assert not server.requests
    assert batched.status == "complete"
    pd.testing.assert_frame_equal(sorted_rows(online.judgments), sorted_rows(batched.judgments))
    first = next(iter(server.batches.values()))
    assert batched.totals["retries"] == 2 + len(first.items) - len(first.items) // 2
    # Every call ran once in a batch, and the two that failed ran again (the expired ones never ran).
    assert len(server.batch_requests) == calls + 2
    assert batched.totals["cost_usd"] == pytest.approx(online.totals["cost_usd"] / 2)
