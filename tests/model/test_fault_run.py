"""A whole run (QA, consultancy and debate) against a loopback OpenAI server that fails
about one request in five — 429s with and without Retry-After, 500s, hangs, broken bodies
and empty replies, drawn at random but seeded — ends with exactly the rows of the same
run against a server that never fails."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import oversight
from oversight.model import wrapper
from oversight.testing import FakeOpenAI, Fault, RandomFaults

# The mix: 10% 429 (half with Retry-After), 5% 500, 1% hang, 1% broken body, 2% empty.
RATES = [
    (0.05, Fault(429)),
    (0.05, Fault(429, retry_after=0.01)),
    (0.05, Fault(500)),
    (0.01, Fault(hang=True)),
    (0.01, Fault(broken=True)),
    (0.01, Fault(empty="samples")),
    (0.01, Fault(empty="text")),
]
# One of each first, so every kind is met however the prompts (and so the draws) change.
SCRIPTED = [fault for _, fault in RATES]
# What the run's rows may differ in: the run's identity, and what retrying costs.
IGNORED = ["run_id", "episode_cost_usd"]


def reply(body: dict[str, Any]) -> str:
    """A deterministic function of the prompt, varied enough that judges and debaters
    give both answers."""
    digest = hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()
    return f"Point {digest[:10]}: the passage bears this out. Answer: {1 + int(digest[10], 16) % 2}"


def spec(server: FakeOpenAI) -> dict[str, Any]:
    card = {"name": "flaky", "provider": "openai", "model": "fake-model", "base_url": server.base_url,
            "api_key_env": "FAULT_RUN_KEY", "max_retries": 12, "timeout_s": 1.0,
            "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
    return {"name": "faults", "tasks": ["boolq"], "limit": 4, "protocols": ["qa", "consultancy", "debate"],
            "agent": card, "judges": [card], "debate": {"rounds": 2}, "consultancy": {"rounds": 2}}


def sorted_rows(frame: pd.DataFrame, drop: list[str]) -> pd.DataFrame:
    keep = frame.drop(columns=[c for c in drop if c in frame.columns])
    return keep.sort_values(list(keep.columns)).reset_index(drop=True)


def test_a_fault_injected_run_ends_identical_to_a_fault_free_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAULT_RUN_KEY", "sk-fault-run-key")
    # Full-jitter backoff at its real scale would make this test slow, not different.
    monkeypatch.setattr(wrapper, "BACKOFF_BASE_S", 0.001)

    # One server for both runs (episode and transcript ids hash the card, port included);
    # two caches, so the second run really calls it.
    with FakeOpenAI(reply=reply) as server:
        monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-clean"))
        clean = oversight.run(spec(server), out=tmp_path / "clean")
        clean_requests = len(server.requests)
        assert not server.injected

        monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache-faulty"))
        server.faults, server.fault_plan = list(SCRIPTED), RandomFaults(RATES, seed=7)
        faulty = oversight.run(spec(server), out=tmp_path / "faulty")
        injected = dict(server.injected)
        faulty_requests = len(server.requests) - clean_requests

    assert clean.status == faulty.status == "complete"
    assert clean.totals["retries"] == 0
    # Every fault kind was met, about as often as asked, and each cost a retry.
    assert set(injected) == {f.label for f in SCRIPTED}
    n_faults = sum(injected.values())
    assert 0.1 < n_faults / faulty_requests < 0.35, injected
    assert faulty.totals["retries"] >= n_faults
    assert faulty_requests >= clean_requests + n_faults

    j_clean, j_faulty = clean.judgments, faulty.judgments
    assert len(j_clean) == len(j_faulty) == 32  # 4 items x 2 orders: 8 qa, 16 consultancy, 8 debate
    assert (j_faulty.verdict_status == "ok").all() and j_faulty.error.isna().all()
    assert set(j_clean.protocol) == {"qa", "consultancy", "debate"}
    assert set(j_clean.judge_answer) == {1, 2}  # the replies really vary
    pd.testing.assert_frame_equal(sorted_rows(j_clean, IGNORED), sorted_rows(j_faulty, IGNORED))

    # What the debaters and consultants said is the same too, turn for turn.
    t_clean = oversight.load(clean.run_dir).turns
    t_faulty = oversight.load(faulty.run_dir).turns
    cols = ["transcript_id", "turn", "speaker", "side", "visible", "input_tokens", "output_tokens"]
    pd.testing.assert_frame_equal(sorted_rows(t_clean[cols], []), sorted_rows(t_faulty[cols], []))
