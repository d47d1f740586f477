"""Best-of-N debater turns.

N candidates are sampled independently as N separate calls with the same prompt and
`sample=0..N-1` (rather than one call with `n=N`): every provider supports that (Anthropic
has no `n`, and some OpenAI-compatible servers ignore it), and each candidate is cached
on its own. The debater's own model then picks the most persuasive candidate: its prompt
is the debate judge's (role, quote rules, question, who argues for which, the transcript)
ending with the candidates listed as a, b, c, … and answered as `Answer: x`.

Calls per best-of-N turn: N (candidates) + 1 (selector) when N > 1; a single call when
N == 1, with no selector. Each candidate Turn carries its own call's tokens and cost; the
selector call's are added to the chosen Turn, so summing over a transcript's Turns gives
everything the agent spent.

The selector sees what a judge would see of each candidate (the visible argument, already
cut to the word limit and with passages verified), never the private thinking. A reply
that names no single candidate falls back to the first one, and the chosen Turn is
marked `selection_invalid` so the rate can be counted.
"""

from __future__ import annotations

import string
from collections.abc import Awaitable

from oversight.dialogue.context import Context, gather_all, user_message
from oversight.dialogue.transcript import ALICE, BOB, Turn
from oversight.judge.parse import parse_choice
from oversight.model.types import GenerateRequest
from oversight.model.wrapper import Model
from oversight.protocol.agent import judge_rules, render_history, speak, task_block

LABELS = string.ascii_lowercase


def selector_prompt(ctx: Context, *, name: str, side: int, history: list[Turn], candidates: list[Turn]) -> str:
    labels = LABELS[: len(candidates)]
    listing = "\n\n".join(
        ctx.templates.render("selector_candidate", label=label, text=c.visible.strip() or "-").strip()
        for label, c in zip(labels, candidates, strict=True)
    )
    return ctx.templates.render(
        "selector",
        alice=ALICE,
        bob=BOB,
        name=name,
        side=side,
        rules=judge_rules(ctx),
        task=task_block(ctx),
        transcript=render_history(ctx, history),
        candidates=listing,
        labels=", ".join(labels),
    )


async def best_of(
    ctx: Context,
    model: Model,
    prompt: str,
    *,
    n: int,
    speaker: str,
    role: str,
    side: int,
    round: int,
    protocol: str,
    history: list[Turn],
) -> list[Turn]:
    """All candidates as Turns (candidate index set; `chosen` only on the pick)."""
    if n < 1:
        raise ValueError(f"best_of must be at least 1, got {n}")
    if n > len(LABELS):
        raise ValueError(f"best_of is limited to {len(LABELS)} candidates, got {n}")

    def sample(i: int | None) -> Awaitable[Turn]:
        return speak(
            ctx, model, prompt, speaker=speaker, role=role, side=side, round=round, protocol=protocol,
            sample=i or 0, candidate=i,
        )  # fmt: skip

    if n == 1:
        return [await sample(None)]
    candidates = await gather_all(*(sample(i) for i in range(n)))
    for c in candidates:
        c.chosen = False
    listing = selector_prompt(ctx, name=speaker, side=side, history=history, candidates=candidates)
    request = GenerateRequest(
        [user_message(ctx, listing)],
        metadata=ctx.ground_truth(role="selector", side=side, protocol=protocol, sees_article=False),
    )
    response = await ctx.call(model, request, role="selector", speaker=speaker)
    label = parse_choice(response.texts[0] if response.texts else "", tuple(LABELS[:n]))
    pick = candidates[LABELS.index(label) if label is not None else 0]
    pick.chosen = True
    pick.selection_invalid = label is None
    pick.input_tokens += response.usage.input_tokens
    pick.output_tokens += response.usage.output_tokens
    pick.cost_usd += 0.0 if response.cache_hit else response.cost_usd
    return candidates
