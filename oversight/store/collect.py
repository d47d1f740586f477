"""From the journal to rows: which records count, and the run's totals.

- An episode journaled more than once (an errored episode run again by a resume) counts
  once, as its latest record; the calls of the records it supersedes stay in calls.parquet
  (they were made and paid for), marked `superseded`.
- A transcript journaled more than once (an old journal from before transcripts were reused
  on resume) counts once, as its first record; later copies' calls are marked `superseded`.
- Totals are sums over every journaled call plus, from `pass` records, the calls each
  invocation made for episodes it did not finish (their cost is real; their responses are
  cached, so a resume does not pay for them again).

Memory: the journal is read one record at a time. A resume needs only the judgment rows,
the transcripts it may reuse, the prompt ids and the call totals (`collect(run_dir)`).
Sealing also needs the turn and call rows (`collect(run_dir, rows=True)`); at the reference
grid's scale they are some 350,000 rows, which as dicts took close to a gigabyte, so they
are gathered a chunk at a time into typed frames (tens of MB).
"""

from __future__ import annotations

import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oversight.store.journal import JournalReader

if TYPE_CHECKING:
    import pandas as pd

# The sums `totals` reports over every journaled call (cache hits cost nothing).
_CALL_SUMS = ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens", "cost_usd")


@dataclass
class Collected:
    judgments: list[dict[str, Any]] = field(default_factory=list)
    # With rows=True: turns.parquet's and calls.parquet's rows (oversight/store/tables.py).
    turns: pd.DataFrame | None = None
    calls: pd.DataFrame | None = None
    call_totals: dict[str, float] = field(default_factory=dict)
    prompt_ids: set[str] = field(default_factory=set)  # the texts stay on disk (journal_prompts)
    passes: list[dict[str, Any]] = field(default_factory=list)
    transcripts: dict[str, dict[str, Any]] = field(default_factory=dict)  # first record of each
    unreadable: int = 0  # journal lines or records that could not be used

    def finished(self, keep_errors: bool) -> set[str]:
        """Episode ids a resume must not run again."""
        return {r["episode_id"] for r in self.judgments if keep_errors or r.get("verdict_status") != "error"}


def _valid(rec: dict[str, Any]) -> bool:
    kind = rec.get("type")
    if kind == "episode":
        return isinstance(rec.get("episode_id"), str) and isinstance(rec.get("row"), dict)
    if kind == "transcript":
        return isinstance(rec.get("transcript_id"), str)
    return kind in ("pass", "prompt")


def _compact(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its keys and short texts (names of tasks, judges, protocols; statuses)
    shared with every other row's instead of one copy per row: a resume of the reference
    grid holds tens of thousands of rows."""
    return {sys.intern(k): sys.intern(v) if type(v) is str and len(v) <= 64 else v for k, v in row.items()}


def _compact_record(rec: dict[str, Any]) -> dict[str, Any]:
    for key in ("turns", "calls"):
        if isinstance(rec.get(key), list):
            rec[key] = [_compact(x) if isinstance(x, dict) else x for x in rec[key]]
    return rec


class _Rows:
    """One table's rows, each tagged with the journal record it came from, turned into a
    typed frame every CHUNK rows so that no more than a chunk of dicts is ever held."""

    CHUNK = 4096

    def __init__(self, columns: dict[str, str]) -> None:
        self.columns = columns
        self.pending: list[dict[str, Any]] = []
        self.frames: list[pd.DataFrame] = []
        self.records = array("q")

    def add(self, rows: list[dict[str, Any]], record: int) -> None:
        self.pending.extend(rows)
        self.records.extend([record] * len(rows))
        if len(self.pending) >= self.CHUNK:
            self._flush()

    def _flush(self) -> None:
        from oversight.store.tables import frame

        if self.pending:
            self.frames.append(frame(self.pending, self.columns))
            self.pending = []

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        from oversight.store.tables import frame

        self._flush()
        if not self.frames:
            return frame([], self.columns)
        return pd.concat(self.frames, ignore_index=True) if len(self.frames) > 1 else self.frames[0]


def _zero_sums() -> dict[str, float]:
    return dict.fromkeys(("calls", "cache_hits", "provider_requests", "retries", "call_errors", *_CALL_SUMS), 0)


def _add_call_sums(sums: dict[str, float], calls: list[dict[str, Any]]) -> None:
    for c in calls:
        sums["calls"] += 1
        sums["cache_hits"] += bool(c.get("cache_hit"))
        sums["retries"] += c.get("retries") or 0
        sums["call_errors"] += c.get("error") is not None
        if not c.get("cache_hit"):
            sums["provider_requests"] += 1 + (c.get("retries") or 0)
            for k in _CALL_SUMS:
                sums[k] += c.get(k) or 0


def collect(run_dir: Path, rows: bool = False) -> Collected:
    """What the journal holds; with `rows`, also the turn and call rows sealing writes."""
    reader = JournalReader(run_dir)
    out = Collected()
    sums = _zero_sums()
    # Rows of transcript records come first, then those of episode records, each in journal
    # order; an episode's rows are tagged with its record's number, so that those of a
    # record a later one superseded can be told apart at the end.
    turns = calls = None
    if rows:
        # Only sealing needs pandas (through tables): a run or a resume starts without it.
        from oversight.store.tables import CALL_COLUMNS, TURN_COLUMNS

        turns = {"transcript": _Rows(TURN_COLUMNS), "episode": _Rows(TURN_COLUMNS)}
        calls = {"transcript": _Rows(CALL_COLUMNS), "episode": _Rows(CALL_COLUMNS)}
    judgments: dict[str, dict[str, Any]] = {}
    latest: dict[str, int] = {}
    for number, rec in enumerate(reader):
        if not _valid(rec):
            out.unreadable += 1
            continue
        # Prompts are the bulk of a journal (long articles, whole transcripts): only their
        # ids are kept here, and sealing streams the texts from the journal again.
        prompts = rec.pop("prompts", None)
        if isinstance(prompts, dict):
            out.prompt_ids.update(prompts)
        kind = rec["type"]
        if kind == "prompt":
            continue
        if kind == "pass":
            out.passes.append(rec)
            continue
        rec_calls = rec.get("calls") or []
        _add_call_sums(sums, rec_calls)
        if kind == "episode":
            eid = rec["episode_id"]
            latest[eid] = number
            judgments.pop(eid, None)  # the latest record's place in the order, as its row
            judgments[eid] = _compact(rec["row"])
            if turns is not None and calls is not None:
                turns["episode"].add(rec.get("turns") or [], number)
                calls["episode"].add(rec_calls, number)
        else:
            tid = rec["transcript_id"]
            first = tid not in out.transcripts
            if first:
                out.transcripts[tid] = _compact_record(rec)
            if turns is not None and calls is not None:
                if first:
                    turns["transcript"].add(rec.get("turns") or [], -1)
                calls["transcript"].add([{**c, "superseded": not first} for c in rec_calls], -1)
    out.unreadable += reader.unreadable
    out.judgments = list(judgments.values())
    out.call_totals = sums
    if turns is not None and calls is not None:
        out.turns, out.calls = _finish(turns, calls, set(latest.values()))
    return out


def _finish(turns: dict[str, _Rows], calls: dict[str, _Rows], current: set[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    import numpy as np
    import pandas as pd

    now = np.fromiter(current, dtype=np.int64, count=len(current))
    ep_turns = turns["episode"].frame()
    ep_turns = ep_turns[np.isin(np.asarray(turns["episode"].records, dtype=np.int64), now)]
    ep_calls = calls["episode"].frame()
    ep_calls["superseded"] = ~np.isin(np.asarray(calls["episode"].records, dtype=np.int64), now)
    ep_calls["superseded"] = ep_calls["superseded"].astype("boolean")
    return (pd.concat([turns["transcript"].frame(), ep_turns], ignore_index=True),
            pd.concat([calls["transcript"].frame(), ep_calls], ignore_index=True))


def totals(c: Collected, planned: int | None = None) -> dict[str, Any]:
    """The run's totals over every invocation, from the journal alone."""
    s = c.call_totals or _zero_sums()
    extra: dict[str, float] = {"calls": 0, "cost_usd": 0.0, "input_tokens": 0, "output_tokens": 0,
                               "cached_input_tokens": 0, "cache_write_tokens": 0}
    for p in c.passes:
        for k in extra:
            extra[k] += (p.get("unjournaled") or {}).get(k, 0) or 0
    errors = sum(r.get("verdict_status") == "error" for r in c.judgments)
    out: dict[str, Any] = {
        "episodes_planned": planned,
        "episodes_done": len(c.judgments) - errors,
        "episode_errors": errors,
        "calls": int(s["calls"]) + int(extra["calls"]),
        "cache_hits": int(s["cache_hits"]),
        "provider_requests": int(s["provider_requests"]),
        "retries": int(s["retries"]),
        "call_errors": int(s["call_errors"]),
        "input_tokens": int(s["input_tokens"]) + int(extra["input_tokens"]),
        "output_tokens": int(s["output_tokens"]) + int(extra["output_tokens"]),
        # Parts of input_tokens read from / written to the providers' prompt caches.
        "cached_input_tokens": int(s["cached_input_tokens"]) + int(extra["cached_input_tokens"]),
        "cache_write_tokens": int(s["cache_write_tokens"]) + int(extra["cache_write_tokens"]),
        "cost_usd": round(s["cost_usd"] + extra["cost_usd"], 6),
        "unjournaled_cost_usd": round(extra["cost_usd"], 6),
        "passes": len(c.passes),
    }
    return out
