"""The wheel holds the package and the catalogue, never run outputs; installed from the
wheel (no source checkout anywhere), the bundled specs run by name from an empty folder.

The project is copied without its .gitignore and with run outputs planted under runs/, so
the wheel's own file selection must leave them out. Built offline with the venv's
hatchling (the dev extra), as `pip wheel --no-build-isolation` does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.ecosystem.helpers import ROOT, clean_env, cli

CATALOGUE = ("protocols", "tasks", "judges")


def _pip(*args: str) -> None:
    p = subprocess.run([sys.executable, "-m", "pip", *args, "--no-deps", "--no-index", "-q"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr


def _catalogue_files(root: Path) -> set[str]:
    files = {str(f.relative_to(root)) for kind in CATALOGUE for f in (root / kind).rglob("*") if f.is_file()}
    return files | {f"runs/{f.name}" for f in (root / "runs").glob("*.yaml")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling", reason="the dev extra's hatchling builds the wheel offline")
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "runs")
    for name in ("oversight", *CATALOGUE):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    (src / "runs").mkdir()
    for spec in (ROOT / "runs").glob("*.yaml"):
        shutil.copy(spec, src / "runs")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    # What a researcher's checkout holds after a few runs: journals, tables, a report.
    out = src / "runs" / "quickstart" / "20250101-000000-0001"
    out.mkdir(parents=True)
    for name in ("journal.jsonl", "judgments.parquet", "report.html", "spec.yaml", "manifest.json"):
        (out / name).write_text("x")
    dist = tmp_path_factory.mktemp("dist")
    _pip("wheel", str(src), "--no-build-isolation", "-w", str(dist))
    (built,) = dist.glob("oversight-*.whl")
    return built


def test_the_wheel_holds_only_the_package_and_the_catalogue(wheel: Path) -> None:
    names = [n for n in zipfile.ZipFile(wheel).namelist() if not n.endswith("/")]
    dist_info = [n for n in names if n.split("/")[0].endswith(".dist-info")]
    package = [n for n in names if n not in dist_info]
    assert all(n.startswith("oversight/") for n in package)
    shipped = {n.removeprefix("oversight/_catalogue/") for n in package if n.startswith("oversight/_catalogue/")}
    assert shipped == _catalogue_files(ROOT)  # every card, preset, template, sample and spec; nothing else
    assert not [n for n in package if n.startswith("oversight/_catalogue/runs/") and n.count("/") > 3]
    code = {n for n in package if not n.startswith("oversight/_catalogue/")}
    assert code == {str(f.relative_to(ROOT)) for f in (ROOT / "oversight").rglob("*")
                    if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc"}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_installed_from_the_wheel_a_bundled_spec_runs_by_name_anywhere(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    _pip("install", "--target", str(site), str(wheel))
    work = tmp_path / "work"
    work.mkdir()
    env = clean_env(PYTHONPATH=str(site))
    python = [sys.executable, "-m", "oversight"]
    where = subprocess.run([sys.executable, "-c", "import oversight; print(oversight.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True)
    assert Path(where.stdout.strip()).is_relative_to(site), where  # the wheel's copy, not the checkout

    listing = cli(["list", "runs"], work, env, prefix=python)
    assert listing.returncode == 0, listing.stderr
    assert any(ln.startswith("quickstart ") and ln.rstrip().endswith("bundled") for ln in listing.stdout.splitlines())
    p = cli(["run", "quickstart", "--set", "limit=1", "--set", "tasks=[boolq, prontoqa]"], work, env, prefix=python)
    assert p.returncode == 0, p.stderr
    (run_dir,) = (d for d in (work / "runs" / "quickstart").iterdir() if not d.is_symlink())
    assert (run_dir / "judgments.parquet").exists()
    assert not list((site / "oversight" / "_catalogue" / "runs").glob("*/"))  # nothing written into the package
