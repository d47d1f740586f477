"""What a protocol works with: the item in one answer order, the options, the templates,
and `call`, the only way to reach a model (it records every call for calls.parquet)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from oversight.dialogue.prompts import Templates
from oversight.model.types import GenerateRequest, GenerateResponse, Message, Part, TextPart
from oversight.model.wrapper import CallFailure, Model
from oversight.task.item import Item


@dataclass
class Options:
    """Resolved protocol options (from the spec's debate/consultancy/judge/agents blocks)."""

    rounds: int = 3
    turns: str = "simultaneous"  # simultaneous | sequential
    first_round_simultaneous: bool = True
    best_of: int = 1
    interactive: bool = False
    consultancy_rounds: int = 3
    word_limit: int = 150
    passage_match: str = "exact"  # exact | tolerant
    judge_mode: str = "answer"  # answer | cot | fewshot
    judge_constrain: bool = False  # force the verdict's format where the provider can (judge.constrain)
    agent_qa_mode: str = "answer"  # answer | cot: the agent's own QA (open protocols), not the judges'
    shots: int = 6
    prompt_set: str | None = None  # a reworded template set (protocols/templates/NAME/)
    # Other items of the same task, for k-shot judging (never the item itself).
    fewshot_pool: tuple[Item, ...] = ()


@dataclass
class CallRecord:
    episode_id: str
    transcript_id: str | None
    model: str
    role: str
    speaker: str
    n: int
    input_tokens: int = 0
    output_tokens: int = 0
    # Parts of input_tokens the provider read from / wrote to its prompt cache.
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    cache_hit: bool = False
    retries: int = 0
    error: str | None = None
    prompt_id: str = ""  # prompts.parquet: the exact messages this call sent
    replicate: int = 0
    batch_id: str | None = None  # the provider batch that answered it (--batch), priced at batch rates
    reply_model: str | None = None  # the model the reply names, when the provider names one


T = TypeVar("T")


async def gather_all(*aws: Awaitable[T]) -> list[T]:
    """`asyncio.gather`, except that when one call fails the others are cancelled and
    awaited: a sibling left running would make calls nobody records and raise errors
    nobody reads."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def prompt_record(request: GenerateRequest) -> tuple[str, str]:
    """(content hash, JSON) of the messages a request sends: what the model was shown.
    Images are stored by their sha256 (they are in the task files)."""
    blob = json.dumps(request.messages_payload(), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24], blob


@dataclass
class Context:
    item: Item
    order: int
    options: Options
    templates: Templates
    episode_id: str
    transcript_id: str | None = None
    calls: list[CallRecord] = field(default_factory=list)
    seed: int = 0
    replicate: int = 0
    # Every distinct prompt sent in this context, by prompt_id (for prompts.parquet)...
    prompts: dict[str, str] = field(default_factory=dict)
    # ...unless this is set: then each prompt goes to it (the run journal) as it is sent and
    # is held nowhere, since a batch run has every episode and all its prompts in flight.
    on_prompt: Callable[[str, str], None] | None = None
    draw: str = ""  # a tournament game: its calls are sampled apart from other games' (GenerateRequest.draw)

    @property
    def answers(self) -> tuple[str, str]:
        """The two answers as listed: position 1 and position 2."""
        return self.item.shown(self.order)

    @property
    def correct_position(self) -> int:
        return Item.correct_position(self.order)

    def ground_truth(self, **extra: Any) -> dict[str, Any]:
        """Request metadata that only sim models read (real providers never send it)."""
        return {
            "task": self.item.task,
            "item_id": self.item.item_id,
            "group": self.item.group,
            "correct": self.correct_position,
            **extra,
        }

    async def call(
        self, model: Model, request: GenerateRequest, *, role: str, speaker: str
    ) -> GenerateResponse:
        request.seed, request.replicate = self.seed, self.replicate
        if self.draw:
            request.draw = self.draw
        pid, blob = prompt_record(request)
        if self.on_prompt is not None:
            self.on_prompt(pid, blob)
        else:
            self.prompts.setdefault(pid, blob)
        # Not held while the call waits: in a batch run every episode waits at once.
        del blob
        record = CallRecord(self.episode_id, self.transcript_id, model.label, role, speaker, request.n,
                            prompt_id=pid, replicate=self.replicate)
        self.calls.append(record)
        try:
            response = await model.generate(request)
        except CallFailure as failure:
            record.error = str(failure.error)
            record.retries = failure.retries
            raise
        response.prompt_id = pid
        record.input_tokens = response.usage.input_tokens
        record.output_tokens = response.usage.output_tokens
        record.cached_input_tokens = response.usage.cached_input_tokens
        record.cache_write_tokens = response.usage.cache_write_tokens
        record.cost_usd = 0.0 if response.cache_hit else response.cost_usd
        record.latency_s = response.latency_s
        record.cache_hit = response.cache_hit
        record.retries = response.retries
        record.batch_id = response.batch_id or None
        record.reply_model = response.reply_model or None
        return response

def user_message(ctx: Context, text: str) -> Message:
    """A user message with the item's images (multimodal tasks) after the text."""
    parts: list[Part] = [TextPart(text), *ctx.item.images]
    return Message("user", tuple(parts))
