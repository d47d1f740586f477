"""One agent turn: build the prompt, call the model, and turn the reply into a Turn.

An agent (debater or consultant) writes `Thinking:` (private) then `Argument:` (visible).
Before anyone else sees the turn, the argument is cut to the word limit and, in extractive
tasks, every `<passage>` is checked against the article (oversight/protocol/passages.py).

Reply parsing (`split_reply`), in order:
- an `Argument:` header (at a line start, markdown emphasis allowed) splits the reply:
  everything before it is private, everything after it visible; if a later `Thinking:`
  header follows, the argument stops there and the rest is private too;
- no header at all: the whole reply is the argument (models that ignore the format still
  get heard);
- a `Thinking:` header but no `Argument:` header: the whole reply is private and the
  argument is empty, because showing it would leak private thinking, which must never
  happen.

Every turn row records `format_ok` (an `Argument:` header was found, so the split is the
model's own), `finish_reason` (`stop`; `max_tokens` when the provider cut the reply at the
token limit; `word_limit` when the harness cut the argument to the word limit) and, in
extractive tasks, `copied_words`: words of the visible argument outside passage tags that
stand in a run of 8 or more words copied from the article (oversight/protocol/passages.py).

The word limit is enforced by oversight/dialogue/words.py (shared with the judge's questions).
"""

from __future__ import annotations

import re

from oversight.dialogue.context import Context, user_message
from oversight.dialogue.transcript import Turn
from oversight.dialogue.words import enforce_word_limit
from oversight.model.types import GenerateRequest, GenerateResponse
from oversight.model.wrapper import Model
from oversight.protocol.passages import copied_words, verify

_HEADER = re.compile(
    r"^[ \t]*(?:[#>*_]+[ \t]*)*(thinking|argument)[ \t]*(?:[*_]+[ \t]*)?:[ \t]*(?:[*_]+[ \t]*)?",
    re.IGNORECASE | re.MULTILINE,
)


def follows_format(text: str) -> bool:
    """Whether the reply has the `Argument:` header that separates private from visible."""
    return any(m.group(1).lower() == "argument" for m in _HEADER.finditer(text))


def split_reply(text: str) -> tuple[str, str]:
    """(private thinking, visible argument) from an agent's reply; see the module docstring."""
    headers = list(_HEADER.finditer(text))
    arg = next((m for m in headers if m.group(1).lower() == "argument"), None)
    if arg is None:
        if any(m.group(1).lower() == "thinking" for m in headers):
            return _drop_header(text).strip(), ""
        return "", text.strip()
    private = _drop_header(text[: arg.start()])
    rest = text[arg.end() :]
    later = next((m for m in _HEADER.finditer(rest) if m.group(1).lower() == "thinking"), None)
    if later is not None:
        private = f"{private.strip()}\n{_drop_header(rest[later.start() :])}"
        rest = rest[: later.start()]
    return private.strip(), rest.strip()


def _drop_header(chunk: str) -> str:
    chunk = chunk.lstrip()
    m = _HEADER.match(chunk)
    return chunk[m.end() :] if m else chunk




def has_passages(ctx: Context) -> bool:
    """Whether this item's agents quote an article (extractive tasks that carry one)."""
    return ctx.item.group == "extractive" and bool(ctx.item.article)


def prompt_kind(ctx: Context) -> str:
    """Which version of an agent's templates this item gets: `extractive` (the article,
    passage rules, passage-based judging criteria) or `closed` (none of these, and the judge
    may know less than the agent; multimodal items too, their images ride along)."""
    return "extractive" if has_passages(ctx) else "closed"


def judge_rules(ctx: Context) -> str:
    """What a judge (or a selector, which reads like one) is told about the article it has
    not read and about quotes; closed and multimodal: nothing."""
    return ctx.templates.render("judge_rules_extractive") if has_passages(ctx) else ""


def task_block(ctx: Context) -> str:
    """The question and the two answers as listed (`Choices: 1: … 2: …`)."""
    a1, a2 = ctx.answers
    return ctx.templates.render("task", question=ctx.item.question, answer1=a1, answer2=a2)


def article_block(ctx: Context) -> str:
    """The article, for agents of extractive tasks only; judges never get it here."""
    if not has_passages(ctx):
        return ""
    return ctx.templates.render("agent_article", article=ctx.item.article)


def render_history(ctx: Context, turns: list[Turn]) -> str:
    """The visible transcript: chosen turns' visible text only, never private thinking."""
    shown = [t for t in turns if t.chosen]
    if not shown:
        return ctx.templates.render("transcript_empty").strip()
    blocks = []
    for t in shown:
        text = t.visible.strip() or ctx.templates.render("transcript_silent").strip()
        blocks.append(ctx.templates.render("transcript_turn", speaker=t.speaker, round=t.round, text=text).strip())
    return "\n\n".join(blocks)


def agent_prompt(
    ctx: Context,
    template: str,
    *,
    name: str,
    side: int,
    history: list[Turn],
    instruction: str,
    opponent: str = "",
) -> str:
    """A debater's or consultant's prompt: `template` is the role (`debater`, `consultant`),
    rendered in its extractive or closed version; `instruction` is the round's step list."""
    answers = ctx.answers
    return ctx.templates.render(
        f"{template}_{prompt_kind(ctx)}",
        name=name,
        side=side,
        other_side=3 - side,
        own_answer=answers[side - 1],
        other_answer=answers[2 - side],
        opponent=opponent,
        word_limit=ctx.options.word_limit,
        task=task_block(ctx),
        article=article_block(ctx),
        transcript=render_history(ctx, history),
        instruction=instruction,
    )


def agent_request(
    ctx: Context, prompt: str, *, role: str, side: int, protocol: str, sample: int = 0
) -> GenerateRequest:
    return GenerateRequest(
        [user_message(ctx, prompt)],
        sample=sample,
        metadata=ctx.ground_truth(role=role, side=side, protocol=protocol, sees_article=has_passages(ctx)),
    )


def make_turn(
    ctx: Context,
    response: GenerateResponse,
    *,
    speaker: str,
    role: str,
    side: int,
    round: int,
    candidate: int | None = None,
) -> Turn:
    """Parse, cut to the word limit, then verify passages: counts reflect what is shown."""
    raw = response.texts[0] if response.texts else ""
    private, visible = split_reply(raw)
    visible, truncated = enforce_word_limit(visible, ctx.options.word_limit)
    n_v = n_u = 0
    copied: int | None = None
    if has_passages(ctx):
        visible, n_v, n_u = verify(visible, ctx.item.article or "", ctx.options.passage_match)
        copied = copied_words(visible, ctx.item.article or "")
    ended = response.finish_reasons[0] if response.finish_reasons else None
    if ended != "max_tokens" and truncated:
        ended = "word_limit"
    return Turn(
        round=round,
        speaker=speaker,
        role=role,
        side=side,
        visible=visible,
        private=private,
        candidate=candidate,
        n_verified=n_v,
        n_unverified=n_u,
        truncated=truncated,
        format_ok=follows_format(raw),
        finish_reason=ended or None,
        copied_words=copied,
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        cost_usd=0.0 if response.cache_hit else response.cost_usd,
        prompt_id=response.prompt_id,
    )


async def speak(
    ctx: Context,
    model: Model,
    prompt: str,
    *,
    speaker: str,
    role: str,
    side: int,
    round: int,
    protocol: str,
    sample: int = 0,
    candidate: int | None = None,
) -> Turn:
    """One model call for one agent turn (or one best-of-N candidate)."""
    request = agent_request(ctx, prompt, role=role, side=side, protocol=protocol, sample=sample)
    response = await ctx.call(model, request, role=role, speaker=speaker)
    return make_turn(ctx, response, speaker=speaker, role=role, side=side, round=round, candidate=candidate)
