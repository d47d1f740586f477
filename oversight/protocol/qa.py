"""QA without and with the article: the judge alone answers from the question and the two
answers (and, for `qa_with_article` on extractive tasks, the article). No agent speaks.
A k-shot judge also gets solved examples from other items (oversight/judge/fewshot.py)."""

from __future__ import annotations

from oversight.dialogue.context import Context
from oversight.dialogue.transcript import Transcript, Verdict
from oversight.judge.fewshot import examples_block
from oversight.judge.judge import ask_judge, instruction
from oversight.model.wrapper import Model
from oversight.protocol.agent import task_block


def qa_prompt(ctx: Context, *, with_article: bool) -> str:
    article = ""
    if with_article and ctx.item.article:
        article = ctx.templates.render("judge_article", article=ctx.item.article)
    return ctx.templates.render(
        "judge_qa",
        context=article,
        examples=examples_block(ctx),
        task=task_block(ctx),
        instruction=instruction(ctx),
    )


async def qa(ctx: Context, judge: Model, *, with_article: bool) -> tuple[Transcript, Verdict]:
    protocol = "qa_with_article" if with_article else "qa"
    verdict, turn = await ask_judge(
        ctx,
        judge,
        qa_prompt(ctx, with_article=with_article),
        protocol=protocol,
        sees_article=with_article,
    )
    return Transcript(ctx.transcript_id or ctx.episode_id, [turn]), verdict
