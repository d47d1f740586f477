"""An episode: one judged instance, one judgments row (what the plan lists and the engine runs)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from oversight.task.item import Item


@dataclass(frozen=True)
class Episode:
    episode_id: str
    protocol: str
    item: Item = field(compare=False)
    order: int
    judge: str
    agent: str | None = None
    agent_b: str | None = None
    assigned: str | None = None  # correct | incorrect: the side the (first) agent argues
    transcript_key: str | None = None  # a transcript several judges share (or one judge's own, keyed)
    qa_role: str | None = None  # "agent": the agent's own QA answer, used by open protocols
    best_of: int | None = None
    best_of_b: int | None = None
    rounds: int | None = None
    turn_style: str | None = None
    replicate: int = 0  # independent repeats of the same episode (fresh samples)
    variant: str = ""  # the protocol as the spec lists it (protocols/NAME.yaml); "" = `protocol`

    @property
    def task(self) -> str:
        return self.item.task


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
