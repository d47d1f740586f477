"""`oversight batch status RUN_DIR`: the run's journaled provider batches and, for each
one not yet collected, what its provider says about it now.

Reads batches.jsonl (oversight/model/batch.py) and the model cards in the run's manifest;
asks each provider once per open batch. Never changes the run directory: collecting a
finished batch is `oversight run SPEC --resume`'s job, which caches its results first.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TextIO

from oversight.engine.rundir import read_manifest
from oversight.errors import OversightError
from oversight.model.batch import read_batches
from oversight.model.card import ModelCard
from oversight.model.types import ModelCallError


async def _provider_states(records: list[dict[str, Any]], cards: dict[str, Any]) -> dict[str, str]:
    from oversight.model.providers import make_api

    states: dict[str, str] = {}
    apis: dict[str, Any] = {}
    try:
        for r in records:
            label = str(r.get("label"))
            try:
                if label not in apis:
                    apis[label] = make_api(ModelCard.model_validate(cards[label]))
                poll = await apis[label].batch_poll(str(r["batch_id"]), {})
                states[r["batch_id"]] = poll.state + (" (ended: resume to collect)" if poll.done else "")
            except (KeyError, OversightError, ModelCallError) as exc:
                states[r["batch_id"]] = f"unknown ({exc or type(exc).__name__})"
    finally:
        for api in apis.values():
            await api.aclose()
    return states


def batch_status(run_dir: Path, out: TextIO, ask_providers: bool = True) -> int:
    """Print the batches; return how many are still open (submitted, not collected)."""
    records = read_batches(run_dir)
    submitted = [r for r in records if r.get("type") == "submitted"]
    collected = {r["batch_id"]: r for r in records if r.get("type") == "collected"}
    if not submitted:
        print(f"No provider batches in {run_dir} (it was not run with --batch).", file=out)
        return 0
    open_ = [r for r in submitted if r["batch_id"] not in collected]
    states: dict[str, str] = {}
    if open_ and ask_providers:
        cards = read_manifest(run_dir).get("models", {})
        states = asyncio.run(_provider_states(open_, cards))
    requests = sum(len(r.get("keys", ())) for r in submitted)
    print(f"{len(submitted)} batch(es) of {requests:,} requests in {run_dir / 'batches.jsonl'}: "
          f"{len(collected)} collected, {len(open_)} open", file=out)
    for r in submitted:
        done = collected.get(r["batch_id"])
        where = f"{r.get('provider')}/{r.get('model')}"
        state = (f"collected ({done.get('state')})" if done else
                 f"open, provider says: {states.get(r['batch_id'], 'not asked')}")
        print(f"  {r['batch_id']:<36} {where:<28} {len(r.get('keys', ())):>7,} requests  "
              f"submitted {str(r.get('at', ''))[:19]}  {state}", file=out)
    resolved = {r.get("token") for r in records if r.get("type") in ("submitted", "abandoned")}
    lost = [r for r in records if r.get("type") == "intent" and r.get("token") not in resolved]
    if lost:
        print(f"{len(lost)} batch(es) may have been sent by a process killed before journaling them; "
              f"--resume asks the provider for them before sending their calls again.", file=out)
    if open_:
        print("Collect finished batches and go on with: oversight run SPEC --resume --out " + str(run_dir), file=out)
    return len(open_)
