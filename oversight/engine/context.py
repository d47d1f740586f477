"""Context windows: prompts that cannot fit are found before any call, never sent to fail.

A model's window comes from its card (`context_window`), from the managed llama.cpp server
it gets (oversight/model/local_server.py), or from what its running server reports
(llama.cpp `/props`, vLLM's `max_model_len`). Models with no known window are not checked.

The check runs where the plan is made (`prepare`: `validate`, `--dry-run` and `run` alike).
It rehearses the plan as the dry run does (oversight/engine/estimate.py), so every prompt a
model will receive is built, with stand-in replies at the full word limit. A prompt's tokens
are estimated at CHARS_PER_TOKEN characters a token (English runs nearer four a token for
current tokenizers; the margin covers tokenizers that split finer), and the call needs them
plus the card's `max_tokens`.

What happens to an item whose prompts do not fit, by the card's `context_overflow`:
- `error` (default): `validate`, the dry run and the run stop before any call, naming the
  item, the model, the estimate and the window, and the settings that would help;
- `skip`: the item is left out of the run, counted per task in the manifest
  (`tasks.NAME.skipped.context_window`) and so in the report;
- `truncate`: the item's article is cut at a word boundary, from the end, by as many
  characters as the largest overflow needs, and ends with " [… cut to fit the context
  window]"; `meta.article_truncated_from_chars` records its original length. An item with
  no article to cut is an error.
Where several models disagree, `error` wins over `skip`, and `skip` over `truncate`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable
from typing import Any

from oversight.engine.prepare import Prepared
from oversight.errors import OversightError
from oversight.task.item import Item

CHARS_PER_TOKEN = 3.0
_CUT_NOTE = " [… cut to fit the context window]"
_SEVERITY = {"truncate": 0, "skip": 1, "error": 2}


def windows(prep: Prepared) -> dict[str, int]:
    from oversight.model.local_server import context_window

    out: dict[str, int] = {}
    for label, card in prep.cards.items():
        window = context_window(card)
        if window:
            out[label] = window
    return out


def fit_context(prep: Prepared, source: str) -> dict[str, list[Item]] | None:
    """The items to plan with instead (some skipped or cut), or None when all fit."""
    wins = windows(prep)
    if not wins or not prep.plan.episodes:
        return None
    need: dict[tuple[str, str, str], int] = {}  # (model, task, item_id) -> largest tokens needed

    def add(ep: Any, call: dict[str, Any]) -> None:
        label = str(call["model"])
        if label not in wins:
            return
        # The rehearsal counts four characters a token; the check counts CHARS_PER_TOKEN.
        tokens = math.ceil(int(call["input_tokens"]) * 4 / CHARS_PER_TOKEN) + prep.cards[label].max_tokens
        key = (label, ep.task, ep.item.item_id)
        need[key] = max(need.get(key, 0), tokens)

    _rehearse(prep, add)
    over = {k: v for k, v in need.items() if v > wins[k[0]]}
    if not over:
        return None
    by_item: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for (label, task, item_id), tokens in over.items():
        by_item.setdefault((task, item_id), []).append((label, tokens))
    items = {task: list(its) for task, its in prep.items.items()}
    errors: list[str] = []
    for (task, item_id), models in sorted(by_item.items()):
        policy = max((prep.cards[label].context_overflow for label, _ in models), key=_SEVERITY.__getitem__)
        item = next(i for i in items[task] if i.item_id == item_id)
        label, tokens = max(models, key=lambda m: m[1] - wins[m[0]])
        if policy == "truncate" and item.article:
            excess = max(t - wins[lbl] for lbl, t in models)
            items[task] = [_truncated(i, excess) if i is item else i for i in items[task]]
        elif policy == "skip":
            items[task] = [i for i in items[task] if i is not item]
            counts = prep.skipped.setdefault(task, {})
            counts["context_window"] = counts.get("context_window", 0) + 1
        else:
            why = " (context_overflow: truncate, but it has no article to cut)" if policy == "truncate" else ""
            errors.append(f"task '{task}' item '{item_id}' needs about {tokens:,} tokens on '{label}', whose "
                          f"context window is {wins[label]:,}{why}")
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise OversightError(
            f"{source}: some prompts cannot fit their model's context window with their max_tokens: {errors[0]}"
            f"{more}. Nothing was sent. Set `context_overflow: skip` (leave such items out, counted) or "
            f"`truncate` (cut their articles) on the model's card, or give it a larger context_window, a "
            f"smaller max_tokens, or the spec a smaller agents.word_limit or fewer rounds."
        )
    for task, its in items.items():
        if not its:
            raise OversightError(f"{source}: every item of task '{task}' was skipped for not fitting the context "
                                 f"window (context_overflow: skip); nothing of it would run.")
    return items


def _truncated(item: Item, excess_tokens: int) -> Item:
    article = item.article or ""
    cut = math.ceil(excess_tokens * CHARS_PER_TOKEN) + len(_CUT_NOTE)
    keep = max(0, len(article) - cut)
    head = article[:keep]
    if " " in head:
        head = head[: head.rindex(" ")]
    meta = {**item.meta, "article_truncated_from_chars": len(article)}
    return dataclasses.replace(item, article=head.rstrip() + _CUT_NOTE, meta=meta)


def _rehearse(prep: Prepared, add: Callable[[Any, dict[str, Any]], None]) -> None:
    from oversight.engine.estimate import rehearse

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(rehearse(prep, add))
        return
    # Planning from inside a running loop (a notebook's `await oversight.run_async(...)`):
    # the rehearsal gets a loop of its own in a thread.
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, rehearse(prep, add)).result()
