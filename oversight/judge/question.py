"""A judge asking one question mid-protocol (consultancy; interactive debate).

The question enters the transcript as a Turn with role `judge_question`, spoken by the
Judge, so every later participant (and the judge's own final prompt) sees it. Its `round`
is the round whose agent turns it prompts. A question is held to the agents' word limit
(cut the same way), so a judge cannot flood the transcript.
"""

from __future__ import annotations

import re

from oversight.dialogue.context import Context, user_message
from oversight.dialogue.transcript import JUDGE, Turn
from oversight.dialogue.words import enforce_word_limit
from oversight.model.types import GenerateRequest
from oversight.model.wrapper import Model

_LABEL = re.compile(r"^[ \t]*(?:[#>*_]+[ \t]*)*question[ \t]*(?:[*_]+[ \t]*)?:[ \t]*(?:[*_]+)?", re.I | re.M)


def clean_question(text: str, word_limit: int) -> tuple[str, bool]:
    """The question itself: text after the last `Question:` label if any, cut to the limit."""
    labels = list(_LABEL.finditer(text))
    if labels:
        text = text[labels[-1].end() :]
    return enforce_word_limit(text.strip(), word_limit)


async def ask_question(ctx: Context, judge: Model, prompt: str, *, round: int, protocol: str, **truth: object) -> Turn:
    request = GenerateRequest(
        [user_message(ctx, prompt)],
        metadata=ctx.ground_truth(role="judge_question", protocol=protocol, sees_article=False, **truth),
    )
    response = await ctx.call(judge, request, role="judge_question", speaker=JUDGE)
    question, truncated = clean_question(response.texts[0] if response.texts else "", ctx.options.word_limit)
    return Turn(
        round=round,
        speaker=JUDGE,
        role="judge_question",
        side=None,
        visible=question,
        truncated=truncated,
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        cost_usd=0.0 if response.cache_hit else response.cost_usd,
        prompt_id=response.prompt_id,
    )
