"""The dry run tells requests a provider will see from calls the response cache will answer,
and the rate-limit time follows the requests (issue 22, item 10)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from oversight import cli

SLOW = {"provider": "sim", "model": "medium", "name": "slow-judge"}
# The dry run is asked about the judge under a rate limit (the real run below goes without
# it, so the test does not wait): limits change how a run is carried out, not its calls.
LIMITED = "judges=[sim/weak, {provider: sim, model: medium, name: slow-judge, rpm: 30}]"


def test_dry_run_requests_and_cache_answers_equal_the_real_run_s_calls(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "d", "tasks": ["boolq", "prontoqa"], "limit": 3, "agent": "sim/strong",
        "judges": ["sim/weak", SLOW], "debate": {"rounds": 2}, "consultancy": {"rounds": 2},
        "protocols": ["qa", "consultancy", "debate", "open_consultancy"], "cache_dir": str(tmp_path / "cache")}))
    assert cli.main(["run", str(spec), "--dry-run", "--set", LIMITED]) == 0
    printed = capsys.readouterr().out
    lines = {m.group(1): (int(m.group(2).replace(",", "")), int(m.group(3).replace(",", "")))
             for m in re.finditer(r"^  (\S+)\s+([\d,]+) requests\s+([\d,]+) from cache", printed, re.M)}
    assert set(lines) >= {"sim/strong", "sim/weak", "slow-judge", "total"}
    assert lines["sim/strong"][1] > 0  # a consultant's opening is shared by the judges
    requests = lines["slow-judge"][0]
    assert f"slow-judge: at least {requests / 30:,.1f} min under its rate limits ({requests:,} requests at rpm 30)" \
        in printed
    assert cli.main(["run", str(spec), "--out", str(tmp_path / "r")]) == 0
    calls = pd.read_parquet(tmp_path / "r" / "calls.parquet")
    for model, (sent, cached) in lines.items():
        rows = calls if model == "total" else calls[calls.model == model]
        assert (int((~rows.cache_hit).sum()), int(rows.cache_hit.sum())) == (sent, cached), model
