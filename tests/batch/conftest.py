from __future__ import annotations

from pathlib import Path

import pytest

from oversight import catalogue
from oversight.model import batch, wrapper
from tests.batch import helpers
from tests.batch.helpers import KEY_ENV


@pytest.fixture(autouse=True)
def _fast_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Quiet periods and backoff at their real scale would make the tests slow, not different.
    monkeypatch.setattr(batch, "QUIET_S", 0.01)
    monkeypatch.setattr(wrapper, "BACKOFF_BASE_S", 0.001)
    for env in KEY_ENV.values():
        monkeypatch.setenv(env, "sk-batch-test")


@pytest.fixture(autouse=True)
def _card_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "catalogue"
    (folder / "judges").mkdir(parents=True)
    monkeypatch.setattr(catalogue, "_extra", [folder])
    monkeypatch.setattr(helpers, "CATALOGUE", [folder])
