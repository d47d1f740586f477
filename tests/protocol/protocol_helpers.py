"""Shared helpers for protocol tests: synthetic items, contexts, sim models, and a
recording model API that stores every request and answers from a script."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any, ClassVar

from oversight.dialogue.context import Context, Options
from oversight.dialogue.prompts import Templates
from oversight.model.api import Capabilities, ModelAPI
from oversight.model.card import ModelCard, resolve_model
from oversight.model.providers.sim import SimAPI
from oversight.model.types import GenerateRequest, GenerateResponse, Usage
from oversight.model.wrapper import Model
from oversight.task.item import Item

_PEOPLE = ["the miller", "the ferryman", "the archivist", "the lighthouse keeper", "the weaver",
           "the glassblower", "the cartographer", "the beekeeper", "the clockmaker", "the tanner",
           "the shepherd", "the printer"]  # fmt: skip
_THINGS = ["the bell", "the ledger", "the lantern", "the map", "the key", "the boat",
           "the letter", "the drum", "the banner", "the compass"]  # fmt: skip
_PLACES = ["the harbour", "the mill", "the square", "the chapel", "the bridge", "the orchard"]
_FILLER = [
    "Rain had fallen on {place} for three days before anyone noticed.",
    "Nobody in the village could remember a quieter spring near {place}.",
    "Children gathered by {place} every evening to trade stories.",
    "The council met twice that month and agreed on very little.",
    "Old records describe {place} as the oldest part of the town.",
    "A stranger's cart stood outside {place} until late in the night.",
]


def extractive_items(n: int = 40, seed: int = 0, task: str = "synthetic_extractive") -> list[Item]:
    """Items whose article has one sentence that settles the question, among filler."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        right, wrong = rng.sample(_PEOPLE, 2)
        thing, place = rng.choice(_THINGS), rng.choice(_PLACES)
        key = f"In the end it was {right} who took {thing} from {place}."
        sentences = [f.format(place=place) for f in rng.sample(_FILLER, 4)]
        sentences.insert(rng.randrange(5), key)
        article = " ".join(sentences)
        correct = rng.randrange(2)
        pair = (right.capitalize(), wrong.capitalize())
        items.append(
            Item(
                task=task,
                item_id=f"x{i:03d}",
                question=f"Who took {thing} from {place}?",
                answers=pair if correct == 0 else pair[::-1],
                correct=correct,
                group="extractive",
                article=article,
            )
        )
    return items


def closed_items(n: int = 20, task: str = "synthetic_closed") -> list[Item]:
    return [
        Item(
            task,
            f"c{i:03d}",
            f"What is {i} + {i + 1}?",
            (str(2 * i + 1), str(2 * i + 2)),
            i % 2,
            "closed",
        )
        for i in range(n)
    ]


def sim_model(name: str = "sim/strong", label: str | None = None) -> Model:
    card = resolve_model(name)
    if label is not None:
        card = card.model_copy(update={"name": label})
    return Model(card, SimAPI(card, None), cache=None)


def make_ctx(item: Item, order: int = 0, *, transcript_id: str | None = None, **options: Any) -> Context:
    return Context(
        item=item,
        order=order,
        options=Options(**options),
        templates=Templates(),
        episode_id=f"{item.item_id}-{order}",
        transcript_id=transcript_id,
    )


Script = Callable[[GenerateRequest], str]


class RecordingAPI(ModelAPI):
    """Stores every request; replies with `script(request)` (one text per sample)."""

    provider: ClassVar[str] = "sim"
    default_capabilities: ClassVar[Capabilities] = Capabilities(images=True, logprobs=False)
    reads_metadata: ClassVar[bool] = True

    def __init__(self, card: ModelCard, script: Script) -> None:
        super().__init__(card, None)
        self.script = script
        self.requests: list[GenerateRequest] = []

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        self.requests.append(request)
        texts = [self.script(request) for _ in range(request.n)]
        return GenerateResponse(texts, Usage(10, 5))

    def prompts(self, role: str | None = None) -> list[str]:
        return [r.prompt_text() for r in self.requests if role is None or r.metadata.get("role") == role]


def recording_model(script: Script, label: str = "rec/model") -> tuple[Model, RecordingAPI]:
    card = ModelCard(name=label, provider="sim", model=label.split("/")[-1])
    api = RecordingAPI(card, script)
    return Model(card, api, cache=None), api


_ROUND = re.compile(r"This is round (\d+) of")


def scripted(quote: str = "", selector: str = "Answer: a") -> Script:
    """Replies whose every piece is traceable: private text carries SECRET, arguments carry
    ARG-<side>-<round>-<sample> (consultants CONS-…), questions Q<n>."""
    asked = [0]

    def reply(request: GenerateRequest) -> str:
        meta = request.metadata
        role = meta.get("role")
        text = request.prompt_text()
        if role in ("debater", "consultant"):
            m = _ROUND.findall(text)
            r = m[-1] if m else "?"
            tag = "ARG" if role == "debater" else "CONS"
            mark = f"{tag}-{meta.get('side')}-{r}-{request.sample}"
            passage = f" <passage>{quote}</passage>" if quote else ""
            return f"Thinking: SECRET-{mark} private plan.\nArgument: {mark} says so.{passage}"
        if role == "judge_question":
            asked[0] += 1
            return f"Question: Q{asked[0]} why?"
        if role == "selector":
            return selector
        return "Reasoning first.\nAnswer: 1"

    return reply
