"""From the journal to rows: which records count, and the run's totals.

- An episode journaled more than once (an errored episode run again by a resume) counts
  once, as its latest record; the calls of the records it supersedes stay in calls.parquet
  (they were made and paid for), marked `superseded`.
- A transcript journaled more than once (an old journal from before transcripts were reused
  on resume) counts once, as its first record; later copies' calls are marked `superseded`.
- Totals are sums over every journaled call plus, from `pass` records, the calls each
  invocation made for episodes it did not finish (their cost is real; their responses are
  cached, so a resume does not pay for them again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oversight.store.journal import JournalReader


@dataclass
class Collected:
    judgments: list[dict[str, Any]] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
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


def collect(run_dir: Path) -> Collected:
    reader = JournalReader(run_dir)
    out = Collected()
    latest: dict[str, int] = {}
    episodes: list[dict[str, Any]] = []
    for rec in reader:
        if not _valid(rec):
            out.unreadable += 1
            continue
        # Prompts are the bulk of a journal (long articles, whole transcripts): only their
        # ids are kept here, and sealing streams the texts from the journal again.
        prompts = rec.pop("prompts", None)
        if isinstance(prompts, dict):
            out.prompt_ids.update(prompts)
        if rec["type"] == "prompt":
            continue
        if rec["type"] == "pass":
            out.passes.append(rec)
        elif rec["type"] == "episode":
            latest[rec["episode_id"]] = len(episodes)
            episodes.append(rec)
        else:
            tid = rec["transcript_id"]
            first = tid not in out.transcripts
            if first:
                out.transcripts[tid] = rec
                out.turns.extend(rec.get("turns") or [])
            out.calls.extend({**c, "superseded": not first} for c in rec.get("calls") or [])
    out.unreadable += reader.unreadable
    for i, rec in enumerate(episodes):
        current = latest[rec["episode_id"]] == i
        if current:
            out.judgments.append(rec["row"])
            out.turns.extend(rec.get("turns") or [])
        out.calls.extend({**c, "superseded": not current} for c in rec.get("calls") or [])
    return out


def totals(c: Collected, planned: int | None = None) -> dict[str, Any]:
    """The run's totals over every invocation, from the journal alone."""
    paid = [x for x in c.calls if not x.get("cache_hit")]
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
        "calls": len(c.calls) + int(extra["calls"]),
        "cache_hits": sum(bool(x.get("cache_hit")) for x in c.calls),
        "provider_requests": sum(1 + (x.get("retries") or 0) for x in paid),
        "retries": sum(x.get("retries") or 0 for x in c.calls),
        "call_errors": sum(x.get("error") is not None for x in c.calls),
        "input_tokens": sum(x.get("input_tokens") or 0 for x in paid) + int(extra["input_tokens"]),
        "output_tokens": sum(x.get("output_tokens") or 0 for x in paid) + int(extra["output_tokens"]),
        # Parts of input_tokens read from / written to the providers' prompt caches.
        "cached_input_tokens": sum(x.get("cached_input_tokens") or 0 for x in paid)
        + int(extra["cached_input_tokens"]),
        "cache_write_tokens": sum(x.get("cache_write_tokens") or 0 for x in paid) + int(extra["cache_write_tokens"]),
        "cost_usd": round(sum(x.get("cost_usd") or 0.0 for x in paid) + extra["cost_usd"], 6),
        "unjournaled_cost_usd": round(extra["cost_usd"], 6),
        "passes": len(c.passes),
    }
    return out
