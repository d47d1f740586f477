"""`--dry-run`: the planned episodes, model calls, tokens and dollars, with no provider called.

A dry run *rehearses* the plan: every episode goes through the engine's own code
(oversight/engine/execute.py, then the protocols) exactly as in a real run, but each model
is a stand-in that answers at once, in process. The call count is therefore exact by
construction: best-of-N candidates and their selection, judge questions, interactive and
sequential debates, transcripts shared by several judges, tournaments under their own
settings, the agent's own QA for the open protocols. A formula kept beside the protocols
drifts from them (it once counted one call per best-of-N turn instead of N + 1); a
rehearsal cannot.

The stand-ins:
- `sim` models answer for themselves: they are deterministic local code that costs nothing,
  so their calls and tokens are those of the real run.
- Any other model is replaced by `StandIn`, which replies in the expected format at the
  expected length (below) and counts tokens as the sim does, four characters a token, plus
  IMAGE_TOKENS per image. Its tokens are estimates: real replies vary in length.

A call that repeats an earlier request of the same run (a consultant's opening, say, which
does not depend on the judge) is answered by the response cache in a real run. The rehearsal
has an in-memory cache of its own, so such a call counts as a call (it is a row of
calls.parquet) but adds no tokens or dollars, as in a run that starts from an empty cache.

Projection: where a task file holds fewer items than the spec's `limit` (the bundled
samples), that task's figures are scaled up to `limit` items. Tournament episodes are not
scaled: `pairings` fixes their number.

Prompt caching: each stand-in also reports the input tokens its provider would read from
(or write to) its prompt cache, by the same rules the loopback test servers follow
(oversight/model/prompt_cache.py): Anthropic through the adapter's own breakpoint planner;
OpenAI's automatic caching of shared prefixes of 1024+ tokens (in 128-token steps) per
`prompt_cache_key`; Gemini's implicit caching from the 2.5 models on, or the card's
explicit caches. Dollars are given with and without these discounts. Cached prefixes are
assumed to live long enough to be read again: the plan runs item by item, so the calls of
one item are minutes apart, inside the providers' five-minute-or-longer cache lifetimes,
but a provider does not promise an implicit hit, so the figure with caching is a best case.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import cycle, islice
from typing import Any, ClassVar

from oversight.dialogue.prompts import Templates
from oversight.engine.execute import Runtime, execute
from oversight.engine.plan import Episode
from oversight.engine.prepare import Prepared
from oversight.engine.tournament import TournamentEpisode
from oversight.errors import OversightError
from oversight.model.api import Capabilities, ModelAPI
from oversight.model.cache import ResponseCache
from oversight.model.card import ModelCard
from oversight.model.prompt_cache import (
    CHARS_PER_TOKEN,
    AutomaticPrefixCache,
    Block,
    BreakpointCache,
    PrefixPlanner,
    routing_key,
    split_at,
)
from oversight.model.providers import make_api, provider_class
from oversight.model.types import GenerateRequest, GenerateResponse, ImagePart, TextPart, Usage
from oversight.model.wrapper import Model

# What a stand-in writes. An agent thinks about as much as it argues, and argues up to the
# word limit (its cut-off); a questioning judge asks a sentence or two; a chain-of-thought
# judge reasons for about a paragraph.
QUESTION_WORDS = 40
COT_WORDS = 150
# A hosted model bills an image at a few hundred tokens to a thousand (OpenAI's high detail
# at 1024×1024: 765; Gemini: 258 a tile); the sim reads no image at all.
IMAGE_TOKENS = 765
CONCURRENCY = 64  # episodes in flight; every stand-in answers at once, so this only bounds memory

_FILLER = ("the", "passage", "states", "this", "plainly", "and", "nothing", "in", "the", "other",
           "answer", "follows", "from", "what", "it", "says")  # English-like: about 1.4 tokens a word


def _words(n: int) -> str:
    return " ".join(islice(cycle(_FILLER), n))


@dataclass
class Tally:
    calls: int = 0
    input_tokens: int = 0  # of calls a provider would answer (not the cache)
    output_tokens: int = 0
    cached: int = 0  # calls answered by an identical earlier call of the run
    cached_input_tokens: int = 0  # parts of input_tokens read from the provider's prompt cache
    cache_write_tokens: int = 0  # ... and written to it

    def cost(self, card: ModelCard, caching: bool = True, scale: float = 1.0) -> float:
        """Dollars for these tokens (times `scale`), with or without prompt-cache prices."""
        tokens = [round(n * scale) for n in (self.input_tokens, self.output_tokens,
                                             self.cached_input_tokens, self.cache_write_tokens)]
        return card.cost(*tokens) if caching else card.cost(tokens[0], tokens[1])


@dataclass
class Estimate:
    episodes: dict[str, int]
    models: dict[str, Tally] = field(default_factory=dict)
    roles: dict[str, Tally] = field(default_factory=dict)  # debater, selector, judge_question, …
    cost_usd: float = 0.0  # with the providers' prompt-cache prices
    uncached_cost_usd: float = 0.0  # had every prompt token been billed at the input price
    # Scaled to the spec's `limit` items per task where a task's file holds fewer (e.g. the
    # bundled samples): what the same spec would cost on the full dataset.
    projected: Tally | None = None
    projected_cost_usd: float = 0.0
    projected_uncached_cost_usd: float = 0.0
    projected_models: dict[str, Tally] = field(default_factory=dict)
    projected_episodes: int = 0
    exact_models: list[str] = field(default_factory=list)  # sim models: their figures are exact

    @property
    def calls(self) -> int:
        return sum(t.calls for t in self.models.values())

    @property
    def tokens(self) -> int:
        return sum(t.input_tokens + t.output_tokens for t in self.models.values())


class StandIn(ModelAPI):
    """A hosted or local model's stand-in: replies of the expected form and length."""

    provider: ClassVar[str] = "stand-in"

    def __init__(self, card: ModelCard, word_limit: int) -> None:
        super().__init__(card, None)
        self.word_limit = word_limit
        # The real provider's capabilities decide what is asked (e.g. answer log-probabilities).
        self.real = provider_class(card.provider).default_capabilities
        self.prompt_cache = ProviderCache(card)

    @property
    def capabilities(self) -> Capabilities:
        c = self.real
        return Capabilities(
            images=c.images if self.card.images is None else self.card.images,
            logprobs=c.logprobs if self.card.logprobs is None else self.card.logprobs,
            temperature=c.temperature,
        )

    def reply(self, request: GenerateRequest) -> str:
        meta = request.metadata
        role = str(meta.get("role", "judge"))
        side = int(meta.get("side") or 1)
        # Text that later prompts quote must differ where a real model's would: two judges
        # never ask the same question, so the consultant's answers to them are not cache hits.
        tag = hashlib.sha256(f"{self.card.label}|{request.sample}|{request.prompt_text()}".encode()).hexdigest()[:8]
        if role in ("debater", "consultant"):
            return (f"Thinking: {_words(self.word_limit)}\n"
                    f"Argument: I argue for answer {side} ({tag}). {_words(self.word_limit)}")
        if role == "judge_question":
            return f"Question: ({tag}) {_words(QUESTION_WORDS)}?"
        if role == "selector":
            return "Answer: a"
        reasoning = f"{_words(COT_WORDS)}\n" if meta.get("mode") == "cot" else ""
        return f"{reasoning}Answer: 1"

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        text = self.reply(request)
        images = sum(isinstance(p, ImagePart) for m in request.messages for p in m.parts)
        prompt = len(request.prompt_text()) // 4 + IMAGE_TOKENS * images
        # Anthropic has no `n`: each sample is a request of its own (the later ones read what
        # the first wrote), billed for its whole prompt.
        samples = request.n if self.card.provider == "anthropic" else 1
        usage = Usage(0, request.n * (len(text) // 4 + 1))
        for _ in range(samples):
            read, written = self.prompt_cache.account(request)
            read = min(read, prompt)
            usage = usage + Usage(prompt, 0, read, min(written, prompt - read))
        return GenerateResponse([text] * request.n, usage)


def gemini_implicit_min_tokens(model: str) -> int | None:
    """The smallest prompt Gemini caches implicitly, or None where it does not (before the
    2.5 models). Google's tables have said 1024-2048 (Flash) and 2048-4096 (Pro); the
    larger figure is used, so the projection does not promise hits that may not come."""
    name = model.lower().removeprefix("models/")
    if name.startswith(("gemini-1", "gemini-2.0", "gemini-pro", "gemini-ultra")):
        return None
    return 4096 if "pro" in name else 2048


class ProviderCache:
    """The prompt-cache figures a stand-in's provider would report: (read, written) input
    tokens of one request, by the rules of oversight/model/prompt_cache.py."""

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self.planner: PrefixPlanner | None = None
        self.breakpoints: BreakpointCache | None = None
        self.automatic: AutomaticPrefixCache | None = None
        self.explicit: dict[str, int] = {}
        if card.provider == "anthropic" and card.prompt_cache:
            self.planner, self.breakpoints = PrefixPlanner(), BreakpointCache()
        elif card.provider == "openai":
            # Automatic on OpenAI whatever the card says; the card's key only routes it.
            self.automatic = AutomaticPrefixCache(1024, step=128)
        elif card.provider == "google" and card.explicit_cache_ttl_s and card.prompt_cache:
            self.planner = PrefixPlanner()
        elif card.provider == "google" and (least := gemini_implicit_min_tokens(card.model)) is not None:
            self.automatic = AutomaticPrefixCache(least, step=1)

    def account(self, request: GenerateRequest) -> tuple[int, int]:
        first = _first_user_text(request)
        if self.breakpoints is not None and self.planner is not None:
            key = routing_key(request.metadata, role=False) or ""
            cuts = self.planner.cuts(key, first, whole=request.n > 1 or request.sample > 0) if first else []
            blocks = [Block(piece, len(piece), i < len(cuts)) for i, piece in enumerate(split_at(first, cuts))]
            return self.breakpoints.account(blocks)
        if self.planner is not None:  # Google explicit caches: the shortest shared prefix, uploaded once
            key = routing_key(request.metadata, role=False) or ""
            cuts = [c for c in self.planner.cuts(key, first) if c < len(first)] if first else []
            if not cuts:
                return 0, 0
            prefix = first[: cuts[0]]
            if prefix in self.explicit:
                return self.explicit[prefix], 0
            self.explicit[prefix] = len(prefix) // CHARS_PER_TOKEN
            return 0, self.explicit[prefix]
        if self.automatic is not None:
            bucket = routing_key(request.metadata, role=self.card.provider == "openai") or ""
            return self.automatic.lookup(bucket, request.prompt_text()), 0
        return 0, 0


def _first_user_text(request: GenerateRequest) -> str:
    for m in request.messages:
        if m.role == "user":
            return next((p.text for p in m.parts if isinstance(p, TextPart)), "")
    return ""


class RunCache(ResponseCache):
    """An empty response cache in memory: repeats within the rehearsal are hits, as they are
    in a run that starts from an empty cache; nothing is read from or written to disk."""

    def __init__(self) -> None:  # no directory: deliberately not the on-disk initialiser
        self.read = self.write = True
        self._entries: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> GenerateResponse | None:
        entry = self._entries.get(key)
        return None if entry is None else GenerateResponse.from_json(entry)

    def put(self, key: str, response: GenerateResponse) -> None:
        self._entries[key] = response.to_json()


def stand_in_model(card: ModelCard, word_limit: int) -> Model:
    # Rate limits would make the rehearsal wait for nothing.
    free = card.model_copy(update={"rpm": None, "tpm": None})
    api = make_api(free) if card.provider == "sim" else StandIn(free, word_limit)
    return Model(free, api, RunCache())


def estimate(prep: Prepared, journaled: dict[str, dict[str, Any]] | None = None) -> Estimate:
    """`journaled`: transcript records (by the plan's transcript key) that need no calls
    (`oversight judge` reuses the source run's)."""
    est = Estimate(prep.plan.by_protocol())
    est.exact_models = sorted(label for label, c in prep.cards.items() if c.provider == "sim")
    per_part: dict[tuple[str, str, bool], Tally] = {}  # (model, task, tournament?)

    def add(ep: Episode, call: dict[str, Any]) -> None:
        label = str(call["model"])
        for t in (est.models.setdefault(label, Tally()), est.roles.setdefault(str(call["role"]), Tally()),
                  per_part.setdefault((label, ep.task, isinstance(ep, TournamentEpisode)), Tally())):
            t.calls += 1
            if call.get("cache_hit"):
                t.cached += 1
            else:
                t.input_tokens += int(call["input_tokens"])
                t.output_tokens += int(call["output_tokens"])
                t.cached_input_tokens += int(call.get("cached_input_tokens") or 0)
                t.cache_write_tokens += int(call.get("cache_write_tokens") or 0)

    asyncio.run(rehearse(prep, add, journaled or {}))
    for label, tally in est.models.items():
        est.cost_usd += tally.cost(prep.cards[label])
        est.uncached_cost_usd += tally.cost(prep.cards[label], caching=False)
    _project(prep, est, per_part)
    return est


async def rehearse(prep: Prepared, add: Callable[[Episode, dict[str, Any]], None],
                   journaled: dict[str, dict[str, Any]] | None = None) -> None:
    episodes = prep.plan.episodes
    models = {label: stand_in_model(card, prep.options.word_limit) for label, card in prep.cards.items()}
    pending = prep.plan.judges_per_transcript()
    first_judged = {ep.transcript_key: ep for ep in reversed(episodes) if ep.transcript_key}
    failures: list[tuple[Episode, str]] = []

    def on_transcript(record: dict[str, Any], *_: object) -> None:
        ep = first_judged[record["transcript_id"]]
        for call in record["calls"]:
            add(ep, call)

    rt = Runtime(models, prep.options, Templates(), prep.items, dict(pending), prep.debaters, "dry-run",
                 on_transcript=on_transcript, seed=prep.spec.seed, variant_options=prep.variant_options,
                 journaled=journaled or {})
    queue = iter(episodes)

    async def worker() -> None:
        for ep in queue:
            record, _ = await execute(rt, ep)
            if record["row"].get("error"):
                failures.append((ep, str(record["row"]["error"])))
            for call in record["calls"]:
                add(ep, call)
            if ep.transcript_key:
                pending[ep.transcript_key] -= 1
                if pending[ep.transcript_key] == 0:
                    rt.forget(ep.transcript_key)

    await asyncio.gather(*(worker() for _ in range(min(CONCURRENCY, max(1, len(episodes))))))
    if failures:
        ep, error = failures[0]
        raise OversightError(
            f"Dry run of '{prep.spec.name}': {len(failures)} episode(s) failed in rehearsal, e.g. "
            f"{ep.protocol} on task '{ep.task}' item '{ep.item.item_id}': {error}. The real run would "
            f"fail the same way; this is a bug in oversight, not in the spec."
        )


def _project(prep: Prepared, est: Estimate, per_part: dict[tuple[str, str, bool], Tally]) -> None:
    limit = prep.spec.limit
    scale = {t: limit / len(items) for t, items in prep.items.items() if limit and items and len(items) < limit}
    if not any(e.task in scale and not isinstance(e, TournamentEpisode) for e in prep.plan.episodes):
        return  # nothing would grow with more items

    def factor(task: str, tournament: bool) -> float:
        return 1.0 if tournament else scale.get(task, 1.0)

    proj = Tally()
    for (label, task, tournament), t in per_part.items():
        f = factor(task, tournament)
        model = est.projected_models.setdefault(label, Tally())
        for tally in (proj, model):
            tally.calls += round(t.calls * f)
            tally.cached += round(t.cached * f)
            tally.input_tokens += round(t.input_tokens * f)
            tally.output_tokens += round(t.output_tokens * f)
            tally.cached_input_tokens += round(t.cached_input_tokens * f)
            tally.cache_write_tokens += round(t.cache_write_tokens * f)
        est.projected_cost_usd += t.cost(prep.cards[label], scale=f)
        est.projected_uncached_cost_usd += t.cost(prep.cards[label], caching=False, scale=f)
    est.projected = proj
    est.projected_episodes = round(
        sum(factor(e.task, isinstance(e, TournamentEpisode)) for e in prep.plan.episodes)
    )
