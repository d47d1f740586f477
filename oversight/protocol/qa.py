"""QA without and with the article: the judge alone answers from the question and the two
answers (and, for `qa_with_article` on extractive tasks, the article). No agent speaks.
A k-shot judge also gets solved examples from other items (oversight/judge/fewshot.py)."""

from __future__ import annotations

from typing import Any

from oversight.dialogue.context import Context, Options
from oversight.dialogue.transcript import Transcript, Verdict
from oversight.judge.fewshot import examples_block
from oversight.judge.judge import ask_judge, instruction
from oversight.model.wrapper import Model
from oversight.protocol.agent import task_block
from oversight.protocol.base import JUDGE_OPTIONS, Env, Outcome, Protocol, Slot
from oversight.protocol.episode import Episode
from oversight.task.item import Item


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
    protocol = QAWithArticle.name if with_article else QA.name
    verdict, turn = await ask_judge(
        ctx,
        judge,
        qa_prompt(ctx, with_article=with_article),
        protocol=protocol,
        sees_article=with_article,
    )
    return Transcript(ctx.transcript_id or ctx.episode_id, [turn]), verdict


class QA(Protocol):
    """The judge alone, from the question and the two answers."""

    name = "qa"
    reads = JUDGE_OPTIONS
    title = "QA"
    colour = "#9e9e9e"
    order = 0
    needs_agent = False
    reads_article = False

    def row_settings(self, options: Options) -> dict[str, Any]:
        return {"word_limit": None, "passage_match": None, "interactive": None}

    def plan(self, slot: Slot) -> list[Episode]:
        return [Episode(slot.key(judge), self.name, slot.item, slot.order, judge, replicate=slot.replicate,
                        variant=slot.variant) for judge in slot.judges]

    async def run(self, env: Env, ep: Episode, ctx: Context) -> Outcome:
        with_article = self.name == QAWithArticle.name
        t, v = await qa(ctx, env.judge, with_article=with_article)
        return Outcome(t, v)

    def human_mode(self, ep: Episode, options: Options) -> str | None:
        return "alone"

    def human_instructions(self, ep: Episode, options: Options, asking: bool) -> str:
        return "Answer from what you know: there are no arguments to read."


class QAWithArticle(QA):
    """QA with the article, on extractive tasks: an upper bound no judge of the others has."""

    name = "qa_with_article"
    title = "QA with article"
    colour = "#4d4d4d"
    order = 1
    groups = ("extractive",)
    reads_article = True
    headline = (QA.name,)
    headline_rank = 1

    def human_mode(self, ep: Episode, options: Options) -> str | None:
        return None  # a person must never see the article


def own_qa_protocol(item: Item) -> str:
    """The QA an agent answers itself (open protocols): with the article where there is one to read."""
    return QAWithArticle.name if item.group == "extractive" else QA.name
