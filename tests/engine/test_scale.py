"""What keeps a full-size run's memory bounded, checked on a small one: the journal is read
one record at a time and prompts.parquet is written a row group at a time, so neither the
parsed journal nor every prompt text of the run is held at once."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
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


def test_sealed_rows_are_the_same_however_they_are_chunked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """collect() turns rows into frames a chunk at a time; the rows kept, their order and
    which calls are superseded must not depend on where the chunks fall."""
    spec = {"name": "chunks", "tasks": ["boolq", "quality"], "limit": 2, "protocols": ["qa", "debate", "consultancy"],
            "agent": "sim/strong", "judges": ["sim/weak", "sim/medium"], "debate": {"rounds": 2}}
    run_dir = tmp_path / "run"
    assert oversight.run(spec, out=run_dir, cache="off").status == "complete"
    journal = run_dir / "journal.jsonl"
    records = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    # As a resume leaves them: an episode journaled again (the later record counts) and a
    # transcript journaled again (the first counts; the copy's calls are superseded).
    episode = next(r for r in records if r["type"] == "episode" and r.get("turns"))
    transcript = next(r for r in records if r["type"] == "transcript")
    again = {**json.loads(json.dumps(episode)), "prompts": {}}
    again["row"]["judge_raw"] = "judged again"
    with open(journal, "a", encoding="utf-8") as f:
        for rec in ({**transcript, "prompts": {}}, again):
            f.write(json.dumps(rec) + "\n")

    def expected_turns() -> int:
        latest = {r["episode_id"]: i for i, r in enumerate(records + [again]) if r["type"] == "episode"}
        return (sum(len(r.get("turns") or []) for r in records if r["type"] == "transcript")
                + sum(len(r.get("turns") or []) for i, r in enumerate(records + [again])
                      if r["type"] == "episode" and latest[r["episode_id"]] == i))

    seen = []
    for chunk in (2, 7, 100_000):
        monkeypatch.setattr(collect_module._Rows, "CHUNK", chunk)
        c = collect_module.collect(run_dir, rows=True)
        assert c.turns is not None and c.calls is not None
        seen.append((c.turns, c.calls, c.judgments))
        assert len(c.turns) == expected_turns()
        # Superseded: the first record's calls of the episode, and the transcript copy's.
        assert int(c.calls["superseded"].sum()) == len(episode["calls"]) + len(transcript["calls"])
        assert [r["judge_raw"] for r in c.judgments if r["episode_id"] == episode["episode_id"]] == ["judged again"]
        assert collect_module.totals(c)["calls"] == len(c.calls)
    for turns, calls, judgments in seen[1:]:
        pd.testing.assert_frame_equal(turns, seen[0][0])
        pd.testing.assert_frame_equal(calls, seen[0][1])
        assert judgments == seen[0][2]
