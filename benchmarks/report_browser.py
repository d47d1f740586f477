"""The report's transcript browser at scale: file size and load time in headless Chromium.

Runs the Quickstart spec (sim models, offline) with enough replicates for at least
`--cards` transcript cards (or reads `--run-dir`), writes report.html with
`oversight report`, and opens it `--repeats` times in headless Chromium (`--dump-dom`).
Prints the page size, how long building the report took, and from the page itself:
the time from navigation start until the first cards are rendered (HTML and JSON parsing
included), the browser script's own start-up, and one filter pass over every card (a
full-text search, which also builds the search index).

    python benchmarks/report_browser.py [--cards 10000] [--repeats 3] [--run-dir DIR]
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TRANSCRIPTS_PER_REPLICATE = 370  # Quickstart: debate and consultancy transcripts per replicate


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return str(shutil.which(name))
    sys.exit("needs Chromium: apt-get install chromium")


def load(page: Path, fragment: str, profile: str) -> tuple[float, dict[str, float]]:
    t0 = time.monotonic()
    p = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri() + fragment],
                       capture_output=True, text=True, check=True, timeout=600)
    wall = time.monotonic() - t0
    marks = {k: float(v) for k, v in re.findall(r'data-(browser-ready-ms|browser-init-ms|filter-ms)="([\d.]+)"',
                                                 p.stdout)}
    count = re.search(r'data-count="(\d+)"', p.stdout)
    marks["count"] = float(count.group(1)) if count else math.nan
    return wall, marks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cards", type=int, default=10_000, help="at least this many transcript cards")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--run-dir", type=Path, help="an existing run directory instead of a new sim run")
    args = ap.parse_args()
    exe = [sys.executable, "-m", "oversight"]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir
        if run_dir is None:
            reps = math.ceil(args.cards / TRANSCRIPTS_PER_REPLICATE)
            spec = yaml.safe_load((ROOT / "runs" / "quickstart.yaml").read_text()) | {"replicates": reps}
            Path(tmp, "spec.yaml").write_text(yaml.safe_dump(spec))
            run_dir = Path(tmp, "run")
            t0 = time.monotonic()
            subprocess.run([*exe, "run", str(Path(tmp, "spec.yaml")), "--out", str(run_dir)], check=True,
                           stdout=subprocess.DEVNULL, cwd=ROOT)
            print(f"sim run, {reps} replicates of the Quickstart: {time.monotonic() - t0:.0f} s")
        t0 = time.monotonic()
        subprocess.run([*exe, "report", str(run_dir), "--out", str(Path(tmp, "report"))], check=True,
                       stdout=subprocess.DEVNULL, cwd=ROOT)
        build = time.monotonic() - t0
        page = Path(tmp, "report", "report.html")
        blank = Path(tmp, "blank.html")
        blank.write_text("<!DOCTYPE html><html><body>blank</body></html>")
        text = page.read_text()
        n_cards = text.count('"k":"t"') + text.count('"k":"q"')
        print(f"report.html: {page.stat().st_size / 1e6:.1f} MB, {n_cards:,} cards "
              f"({text.count(chr(34) + 'k' + chr(34) + ':' + chr(34) + 't' + chr(34)):,} transcripts); "
              f"`oversight report` took {build:.1f} s")
        rows = []
        for _ in range(args.repeats):
            floor, _ = load(blank, "", str(Path(tmp, "profile")))
            wall, marks = load(page, "", str(Path(tmp, "profile")))
            _, search = load(page, "#protocol=&q=verified%20passage", str(Path(tmp, "profile")))
            rows.append((wall - floor, marks["browser-ready-ms"], marks["browser-init-ms"], search["filter-ms"],
                         search["count"]))
        for name, k in (("chromium wall time minus a blank page", 0), ("first cards rendered (ms after navigation)", 1),
                        ("browser script start-up (ms)", 2), ("full-text search over every card (ms)", 3)):
            vals = [r[k] * (1000 if k == 0 else 1) for r in rows]
            print(f"  {name:<44} median {statistics.median(vals):8.0f}   (runs: "
                  + ", ".join(f"{v:.0f}" for v in vals) + ")")


if __name__ == "__main__":
    main()
