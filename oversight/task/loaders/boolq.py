"""`boolq`: BoolQ, already binary. Answers are ("True", "False"); the article is the passage.

Reads the upstream JSON Lines (`question, title, answer, passage`; optionally gzipped) or
the Hugging Face `google/boolq` Parquet shape (`question, answer, passage`, no title),
chosen by the file extension. Items are numbered by their position in the file (0-based),
which is the same for both shapes of the same split.
"""

from __future__ import annotations

from pathlib import Path

from oversight.config import Strict
from oversight.errors import OversightError, excerpt
from oversight.task.card import LoadResult, TaskCard, register_loader
from oversight.task.item import Item
from oversight.task.loaders.common import Collector, Rec, file_kind, options, read_table

ANSWERS = ("True", "False")


class BoolqOptions(Strict):
    # Upstream questions are lower-case search queries without a question mark; by default
    # we capitalise the first letter and add "?" so prompts read as questions. The raw
    # query stays in meta["raw_question"].
    tidy_question: bool = True


def _truth(rec: Rec) -> bool:
    value = rec.get("answer")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise rec.fail(f"field 'answer' should be true or false, got {excerpt(value)}")


def tidy(question: str) -> str:
    q = question.strip()
    if not q:
        return q
    q = q[0].upper() + q[1:]
    return q if q.endswith("?") else q + "?"


@register_loader("boolq")
def load_boolq(card: TaskCard, path: Path, seed: int) -> LoadResult:
    del seed  # nothing to choose: BoolQ is already binary
    opts = options(card, BoolqOptions)
    if file_kind(path) not in ("jsonl", "parquet"):
        raise OversightError(
            f"{path}: the boolq loader reads the upstream .jsonl file or the Hugging Face .parquet file."
        )
    out = Collector()
    for n, rec in enumerate(read_table(path)):
        raw_q = rec.text("question")
        passage = rec.text("passage")
        truth = _truth(rec)
        if not raw_q.strip() or not passage.strip():
            out.skip("empty question or passage")
            continue
        out.add(
            Item(
                task=card.name,
                item_id=str(n),
                question=tidy(raw_q) if opts.tidy_question else raw_q.strip(),
                answers=ANSWERS,
                correct=0 if truth else 1,
                group=card.group,
                article=passage,
                meta={
                    "title": rec.text("title", ""),
                    "raw_question": raw_q,
                    "wrong_source": "the other truth value",
                },
            )
        )
    return out.result
