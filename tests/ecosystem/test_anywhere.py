"""The catalogue from any folder, through the CLI as a user types it: bundled specs by name,
a folder's own judges/, tasks/, protocols/ and runs/ found each on its own and taking
precedence, --include before or after the command, outputs in ./runs/NAME/."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from tests.ecosystem.helpers import cli

SIM_CARD = {"provider": "sim", "model": "weak", "sim": {"knowledge": 0.3}}


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_a_bundled_spec_runs_by_name_from_an_empty_folder_and_writes_here(tmp_path: Path) -> None:
    tmp_path = tmp_path / "work"  # beside the test's response cache (conftest), which is not the user's folder
    tmp_path.mkdir()
    p = cli(["run", "quickstart", "--set", "limit=2"], tmp_path)
    assert p.returncode == 0, p.stderr
    runs = [d for d in (tmp_path / "runs" / "quickstart").iterdir() if not d.is_symlink()]  # not runs/NAME/latest
    assert len(runs) == 1 and (runs[0] / "judgments.parquet").exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["runs"]  # nothing else left behind
    j = pd.read_parquet(runs[0] / "judgments.parquet")
    assert set(j["task"]) == {"quality", "boolq", "gsm8kqa", "prontoqa"} and len(j) > 0

    listing = cli(["list", "runs"], tmp_path)
    assert listing.returncode == 0, listing.stderr
    line = next(ln for ln in listing.stdout.splitlines() if ln.startswith("quickstart "))
    assert "1 run(s) in ./runs/quickstart/" in line and line.rstrip().endswith("bundled")
    assert {"elo", "kenton2024", "quickstart"} <= {ln.split()[0] for ln in listing.stdout.splitlines()[:-1]}


def test_a_folder_with_only_judges_is_found_and_its_cards_take_precedence(tmp_path: Path) -> None:
    write(tmp_path / "judges" / "x.yaml", SIM_CARD)
    # Named like a bundled card: the local one wins (a sim, so no key is needed).
    write(tmp_path / "judges" / "gpt-4o-mini.yaml", SIM_CARD)
    listing = cli(["list", "judges"], tmp_path)
    assert listing.returncode == 0, listing.stderr
    lines = {ln.split()[0]: ln for ln in listing.stdout.splitlines() if ln.strip()}
    assert "sim/weak" in lines["x"] and f"here: {tmp_path / 'judges' / 'x.yaml'}" in lines["x"]
    assert "sim/weak" in lines["gpt-4o-mini"] and "(overrides bundled)" in lines["gpt-4o-mini"]
    assert lines["claude-haiku"].rstrip().endswith("bundled")  # the bundled cards stay available
    assert cli(["list", "models"], tmp_path).stdout == listing.stdout  # `judges` is an alias

    p = cli(["validate", "quickstart", "--set", "judges=[x, gpt-4o-mini]"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert "x, gpt-4o-mini" in p.stdout


def test_local_tasks_protocols_and_specs_each_on_their_own(tmp_path: Path) -> None:
    rows = [{"id": f"q{i}", "question": f"Question {i}?", "options": ["yes", "no"], "label": i % 2}
            for i in range(4)]
    write(tmp_path / "tasks" / "data" / "mine.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    write(tmp_path / "tasks" / "mine.yaml", {
        "name": "mine", "group": "closed", "loader": "generic", "path": "data/mine.jsonl",
        "fields": {"id": "id", "question": "question", "answers": "options", "correct": "label"},
        "description": "A local task."})
    write(tmp_path / "protocols" / "debate_2r.yaml", {
        "name": "debate_2r", "description": "Two-round debate.", "kind": "debate", "base": "debate",
        "options": {"rounds": 2}})
    write(tmp_path / "runs" / "mine.yaml", {
        "name": "mine", "tasks": ["mine", "boolq"], "limit": 2, "protocols": ["qa", "debate_2r"],
        "agent": "sim/strong", "judges": ["sim/weak"]})

    tasks = cli(["list", "tasks"], tmp_path).stdout
    assert any(ln.startswith("mine ") and "here:" in ln for ln in tasks.splitlines())
    assert any(ln.startswith("boolq ") and ln.rstrip().endswith("bundled") for ln in tasks.splitlines())
    protocols = cli(["list", "protocols"], tmp_path).stdout
    assert "debate_2r" in protocols and "Not bundled: debate_2r (here:" in protocols

    p = cli(["run", "mine"], tmp_path)
    assert p.returncode == 0, p.stderr
    (run_dir,) = (d for d in (tmp_path / "runs" / "mine").iterdir() if not d.is_symlink())
    j = pd.read_parquet(run_dir / "judgments.parquet")
    assert set(j["task"]) == {"mine", "boolq"} and set(j["variant"]) == {"qa", "debate_2r"}
    assert set(j.loc[j["variant"] == "debate_2r", "rounds"]) == {2}


def test_a_notebook_folder_inside_a_project_finds_the_project_catalogue(tmp_path: Path) -> None:
    for kind in ("tasks", "protocols"):
        (tmp_path / kind).mkdir()
    write(tmp_path / "judges" / "z.yaml", SIM_CARD)
    (tmp_path / "notebooks").mkdir()
    listing = cli(["list", "judges"], tmp_path / "notebooks").stdout
    assert any(ln.startswith("z ") and f"project {tmp_path}" in ln for ln in listing.splitlines())


def test_include_works_before_or_after_the_command(tmp_path: Path) -> None:
    write(tmp_path / "elsewhere" / "judges" / "y.yaml", SIM_CARD)
    here = tmp_path / "here"
    here.mkdir()
    for args in (["list", "models", "--include", "../elsewhere"], ["--include", "../elsewhere", "list", "models"]):
        p = cli(args, here)
        assert p.returncode == 0, p.stderr
        assert any(ln.startswith("y ") and "--include" in ln for ln in p.stdout.splitlines()), p.stdout
    p = cli(["validate", "quickstart", "--include", str(tmp_path / "elsewhere"), "--set", "judges=[y]"], here)
    assert p.returncode == 0, p.stderr


def test_a_missing_include_is_an_error_in_either_place(tmp_path: Path) -> None:
    for args in (["list", "models", "--include", "nowhere"], ["--include", "nowhere", "list", "models"]):
        p = cli(args, tmp_path)
        assert p.returncode == 2
        assert p.stderr.startswith("error: --include nowhere: no such folder") and "Traceback" not in p.stderr


def test_an_unknown_spec_name_lists_the_specs_there_are(tmp_path: Path) -> None:
    p = cli(["run", "quickstrat"], tmp_path)
    assert p.returncode == 2 and "Did you mean 'quickstart'?" in p.stderr and "kenton2024" in p.stderr
    assert not (tmp_path / "runs").exists()

