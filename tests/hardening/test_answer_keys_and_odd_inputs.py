"""Classes 5 and 7 of issue 21. An answer label that reads as two different answers is an
error naming the row (or read one way by the card's `correct_as`); Unicode digits, FIFOs,
links to /dev/zero and CSV rows shifted by an unquoted comma get clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.hardening.helpers import clear_error, cli, write_spec


def task_dir(tmp_path: Path, data_name: str, data: str | None, **card: Any) -> Path:
    inc = tmp_path / "inc"
    (inc / "tasks").mkdir(parents=True, exist_ok=True)
    (inc / "data").mkdir(exist_ok=True)
    if data is not None:
        (inc / "data" / data_name).write_text(data)
    full = {"name": "mine", "group": "closed", "loader": "generic", "path": f"../data/{data_name}",
            "fields": {"id": "id", "question": "q", "answers": "opts", "correct": "label"}, **card}
    (inc / "tasks" / "mine.yaml").write_text(yaml.safe_dump(full))
    return inc


def rows(*items: tuple[list[str], Any]) -> str:
    return "".join(json.dumps({"id": f"r{i}", "q": "Which?", "opts": o, "label": lab}) + "\n"
                   for i, (o, lab) in enumerate(items))


AMBIGUOUS = {
    "index_or_text": (["1", "0"], "0"),
    "letter_or_text": (["B", "A"], "A"),
    "one_based_index_or_text": (["2", "1"], "1"),
}


@pytest.mark.parametrize("case", list(AMBIGUOUS))
def test_an_ambiguous_label_is_an_error_naming_the_row(case: str, tmp_path: Path) -> None:
    opts, label = AMBIGUOUS[case]
    base = 1 if case.startswith("one_based") else 0
    data = rows((["yes", "no"], base), (opts, label))
    inc = task_dir(tmp_path, "d.jsonl", data, correct_base=base)
    done = cli("--include", str(inc), "validate", str(write_spec(tmp_path / "s.yaml", tasks=["mine"])))
    clear_error(done, "d.jsonl", "line 2", "'label'", "correct_as")


@pytest.mark.parametrize(("rule", "expected"), [("index", "1"), ("text", "0")])
def test_correct_as_reads_every_label_one_way(rule: str, expected: str, tmp_path: Path) -> None:
    inc = task_dir(tmp_path, "d.jsonl", rows((["1", "0"], "0"), (["1", "0"], "0")), correct_as=rule)
    spec = write_spec(tmp_path / "s.yaml", tasks=["mine"])
    done = cli("--include", str(inc), "run", str(spec), "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    items = pd.read_parquet(tmp_path / "run" / "items.parquet")
    right = [r[f"answer_{r['correct']}"] for _, r in items.iterrows()]
    assert right == [expected, expected]


def test_an_unambiguous_text_label_still_works(tmp_path: Path) -> None:
    inc = task_dir(tmp_path, "d.jsonl", rows((["Paris", "Rome"], "Rome"), (["x", "y"], "B")))
    done = cli("--include", str(inc), "validate", str(write_spec(tmp_path / "s.yaml", tasks=["mine"])))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("label", ["²", "①", "-²"])
def test_unicode_digits_in_a_label_are_an_error_not_a_crash(label: str, tmp_path: Path) -> None:
    inc = task_dir(tmp_path, "d.jsonl", rows((["a", "b"], label)))
    done = cli("--include", str(inc), "validate", str(write_spec(tmp_path / "s.yaml", tasks=["mine"])))
    clear_error(done, "d.jsonl", "'label'")


def test_a_fifo_as_a_data_file_is_refused_without_hanging(tmp_path: Path) -> None:
    inc = task_dir(tmp_path, "d.jsonl", None)
    fifo = inc / "data" / "d.jsonl"
    os.mkfifo(fifo)
    # Should the loader open it anyway, it blocks for want of a writer: the subprocess
    # timeout (not an assertion on time) then fails the test.
    done = cli("--include", str(inc), "validate", str(write_spec(tmp_path / "s.yaml", tasks=["mine"])), timeout=60)
    clear_error(done, "d.jsonl", "not a regular file")


def test_a_link_to_dev_zero_is_refused(tmp_path: Path) -> None:
    inc = task_dir(tmp_path, "d.jsonl", None)
    (inc / "data" / "d.jsonl").symlink_to("/dev/zero")
    done = cli("--include", str(inc), "validate", str(write_spec(tmp_path / "s.yaml", tasks=["mine"])), timeout=60)
    clear_error(done, "d.jsonl", "not a regular file")


def test_a_spec_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    clear_error(cli("validate", str(fifo), timeout=60), "spec.yaml", "not a regular file")


def test_a_csv_row_shifted_by_an_unquoted_comma_is_an_error(tmp_path: Path) -> None:
    data = 'id,q,opts,label\nr0,Is it?,"[""yes"", ""no""]",0\nr1,Is it, really?,"[""yes"", ""no""]",1\n'
    inc = task_dir(tmp_path, "d.csv", data)
    done = cli("--include", str(inc), "validate", str(write_spec(tmp_path / "s.yaml", tasks=["mine"])))
    clear_error(done, "d.csv", "line 3", "5 values", "4 columns")
