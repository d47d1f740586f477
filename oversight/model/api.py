"""The provider interface. A provider translates a GenerateRequest into its own wire
format and classifies failures into ModelCallError; nothing else. Limits, retries,
caching and accounting belong to the shared wrapper (oversight/model/wrapper.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from oversight.model import redact
from oversight.model.card import ModelCard
from oversight.model.types import GenerateRequest, GenerateResponse, ImagePart, ModelCallError

T = TypeVar("T")
# How many of the newest batches `newest_match` looks through: a batch lost to a crash is
# among the last few created.
FIND_LIMIT = 1000

if TYPE_CHECKING:
    from oversight.model.batch import BatchPoll


@dataclass(frozen=True)
class Capabilities:
    images: bool = True
    logprobs: bool = False
    temperature: bool = True
    # Can force a verdict's format (GenerateRequest.constrain): a grammar, regex or schema.
    constrain: bool = False


class ModelAPI(ABC):
    provider: ClassVar[str]
    default_capabilities: ClassVar[Capabilities] = Capabilities()
    # Whether request.metadata changes the output (true only for sim): then it is part of the cache key.
    reads_metadata: ClassVar[bool] = False
    # Part of every cache key: a provider whose replies come from our own code (sim) changes
    # it whenever that code changes, so stale replies are never served.
    cache_version: ClassVar[str] = ""
    # True for a provider that enforces the card's `timeout_s` itself, over the work alone (an
    # in-process model: a call queued behind others or waiting for the weights to load is not
    # late); the wrapper then sets no deadline of its own.
    times_itself: ClassVar[bool] = False

    @classmethod  # noqa: B027 - optional hook
    def check_card(cls, card: ModelCard, where: str) -> None:
        """Raise OversightError when the card cannot work (a missing model folder, say),
        naming `where` (the card's file or the spec); run at `validate` and before a run."""

    @classmethod
    def run_identity(cls, card: ModelCard) -> dict[str, Any]:
        """What decides this model's replies beyond the card (the weights' hash, library
        versions, the device): part of the run identity, so `--resume` refuses a run whose
        weights changed. {} when the card says it all (a hosted model)."""
        return {}

    def __init__(self, card: ModelCard, api_key: str | None, http_client: Any = None) -> None:
        """`http_client` is an optional `httpx2.AsyncClient` (tests inject a transport here)."""
        # Also here, not only in ModelCard.api_key(): a key may be handed in directly.
        redact.register(api_key)
        self.card = card
        self.api_key = api_key
        self.http_client = http_client

    @property
    def capabilities(self) -> Capabilities:
        c = self.default_capabilities
        return Capabilities(
            images=c.images if self.card.images is None else self.card.images,
            logprobs=c.logprobs if self.card.logprobs is None else self.card.logprobs,
            temperature=c.temperature,
            constrain=c.constrain,
        )

    @abstractmethod
    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """One call (all `request.n` samples). Raise ModelCallError on failure; an empty
        or malformed reply raises ModelCallError('malformed', ...)."""

    # --- provider batch APIs (oversight/model/batch.py); optional --------------------------
    supports_batch: ClassVar[bool] = False
    # Provider limits on one batch: the collector splits a wave to stay within them.
    batch_max_requests: ClassVar[int] = 50_000
    batch_max_bytes: ClassVar[int] = 190 * 1024 * 1024

    def batch_request_bytes(self, request: GenerateRequest) -> int:
        """About how many bytes the request takes in a batch (for splitting): its prompt,
        with images in base64, plus room for the envelope."""
        chars = sum(len(p.b64()) if isinstance(p, ImagePart) else len(p.text)
                    for m in request.messages for p in m.parts)
        return chars * request.n + 1024

    async def batch_submit(self, requests: list[tuple[str, GenerateRequest]], token: str = "") -> str:
        """Create one provider batch of (custom id, request); return its id. Raise
        ModelCallError when the provider refuses it. `token` goes with the batch where the
        provider keeps a label, so that `batch_find` can find it again."""
        raise ModelCallError("bad_request", f"{self.card.label}: {self.provider} has no batch API")

    async def batch_find(self, token: str) -> str | None:
        """The id of a batch sent with this token, if the provider can say (a process killed
        between sending a batch and journaling it); None when it has none or cannot tell."""
        return None

    async def batch_poll(self, batch_id: str, expect: dict[str, GenerateRequest]) -> BatchPoll:
        """The batch's state and, once it has ended, every result by custom id. `expect`
        holds each custom id's request, at least its `n` and `logprob_choices` (a request
        rebuilt from the batch journal has no messages)."""
        raise ModelCallError("bad_request", f"{self.card.label}: {self.provider} has no batch API")

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


async def newest_match(batches: AsyncIterable[T], match: Callable[[T], bool], limit: int = FIND_LIMIT) -> T | None:
    """The first of a provider's batches (listed newest first) that `match` accepts, among
    the first `limit`; for `batch_find`, which looks for a batch by the token it carries."""
    seen = 0
    async for batch in batches:
        if match(batch):
            return batch
        seen += 1
        if seen >= limit:
            break
    return None
