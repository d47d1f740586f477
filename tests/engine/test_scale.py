"""What keeps a full-size run's memory bounded, checked on a small one: the journal is read
one record at a time and prompts.parquet is written a row group at a time, so neither the
parsed journal nor every prompt text of the run is held at once."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import oversight
from oversight.store import collect as collect_module
from oversight.store import tables


def test_prompts_parquet_written_in_groups_holds_each_journaled_prompt_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tables, "PROMPT_GROUP", 3)
    spec = {"name": "groups", "tasks": ["boolq", "quality"], "limit": 2, "protocols": ["qa", "debate"],
            "agent": "sim/strong", "judges": ["sim/weak"], "debate": {"rounds": 2}}
    r = oversight.run(spec, out=tmp_path / "run", cache="off")
    assert r.status == "complete"
    journaled: dict[str, str] = {}
    records = 0
    for line in (tmp_path / "run" / "journal.jsonl").read_text(encoding="utf-8").splitlines():
        prompts = json.loads(line).get("prompts") or {}
        records += bool(prompts)
        assert not set(prompts) & set(journaled), "a prompt journaled twice"
        journaled.update(prompts)
    stored = pq.ParquetFile(tmp_path / "run" / "prompts.parquet")
    assert stored.metadata.num_row_groups == -(-len(journaled) // 3) > 1
    frame = stored.read().to_pandas()
    assert dict(zip(frame.prompt_id, frame.messages, strict=True)) == journaled
    assert list(frame.chars) == [sum(len(p.get("text", "")) for m in json.loads(b) for p in m["parts"])
                                 for b in frame.messages]
    # What a resume starts from keeps the prompts' ids, not their texts.
    before = collect_module.collect(tmp_path / "run")
    assert before.prompt_ids == set(journaled) and not hasattr(before, "prompts")


def test_an_empty_run_still_writes_a_readable_prompts_table(tmp_path: Path) -> None:
    tables.write_prompts(iter(()), tmp_path / "prompts.parquet")
    empty = pq.read_table(tmp_path / "prompts.parquet")
    assert empty.num_rows == 0 and empty.column_names == list(tables.PROMPT_COLUMNS)
