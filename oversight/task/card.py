"""Task cards (tasks/NAME.yaml), the loader registry and seeded sampling.

A card's data is a local file (`path:`) or a Hugging Face dataset (`hf:`, task/hf.py),
which is written once to a Parquet file that the loader reads like any other.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import PrivateAttr, model_validator

from oversight import catalogue
from oversight.config import Strict, load_yaml
from oversight.errors import OversightError, unknown_name
from oversight.task.hf import HF_LOADERS, HFSource, materialize
from oversight.task.item import Item


class TaskCard(Strict):
    name: str
    group: Literal["extractive", "closed", "multimodal"]
    loader: str
    path: str | None = None  # relative to the card's folder, else the working directory
    hf: HFSource | None = None  # a Hugging Face dataset instead of `path` (task/hf.py)
    fields: dict[str, str] = {}  # generic loader: our field -> the file's column
    correct_base: int = 0  # generic loader: label is 0- or 1-based
    # generic loader: how a text label is read. `auto` tries an index, a letter and an
    # answer's text, and a label that two of them read differently (options ["1", "0"],
    # label "0") is an error naming the row; `index`, `letter` or `text` reads it one way only.
    correct_as: Literal["auto", "index", "letter", "text"] = "auto"
    options: dict[str, Any] = {}  # loader-specific settings, documented per loader
    description: str = ""
    citation: str = ""
    license: str = ""
    source: str = ""  # where the full upstream files come from
    card_path: str | None = None  # filled in when loaded from a file
    _hf_file: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _one_source(self) -> TaskCard:
        if self.hf is not None and self.path is not None:
            raise ValueError("give the data as either 'path' (a local file) or 'hf' (a Hugging Face dataset), not both")
        if self.hf is not None and self.loader not in HF_LOADERS:
            raise ValueError(
                f"the {self.loader} loader reads its upstream file format, not a Hugging Face dataset; 'hf' works "
                f"with the loaders {', '.join(HF_LOADERS)} (use 'path' for this one)"
            )
        return self

    def data_path(self, override: str | Path | None = None) -> Path:
        if override is None and self.hf is not None:
            if self._hf_file is None:  # loaded and written once per card
                self._hf_file = materialize(self.hf, self.card_path, f"Task card {self.card_path or self.name} (hf)")
            return self._hf_file
        raw = override if override is not None else self.path
        if raw is None:
            raise OversightError(
                f"Task card {self.card_path or self.name}: no data is set; give 'path' (a local file) or "
                f"'hf' (a Hugging Face dataset)."
            )
        p = Path(raw).expanduser()
        if p.is_absolute() or override is not None:
            return p
        if self.card_path:
            beside = Path(self.card_path).parent / p
            if beside.exists():
                return beside
        return p


@dataclass
class LoadResult:
    items: list[Item]
    # Records that could not be binarised: reason -> count (reported, never silent).
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


# A loader reads the card's data file and yields binarised Items; `seed` drives every random
# choice (which wrong answer), so the same seed always gives the same items.
Loader = Callable[[TaskCard, Path, int], LoadResult]
LOADERS: dict[str, Loader] = {}


def register_loader(name: str) -> Callable[[Loader], Loader]:
    def deco(fn: Loader) -> Loader:
        LOADERS[name] = fn
        return fn

    return deco


def load_card(task: str | Path, where: str = "") -> TaskCard:
    path = catalogue.find("tasks", str(task))
    if path is None:
        raise unknown_name("task", str(task), catalogue.names("tasks"), where)
    data_card = load_yaml(TaskCard, path)
    data_card.card_path = str(path)
    return data_card


def load_task(card: TaskCard, path: str | Path | None = None, seed: int = 0) -> LoadResult:
    import oversight.task.loaders  # noqa: F401 - registers the built-in loaders

    if card.loader not in LOADERS:
        raise unknown_name("loader", card.loader, LOADERS, card.card_path or card.name)
    data = card.data_path(path)
    if not data.exists():
        looked = ""
        if path is None and card.card_path and not data.is_absolute():
            beside = Path(card.card_path).parent / data
            looked = f" (looked beside the card, at {beside}, and in the working directory {Path.cwd()})"
        card_ref = f" (card {card.card_path}, 'path')" if card.card_path and path is None else ""
        raise OversightError(f"Task '{card.name}'{card_ref}: data file not found: {data}{looked}.")
    return LOADERS[card.loader](card, data, seed)


def sample(items: list[Item], limit: int | None, seed: int) -> list[Item]:
    """`limit` items chosen with the seed, in a stable order (by position in the file)."""
    if limit is None or limit >= len(items):
        return list(items)
    rng = random.Random(f"sample:{seed}")
    idx = sorted(rng.sample(range(len(items)), limit))
    return [items[i] for i in idx]


def load_items(
    task: str | Path, path: str | Path | None = None, limit: int | None = None, seed: int = 0
) -> list[Item]:
    """Public API: a task card name or path → its binarised items (seeded sample of `limit`)."""
    card = load_card(task)
    return sample(load_task(card, path, seed).items, limit, seed)
