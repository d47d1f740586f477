"""Verdicts as a real small judge wrote them (SmolLM2-135M-Instruct served by llama.cpp,
given this harness's judge prompts, collected from this project's runs and probes on 2026-12-06), and
the rule that must read each. The rows come from tests/judge/data/real_replies.jsonl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from oversight.judge.parse import parse_verdict

ROWS = [json.loads(line) for line in (Path(__file__).parent / "data" / "real_replies.jsonl").read_text().splitlines()
        if line.strip()]


@pytest.mark.parametrize("row", ROWS, ids=[f"{i}:{r['reply'][:30]!r}" for i, r in enumerate(ROWS)])
def test_each_real_reply_is_read_by_its_rule(row: dict[str, Any]) -> None:
    verdict = parse_verdict(row["reply"], constrained=bool(row.get("constrained")))
    assert (verdict.answer, verdict.rule) == (row["answer"], row["rule"])
    assert verdict.status == ("ok" if row["answer"] is not None else "invalid")


def test_the_lenient_rule_reads_most_of_what_the_strict_rule_loses() -> None:
    free = [r for r in ROWS if not r.get("constrained")]
    strict = sum(parse_verdict(r["reply"]).rule == "strict" for r in free)
    read = sum(parse_verdict(r["reply"]).status == "ok" for r in free)
    assert strict == 1 and read == 5  # of 9 real free replies: 1 by the Answer: line, 4 more leniently
