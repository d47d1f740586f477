from __future__ import annotations

import pytest

from oversight.model import batch, wrapper
from tests.batch.helpers import KEY_ENV


@pytest.fixture(autouse=True)
def _fast_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Quiet periods and backoff at their real scale would make the tests slow, not different.
    monkeypatch.setattr(batch, "QUIET_S", 0.01)
    monkeypatch.setattr(wrapper, "BACKOFF_BASE_S", 0.001)
    for env in KEY_ENV.values():
        monkeypatch.setenv(env, "sk-batch-test")
