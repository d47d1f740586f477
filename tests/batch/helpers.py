"""Shared pieces of the batch tests: a deterministic reply, a QA + consultancy + debate
spec against a loopback server, and row comparison."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from oversight.testing import LoopbackServer

# What may differ between an online and a batch run of the same spec: the run's identity
# and what the calls cost (batch calls are billed at batch prices).
IGNORED = ["run_id", "episode_cost_usd"]
KEY_ENV = {"openai": "BATCH_TEST_OPENAI_KEY", "anthropic": "BATCH_TEST_ANTHROPIC_KEY",
           "google": "BATCH_TEST_GOOGLE_KEY"}


def _prompt(body: dict[str, Any]) -> Any:
    # The prompt in each wire format (OpenAI messages, Anthropic system + messages, Gemini contents).
    if "contents" in body:
        return [body.get("contents"), body.get("systemInstruction")]
    return [body.get("messages"), body.get("system")]


def reply(body: dict[str, Any]) -> str:
    """A deterministic function of the prompt, varied enough that both answers occur."""
    digest = hashlib.sha256(json.dumps(_prompt(body), sort_keys=True).encode()).hexdigest()
    return f"Point {digest[:10]}: the passage bears this out. Answer: {1 + int(digest[10], 16) % 2}"


def card(provider: str, server: LoopbackServer, **extra: Any) -> dict[str, Any]:
    """A card for the loopback server. An `openai` card with a base_url (as here) takes
    part in `--batch` only with `batch: true` (pass batch=True), as for a real gateway."""
    return {"name": f"{provider}-batch", "provider": provider, "model": "fake-model", "base_url": server.base_url,
            "api_key_env": KEY_ENV[provider], "max_retries": 4, "timeout_s": 5.0, "prompt_cache": False,
            "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}, **extra}


# The folder of card files the batch tests' specs name (conftest includes it in the catalogue).
CATALOGUE: list[Path] = []


def spec(provider: str, server: LoopbackServer, limit: int = 2, **extra: Any) -> dict[str, Any]:
    """The spec names its model by a card file (rewritten on each call), so that switching
    the card's `batch` on changes neither the spec nor, like any card field outside the run
    identity, the episode and transcript ids."""
    data = card(provider, server, **extra)
    folder = CATALOGUE[-1] / "judges"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{data['name']}.yaml").write_text(yaml.safe_dump(data))
    c = data["name"]
    return {"name": f"batch-{provider}", "tasks": ["boolq"], "limit": limit,
            "protocols": ["qa", "consultancy", "debate"], "agent": c, "judges": [c],
            "debate": {"rounds": 2}, "consultancy": {"rounds": 2}}


def sorted_rows(frame: pd.DataFrame, drop: list[str] | None = None) -> pd.DataFrame:
    keep = frame.drop(columns=[c for c in (drop or IGNORED) if c in frame.columns])
    return keep.sort_values(list(keep.columns)).reset_index(drop=True)
