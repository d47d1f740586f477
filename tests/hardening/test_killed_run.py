"""Class 6 of issue 21, continued: `judge-ui --seal` on a run whose `oversight run` was
killed with kill -9 refuses with the resume command, instead of sealing half a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from oversight.testing import FakeOpenAI
from tests.hardening.helpers import ROOT, clear_error, cli, write_spec


def test_judge_ui_seal_refuses_a_run_killed_with_kill_9(tmp_path: Path, _isolated_cache: Path) -> None:
    run = tmp_path / "run"
    with FakeOpenAI(latency_s=0.3) as server:
        judge = {"name": "j", "provider": "openai", "model": "m", "base_url": server.base_url, "max_concurrency": 1}
        spec = write_spec(tmp_path / "s.yaml", limit=20, judges=[judge])
        env = {**os.environ, "OVERSIGHT_CACHE_DIR": str(_isolated_cache)}
        proc = subprocess.Popen([sys.executable, "-m", "oversight", "run", str(spec), "--out", str(run)],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            journal = run / "journal.jsonl"
            for _ in range(600):  # until an episode is journaled (polling, no time asserted)
                if journal.exists() and journal.read_text().count("\n") >= 2:
                    break
                time.sleep(0.1)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"
    done = cli("judge-ui", str(run), "--seal")
    clear_error(done, "killed", "--resume")
    assert not (run / "judgments.parquet").exists()
