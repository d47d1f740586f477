"""k-shot judging: solved examples from other items of the same task.

Each example shows a question, its two answers and the correct answer. The examples are
drawn from `ctx.options.fewshot_pool` (never the item itself), seeded by the item so that
both answer orders of one item see the same examples (which keeps the two orders a fair
pair), and the correct answer's position is balanced across them: half are shown with the
correct answer first, half second (an odd k gives the extra one a seeded side), so the
examples teach no positional habit. Examples carry text only: a multimodal example's
images are not shown.

An example never shares a source document with the item: an item with the same article
text, or the same `article_id` or `title` in its metadata (QuALITY's many questions about
one story, BoolQ's about one Wikipedia page), is left out of the pool. Otherwise a judge
who must not read the article would be told true facts about it by the examples' answers.
`shots` in judgments.parquet records how many examples were shown (fewer than asked
when the pool is smaller).
"""

from __future__ import annotations

import hashlib
import random

from oversight.dialogue.context import Context, Options
from oversight.task.item import Item

SOURCE_KEYS = ("article_id", "title")  # metadata naming an item's source document


def source_keys(item: Item) -> set[tuple[str, str]]:
    """What identifies the document an item is about: its article, and source ids in meta."""
    keys = {("article", item.article.strip())} if item.article and item.article.strip() else set()
    for k in SOURCE_KEYS:
        value = item.meta.get(k)
        if isinstance(value, str | int) and str(value).strip():
            keys.add((k, str(value).strip()))
    return keys


def pick_examples(item: Item, pool: tuple[Item, ...] | list[Item], shots: int) -> list[tuple[Item, int]]:
    """(example item, answer order) pairs; order 0 = correct answer listed first."""
    own = source_keys(item)
    candidates = [x for x in pool if (x.task, x.item_id) != (item.task, item.item_id)
                  and not (own & source_keys(x))]
    candidates.sort(key=lambda x: x.item_id)  # the pool's order must not change the pick
    k = min(max(shots, 0), len(candidates))
    seed = hashlib.sha256(f"fewshot|{item.task}|{item.item_id}".encode()).digest()
    rng = random.Random(seed)
    chosen = rng.sample(candidates, k)
    orders = [0] * (k // 2) + [1] * (k // 2)
    if k % 2:
        orders.append(rng.randrange(2))
    rng.shuffle(orders)
    return list(zip(chosen, orders, strict=True))


def shots_shown(item: Item, options: Options) -> int | None:
    """How many examples a k-shot judge of `item` is shown (None unless the mode is fewshot)."""
    if options.judge_mode != "fewshot":
        return None
    return len(pick_examples(item, options.fewshot_pool, options.shots))


def examples_block(ctx: Context) -> str:
    """The examples section of a judge prompt; empty unless the judge mode is `fewshot`."""
    if ctx.options.judge_mode != "fewshot":
        return ""
    picked = pick_examples(ctx.item, ctx.options.fewshot_pool, ctx.options.shots)
    if not picked:
        return ""
    shown = []
    for example, order in picked:
        a1, a2 = example.shown(order)
        shown.append(
            ctx.templates.render(
                "fewshot_example",
                question=example.question,
                answer1=a1,
                answer2=a2,
                correct=Item.correct_position(order),
            ).strip()
        )
    return ctx.templates.render("judge_fewshot", examples="\n\n".join(shown))
