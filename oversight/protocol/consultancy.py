"""Consultancy: one consultant argues for its assigned answer; the judge questions it.

Sequence for R rounds (default 3): the consultant's opening; then, R-1 times, the judge
asks one question and the consultant answers; finally the judge gives its answer. The
questions are part of the transcript, so a consultancy transcript belongs to one judge.
Each item is run with the consultant assigned the correct answer and with it assigned the
incorrect one (the caller runs both `assigned_side`s).
"""

from __future__ import annotations

from oversight.dialogue.context import Context, Options
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
from oversight.protocol.base import AGENT_OPTIONS, JUDGE_OPTIONS, Env, Outcome, Protocol, Slot
from oversight.protocol.episode import Episode
from oversight.task.item import Item

NAME = "consultancy"


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
            turns.append(await ask_question(ctx, judge, prompt, round=r, protocol=NAME, side=assigned_side))
        turns.append(await consultant_turn(ctx, consultant, r, side=assigned_side, history=turns))
    verdict, final = await ask_judge(
        ctx,
        judge,
        judge_prompt(ctx, side=assigned_side, history=turns),
        protocol=NAME,
        sees_article=False,
    )
    turns.append(final)
    return transcript, verdict


async def consultant_turn(ctx: Context, consultant: Model, r: int, *, side: int, history: list[Turn]) -> Turn:
    prompt = consultant_prompt(ctx, r, side=side, history=history)
    return await speak(ctx, consultant, prompt, speaker=CONSULTANT, role="consultant", side=side, round=r,
                       protocol=NAME)


class Consultancy(Protocol):
    """One consultant, assigned the correct answer in one episode and the incorrect one in
    another; the judge questions it, so each transcript is that judge's own."""

    name = NAME
    reads = ("consultancy_rounds", *AGENT_OPTIONS, *JUDGE_OPTIONS)
    title = "Consultancy"
    colour = "#e6a23c"
    order = 2

    def plan(self, slot: Slot) -> list[Episode]:
        return [
            Episode(slot.key(judge, slot.agent, assigned), self.name, slot.item, slot.order, judge, slot.agent,
                    None, assigned, rounds=slot.options["consultancy_rounds"], replicate=slot.replicate,
                    variant=slot.variant)
            for judge in slot.judges
            for assigned in ("correct", "incorrect")
        ]

    def assigned_side(self, ep: Episode) -> int | None:
        correct = Item.correct_position(ep.order)
        return correct if ep.assigned == "correct" else 3 - correct

    async def run(self, env: Env, ep: Episode, ctx: Context) -> Outcome:
        assert ep.agent is not None
        side = self.assigned_side(ep)
        assert side is not None
        t, v = await consultancy(ctx, env.agent(ep.agent), env.judge, assigned_side=side)
        return Outcome(t, v)

    def human_mode(self, ep: Episode, options: Options) -> str | None:
        return "ask"  # the person asks the questions, so the consultant replies anew

    def human_rounds(self, options: Options) -> int:
        return options.consultancy_rounds

    async def human_round(self, env: Env, ep: Episode, ctx: Context, r: int, history: list[Turn]) -> list[Turn]:
        assert ep.agent is not None
        side = self.assigned_side(ep)
        assert side is not None
        return [await consultant_turn(ctx, env.agent(ep.agent), r, side=side, history=history)]

    def human_instructions(self, ep: Episode, options: Options, asking: bool) -> str:
        return (f"A consultant argues that answer {self.assigned_side(ep)} is correct. The answer it argues for may "
                f"be the correct one or the incorrect one. Between its turns you may ask it one question per round.")

    def human_titles(self) -> tuple[str, str]:
        return "The conversation with the consultant", "the consultant"

