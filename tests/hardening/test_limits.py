"""Class 4 of issue 21: a limit never vanishes or bends without a word. An empty `--set`
value, a yes/no where a number belongs (and the reverse), text where either belongs, a port
out of range, a `--batch-poll` that would busy-poll or never poll, options that do nothing
as combined, and an empty `--out` are each an error naming the option or key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from tests.hardening.helpers import clear_error, cli, write_spec

# (arguments after the spec, words the error must hold)
CASES: dict[str, tuple[list[str], list[str]]] = {
    "empty_limit": (["--set", "limit="], ["--set limit=", "no value"]),
    "empty_budget": (["--set", "budget_usd= "], ["--set budget_usd=", "no value"]),
    "true_as_number": (["--set", "limit=true"], ["limit", "not a number"]),
    "text_as_number": (["--set", "limit='5'"], ["limit", "is text"]),
    "true_as_max_tokens": (["--set", "judges=[{provider: sim, model: weak, max_tokens: true}]"],
                           ["max_tokens", "not a number"]),
    "text_as_boolean": (["--set", "judges=[{provider: sim, model: weak, logprobs: 'no'}]"],
                        ["logprobs", "true or false"]),
    "number_as_boolean": (["--set", "judges=[{provider: sim, model: weak, batch: 0}]"],
                          ["batch", "true or false"]),
    "port_out_of_range": (["--set", "judges=[{provider: openai, model: m, base_url: 'http://127.0.0.1:99999/v1'}]"],
                          ["base_url", "port"]),
    "detach_without_batch": (["--detach"], ["--detach", "--batch"]),
    "poll_without_batch": (["--batch-poll", "5"], ["--batch-poll", "--batch"]),
    "keep_errors_without_resume": (["--keep-errors"], ["--keep-errors", "--resume"]),
    "dry_run_resume": (["--dry-run", "--resume"], ["--dry-run", "--resume"]),
    "dry_run_out": (["--dry-run", "--out", "x"], ["--dry-run", "--out"]),
    "poll_zero": (["--batch", "--batch-poll", "0"], ["--batch-poll", "above 0"]),
    "poll_negative": (["--batch", "--batch-poll", "-1"], ["--batch-poll"]),
    "poll_nan": (["--batch", "--batch-poll", "nan"], ["--batch-poll"]),
    "poll_inf": (["--batch", "--batch-poll", "inf"], ["--batch-poll"]),
    "empty_out": (["--out", ""], ["--out is empty"]),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[CompletedProcess[str], Path]]:
    base = tmp_path_factory.mktemp("limits")
    spec = write_spec(base / "s.yaml", budget_usd=1.0)

    def one(name: str) -> tuple[CompletedProcess[str], Path]:
        work = base / name
        work.mkdir()
        return cli("run", str(spec), *CASES[name][0], cwd=work), work

    with ThreadPoolExecutor(4) as pool:
        return dict(zip(CASES, pool.map(one, CASES), strict=True))


@pytest.mark.parametrize("case", list(CASES))
def test_a_limit_that_would_vanish_is_an_error(
    case: str, outcomes: dict[str, tuple[CompletedProcess[str], Path]]
) -> None:
    done, work = outcomes[case]
    clear_error(done, *CASES[case][1])
    assert list(work.iterdir()) == []  # nothing was written anywhere


def test_null_still_clears_a_key_on_purpose(tmp_path: Path) -> None:
    done = cli("validate", str(write_spec(tmp_path / "s.yaml", budget_usd=1.0)), "--set", "budget_usd=null")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("arg", [["report", ""], ["export", "inspect", ""], ["validate", ""]])
def test_an_empty_path_argument_is_an_error(arg: list[str], tmp_path: Path) -> None:
    clear_error(cli(*arg, cwd=tmp_path), "empty")
