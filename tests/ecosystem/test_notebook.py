"""Notebooks: `oversight.run` inside a running event loop (as in Jupyter, whose cells run on
one), `await oversight.run_async(...)`, a cancelled await stopping the run cleanly, and
the API visible to dir() and tab completion."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pandas as pd

import oversight
from oversight.testing import FakeOpenAI

SPEC: dict[str, Any] = {"name": "nb", "tasks": ["boolq", "prontoqa"], "limit": 2, "agent": "sim/strong",
                        "judges": ["sim/weak"], "protocols": ["qa", "debate"], "debate": {"rounds": 1}}


def test_run_and_run_async_inside_a_running_event_loop(tmp_path: Path) -> None:
    async def notebook_cell() -> tuple[Any, Any, bool]:
        loop = asyncio.get_running_loop()
        ticks = 0

        async def heartbeat() -> None:  # another task of the notebook's loop, e.g. a widget
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        beat = asyncio.create_task(heartbeat())
        first = oversight.run(SPEC, out=tmp_path / "sync")  # a plain call from a cell
        second = await oversight.run_async(SPEC, out=tmp_path / "async")
        alive = not beat.done()  # the run's clean-up cancels only its own loop's tasks
        beat.cancel()
        assert asyncio.get_running_loop() is loop and ticks > 0
        return first, second, alive

    first, second, alive = asyncio.run(notebook_cell())
    assert alive
    for result in (first, second):
        assert result.status == "complete" and result.exit_code == 0
        assert len(result.judgments) > 0 and (result.run_dir / "judgments.parquet").exists()
    cols = ["task", "item_id", "variant", "order", "judge_answer"]
    a, b = (r.judgments.sort_values(cols)[cols].reset_index(drop=True) for r in (first, second))
    pd.testing.assert_frame_equal(a, b)  # the same experiment, whichever way it was started


def test_run_still_works_in_a_script(tmp_path: Path) -> None:
    result = oversight.run(SPEC, out=tmp_path / "script")
    assert result.status == "complete" and len(oversight.load(result.run_dir).judgments) == len(result.judgments)


def test_a_cancelled_await_stops_the_run_and_leaves_a_consistent_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "cancelled"
    with FakeOpenAI(latency_s=600) as server:  # every call is still in flight when the cell is stopped
        judge = {"name": "slow", "provider": "vllm", "model": "m", "base_url": server.base_url, "max_retries": 0}
        spec = {**SPEC, "judges": [judge], "protocols": ["qa"]}

        async def cell() -> bool:
            task = asyncio.create_task(oversight.run_async(spec, out=out))
            for _ in range(60_000):  # until the run is certainly under way: a call reached the server
                if server.requests:
                    break
                await asyncio.sleep(0.01)
            task.cancel()  # the notebook's stop button
            try:
                await task
            except asyncio.CancelledError:
                return True
            return False

        assert asyncio.run(cell())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["ended"]
    assert (out / "judgments.parquet").exists()  # sealed: what finished is kept, and it can be resumed


def test_the_api_is_visible_to_dir_and_tab_completion() -> None:
    names = dir(oversight)
    for name in ("run", "run_async", "load", "load_items", "fit_elo", "summary_table", "comparisons_table",
                 "item_scores", "open_table", "elo_table", "include", "register_provider", "__version__"):
        assert name in names, name
    assert set(oversight.__all__) == set(oversight._LAZY) and set(oversight.__all__) <= set(names)
    assert callable(oversight.summary_table) and callable(oversight.run_async)


def test_a_notebook_in_a_subfolder_finds_the_projects_judges_or_says_where_it_looked(tmp_path: Path) -> None:
    import subprocess
    import sys

    project = tmp_path / "project"
    (project / "judges").mkdir(parents=True)
    (project / "judges" / "my-judge.yaml").write_text("provider: sim\nmodel: weak\n")
    (project / "notebooks").mkdir()
    cell = ("import oversight\n"
            "spec = {'name': 'nb', 'tasks': ['boolq'], 'limit': 2, 'agent': 'sim/strong', 'judges': [JUDGE],"
            " 'protocols': ['qa']}\n"
            "try:\n"
            "    print('calls', oversight.run(spec, dry_run=True).calls)\n"
            "except oversight.OversightError as e:\n"
            "    print('error', e)\n")

    def run_cell(judge: str) -> str:  # a kernel runs in the notebook's own folder
        p = subprocess.run([sys.executable, "-c", cell.replace("JUDGE", repr(judge))], cwd=project / "notebooks",
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        return p.stdout

    assert run_cell("my-judge").startswith("calls ")
    err = run_cell("their-judge")
    assert err.startswith("error Unknown model 'their-judge'")
    assert f"Looked in: {project / 'notebooks' / 'judges'}; {project / 'judges'}" in err
    assert "oversight.include(PATH)" in err
