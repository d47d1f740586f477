"""A local model server that is down (a refused connection to a base_url on this machine):
the run stops at once like a bad key, `validate` says so before the run, and the retry
command printed at the end is the run's own command (its --set overrides included)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from oversight.testing import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as s:  # a port nothing listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spec_file(tmp_path: Path, base_url: str, retries: int = 4) -> Path:
    judge = {"name": "local", "provider": "openai", "model": "m", "base_url": base_url, "max_retries": retries}
    spec = {"name": "down", "tasks": ["boolq"], "limit": 6, "protocols": ["qa"], "agent": "sim/strong",
            "judges": [judge], "concurrency": 2}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OVERSIGHT_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "oversight", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_refused_local_connection_stops_the_run_without_retries(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    out = tmp_path / "run"
    p = cli("run", str(spec_file(tmp_path, url)), "--set", "limit=4", "--set", "seed=7", "--out", str(out),
            tmp_path=tmp_path)
    assert "Traceback" not in p.stderr
    assert p.returncode == 1
    assert f"start the server at {url}" in p.stderr and "no new episodes were started" in p.stderr
    calls = pd.read_parquet(out / "calls.parquet")
    assert len(calls) >= 1 and (calls["retries"] == 0).all()  # not a minute of backoff per call
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "stopped" and m["totals"]["episode_errors"] < m["plan"]["episodes"] == 8
    j = pd.read_parquet(out / "judgments.parquet")
    assert j["error"].dropna().str.contains("unreachable").all()
    # Both retry commands carry the run's overrides, so they resume the same experiment
    lines = [x for x in p.stderr.splitlines() if "--resume" in x]
    assert len(lines) == 2 and all("--set limit=4 --set seed=7" in x for x in lines), lines


def test_validate_checks_that_local_servers_answer(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    p = cli("validate", str(spec_file(tmp_path, url)), tmp_path=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert f"nothing answers at the local server(s) of 'local' at {url}" in p.stderr
    assert "Start the server" in p.stderr
    with FakeOpenAI(reply=lambda body: "Answer: 1") as server:
        ok = cli("validate", str(spec_file(tmp_path, server.base_url)), tmp_path=tmp_path)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stderr
