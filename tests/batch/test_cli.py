"""The command line: `run --batch --detach`, `batch status`, `run --resume`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from oversight.cli import main
from oversight.testing_providers import FakeAnthropic
from tests.batch.helpers import reply, spec


def test_detach_status_resume_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OVERSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    with FakeAnthropic(reply=reply) as server:
        spec_path = tmp_path / "batch.yaml"
        spec_path.write_text(yaml.safe_dump(spec("anthropic", server)))
        out = tmp_path / "run"
        server.batch_hold = True
        assert main(["run", str(spec_path), "--batch", "--detach", "--batch-poll", "0.001", "--out", str(out)]) == 0
        said = capsys.readouterr()
        assert "Detached" in said.err and "--resume" in said.err

        assert main(["batch", "status", str(out)]) == 0
        status = capsys.readouterr().out
        assert "1 batch(es)" in status and "0 collected, 1 open" in status and "in_progress" in status

        server.batch_hold = False
        assert main(["run", str(spec_path), "--resume", "--batch-poll", "0.001", "--out", str(out)]) == 0
        capsys.readouterr()
        assert main(["batch", "status", str(out)]) == 0
        status = capsys.readouterr().out
        assert ", 0 open" in status and "collected (ended)" in status
        assert not server.requests  # nothing went online
