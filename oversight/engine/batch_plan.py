"""`oversight run SPEC --dry-run --batch`: the waves each protocol needs, the calls in each
wave, and the price at batch rates.

A debate of R rounds with best-of-N and J judges needs a fixed number of waves, but
counting them by formula would drift from the protocols as the estimate's call counts
once did (see oversight/engine/estimate.py). So the waves are *rehearsed* like the calls:
each protocol's episodes run together through the real engine with stand-in models, and
every hosted model's calls go through the real `BatchCollector` (oversight/model/batch.py),
whose provider is a stand-in that answers a batch the moment it is polled. The collector
numbers its waves as in a real run: the waves printed are the waves the run will submit
(fewer only where the response cache already holds calls).
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from oversight.dialogue.prompts import Templates
from oversight.engine.estimate import Estimate, Tally, stand_in_model
from oversight.engine.execute import Runtime, execute
from oversight.engine.prepare import Prepared
from oversight.errors import OversightError
from oversight.model.api import ModelAPI
from oversight.model.batch import BatchContext, BatchPoll, batch_eligible
from oversight.model.card import ModelCard
from oversight.model.types import GenerateRequest, GenerateResponse, ModelCallError

# Hours a wave may take: providers promise results within 24 h and usually deliver in minutes to a few hours.
WAVE_HOURS_TYPICAL, WAVE_HOURS_MAX = 1.0, 24.0


@dataclass
class WavePlan:
    protocol: str
    episodes: int
    calls_per_wave: list[int] = field(default_factory=list)


class _InstantBatches(ModelAPI):
    """A stand-in provider's batch API: a batch is answered by the stand-in model at once."""

    provider = "stand-in-batch"
    supports_batch = True

    def __init__(self, inner: ModelAPI) -> None:
        super().__init__(inner.card, None)
        self.inner = inner
        self._done: dict[str, dict[str, GenerateResponse | ModelCallError]] = {}

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        return await self.inner.generate(request)

    async def batch_submit(self, requests: list[tuple[str, GenerateRequest]], token: str = "") -> str:
        batch_id = f"rehearsal-{len(self._done)}"
        self._done[batch_id] = {cid: await self.inner.generate(r) for cid, r in requests}
        return batch_id

    async def batch_poll(self, batch_id: str, expect: dict[str, GenerateRequest]) -> BatchPoll:
        return BatchPoll("ended", True, self._done.pop(batch_id))


def batched(card: ModelCard) -> bool:
    """Whether `--batch` sends this model's calls in batches."""
    return batch_eligible(card, batch_all=True)


async def _rehearse(prep: Prepared, protocol: str, run_dir: Path) -> WavePlan:
    episodes = [e for e in prep.plan.episodes if e.protocol == protocol]
    plan = WavePlan(protocol, len(episodes))
    waves: dict[int, int] = {}

    def on_wave(label: str, n: int, wave_no: int) -> None:
        waves[wave_no] = waves.get(wave_no, 0) + n

    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = BatchContext(run_dir, None, poll_s=0.0, quiet_s=0.0, on_wave=on_wave)
    models = {label: stand_in_model(card, prep.options.word_limit) for label, card in prep.cards.items()}
    for label, model in models.items():
        if batched(model.card):
            model.batch = ctx.collector(label, _InstantBatches(model.api), 0.0)
    pending = prep.plan.judges_per_transcript()
    rt = Runtime(models, prep.options, Templates(), prep.items, dict(pending), prep.debaters, "dry-run",
                 on_transcript=lambda *_: None, seed=prep.spec.seed, variant_options=prep.variant_options)
    try:
        records = await asyncio.gather(*(execute(rt, ep) for ep in episodes))
    finally:
        await ctx.aclose()
    failed = [str(r["row"]["error"]) for r, _ in records if r["row"].get("error")]
    if failed:
        raise OversightError(f"Dry run of '{prep.spec.name}' with --batch: {len(failed)} episode(s) of {protocol} "
                             f"failed in rehearsal, e.g. {failed[0]}; this is a bug in oversight, not in the spec.")
    plan.calls_per_wave = [waves[k] for k in sorted(waves)]
    return plan


def plan_waves(prep: Prepared) -> list[WavePlan]:
    out = []
    with tempfile.TemporaryDirectory(prefix="oversight-waves-") as tmp:
        for protocol in prep.plan.by_protocol():
            out.append(asyncio.run(_rehearse(prep, protocol, Path(tmp) / protocol.replace("/", "_"))))
    return out


def batch_cost(models: dict[str, Tally], cards: dict[str, ModelCard]) -> tuple[float, float]:
    """(online, batch) dollars for these tallies, with prompt-cache prices."""
    online = batch = 0.0
    for label, t in models.items():
        card = cards[label]
        tokens: list[Any] = [t.input_tokens, t.output_tokens, t.cached_input_tokens, t.cache_write_tokens]
        online += card.cost(*tokens)
        batch += card.cost(*tokens, batch=batched(card))
    return online, batch


def print_batch_plan(prep: Prepared, est: Estimate, out: TextIO | None = None) -> None:
    import sys

    stream = out or sys.stdout
    plans = plan_waves(prep)
    print("With --batch (waves: rounds of provider batches; each waits for the one before):", file=stream)
    for p in plans:
        waves = " + ".join(f"{n:,}" for n in p.calls_per_wave) or "none (no batched model)"
        print(f"  {p.protocol:<18} {p.episodes:>6,} episodes {len(p.calls_per_wave):>3} waves  calls per wave: {waves}",
              file=stream)
    # Protocols run together in one run: its waves are those of the longest protocol.
    longest = max((len(p.calls_per_wave) for p in plans), default=0)
    online, batch = batch_cost(est.models, prep.cards)
    print(f"  the run: {longest} waves; ${batch:,.2f} at batch rates (${online:,.2f} online, "
          f"{(1 - batch / online) * 100 if online else 0:.0f}% saved)", file=stream)
    if est.projected is not None:
        p_online, p_batch = batch_cost(est.projected_models, prep.cards)
        print(f"  projected at {prep.spec.limit} items per task: ${p_batch:,.2f} at batch rates "
              f"(${p_online:,.2f} online)", file=stream)
    skipped = sorted(label for label, c in prep.cards.items() if not batched(c))
    if skipped:
        print(f"  called online (no batch API): {', '.join(skipped)}", file=stream)
    print(f"  time: each wave typically takes minutes to about {WAVE_HOURS_TYPICAL:g} h and at most "
          f"{WAVE_HOURS_MAX:g} h, so {longest} waves take about {longest * WAVE_HOURS_TYPICAL:g} h and at most "
          f"{longest * WAVE_HOURS_MAX / 24:g} days", file=stream)
