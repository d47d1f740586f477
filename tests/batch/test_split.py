"""A wave larger than the provider's limits goes out as several batches, split by request
count and by bytes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import oversight
from oversight.model.providers.anthropic import AnthropicAPI
from oversight.testing_providers import FakeAnthropic
from tests.batch.helpers import reply, sorted_rows, spec


@pytest.mark.parametrize("limit", ["count", "bytes"])
def test_a_wave_is_split_to_respect_provider_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str
) -> None:
    if limit == "count":
        monkeypatch.setattr(AnthropicAPI, "batch_max_requests", 3)
    else:
        # About two prompts of these tasks per batch.
        monkeypatch.setattr(AnthropicAPI, "batch_max_bytes", 6000)
    with FakeAnthropic(reply=reply) as server:
        monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-online"))
        online = oversight.run(spec("anthropic", server), out=tmp_path / "online")
        monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-batch"))
        batched = oversight.run(spec("anthropic", server), out=tmp_path / "batch", batch=True, batch_poll_s=0.001)
    sizes = [len(b.items) for b in server.batches.values()]
    if limit == "count":
        assert max(sizes) == 3
    else:
        assert min(sizes) >= 1 and max(sizes) < 8
    assert len(sizes) > 10
    pd.testing.assert_frame_equal(sorted_rows(online.judgments), sorted_rows(batched.judgments))
