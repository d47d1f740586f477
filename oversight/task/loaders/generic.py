"""`generic`: a user's own JSONL / JSON / CSV / TSV / Parquet file, mapped by the card.

The card's `fields` maps our names to the file's columns:

- `question` (required), `answers` (required), `correct` (required), `id`, `article`
  (required for `group: extractive`: an extractive item is one with an article).
- `answers` names one column holding a list (a JSON or Python list literal in CSV), or
  several columns separated by commas (`answers: "A, B, C, D"`).
- `correct` is an index (`correct_base` 0 or 1), an option letter (A, B, …) or the text of
  the correct option. An index or letter outside the options is an error. A text label
  that reads as two different answers (options `["1", "0"]` with label `"0"`: index 0 or
  the text of option 2; options `["B", "A"]` with label `"A"`) is an error naming the row,
  unless the card's `correct_as` (index, letter or text) says how to read every label.

With two answers the file's order is kept; with more, the correct one is kept together
with one wrong option chosen by `rng_for(seed, task, item_id)` (recorded in meta).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from oversight.errors import OversightError, excerpt
from oversight.task.card import LoadResult, TaskCard, register_loader
from oversight.task.item import Item
from oversight.task.loaders.common import (
    Collector,
    NoOptions,
    Rec,
    clean,
    is_integer_text,
    is_null,
    options,
    read_table,
    rng_for,
)

KNOWN_FIELDS = ("id", "question", "answers", "correct", "article")
REQUIRED_FIELDS = ("question", "answers", "correct")


def _check_fields(card: TaskCard) -> None:
    where = f"Task card {card.card_path or card.name}"
    unknown = [k for k in card.fields if k not in KNOWN_FIELDS]
    if unknown:
        raise OversightError(
            f"{where}: unknown key(s) in 'fields': {', '.join(unknown)} (valid keys: {', '.join(KNOWN_FIELDS)})."
        )
    missing = [k for k in REQUIRED_FIELDS if k not in card.fields]
    if missing:
        raise OversightError(
            f"{where}: the generic loader needs 'fields' to map {', '.join(missing)} to the data file's columns."
        )
    if card.correct_base not in (0, 1):
        raise OversightError(f"{where}: 'correct_base' must be 0 or 1, got {card.correct_base}.")
    if card.group == "extractive" and "article" not in card.fields:
        raise OversightError(
            f"{where}: group is extractive, but 'fields' maps no article (the passage agents read and "
            f"judges do not); map it (fields: {{article: COLUMN}}) or set group: closed."
        )


def _answers(rec: Rec, spec: str) -> list[str]:
    if spec in rec.data or "," not in spec:
        value: Any = rec.get(spec)
        if isinstance(value, str):
            value = _parse_list(rec, spec, value)
        elif hasattr(value, "tolist"):
            value = value.tolist()
        if not isinstance(value, list | tuple):
            raise rec.fail(f"field '{spec}' should hold a list of answers")
        for i, v in enumerate(value):
            if is_null(v):
                raise rec.fail(f"field '{spec}': answer {i + 1} is empty (null or NaN)")
        return [str(v) for v in value]
    return [str(rec.get(col.strip())) for col in spec.split(",") if col.strip()]


def _scalar_text(rec: Rec, key: str) -> str:
    """A text field; numbers are accepted as their text, but a list or object is a mistake."""
    value = rec.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise rec.fail(f"field '{key}' should be text, got {type(value).__name__} {excerpt(value)}")
    return str(value)


def _parse_list(rec: Rec, key: str, raw: str) -> list[Any]:
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(raw)
        except (ValueError, SyntaxError, TypeError):
            continue
        if isinstance(value, list | tuple):
            return list(value)
    raise rec.fail(f"field '{key}' should be a list of answers (JSON or Python list), got {excerpt(raw)}")


def _readings(v: str, answers: list[str], base: int) -> dict[str, int]:
    """Every way a text label can be read, as (reading → 0-based index), in range only."""
    n = len(answers)
    out: dict[str, int] = {}
    if is_integer_text(v) and 0 <= int(v) - base < n:
        out["index"] = int(v) - base
    if len(v) == 1 and "A" <= v <= "Z" and ord(v) - ord("A") < n:
        out["letter"] = ord(v) - ord("A")
    matches = [i for i, a in enumerate(answers) if clean(a) == v]
    if matches:
        out["text"] = matches[0]
    return out


def _correct_index(rec: Rec, key: str, value: Any, answers: list[str], base: int, rule: str = "auto") -> int:
    n = len(answers)
    if isinstance(value, bool):
        raise rec.fail(f"field '{key}' is a boolean; map it to an index, letter or answer text")
    idx: int | None = None
    if isinstance(value, int | float) and float(value).is_integer():
        idx = int(value) - base
    elif isinstance(value, str):
        v = value.strip()
        readings = _readings(v, answers, base)
        if rule != "auto":
            if rule not in readings:
                raise rec.fail(f"field '{key}' ({excerpt(v)}) is not {_RULE_WORDS[rule]} (the card's correct_as "
                               f"is {rule}; there are {n} answers, correct_base {base})")
            idx = readings[rule]
        elif len(set(readings.values())) > 1:
            said = "; ".join(f"as {_RULE_WORDS[r]} it is answer {i + 1} ({excerpt(answers[i], 30)})"
                             for r, i in readings.items())
            raise rec.fail(f"field '{key}' is {excerpt(v)}, which names different answers read different ways: "
                           f"{said}. Set correct_as (index, letter or text) in the task card to say which")
        elif readings:
            idx = next(iter(readings.values()))
        elif is_integer_text(v):
            idx = int(v) - base  # out of range: reported below
        elif len(v) == 1 and "A" <= v <= "Z":
            idx = ord(v) - ord("A")  # out of range: reported below
        else:
            raise rec.fail(f"field '{key}' ({excerpt(v)}) is not an index, a letter or one of the answers")
    if idx is None:
        raise rec.fail(f"field '{key}' should be an index, letter or answer text, got {excerpt(value)}")
    if not 0 <= idx < n:
        raise rec.fail(f"field '{key}' is {excerpt(value)}, outside the {n} answers (correct_base is {base})")
    return idx


_RULE_WORDS = {"index": "an index", "letter": "an option letter", "text": "an answer's text"}


@register_loader("generic")
def load_generic(card: TaskCard, path: Path, seed: int) -> LoadResult:
    _check_fields(card)
    options(card, NoOptions)
    f = card.fields
    out = Collector()
    for n, rec in enumerate(read_table(path)):
        item_id = _scalar_text(rec, f["id"]) if "id" in f else str(n)
        question = clean(_scalar_text(rec, f["question"]))
        answers = _answers(rec, f["answers"])
        correct = _correct_index(rec, f["correct"], rec.get(f["correct"]), answers, card.correct_base,
                                 card.correct_as)
        article = _scalar_text(rec, f["article"]) if "article" in f else None
        texts = [clean(a) for a in answers]
        if not question:
            out.skip("empty question")
            continue
        if article is not None and not article.strip():
            out.skip("empty article")
            continue
        if not texts[correct]:
            out.skip("empty correct answer")
            continue
        wrong = [i for i, t in enumerate(texts) if i != correct and t and t != texts[correct]]
        if not wrong:
            out.skip("no distinct wrong answer")
            continue
        meta: dict[str, Any] = {"n_options": len(texts), "correct_index": correct}
        if len(texts) == 2:
            # Already binary: keep the file's order.
            pair, right = (texts[0], texts[1]), correct
            meta["wrong_source"] = "the other option"
            meta["wrong_index"] = 1 - correct
        else:
            pick = rng_for(seed, card.name, item_id).choice(wrong)
            pair, right = (texts[correct], texts[pick]), 0
            meta["wrong_source"] = "seeded random option"
            meta["wrong_index"] = pick
        out.add(
            Item(
                task=card.name,
                item_id=item_id,
                question=question,
                answers=pair,
                correct=right,
                group=card.group,
                article=article,
                meta=meta,
            )
        )
    return out.result
