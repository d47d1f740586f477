from __future__ import annotations

from pathlib import Path

import pytest

# The web app is the optional `ui` extra (in `dev`); without it there is nothing to test here.
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from tests.humanui.helpers import copy_run, make_run  # noqa: E402


@pytest.fixture(scope="session")
def template_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small finished sim run (QA, consultancy, debate on an extractive and a closed
    task), made once; every test judges its own copy."""
    return make_run(tmp_path_factory.mktemp("humanui-template"))


@pytest.fixture
def run_dir(template_run: Path, tmp_path: Path) -> Path:
    return copy_run(template_run, tmp_path)
