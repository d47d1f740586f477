"""`oversight import` through the real command: the project's JSONL format and Khan et al.
2024's CSV become run directories that `report` scores and `judge` re-judges; bad files
end with exit status 2 and one paragraph naming the file, line and field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tasks" / "samples" / "transcripts"


def oversight(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "oversight", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_own_format_imports_reports_and_rejudges(tmp_path: Path) -> None:
    r = oversight("import", str(SAMPLES / "debates.jsonl"), "--task", "mine", "--out", "imp", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    j = pd.read_parquet(tmp_path / "imp" / "judgments.parquet")
    src = [json.loads(x) for x in (SAMPLES / "debates.jsonl").read_text().splitlines()]
    verdicts = [(t["id"], v) for t in src for v in t["verdicts"]]
    assert len(j) == len(verdicts) == 4
    for tid, v in verdicts:
        t = next(x for x in src if x["id"] == tid)
        row = j[(j["judge"] == v["judge"]) & (j["item_id"] == t["item"]["id"]) & (j["protocol"] == t["protocol"])]
        assert len(row) == 1
        assert row["correct_answer"].item() == t["item"]["correct"]
        assert row["judge_answer"].item() == v["answer"]
        assert row["is_correct"].item() == (v["answer"] == t["item"]["correct"])
        assert row["order"].item() == (0 if t["item"]["correct"] == 1 else 1)
    items = pd.read_parquet(tmp_path / "imp" / "items.parquet")
    assert len(items) == 2 and items["article_sha256"].notna().all()
    turns = pd.read_parquet(tmp_path / "imp" / "turns.parquet")
    d1 = src[0]
    said = turns[turns["visible"].isin([t["text"] for t in d1["turns"]])]
    assert len(said) == len(d1["turns"])  # each debate turn stored once, shared by its judges
    rep = oversight("report", "imp", "--resamples", "200", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    rj = oversight("judge", "imp", "--judges", "sim/medium", "--out", "rj", cwd=tmp_path)
    assert rj.returncode == 0, rj.stderr
    assert "an imported run has no agent to call" in rj.stderr
    new = pd.read_parquet(tmp_path / "rj" / "judgments.parquet")
    assert set(new["protocol"]) == {"debate"} and len(new) == 2  # the two debates; consultancy needs its judge
    calls = pd.read_parquet(tmp_path / "rj" / "calls.parquet")
    assert set(calls["role"]) == {"judge"} and len(calls) == 2
    no = oversight("judge", "imp", "--judges", "sim/medium", "--allow-agent-calls", "--out", "x", cwd=tmp_path)
    assert no.returncode == 2 and "imported transcripts" in no.stderr


def test_khan2024_csv(tmp_path: Path) -> None:
    # Two debater configs in one file: both debates are still found by `oversight judge`.
    f = tmp_path / "khan.csv"
    f.write_text((SAMPLES / "khan2024.csv").read_text().replace("claude_2_1_Bo1", "gpt_4_Bo4", 1))
    r = oversight("import", str(f), "--task", "khan", "--out", "k", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    j = pd.read_parquet(tmp_path / "k" / "judgments.parquet").sort_values("judge_raw")
    # Row 102: swap true (correct answer listed second), the judge was wrong at 30% on the correct one.
    row = j[j["judge_raw"] == "B seemed more specific."].iloc[0]
    assert (row["order"], row["correct_answer"], row["judge_answer"], row["is_correct"]) == (1, 2, 1, False)
    assert row["p_correct"] == pytest.approx(0.30) and row["judge"] == "human:4"
    cons = j[j["protocol"] == "consultancy"].iloc[0]
    assert cons["assigned"] == "incorrect" and cons["is_correct"]
    turns = pd.read_parquet(tmp_path / "k" / "turns.parquet")
    assert "Is there a quote showing him at the clock?" in set(turns[turns["speaker"] == "Judge"]["visible"])
    # A round lists the judge's message first (the question stored in round 2 follows round 1's argument).
    c = turns[turns["transcript_id"] == cons["transcript_id"]].sort_values("turn")
    assert list(c["speaker"]) == ["Consultant", "Judge", "Consultant", "Judge"]
    assert list(c["round"]) == [1, 2, 2, 3]
    alice = turns[(turns["speaker"] == "Alice") & (turns["visible"].str.contains("farm"))]
    assert len(alice) == 2  # swap: the incorrect answer (the farm) is listed first, so Alice argues it
    rj = oversight("judge", "k", "--judges", "sim/medium", "--out", "rj", cwd=tmp_path)
    assert rj.returncode == 0, rj.stderr
    new = pd.read_parquet(tmp_path / "rj" / "judgments.parquet")
    assert sorted(new["item_id"]) == sorted(j[j["protocol"] == "debate"]["item_id"])


GOOD = json.loads((SAMPLES / "debates.jsonl").read_text().splitlines()[0])


def _line(**changes: object) -> str:
    rec = json.loads(json.dumps(GOOD))
    for k, v in changes.items():
        target, key = rec, k
        if "." in k:
            head, key = k.split(".", 1)
            target = rec[head]
        if v is ...:
            target.pop(key)
        else:
            target[key] = v
    return json.dumps(rec)


@pytest.mark.parametrize(("content", "expect"), [
    (lambda: _line(**{"item.question": ...}), ["line 1", "item.question", "missing"]),
    (lambda: _line(**{"item.correct": "1"}), ["line 1", "item.correct"]),
    (lambda: _line(turns=[{"speaker": "Alice", "side": 1, "round": "x", "text": "a"}]), ["turns.0.round"]),
    (lambda: _line(**{"item.answers": ["only one"]}), ["item.answers"]),
    (lambda: _line(colour="red"), ["colour", "unknown field"]),
    (lambda: _line(turns=[{"speaker": "Alice", "side": 1, "round": 1, "text": "x" * 300_000}]), ["turns.0.text"]),
    (lambda: _line(turns=[{"speaker": "Alice", "side": 1, "round": 10**30, "text": "a"}]), ["turns.0.round"]),
    (lambda: _line() + "\n" + _line(), ["line 2", "'d1' is already on line 1"]),
    (lambda: _line(format="oversight-transcripts/9"), ["field 'format'"]),
    (lambda: _line()[:40], ["line 1", "not a JSON object"]),
    (lambda: _line(**{"item.article": "other"}) + "\n" + _line(id="d9"), ["line 2", "item 'lighthouse-1'"]),
])
def test_bad_files(tmp_path: Path, content, expect: list[str]) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "bad.jsonl"
    f.write_text(content() + "\n", encoding="utf-8")
    r = oversight("import", str(f), "--task", "t", "--out", "o", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and str(f) in r.stderr and r.stderr.count("\n") == 1
    for e in expect:
        assert e in r.stderr


def test_bom_and_crlf_read_as_if_absent(tmp_path: Path) -> None:
    f = tmp_path / "bom.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + (SAMPLES / "debates.jsonl").read_bytes().replace(b"\n", b"\r\n"))
    r = oversight("import", str(f), "--task", "t", "--out", "o", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(pd.read_parquet(tmp_path / "o" / "judgments.parquet")) == 4


def test_bad_khan_files(tmp_path: Path) -> None:
    f = tmp_path / "k.csv"
    f.write_text("debate_id,judge_id\n1,2\n")
    r = oversight("import", str(f), "--task", "t", "--out", "o", "--format", "khan2024", cwd=tmp_path)
    assert r.returncode == 2 and "lacks column(s) debate_method, correct, transcript" in r.stderr
    text = (SAMPLES / "khan2024.csv").read_text().replace(',"True",', ',"maybe",', 1)
    f.write_text(text.replace(",True,85,", ",maybe,85,", 1))
    r = oversight("import", str(f), "--task", "t", "--out", "o2", cwd=tmp_path)
    assert r.returncode == 2 and "line 2" in r.stderr and "column 'correct'" in r.stderr
