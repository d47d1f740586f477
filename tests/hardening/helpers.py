"""Shared by the hardening tests (issue 21): the real `oversight` executable in a
subprocess, as a user (or whoever shared a run directory) meets it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "oversight", *args], cwd=cwd or ROOT, env=full,
                          capture_output=True, text=True, timeout=timeout, check=False)


def write_spec(path: Path, **spec: Any) -> Path:
    data = {"name": "h", "tasks": ["boolq"], "limit": 2, "protocols": ["qa"], "judges": ["sim/weak"],
            "concurrency": 1}
    data.update(spec)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def clear_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit status 2, no traceback, and every needle in the message."""
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr
    for n in needles:
        assert n in done.stderr, (n, done.stderr)
