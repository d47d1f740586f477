"""The collector settings a run uses (oversight/engine/heap.py), seen from the loopback
server while the run's calls arrive, and put back afterwards."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import oversight
from oversight.engine.heap import YOUNG_THRESHOLD
from oversight.testing import FakeOpenAI


@dataclass
class Watching(FakeOpenAI):
    """Notes the process's collector settings as each request arrives (the server runs in
    a thread of the test process, so it sees what the run set)."""

    seen: list[tuple[int, int]] = field(default_factory=list)

    def batch_route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Any:
        self.seen.append((gc.get_threshold()[0], gc.get_freeze_count()))
        return super().batch_route(method, path, headers, raw)


def test_a_run_freezes_its_heap_and_collects_less_often_then_restores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    before = (gc.get_threshold(), gc.get_freeze_count())
    assert before[0][0] < YOUNG_THRESHOLD
    with Watching() as server:
        card = {"name": "fake", "provider": "openai", "model": "m", "base_url": server.base_url,
                "api_key_env": "FAKE_KEY"}
        spec = {"name": "gc", "tasks": ["boolq"], "limit": 3, "protocols": ["qa"], "judges": [card]}
        result = oversight.run(spec, out=tmp_path / "run", cache="off")
    assert result.exit_code == 0
    assert len(server.seen) == 6  # 3 items, both orders
    assert all(threshold == YOUNG_THRESHOLD and frozen > 0 for threshold, frozen in server.seen)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
