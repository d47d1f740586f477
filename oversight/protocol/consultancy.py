"""Consultancy: one consultant argues for its assigned answer; the judge questions it.

Sequence for R rounds (default 3): the consultant's opening; then, R-1 times, the judge
asks one question and the consultant answers; finally the judge gives its answer. The
questions are part of the transcript, so a consultancy transcript belongs to one judge.
Each item is run with the consultant assigned the correct answer and with it assigned the
incorrect one (the caller runs both `assigned_side`s).
"""

from __future__ import annotations

from oversight.dialogue.context import Context
from oversight.dialogue.transcript import CONSULTANT, Transcript, Turn, Verdict
from oversight.judge.fewshot import examples_block
from oversight.judge.judge import ask_judge, instruction
from oversight.judge.question import ask_question
from oversight.model.wrapper import Model
from oversight.protocol.agent import (
    agent_prompt,
    judge_rules,
    prompt_kind,
    render_history,
    speak,
    task_block,
)


def _check_side(side: int) -> None:
    if side not in (1, 2):
        raise ValueError(f"assigned_side must be 1 or 2, got {side!r}")


def consultant_prompt(ctx: Context, r: int, *, side: int, history: list[Turn]) -> str:
    """Round 1 is the opening case; every later round answers the judge's last question."""
    template = "consultancy_round_opening" if r == 1 else "consultancy_round_answer"
    rounds = ctx.options.consultancy_rounds
    step = ctx.templates.render(f"{template}_{prompt_kind(ctx)}", round=r, rounds=rounds, side=side)
    return agent_prompt(ctx, "consultant", name=CONSULTANT, side=side, history=history, instruction=step)


def _judge_view(ctx: Context, template: str, side: int, history: list[Turn], **extra: object) -> str:
    return ctx.templates.render(
        template,
        side=side,
        other_side=3 - side,
        rules=judge_rules(ctx),
        task=task_block(ctx),
        transcript=render_history(ctx, history),
        **extra,
    )


def question_prompt(ctx: Context, *, side: int, history: list[Turn]) -> str:
    return _judge_view(ctx, "judge_question_consultancy", side, history, word_limit=ctx.options.word_limit)


def judge_prompt(ctx: Context, *, side: int, history: list[Turn]) -> str:
    return _judge_view(
        ctx,
        "judge_consultancy",
        side,
        history,
        examples=examples_block(ctx),
        instruction=instruction(ctx),
    )


async def consultancy(
    ctx: Context, consultant: Model, judge: Model, *, assigned_side: int
) -> tuple[Transcript, Verdict]:
    _check_side(assigned_side)
    transcript = Transcript(ctx.transcript_id or ctx.episode_id)
    turns = transcript.turns
    for r in range(1, ctx.options.consultancy_rounds + 1):
        if r > 1:
            prompt = question_prompt(ctx, side=assigned_side, history=turns)
            turns.append(await ask_question(ctx, judge, prompt, round=r, protocol="consultancy", side=assigned_side))
        prompt = consultant_prompt(ctx, r, side=assigned_side, history=turns)
        turns.append(
            await speak(
                ctx,
                consultant,
                prompt,
                speaker=CONSULTANT,
                role="consultant",
                side=assigned_side,
                round=r,
                protocol="consultancy",
            )
        )
    verdict, final = await ask_judge(
        ctx,
        judge,
        judge_prompt(ctx, side=assigned_side, history=turns),
        protocol="consultancy",
        sees_article=False,
    )
    turns.append(final)
    return transcript, verdict
