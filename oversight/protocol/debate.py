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

from typing import Any

from oversight.dialogue.context import Context, Options, gather_all
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
from oversight.protocol.base import AGENT_OPTIONS, JUDGE_OPTIONS, Env, Outcome, Protocol, Slot
from oversight.protocol.bestof import best_of
from oversight.protocol.consultancy import Consultancy
from oversight.protocol.episode import Episode, digest
from oversight.protocol.qa import QA

NAME = "debate"

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
        protocol=NAME,
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
        transcript.turns += await debate_round(ctx, alice, bob, r, transcript.visible_turns(), (n_alice, n_bob))
        if opts.interactive and questioner is not None and r < opts.rounds:
            prompt = question_prompt(ctx, transcript.visible_turns())
            transcript.turns.append(await ask_question(ctx, questioner, prompt, round=r + 1, protocol=NAME))
    return transcript


async def debate_round(
    ctx: Context, alice: Model, bob: Model, r: int, before: list[Turn], n: tuple[int, int]
) -> list[Turn]:
    """Both debaters' turns of round `r` (every best-of-N candidate), Alice's first."""
    opts = ctx.options
    simultaneous = opts.turns == "simultaneous" or (r == 1 and opts.first_round_simultaneous)
    a_turn = debater_turn(ctx, alice, r, name=ALICE, side=1, opponent=BOB, history=before, n=n[0])
    if simultaneous:
        b_turn = debater_turn(ctx, bob, r, name=BOB, side=2, opponent=ALICE, history=before, n=n[1])
        a, b = await gather_all(a_turn, b_turn)
    else:
        a = await a_turn
        seen = before + _chosen(a)
        b = await debater_turn(ctx, bob, r, name=BOB, side=2, opponent=ALICE, history=seen, n=n[1])
    return a + b


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
    return await ask_judge(ctx, judge, judge_prompt(ctx, transcript), protocol=NAME, sees_article=False)


class Debate(Protocol):
    """Two debaters; one transcript serves every judge (unless the judge asks questions)."""

    name = NAME
    reads = ("rounds", "turns", "first_round_simultaneous", "best_of", "interactive", *AGENT_OPTIONS,
             *JUDGE_OPTIONS)
    title = "Debate"
    colour = "#2f6db5"
    order = 3
    headline = (Consultancy.name, QA.name)
    headline_rank = 0
    games = True

    def row_settings(self, options: Options) -> dict[str, Any]:
        return {**super().row_settings(options), "interactive": options.interactive}

    def transcript_depends_on_judge(self, interactive: bool) -> bool:
        return interactive  # only an interactive debate holds its judge's questions

    def plan(self, slot: Slot) -> list[Episode]:
        o = slot.options
        out = []
        for judge in slot.judges:
            # The transcript is the judge's own only when the judge asks questions in it.
            key = digest(slot.variant, digest(dict(o)), self.name, slot.item.task, slot.item.item_id, slot.replicate,
                         slot.order, slot.agent, slot.agent, judge if o["interactive"] else None)
            out.append(Episode(digest(f"{self.name}-judge", key, judge), self.name, slot.item, slot.order, judge,
                               slot.agent, slot.agent, slot.assigned_first, key, best_of=o["best_of"],
                               best_of_b=o["best_of"], rounds=o["rounds"], turn_style=o["turns"],
                               replicate=slot.replicate, variant=slot.variant))
        return out

    async def run(self, env: Env, ep: Episode, ctx: Context) -> Outcome:
        assert ep.agent is not None and ep.agent_b is not None
        alice, bob = env.agent(ep.agent), env.agent(ep.agent_b)
        questioner = env.judge if ctx.options.interactive else None
        sides = (ep.best_of or 1, ep.best_of_b or 1)
        shared, share = await env.shared(lambda tctx: debate(tctx, alice, bob, questioner=questioner, best_of=sides))
        verdict, turn = await judge_debate(ctx, env.judge, shared)
        turn.round = self.judge_turn_round(shared.turns)
        # The judged instance: the shared transcript plus this judge's final turn.
        return Outcome(Transcript(shared.transcript_id, [turn]), verdict, share, len(shared.turns))

    def judge_turn_round(self, transcript: list[Turn]) -> int:
        return max((t.round for t in transcript), default=0) + 1

    def human_mode(self, ep: Episode, options: Options) -> str | None:
        return "ask" if options.interactive else "read"

    def human_rounds(self, options: Options) -> int:
        return options.rounds

    async def human_round(self, env: Env, ep: Episode, ctx: Context, r: int, history: list[Turn]) -> list[Turn]:
        assert ep.agent is not None and ep.agent_b is not None
        opts = ctx.options
        n = (ep.best_of or opts.best_of, ep.best_of_b or opts.best_of)
        return await debate_round(ctx, env.agent(ep.agent), env.agent(ep.agent_b), r, _chosen(history), n)

    def human_instructions(self, ep: Episode, options: Options, asking: bool) -> str:
        text = (f"Two debaters argue over which answer is correct: {ALICE} argues for answer 1 and {BOB} for "
                f"answer 2. Read the debate, then decide.")
        return text + (" Between rounds you may ask the debaters one question." if asking else "")

    def human_titles(self) -> tuple[str, str]:
        return "The debate", "the debaters"
