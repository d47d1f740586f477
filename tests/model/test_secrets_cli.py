"""`oversight run` then `oversight report`, in subprocesses as a user runs them, against a
server that answers every request with a 401 whose body quotes all the request's headers
(API key included): the key reaches no file written under the run directory or the
cache, nor the commands' output, and the error is still recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from oversight.testing import FakeOpenAI, Fault, LoopbackServer
from oversight.testing_providers import FakeAnthropic, FakeGemini

ROOT = Path(__file__).resolve().parents[2]

SERVERS: list[tuple[str, type[LoopbackServer]]] = [
    ("openai", FakeOpenAI),
    ("anthropic", FakeAnthropic),
    ("google", FakeGemini),
]


def oversight_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # The exit code is not asserted: an auth failure may end the run early, or not.
    return subprocess.run([sys.executable, "-m", "oversight", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def stored_text(path: Path) -> str:
    """A written file's text as a reader would get it: parquet decoded (its pages may be
    compressed, which would hide a key from a byte search), anything else as bytes."""
    raw = path.read_bytes().decode("latin-1")
    if path.suffix != ".parquet":
        return raw
    frame = pd.read_parquet(path)
    return raw + "\n" + frame.astype(str).to_csv()


def recorded_errors(run_dir: Path) -> list[str]:
    errors: list[str] = []
    journal = run_dir / "journal.jsonl"
    if journal.exists():
        for line in journal.read_text().splitlines():
            row = json.loads(line).get("row") or {}
            if row.get("error"):
                errors.append(row["error"])
    if (run_dir / "judgments.parquet").exists():
        errors += pd.read_parquet(run_dir / "judgments.parquet").error.dropna().tolist()
    return errors


@pytest.mark.parametrize(("provider", "server_cls"), SERVERS, ids=[s[0] for s in SERVERS])
def test_a_key_echoed_in_an_error_body_is_written_nowhere(
    provider: str, server_cls: type[LoopbackServer], tmp_path: Path, _isolated_cache: Path
) -> None:
    key = f"sk-CANARY-{provider}-8d41c6b0e29f47a5"
    env_var = f"OVERSIGHT_TEST_{provider.upper()}_KEY"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update({env_var: key, "OVERSIGHT_CACHE_DIR": str(_isolated_cache)})
    run_dir = tmp_path / "run"

    with server_cls(fault_plan=lambda body: Fault(401, echo_headers=True)) as server:
        judge = {"name": f"leaky-{provider}", "provider": provider, "model": "m", "base_url": server.base_url,
                 "api_key_env": env_var, "max_retries": 0}
        spec = {"name": "leak", "tasks": ["boolq"], "limit": 2, "protocols": ["qa"], "judges": [judge],
                "concurrency": 1}
        spec_path = tmp_path / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(spec))
        ran = oversight_cli("run", str(spec_path), "--out", str(run_dir), env=env)
        reported = oversight_cli("report", str(run_dir), "--resamples", "50", env=env)
        sent = list(server.headers)

    # The key really went out, and the server really sent it back.
    assert sent and all(any(key in v for v in h.values()) for h in sent), ran.stderr
    assert server.injected["echo_headers"] == len(sent)

    # The failure is on record, without the key.
    errors = recorded_errors(run_dir)
    assert errors, f"no error recorded\n{ran.stdout}\n{ran.stderr}"
    assert all("auth" in e and "401" in e for e in errors), errors
    assert any("request headers were" in e and "[REDACTED]" in e for e in errors), errors

    written = [p for d in (run_dir, _isolated_cache) if d.exists() for p in d.rglob("*") if p.is_file()]
    assert any(p.name == "journal.jsonl" for p in written)
    for path in written:
        assert key not in stored_text(path), path
    for output in (ran.stdout, ran.stderr, reported.stdout, reported.stderr):
        assert key not in output
