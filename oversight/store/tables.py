"""The run's tables: the stable column sets, sealing the journal into parquet, loading.

Sealing writes each parquet file to a temporary name and renames it into place, so a
reader never sees a half-written file.

The audit trail: items.parquet holds every item as the run showed it (question, both
answers, which is correct, the article's hash), prompts.parquet every distinct prompt once
by `prompt_id`, which calls.parquet, turns.parquet and judgments.parquet (`judge_prompt_id`)
point to. `Results.item(row)` and `Results.prompt(id)` follow those links.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from oversight.errors import OversightError
from oversight.store.safe_io import write_with

# judgments.parquet: the stable, documented columns (README, Results), then extras.
JUDGMENT_COLUMNS: dict[str, str] = {
    "run_id": "string",
    "task": "string",
    "group": "string",
    "item_id": "string",
    "protocol": "string",
    "judge": "string",
    "agent": "string",
    "agent_b": "string",
    "order": "Int64",
    "correct_answer": "Int64",
    "judge_answer": "Int64",
    "is_correct": "boolean",
    "verdict_status": "string",
    "p_correct": "Float64",
    "assigned": "string",
    "agent_choice": "Int64",
    "rounds": "Int64",
    "turn_style": "string",
    "best_of": "Int64",
    "transcript_id": "string",
    "judge_input_tokens": "Int64",
    "judge_output_tokens": "Int64",
    "episode_cost_usd": "Float64",
    # extras
    "episode_id": "string",
    "qa_role": "string",
    "simulated": "boolean",
    "error": "string",
    "judge_raw": "string",
    "replicate": "Int64",
    "judge_prompt_id": "string",
    # the protocol variant as the spec lists it, and the settings it ran with
    "variant": "string",
    "judge_mode": "string",
    # whether the verdict's format was forced (judge.constrain); verdict_rule says what read it
    "constrained": "boolean",
    "verdict_rule": "string",
    "shots": "Int64",
    "word_limit": "Int64",
    "passage_match": "string",
    "interactive": "boolean",
    "first_round_simultaneous": "boolean",
    "qa_mode": "string",  # open protocols: the mode of the agent's own QA answer that chose the side
    "best_of_b": "Int64",  # Bob's best-of-N (cross-play pits configs with different N)
    "prompt_set": "string",
}

TURN_COLUMNS: dict[str, str] = {
    "transcript_id": "string",
    "turn": "Int64",
    "round": "Int64",
    "speaker": "string",
    "role": "string",
    "side": "Int64",
    "visible": "string",
    "private": "string",
    "candidate": "Int64",
    "chosen": "boolean",
    "selection_invalid": "boolean",
    "n_verified": "Int64",
    "n_unverified": "Int64",
    "truncated": "boolean",
    # agent turns: the Thinking/Argument split was found; why generation ended (stop,
    # max_tokens, word_limit); words of the visible text copied from the article outside passages
    "format_ok": "boolean",
    "finish_reason": "string",
    "copied_words": "Int64",
    "input_tokens": "Int64",
    "output_tokens": "Int64",
    "cost_usd": "Float64",
    "task": "string",
    "item_id": "string",
    "protocol": "string",
    "agent": "string",
    "judge": "string",
    "episode_id": "string",
    "replicate": "Int64",
    "prompt_id": "string",
    "variant": "string",
}

CALL_COLUMNS: dict[str, str] = {
    "episode_id": "string",
    "transcript_id": "string",
    "model": "string",
    "role": "string",
    "speaker": "string",
    "n": "Int64",
    "input_tokens": "Int64",
    "output_tokens": "Int64",
    # Parts of input_tokens the provider read from / wrote to its prompt cache (null in runs
    # journaled before these were recorded).
    "cached_input_tokens": "Int64",
    "cache_write_tokens": "Int64",
    "cost_usd": "Float64",
    "latency_s": "Float64",
    "cache_hit": "boolean",
    "retries": "Int64",
    "error": "string",
    "replicate": "Int64",
    "prompt_id": "string",
    "superseded": "boolean",  # made by an episode record a later one replaced (a retried error)
    "batch_id": "string",  # the provider batch that answered the call (--batch); null if online or cached
    # The model the provider's reply names (null if it names none, or in older runs): a gateway
    # or alias may answer with another model than the card's.
    "reply_model": "string",
}

ITEM_COLUMNS: dict[str, str] = {
    "task": "string",
    "item_id": "string",
    "group": "string",
    "question": "string",
    "answer_0": "string",
    "answer_1": "string",
    "correct": "Int64",  # 0 or 1: which of answer_0 / answer_1 is right (before ordering)
    "article_sha256": "string",
    "article_chars": "Int64",
    "n_images": "Int64",
    "meta": "string",  # JSON: the loader's binarisation record (which wrong answer, why)
}

PROMPT_COLUMNS: dict[str, str] = {
    "prompt_id": "string",
    "messages": "string",  # JSON: [{role, parts: [{text} | {image_sha256, mime}]}]
    "chars": "Int64",
}


def frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(columns))
    return df.astype(columns)


def conform(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """`df` with exactly the table's columns, in order, of its types (missing ones empty)."""
    return df.reindex(columns=list(columns)).astype(columns)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    write_with(path, lambda tmp: df.to_parquet(tmp, index=False), root=path.parent)


def prompt_rows(prompts: Iterable[tuple[str, str]]) -> Iterator[dict[str, Any]]:
    for pid, blob in prompts:
        chars = sum(len(p.get("text", "")) for m in json.loads(blob) for p in m["parts"])
        yield {"prompt_id": pid, "messages": blob, "chars": chars}


# Prompts per row group of prompts.parquet: sealing holds one group at a time, never all
# prompts of a run (at the reference grid's scale they are over a gigabyte of text).
PROMPT_GROUP = 2000


def write_prompts(prompts: Iterable[tuple[str, str]], path: Path) -> None:
    """prompts.parquet from a stream of (prompt_id, messages JSON), a row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_suffix(".parquet.tmp")
    empty = frame([], PROMPT_COLUMNS)
    schema = pa.Schema.from_pandas(empty, preserve_index=False)
    with pq.ParquetWriter(tmp, schema) as writer:
        rows = prompt_rows(prompts)
        while group := list(itertools.islice(rows, PROMPT_GROUP)):
            writer.write_table(pa.Table.from_pandas(frame(group, PROMPT_COLUMNS), schema=schema, preserve_index=False))
    os.replace(tmp, path)


def render_prompt(blob: str) -> str:
    """A stored prompt as readable text: each message under its role."""
    out = []
    for m in json.loads(blob):
        parts = [p["text"] if "text" in p else f"[image {p['image_sha256'][:12]}…]" for p in m["parts"]]
        out.append(f"[{m['role']}]\n" + "\n".join(parts))
    return "\n\n".join(out)


@dataclass
class Sealed:
    judgments: pd.DataFrame
    turns: pd.DataFrame
    calls: pd.DataFrame


def seal(
    run_dir: Path,
    judgments: pd.DataFrame,
    turns: pd.DataFrame,
    calls: pd.DataFrame,
    items: list[dict[str, Any]] | None = None,
    prompts: Iterable[tuple[str, str]] | None = None,
) -> Sealed:
    sealed = Sealed(conform(judgments, JUDGMENT_COLUMNS), conform(turns, TURN_COLUMNS), conform(calls, CALL_COLUMNS))
    write_parquet(sealed.judgments, run_dir / "judgments.parquet")
    write_parquet(sealed.turns, run_dir / "turns.parquet")
    write_parquet(sealed.calls, run_dir / "calls.parquet")
    if items is not None:
        write_parquet(frame(items, ITEM_COLUMNS), run_dir / "items.parquet")
    if prompts is not None:
        write_prompts(prompts, run_dir / "prompts.parquet")
    return sealed


@dataclass
class Results:
    """A run's tables as DataFrames (`oversight.load`), with the audit links followed:
    `item(row)` is the item a judgments/turns/calls row is about, `prompt(id)` the exact
    text a model was sent, `judge_prompt(row)` what a judgment's judge saw."""

    run_dir: Path
    judgments: pd.DataFrame
    turns: pd.DataFrame
    calls: pd.DataFrame
    items: pd.DataFrame
    prompts: pd.DataFrame

    def item(self, row: pd.Series | dict[str, Any]) -> pd.Series:
        hit = self.items[(self.items["task"] == row["task"]) & (self.items["item_id"] == row["item_id"])]
        if hit.empty:
            raise KeyError(f"no item {row['task']}/{row['item_id']} in {self.run_dir}/items.parquet")
        return hit.iloc[0]

    def prompt(self, prompt_id: str) -> str:
        hit = self.prompts[self.prompts["prompt_id"] == prompt_id]
        if hit.empty:
            raise KeyError(f"no prompt {prompt_id} in {self.run_dir}/prompts.parquet")
        return render_prompt(str(hit.iloc[0]["messages"]))

    def judge_prompt(self, row: pd.Series | dict[str, Any]) -> str:
        pid = row["judge_prompt_id"]
        if pid is None or pd.isna(pid):
            raise KeyError(f"judgment {row['episode_id']} has no judge prompt (status {row['verdict_status']})")
        return self.prompt(str(pid))


def _read(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    if not path.exists():  # a run sealed before the audit trail existed
        return frame([], columns)
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a damaged file
        raise OversightError(
            f"{path} cannot be read as parquet ({type(exc).__name__}: {str(exc)[:120]}). It may be "
            f"truncated or not from oversight; `oversight run SPEC --resume --out {path.parent}` "
            f"rewrites it from the journal."
        ) from None


def load(run_dir: str | Path) -> Results:
    d = Path(run_dir)
    missing = [n for n in ("judgments", "turns", "calls") if not (d / f"{n}.parquet").exists()]
    if missing:
        hint = " The run has a journal; `oversight run SPEC --resume --out DIR` seals it." if (
            d / "journal.jsonl"
        ).exists() else ""
        raise OversightError(f"{d} is not a finished run directory: no {', '.join(missing)}.parquet.{hint}")
    return Results(
        d,
        _read(d / "judgments.parquet", JUDGMENT_COLUMNS),
        _read(d / "turns.parquet", TURN_COLUMNS),
        _read(d / "calls.parquet", CALL_COLUMNS),
        _read(d / "items.parquet", ITEM_COLUMNS),
        _read(d / "prompts.parquet", PROMPT_COLUMNS),
    )
