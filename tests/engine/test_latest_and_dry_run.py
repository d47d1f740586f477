"""`runs/NAME/latest` points at the newest run (so `oversight report runs/NAME/latest`
works without a run id), and `oversight.run(..., dry_run=True)` plans without calling."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

SPEC = {"name": "lat", "tasks": ["boolq"], "limit": 2, "protocols": ["qa"], "agent": "sim/strong",
        "judges": ["sim/weak"]}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OVERSIGHT_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "oversight", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_latest_points_at_the_newest_run_and_reports(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "lat.yaml").write_text(yaml.safe_dump(SPEC))
    assert cli("run", "lat", cwd=tmp_path).returncode == 0
    assert cli("run", "lat", "--set", "seed=3", cwd=tmp_path).returncode == 0
    runs = sorted(d for d in (tmp_path / "runs" / "lat").iterdir() if not d.is_symlink())
    latest = tmp_path / "runs" / "lat" / "latest"
    assert len(runs) == 2 and latest.is_symlink() and latest.resolve() == runs[-1].resolve()
    assert os.readlink(latest) == runs[-1].name  # relative: the folder can be moved
    rep = cli("report", "runs/lat/latest", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert (runs[-1] / "report.html").exists()
    listed = cli("list", "runs", cwd=tmp_path)
    assert "2 run(s) in ./runs/lat/" in listed.stdout  # the link is not counted as a run
    resumed = cli("run", "lat", "--set", "seed=3", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr


def test_run_with_dry_run_returns_the_plan_the_cli_prints_and_calls_nothing(tmp_path: Path) -> None:
    import re

    import oversight
    from oversight.engine.estimate import Estimate

    spec = {**SPEC, "protocols": ["qa", "debate"], "debate": {"rounds": 2}}
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(spec))
    os.chdir(tmp_path)  # a real run would write ./runs/ here; the dry run must not
    try:
        est = oversight.run(spec, dry_run=True)
    finally:
        os.chdir(Path(__file__).resolve().parents[2])
    assert isinstance(est, Estimate)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()
    printed = cli("run", "d.yaml", "--dry-run", cwd=tmp_path).stdout
    total = re.search(r"^\s+total\s+([\d,]+) requests\s+([\d,]+) from cache", printed, re.M)
    assert total and sum(int(g.replace(",", "")) for g in total.groups()) == est.calls > 0
    episodes = re.search(r"^\s+total\s+([\d,]+)$", printed, re.M)
    assert episodes and sum(est.episodes.values()) == int(episodes.group(1).replace(",", ""))
