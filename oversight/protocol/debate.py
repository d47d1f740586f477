"""Debate: Alice defends answer 1, Bob answer 2, over `rounds` rounds; then a judge reads the
finished transcript.

Round roles: round 1 is an opening argument, round 2 a critique of the opponent's
argument, rounds 3 and later answer the opponent's critiques. Alice's turn is always shown
first. With simultaneous turns (the default) both debaters of a round see only earlier
rounds; with sequential turns Bob also sees Alice's argument of the current round (round 1
stays simultaneous unless `first_round_simultaneous` is off). Each turn may be best-of-N
(oversight/protocol/bestof.py), with a different N per side if asked.

The judge never speaks during a debate, so one transcript serves every judge. The
`interactive` option is the exception: the judge (`questioner`) asks one question between
rounds, which makes the transcript specific to that judge.
"""

from __future__ import annotations

from oversight.dialogue.context import Context, gather_all
from oversight.dialogue.transcript import ALICE, BOB, Transcript, Turn, Verdict
from oversight.judge.fewshot import examples_block
from oversight.judge.judge import ask_judge, instruction
from oversight.judge.question import ask_question
from oversight.model.wrapper import Model
from oversight.protocol.agent import (
    agent_prompt,
    judge_rules,
    prompt_kind,
    render_history,
    task_block,
)
from oversight.protocol.bestof import best_of

ROUND_TEMPLATES = ("debate_round_opening", "debate_round_critique", "debate_round_rebuttal")
TURN_STYLES = ("simultaneous", "sequential")


def round_instruction(ctx: Context, r: int, *, side: int, opponent: str, history: list[Turn]) -> str:
    """The round's step list (opening, critique, rebuttal), in the item's extractive or
    closed version, plus a request to answer the judge's question if one was just asked."""
    template = f"{ROUND_TEMPLATES[min(r, len(ROUND_TEMPLATES)) - 1]}_{prompt_kind(ctx)}"
    text = ctx.templates.render(template, round=r, rounds=ctx.options.rounds, side=side, opponent=opponent)
    # The judge's question before this round (it carries the round number it precedes). Not
    # "the last turn": with sequential turns Bob's last turn is Alice's answer to it.
    if any(t.role == "judge_question" and t.round == r for t in history):
        text += ctx.templates.render("debate_answer_question")
    return text


async def debater_turn(
    ctx: Context, model: Model, r: int, *, name: str, side: int, opponent: str, history: list[Turn], n: int
) -> list[Turn]:
    prompt = agent_prompt(
        ctx,
        "debater",
        name=name,
        side=side,
        opponent=opponent,
        history=history,
        instruction=round_instruction(ctx, r, side=side, opponent=opponent, history=history),
    )
    return await best_of(
        ctx,
        model,
        prompt,
        n=n,
        speaker=name,
        role="debater",
        side=side,
        round=r,
        protocol="debate",
        history=history,
    )


def _chosen(turns: list[Turn]) -> list[Turn]:
    return [t for t in turns if t.chosen]


async def debate(
    ctx: Context,
    alice: Model,
    bob: Model,
    *,
    questioner: Model | None = None,
    best_of: int | tuple[int, int] | None = None,
) -> Transcript:
    """`best_of` overrides ctx.options.best_of, per side as (Alice's N, Bob's N) when a pair:
    cross-play between debater configurations (Elo) can pit best-of-4 against best-of-1."""
    opts = ctx.options
    if opts.turns not in TURN_STYLES:
        raise ValueError(f"unknown turn style {opts.turns!r}; expected one of {TURN_STYLES}")
    if opts.interactive and questioner is None:
        raise ValueError("an interactive debate needs a questioner (the judge)")
    n = opts.best_of if best_of is None else best_of
    n_alice, n_bob = n if isinstance(n, tuple) else (n, n)
    transcript = Transcript(ctx.transcript_id or ctx.episode_id)
    for r in range(1, opts.rounds + 1):
        before = transcript.visible_turns()
        simultaneous = opts.turns == "simultaneous" or (r == 1 and opts.first_round_simultaneous)
        a_turn = debater_turn(ctx, alice, r, name=ALICE, side=1, opponent=BOB, history=before, n=n_alice)
        if simultaneous:
            b_turn = debater_turn(ctx, bob, r, name=BOB, side=2, opponent=ALICE, history=before, n=n_bob)
            a, b = await gather_all(a_turn, b_turn)
        else:
            a = await a_turn
            seen = before + _chosen(a)
            b = await debater_turn(ctx, bob, r, name=BOB, side=2, opponent=ALICE, history=seen, n=n_bob)
        transcript.turns += a + b
        if opts.interactive and questioner is not None and r < opts.rounds:
            prompt = question_prompt(ctx, transcript.visible_turns())
            transcript.turns.append(await ask_question(ctx, questioner, prompt, round=r + 1, protocol="debate"))
    return transcript


def question_prompt(ctx: Context, history: list[Turn]) -> str:
    return ctx.templates.render(
        "judge_question_debate",
        alice=ALICE,
        bob=BOB,
        rules=judge_rules(ctx),
        task=task_block(ctx),
        transcript=render_history(ctx, history),
        word_limit=ctx.options.word_limit,
    )


def judge_prompt(ctx: Context, transcript: Transcript) -> str:
    """What the judge reads: question, answers and the visible transcript, never the article."""
    return ctx.templates.render(
        "judge_debate",
        alice=ALICE,
        bob=BOB,
        rules=judge_rules(ctx),
        examples=examples_block(ctx),
        task=task_block(ctx),
        transcript=render_history(ctx, transcript.visible_turns()),
        instruction=instruction(ctx),
    )


async def judge_debate(ctx: Context, judge: Model, transcript: Transcript) -> tuple[Verdict, Turn]:
    return await ask_judge(ctx, judge, judge_prompt(ctx, transcript), protocol="debate", sees_article=False)
