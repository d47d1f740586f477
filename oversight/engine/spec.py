"""The run spec (runs/NAME.yaml): what to run, parsed strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field

from oversight.config import Strict, read_yaml, validate
from oversight.errors import OversightError

ModelRef = str | dict[str, Any]


class DebateOptions(Strict):
    rounds: int = Field(3, ge=1)
    turns: Literal["simultaneous", "sequential"] = "simultaneous"
    first_round_simultaneous: bool = True
    best_of: int = Field(1, ge=1)
    interactive: bool = False


class ConsultancyOptions(Strict):
    rounds: int = Field(3, ge=1)


class JudgeOptions(Strict):
    mode: Literal["answer", "cot", "fewshot"] = "answer"
    shots: int = Field(6, ge=1)


class AgentOptions(Strict):
    word_limit: int = Field(150, ge=10)
    passage_match: Literal["exact", "tolerant"] = "exact"


class DebaterConfig(Strict):
    name: str | None = None
    model: ModelRef
    best_of: int = Field(1, ge=1)


class TournamentSpec(Strict):
    """Cross-play debates between debater configs (engine/tournament.py has the design).

    Its debates use `rounds` and `turns` from here, never the spec's `debate:` block, and
    are never interactive. Give one judge as `judge:` or several as `judges:`."""

    debaters: list[DebaterConfig]
    # Cross-play pairings, each played in both answer orders: a multiple of pairs × tasks
    # (null: one pairing per pair per task).
    pairings: int | None = Field(None, ge=1)
    judge: ModelRef | None = None
    judges: list[ModelRef] = []
    rounds: int = Field(1, ge=1)
    turns: Literal["simultaneous", "sequential"] = "simultaneous"
    self_play: bool = True

    def judge_refs(self, source: str) -> list[ModelRef]:
        if (self.judge is None) == (not self.judges):
            raise OversightError(
                f"{source} (tournament): name the tournament's judge as `judge: MODEL` or its judges as "
                f"`judges: [MODEL, ...]` (each is fitted separately), exactly one of the two."
            )
        return [self.judge] if self.judge is not None else list(self.judges)


class RunSpec(Strict):
    name: str
    seed: int = 0
    tasks: list[str]
    limit: int | None = Field(16, ge=1)
    orders: Literal["both", "random"] = "both"
    protocols: list[str] = ["qa", "qa_with_article"]
    agent: ModelRef | None = None
    judges: list[ModelRef] = []
    debate: DebateOptions = DebateOptions()
    consultancy: ConsultancyOptions = ConsultancyOptions()
    judge: JudgeOptions = JudgeOptions()
    agents: AgentOptions = AgentOptions()
    tournament: TournamentSpec | None = None
    budget_usd: float | None = Field(None, gt=0)
    concurrency: int = Field(256, ge=1)  # episodes in flight; each model has its own call limit
    cache_dir: str | None = None  # default: the user cache dir, or $OVERSIGHT_CACHE_DIR
    description: str = ""


def _set_path(data: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        nxt = node.setdefault(k, {})
        if not isinstance(nxt, dict):
            raise OversightError(f"--set {dotted}: '{k}' in {source} is not a mapping.")
        node = nxt
    node[keys[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Apply `key=value` overrides (dotted keys; values parsed as YAML: `limit=4`, `judges=[sim/weak]`)."""
    for item in overrides:
        if "=" not in item:
            raise OversightError(f"--set expects key=value (e.g. --set limit=4), got '{item}'.")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw else None
        except yaml.YAMLError:
            value = raw
        _set_path(data, key.strip(), value, source)
    return data


def load_spec(path: str | Path, overrides: list[str] | None = None) -> RunSpec:
    p = Path(path)
    data = read_yaml(p)
    if not isinstance(data, dict):
        raise OversightError(f"{p}: a run spec must be a mapping of keys to values.")
    apply_overrides(data, overrides or [], str(p))
    return validate(RunSpec, data, str(p))


def spec_from_any(spec: RunSpec | dict[str, Any] | str | Path, overrides: list[str] | None = None) -> RunSpec:
    if isinstance(spec, RunSpec):
        if overrides:
            data = apply_overrides(spec.model_dump(mode="json"), overrides, "spec")
            return validate(RunSpec, data, "spec")
        return spec
    if isinstance(spec, dict):
        return validate(RunSpec, apply_overrides(dict(spec), overrides or [], "spec"), "spec")
    return load_spec(spec, overrides)
