"""Asking a judge model for its final answer and turning the reply into a Verdict."""

from __future__ import annotations

from oversight.dialogue.context import Context, user_message
from oversight.dialogue.transcript import Turn, Verdict
from oversight.errors import OversightError
from oversight.judge.parse import parse_verdict
from oversight.model.types import GenerateRequest
from oversight.model.wrapper import Model

# k-shot judges answer like answer-only judges; their examples come from judge/fewshot.py.
INSTRUCTIONS = {"answer": "judge_answer_only", "cot": "judge_cot", "fewshot": "judge_answer_only"}
JUDGE_MODES: tuple[str, ...] = tuple(INSTRUCTIONS)


def instruction(ctx: Context) -> str:
    mode = ctx.options.judge_mode
    if mode not in INSTRUCTIONS:
        raise OversightError(f"Unknown judge mode '{mode}'. Available: {', '.join(JUDGE_MODES)}.")
    return ctx.templates.render(INSTRUCTIONS[mode])



def constrains(ctx: Context, judge: Model) -> bool:
    """Whether this judge's final answer is forced into `Answer: 1|2` (the spec's
    `judge.constrain`, or `constrain: true` on the judge's card)."""
    return bool(ctx.options.judge_constrain or judge.card.constrain)


async def ask_judge(
    ctx: Context, judge: Model, prompt: str, *, protocol: str, sees_article: bool, **truth: object
) -> tuple[Verdict, Turn]:
    """Send the judge its final prompt; the reply is parsed, never guessed."""
    constrained = constrains(ctx, judge)
    # In a constrained chain of thought the answer token sits at a known place, so its
    # probabilities are worth asking for; in a free one they are not read.
    want_probs = judge.api.capabilities.logprobs and (ctx.options.judge_mode != "cot" or constrained)
    request = GenerateRequest(
        [user_message(ctx, prompt)],
        logprob_choices=("1", "2") if want_probs else None,
        constrain=("cot" if ctx.options.judge_mode == "cot" else "answer") if constrained else None,
        metadata=ctx.ground_truth(
            role="judge",
            protocol=protocol,
            sees_article=sees_article,
            mode=ctx.options.judge_mode,
            **truth,
        ),
    )
    response = await ctx.call(judge, request, role="judge", speaker="Judge")
    text = response.texts[0] if response.texts else ""
    logprobs = response.logprobs[0] if response.logprobs else None  # this sample's choice tokens
    verdict = parse_verdict(text, logprobs, constrained=constrained)
    turn = Turn(
        round=0,
        speaker="Judge",
        role="judge",
        side=verdict.answer,
        visible=text,
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        cost_usd=0.0 if response.cache_hit else response.cost_usd,
        prompt_id=response.prompt_id,
    )
    return verdict, turn
