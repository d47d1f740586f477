"""`prontoqa`: PrOntoQA generator output (`{"example1": {..., "test_example": {...}}, ...}`).

Only each example's `test_example` is used (the in-context examples are ignored).

- question: the theory (`question`), a blank line, then the `query`
  ("True or false: <statement>").
- correct answer: the gold proof, `chain_of_thought` joined with single spaces.
- wrong answer: the same chain with the copula of every step negated or un-negated: each
  whole word `is` or `are` (lower case, as the generator writes them) not followed by
  ` not` gains ` not`, and each `is not` / `are not` loses it. Nothing else changes, and
  no randomness is involved. Steps without `is`/`are` stay as they are (counted in meta).
  The last step is the conclusion, so the wrong chain concludes the opposite of the gold
  chain, which contradicts the query's answer.

Checks, each a counted skip rather than an error: the gold chain's last step must be the
query's statement (answer True) or its negation (answer False), agreeing with `answer`;
at least one step must change. A file without `answer` (the generator's proofs-only
mode) gets the answer from the chain's conclusion.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from oversight.errors import OversightError, excerpt
from oversight.task.card import LoadResult, TaskCard, register_loader
from oversight.task.item import Item
from oversight.task.loaders.common import Collector, NoOptions, Rec, options, read_json

_COPULA = re.compile(r"\b(is|are)( not)?\b")
_QUERY_PREFIX = "True or false:"


def negate(sentence: str) -> str:
    """Swap `is` ↔ `is not` and `are` ↔ `are not` throughout one sentence."""
    return _COPULA.sub(lambda m: m.group(1) if m.group(2) else f"{m.group(1)} not", sentence)


def _statement(rec: Rec) -> str:
    query = rec.text("query").strip()
    if query.startswith(_QUERY_PREFIX):
        query = query[len(_QUERY_PREFIX) :].strip()
    return query


@register_loader("prontoqa")
def load_prontoqa(card: TaskCard, path: Path, seed: int) -> LoadResult:
    del seed  # the negation is deterministic
    options(card, NoOptions)
    data = read_json(path)
    if not isinstance(data, dict):
        raise OversightError(f"{path}: expected a JSON object mapping example names to examples.")
    out = Collector()
    for key, example in data.items():
        if not isinstance(example, dict):
            raise OversightError(f"{path}: example '{key}': expected a JSON object.")
        outer = Rec(example, path, f"example '{key}'")
        test = outer.get("test_example")
        if not isinstance(test, dict):
            raise outer.fail("field 'test_example' should be a JSON object")
        rec = outer.child(test, "test_example")
        chain = [str(s).strip() for s in rec.listing("chain_of_thought")]
        context = rec.text("question").strip()
        statement = _statement(rec)
        if not chain or not context:
            out.skip("empty theory or proof")
            continue
        conclusion = chain[-1].rstrip(".")
        goal = statement.rstrip(".")
        if conclusion == goal:
            implied = "True"
        elif negate(conclusion) == goal:
            implied = "False"
        else:
            out.skip("proof does not conclude the query's statement")
            continue
        answer = rec.text("answer", implied).strip()
        if answer not in ("True", "False"):
            raise rec.fail(f'field \'answer\' should be "True" or "False", got {excerpt(answer)}')
        if answer != implied:
            out.skip("proof's conclusion disagrees with the answer")
            continue
        wrong_chain = [negate(s) for s in chain]
        unchanged = sum(a == b for a, b in zip(chain, wrong_chain, strict=True))
        if unchanged == len(chain):
            out.skip("no is/are to negate")
            continue
        meta: dict[str, Any] = {
            "answer": answer,
            "hops": (len(chain) - 1) // 2,
            "wrong_source": "is/are negation swap",
            "unchanged_steps": unchanged,
            "answer_from_proof": not rec.has("answer"),
        }
        out.add(
            Item(
                task=card.name,
                item_id=str(key),
                question=f"{context}\n\n{rec.text('query').strip()}",
                answers=(" ".join(chain), " ".join(wrong_chain)),
                correct=0,
                group=card.group,
                meta=meta,
            )
        )
    return out.result
