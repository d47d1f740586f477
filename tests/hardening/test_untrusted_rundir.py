"""Class 1 of issue 21: a shared run directory is not trusted. Links planted in it are never
written through (a rename replaces the link itself), a linked folder inside it is refused,
and ids read from it are checked before they reach a URL."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.hardening.helpers import clear_error, cli, write_spec


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("shared")
    done = cli("run", str(write_spec(base / "spec.yaml")), "--out", str(base / "run"))
    assert done.returncode == 0, done.stderr
    return base / "run"


def copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file():
            (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_report_replaces_a_planted_link_instead_of_writing_through_it(finished_run: Path, tmp_path: Path) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    victim = tmp_path / "victim.pth"
    victim.write_text("untouched\n")
    (run / "report.html").symlink_to(victim)
    (run / "summary.parquet").symlink_to(tmp_path / "elsewhere.parquet")
    done = cli("report", str(run), "--resamples", "20")
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "untouched\n"
    assert not (tmp_path / "elsewhere.parquet").exists()
    assert not (run / "report.html").is_symlink() and "<html" in (run / "report.html").read_text()[:500].lower()
    assert not (run / "summary.parquet").is_symlink()


def test_report_refuses_a_plot_folder_linked_out_of_the_run(finished_run: Path, tmp_path: Path) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    outside = tmp_path / "outside"
    outside.mkdir()
    ins = run / "inspect"
    ins.symlink_to(outside, target_is_directory=True)
    done = cli("export", "inspect", str(run))
    if "inspect_ai" in done.stderr and "not installed" in done.stderr:
        pytest.skip("inspect_ai is not installed")
    clear_error(done, str(ins), "symbolic link")
    assert list(outside.iterdir()) == []


def link_out(run: Path, name: str, tmp_path: Path) -> tuple[Path, bytes]:
    """Move a run file out of the run and leave a link to it in its place."""
    target = tmp_path / f"real-{name}"
    os.replace(run / name, target)
    (run / name).symlink_to(target)
    return target, target.read_bytes()


def test_a_resume_refuses_a_journal_that_is_a_link(finished_run: Path, tmp_path: Path) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    target, before = link_out(run, "journal.jsonl", tmp_path)
    done = cli("run", str(run / "spec.yaml"), "--resume", "--out", str(run))
    clear_error(done, "journal.jsonl", "symbolic link")
    assert target.read_bytes() == before


def test_the_manifest_is_replaced_not_followed_on_resume(finished_run: Path, tmp_path: Path) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    victim, before = link_out(run, "manifest.json", tmp_path)
    done = cli("run", str(run / "spec.yaml"), "--resume", "--out", str(run))
    assert done.returncode == 0, done.stderr
    assert victim.read_bytes() == before
    assert not (run / "manifest.json").is_symlink()
    assert json.loads((run / "manifest.json").read_text())["identity"]


@pytest.mark.parametrize("bad_id", ["../../v1/files/file-secret", "batch_1?x=1", "batch 1\nInjected: yes"])
def test_a_batch_id_read_from_the_run_directory_is_checked_before_any_url(
    finished_run: Path, tmp_path: Path, bad_id: str
) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    record = {"type": "submitted", "batch_id": bad_id, "token": "t1", "provider": "openai", "model": "m",
              "label": "sim/weak", "keys": ["k"], "shapes": [[1, None]]}
    (run / "batches.jsonl").write_text(json.dumps(record) + "\n")
    done = cli("batch", "status", str(run))
    clear_error(done, "batches.jsonl line 1", "batch_id")


def test_a_model_name_with_a_line_break_is_refused(tmp_path: Path) -> None:
    judge = {"name": "j\nimport os; os.system('touch PWNED')", "provider": "sim", "model": "weak"}
    done = cli("validate", str(write_spec(tmp_path / "spec.yaml", judges=[judge])))
    clear_error(done, "name", "line breaks")
