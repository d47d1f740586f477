"""Startup: how long after `oversight run` starts does its first provider request arrive?

Runs the CLI as a fresh process against a loopback OpenAI server (QA, 2 items, cache off)
several times and prints, per run, the time from process start to the server seeing the
first request and to the process exiting. Also prints the same for `python -c pass`, the
interpreter's own floor on this machine, so the figures can be read as differences.

    python benchmarks/startup.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from oversight.testing import FakeOpenAI


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    floor = []
    for _ in range(args.repeats):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        floor.append(time.monotonic() - t0)
    rows = []
    with FakeOpenAI() as server, tempfile.TemporaryDirectory() as d:
        card = {"name": "f", "provider": "openai", "model": "m", "base_url": server.base_url}
        spec = {"name": "startup", "tasks": ["boolq"], "limit": 2, "protocols": ["qa"], "judges": [card]}
        Path(d, "s.yaml").write_text(yaml.safe_dump(spec))
        for i in range(args.repeats):
            seen = len(server.requests)
            t0 = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, "-m", "oversight", "run", f"{d}/s.yaml", "--out", f"{d}/r{i}", "--cache", "off"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            while len(server.requests) == seen and proc.poll() is None:
                time.sleep(0.001)
            first = time.monotonic() - t0
            proc.wait()
            rows.append((first, time.monotonic() - t0))
    print(f"python -c pass: best {min(floor):.2f}s")
    for first, total in rows:
        print(f"first request after {first:.2f}s, process done after {total:.2f}s")
    print(f"best: first request {min(r[0] for r in rows):.2f}s, done {min(r[1] for r in rows):.2f}s")


if __name__ == "__main__":
    main()
