"""Prompt caching end to end: a debate run whose agent is a hosted model (the real SDK
against a loopback server) records cached-read and cache-write tokens in calls.parquet,
prices them, and totals them in the manifest; the progress line shows them; the dry run
projects the cost with and without caching."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import oversight
from oversight.cli import main
from oversight.engine.estimate import estimate, gemini_implicit_min_tokens
from oversight.engine.prepare import prepare
from oversight.engine.progress import Reporter, Snapshot
from oversight.engine.spec import spec_from_any
from oversight.model.card import ModelCard
from oversight.testing_providers import FakeAnthropic

PRICE = {"input_per_mtok": 0.8, "output_per_mtok": 4.0, "cached_input_per_mtok": 0.08, "cache_write_per_mtok": 1.0}


def reply(body: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()
    return f"Thinking: plan {digest[:6]}.\nArgument: Point {digest[6:14]}: the passage bears this out."


def agent_card(**kw: Any) -> dict[str, Any]:
    return {"name": "claude-fake", "provider": "anthropic", "model": "claude-fake", "api_key_env": "CACHE_RUN_KEY",
            "max_retries": 0, "timeout_s": 30, "price": PRICE, **kw}


def spec(agent: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"name": "cached", "tasks": ["quality"], "limit": 2, "protocols": ["debate"], "agent": agent,
            "judges": ["sim/weak"], "debate": {"rounds": 3, "best_of": 2}, **kw}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_RUN_KEY", "sk-ant-cache-run")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def test_a_run_records_prices_and_totals_cached_tokens(tmp_path: Path) -> None:
    with FakeAnthropic(reply=reply) as server:
        result = oversight.run(spec(agent_card(base_url=server.base_url)), out=tmp_path / "run")
    assert result.status == "complete"
    calls = oversight.load(result.run_dir).calls
    agent = calls[calls.model == "claude-fake"]
    assert len(agent) and agent.error.isna().all()
    # Rounds after the first share the article with earlier prompts: read from the cache.
    assert int(agent.cached_input_tokens.sum()) > 0 and int(agent.cache_write_tokens.sum()) > 0
    assert (agent.cached_input_tokens + agent.cache_write_tokens <= agent.input_tokens).all()
    card = ModelCard.model_validate(agent_card())
    for row in agent.itertuples():
        expected = card.cost(row.input_tokens, row.output_tokens, row.cached_input_tokens, row.cache_write_tokens)
        assert row.cost_usd == pytest.approx(0.0 if row.cache_hit else expected)
    uncached = sum(card.cost(r.input_tokens, r.output_tokens) for r in agent.itertuples() if not r.cache_hit)
    assert agent.cost_usd.sum() < uncached
    # The sim judge reads short prompts and caches nothing; its columns are zeros, not nulls.
    judge = calls[calls.model == "sim/weak"]
    assert (judge.cached_input_tokens == 0).all() and (judge.cache_write_tokens == 0).all()

    totals = json.loads((result.run_dir / "manifest.json").read_text())["totals"]
    paid = calls[~calls.cache_hit.astype(bool)]
    assert totals["cached_input_tokens"] == int(paid.cached_input_tokens.sum())
    assert totals["cache_write_tokens"] == int(paid.cache_write_tokens.sum())
    assert totals["cost_usd"] == pytest.approx(paid.cost_usd.sum(), abs=1e-6)


def test_progress_line_shows_prompt_cached_tokens() -> None:
    out = io.StringIO()
    snap = Snapshot(3, 10, 0, 40, 2, 123_456, 0.5, cached_input_tokens=65_432)
    with Reporter(lambda: snap, "run", out) as reporter:
        reporter.update(force=True)
    assert "123,456 tokens (65,432 prompt-cached)" in out.getvalue()


def test_dry_run_projects_cost_with_and_without_caching(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cached = estimate(prepare(spec_from_any(spec(agent_card()))))
    t = cached.models["claude-fake"]
    assert t.cached_input_tokens > 0 and t.cache_write_tokens > 0
    assert cached.cost_usd < cached.uncached_cost_usd
    card = ModelCard.model_validate(agent_card())
    assert t.cost(card, caching=False) == pytest.approx(card.cost(t.input_tokens, t.output_tokens))

    off = estimate(prepare(spec_from_any(spec(agent_card(prompt_cache=False)))))
    t_off = off.models["claude-fake"]
    assert (t_off.cached_input_tokens, t_off.cache_write_tokens) == (0, 0)
    assert off.cost_usd == pytest.approx(off.uncached_cost_usd) == pytest.approx(cached.uncached_cost_usd)

    # The bundled sample holds fewer items than the limit: the projection scales both figures.
    big = estimate(prepare(spec_from_any(spec(agent_card(), limit=40))))
    assert big.projected is not None and big.projected.cached_input_tokens > t.cached_input_tokens
    assert 0 < big.projected_cost_usd < big.projected_uncached_cost_usd

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec(agent_card(), limit=40)))
    assert main(["run", str(path), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"${big.projected_cost_usd:,.2f} with prompt caching, ${big.projected_uncached_cost_usd:,.2f} without" \
        in printed


def test_gemini_implicit_caching_starts_with_the_2_5_models() -> None:
    assert gemini_implicit_min_tokens("gemini-2.0-flash") is None
    assert gemini_implicit_min_tokens("gemini-2.5-pro") == 4096
    assert gemini_implicit_min_tokens("gemini-2.5-flash") == 2048
