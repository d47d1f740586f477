"""The summary `oversight run` prints when it finishes: how long it takes, and that it
imports neither scipy nor matplotlib.

Runs the Quickstart spec (sim models, offline; or reads `--run-dir`), then, in a fresh
process that has already imported pandas and read judgments.parquet (as the finished run
has), times `run_summary` (the headline's permutation tests at 10,000 resamples, the
accuracy tables, the failures) `--repeats` times and lists any scipy or matplotlib module
it loaded.

    python benchmarks/run_summary.py [--repeats 5] [--run-dir DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import statistics, sys, time
import pandas as pd
j = pd.read_parquet(sys.argv[1] + "/judgments.parquet")
t0 = time.perf_counter()
from oversight.score.report import run_summary
imported = time.perf_counter() - t0
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    run_summary(sys.argv[1], j)
    times.append(time.perf_counter() - t)
heavy = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("scipy", "matplotlib")})
print(f"import {imported:.3f} s; run_summary: first {times[0]:.3f} s, median {statistics.median(times):.3f} s "
      f"over {len(times)}; scipy/matplotlib loaded: {heavy or 'none'}")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--run-dir", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir
        if run_dir is None:
            run_dir = Path(tmp, "run")
            subprocess.run([sys.executable, "-m", "oversight", "run", "runs/quickstart.yaml", "--out", str(run_dir)],
                           check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-c", PROBE, str(run_dir), str(max(1, args.repeats))], check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
