"""`--dry-run --batch`: the waves per protocol, counted by rehearsing the engine through the
real batch collector, and the price at batch rates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from oversight.cli import main


def _dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], best_of: int, rounds: int) -> str:
    spec = {"name": "waves", "tasks": ["boolq"], "limit": 2, "protocols": ["qa", "consultancy", "debate"],
            "agent": {"name": "claude-test", "provider": "anthropic", "model": "claude-test",
                      "price": {"input_per_mtok": 3.0, "output_per_mtok": 15.0}},
            "judges": [{"name": "gemini-test", "provider": "google", "model": "gemini-test",
                        "price": {"input_per_mtok": 1.0, "output_per_mtok": 4.0}}, "sim/weak"],
            "debate": {"rounds": rounds, "best_of": best_of}, "consultancy": {"rounds": rounds}}
    path = tmp_path / f"waves-{best_of}-{rounds}.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["run", str(path), "--dry-run", "--batch"]) == 0
    return capsys.readouterr().out


def _waves(out: str, protocol: str) -> list[int]:
    line = next(x for x in out.splitlines() if re.match(rf"\s+{protocol}\s+\d+ episodes", x))
    return [int(n.replace(",", "")) for n in line.split("calls per wave:")[1].split("+")]


def test_dry_run_counts_the_waves_of_each_protocol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _dry_run(tmp_path, capsys, best_of=1, rounds=2)
    assert len(_waves(out, "qa")) == 1
    # Two debate rounds (both debaters at once, simultaneous turns), then the judges.
    assert len(_waves(out, "debate")) == 3
    # Consultant, judge question, consultant, then the verdict.
    assert len(_waves(out, "consultancy")) == 4
    assert "called online (no batch API): sim/weak" in out
    saved = re.search(r"\$([\d.,]+) at batch rates \(\$([\d.,]+) online, 50% saved\)", out)
    assert saved and float(saved.group(1)) * 2 == pytest.approx(float(saved.group(2)), abs=0.02)

    # Best-of-N adds a selection wave to each debate round.
    out = _dry_run(tmp_path, capsys, best_of=3, rounds=2)
    assert len(_waves(out, "debate")) == 5
