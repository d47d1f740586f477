"""Class 2 of issue 21: what a provider or the cache returns is validated where it enters.
A reply with impossible token counts or log-probabilities fails its call as malformed
(recorded, retried, never cached), so the run still seals with finite, monotone totals; the
model a reply names is recorded; a cache entry of the wrong shape is a miss."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from oversight.testing import FakeOpenAI
from tests.hardening.helpers import clear_error, cli, write_spec


class Tampered(FakeOpenAI):
    """The OpenAI wire format with one field of every reply replaced."""

    def __init__(self, change: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.change = change

    def success(self, body: dict[str, Any], path: str) -> dict[str, Any]:
        reply = super().success(body, path)
        self.change(reply)
        return reply


def set_usage(**values: Any) -> Any:
    def change(reply: dict[str, Any]) -> None:
        reply["usage"].update(values)
    return change


def set_logprob(value: float) -> Any:
    def change(reply: dict[str, Any]) -> None:
        for c in reply["choices"]:
            for tok in (c.get("logprobs") or {}).get("content") or []:
                tok["logprob"] = value
                for alt in tok["top_logprobs"]:
                    alt["logprob"] = value
    return change


def run_against(server: FakeOpenAI, tmp_path: Path, cache: Path, name: str = "run", **card: Any) -> Path:
    judge = {"name": "j", "provider": "openai", "model": "gpt-x", "base_url": server.base_url,
             "max_retries": 1, "logprobs": True, **card}
    spec = write_spec(tmp_path / f"{name}.yaml", judges=[judge])
    done = cli("run", str(spec), "--out", str(tmp_path / name), env={"OVERSIGHT_CACHE_DIR": str(cache)})
    assert "Traceback" not in done.stderr, done.stderr
    return tmp_path / name


def strict_manifest(run: Path) -> dict[str, Any]:
    def refuse(token: str) -> float:
        raise AssertionError(f"manifest.json holds a bare {token}")
    data: dict[str, Any] = json.loads((run / "manifest.json").read_text(), parse_constant=refuse)
    return data


BAD_REPLIES = {
    "negative_prompt_tokens": set_usage(prompt_tokens=-1_000_000),
    "negative_completion_tokens": set_usage(completion_tokens=-5),
    "absurd_prompt_tokens": set_usage(prompt_tokens=10**30),
    "float_tokens": set_usage(completion_tokens=1e300),
    "positive_logprob": set_logprob(7.5),
    "huge_negative_logprob": set_logprob(-1e400),  # -inf once parsed
}


@pytest.mark.parametrize("case", list(BAD_REPLIES))
def test_an_impossible_reply_fails_its_call_and_the_run_still_seals(
    case: str, tmp_path: Path, _isolated_cache: Path
) -> None:
    with Tampered(BAD_REPLIES[case]) as server:
        run = run_against(server, tmp_path, _isolated_cache)
        sent = len(server.requests)
    judgments = pd.read_parquet(run / "judgments.parquet")
    assert len(judgments) == 4
    assert judgments["error"].notna().all()
    assert judgments["error"].str.contains("malformed").all(), judgments["error"].tolist()
    assert sent == 4 * 2  # each call tried twice (max_retries 1), then recorded as failed
    calls = pd.read_parquet(run / "calls.parquet")
    assert (calls["input_tokens"].fillna(0) >= 0).all() and (calls["cost_usd"].fillna(0) >= 0).all()
    totals = strict_manifest(run)["totals"]
    assert totals["cost_usd"] == 0 and totals["input_tokens"] == 0
    # Nothing bad went into the cache: a second run (same server address, so the same cache
    # keys) asks the server again.
    with Tampered(BAD_REPLIES[case], port=server.port) as server:
        run_against(server, tmp_path, _isolated_cache, name="again")
        assert len(server.requests) == 8


def test_the_model_a_reply_names_is_recorded(tmp_path: Path, _isolated_cache: Path) -> None:
    def rename(reply: dict[str, Any]) -> None:
        reply["model"] = "gpt-cheaper-2024"

    with Tampered(rename) as server:
        run = run_against(server, tmp_path, _isolated_cache)
    calls = pd.read_parquet(run / "calls.parquet")
    assert calls["model"].eq("j").all()
    assert calls["reply_model"].eq("gpt-cheaper-2024").all()
    # And from the cache (same address, same keys), the same.
    with Tampered(rename, port=server.port) as server:
        again = run_against(server, tmp_path, _isolated_cache, name="again")
        assert server.requests == []
    assert pd.read_parquet(again / "calls.parquet")["reply_model"].eq("gpt-cheaper-2024").all()


WRONG_SHAPES: dict[str, Any] = {
    "negative_usage": {"texts": ["Answer: 1"], "usage": [-5, 3]},
    "bool_usage": {"texts": ["Answer: 1"], "usage": [True, 3]},
    "float_usage": {"texts": ["Answer: 1"], "usage": [1.5, 3e300]},
    "positive_logprob": {"texts": ["Answer: 1"], "usage": [1, 1], "logprobs": [[[8, 9, {"1": 3.0}]]]},
    "logprob_outside_text": {"texts": ["Answer: 1"], "usage": [1, 1], "logprobs": [[[80, 90, {"1": -0.1}]]]},
    "texts_a_string": {"texts": "Answer: 1", "usage": [1, 1]},
    "not_an_object": [["Answer: 1"], [1, 1]],
}


@pytest.mark.parametrize("shape", list(WRONG_SHAPES))
def test_cache_entries_of_the_wrong_shape_are_misses(shape: str, tmp_path: Path, _isolated_cache: Path) -> None:
    with FakeOpenAI() as server:
        run_against(server, tmp_path, _isolated_cache)
        first = len(server.requests)
    entries = sorted(_isolated_cache.rglob("*.json"))
    assert len(entries) == first == 4
    for path in entries:
        path.write_text(json.dumps(WRONG_SHAPES[shape]))
    with FakeOpenAI(port=server.port) as server:  # the same address: the same cache keys
        again = run_against(server, tmp_path, _isolated_cache, name="again")
        assert len(server.requests) == 4  # every damaged entry asked again, none trusted
    j = pd.read_parquet(again / "judgments.parquet")
    assert j["error"].isna().all() and j["verdict_status"].eq("ok").all(), j[["error", "verdict_status"]]
    assert (pd.read_parquet(again / "calls.parquet")["input_tokens"] > 0).all()


@pytest.mark.parametrize("price", ["1e308", "2000000"])
def test_an_absurd_price_is_refused(price: str, tmp_path: Path) -> None:
    judge = {"name": "j", "provider": "sim", "model": "weak", "price": {"input_per_mtok": float(price)}}
    done = cli("validate", str(write_spec(tmp_path / "s.yaml", judges=[judge])))
    clear_error(done, "input_per_mtok")
