"""Running the `oversight` command as a user would: the installed console script, in a
subprocess, from a folder of the test's choosing, with no API key in the environment."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")


def command() -> list[str]:
    script = Path(sys.executable).parent / "oversight"
    return [str(script)] if script.exists() else [sys.executable, "-m", "oversight"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS and k != "OVERSIGHT_DEBUG"}
    env.update(extra)
    return env


def cli(args: list[str], cwd: Path, env: dict[str, str] | None = None,
        prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(prefix or command()), *args], cwd=cwd, env=env or clean_env(), capture_output=True,
                          text=True, timeout=600)


@contextlib.contextmanager
def listening(port: int) -> Iterator[None]:
    """Something answering on 127.0.0.1:port, as the server the card names would
    (`validate` checks that local servers answer); a port already taken is answered."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
    except OSError:
        pass  # taken: something listens there already
    try:
        yield
    finally:
        sock.close()
