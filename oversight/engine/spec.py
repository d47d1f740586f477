"""The run spec (runs/NAME.yaml): what to run, parsed strictly.

Every number has bounds, checked when the spec is read, before any work: values beyond them
are typos or would run for days (a dry run of 10^9 debate rounds never ends). The bounds:

- `limit` ≤ 10,000,000 items per task; `seed` 0 … 2^63 − 1; `concurrency` ≤ 10,000; `replicates` ≤ 1,000;
- `debate.rounds`, `consultancy.rounds`, `tournament.rounds` ≤ 20;
- `best_of` ≤ 26 (candidates are labelled a–z for the selector);
- `judge.shots` ≤ 64; `agents.word_limit` 10 … 4,000;
- `tournament.pairings` ≤ 1,000,000; `budget_usd` a finite number > 0.

`name` must be a plain name (letters, digits, `_`, `-`, `.`; no `..`, no slashes), because
it becomes the directory runs/NAME/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from oversight.config import LineDict, Strict, parse_yaml, read_yaml, validate
from oversight.errors import OversightError
from oversight.protocol.qa import QA, QAWithArticle

ModelRef = str | dict[str, Any]

MAX_LIMIT = 10_000_000
MAX_SEED = 2**63 - 1  # stored as a 64-bit integer
MAX_ROUNDS = 20
MAX_BEST_OF = 26  # the best-of-N selector labels candidates a–z
MAX_SHOTS = 64
MAX_WORDS = 4_000
MAX_PAIRINGS = 1_000_000
MAX_CONCURRENCY = 10_000
MAX_REPLICATES = 1_000
NAME_CHARS = re.compile(r"[\w][\w.-]*")


class DebateOptions(Strict):
    rounds: int = Field(3, ge=1, le=MAX_ROUNDS)
    turns: Literal["simultaneous", "sequential"] = "simultaneous"
    first_round_simultaneous: bool = True
    best_of: int = Field(1, ge=1, le=MAX_BEST_OF)
    interactive: bool = False


class ConsultancyOptions(Strict):
    rounds: int = Field(3, ge=1, le=MAX_ROUNDS)


class JudgeOptions(Strict):
    mode: Literal["answer", "cot", "fewshot"] = "answer"
    shots: int = Field(6, ge=1, le=MAX_SHOTS)
    # Force the final answer to `Answer: 1|2` with the provider's constrained decoding
    # (oversight/model/constrain.py); a judge whose provider cannot is refused before any call.
    constrain: bool = False


class AgentOptions(Strict):
    word_limit: int = Field(150, ge=10, le=MAX_WORDS)
    passage_match: Literal["exact", "tolerant"] = "exact"
    # The agent's own QA answer, which picks the side in open protocols: its own mode,
    # independent of the judges' `judge.mode`.
    qa_mode: Literal["answer", "cot"] = "answer"


class DebaterConfig(Strict):
    name: str | None = None
    model: ModelRef
    best_of: int = Field(1, ge=1, le=MAX_BEST_OF)


class TournamentSpec(Strict):
    """Cross-play debates between debater configs (engine/tournament.py has the design).

    Its debates use `rounds` and `turns` from here, never the spec's `debate:` block, and
    are never interactive. Give one judge as `judge:` or several as `judges:`."""

    debaters: list[DebaterConfig] = Field(min_length=2)
    # Cross-play pairings, each played in both answer orders: a multiple of pairs × tasks
    # (null: one pairing per pair per task).
    pairings: int | None = Field(None, ge=1, le=MAX_PAIRINGS)
    judge: ModelRef | None = None
    judges: list[ModelRef] = []
    rounds: int = Field(1, ge=1, le=MAX_ROUNDS)
    turns: Literal["simultaneous", "sequential"] = "simultaneous"
    self_play: bool = True
    # s in the expected score 1 / (1 + 10^((E_j − E_i)/s)): 400 is the usual Elo scale, the
    # paper's text gives 500. `oversight report` fits and labels ratings on it (null: 400).
    elo_scale: float | None = Field(None, gt=0, le=1e6, allow_inf_nan=False)

    def judge_refs(self, source: str) -> list[ModelRef]:
        if (self.judge is None) == (not self.judges):
            raise OversightError(
                f"{source} (tournament): name the tournament's judge as `judge: MODEL` or its judges as "
                f"`judges: [MODEL, ...]` (each is fitted separately), exactly one of the two."
            )
        return [self.judge] if self.judge is not None else list(self.judges)


class RunSpec(Strict):
    name: str
    seed: int = Field(0, ge=0, le=MAX_SEED)
    replicates: int = Field(1, ge=1, le=MAX_REPLICATES)  # independent samples of every episode (fresh calls each)
    tasks: list[str] = Field(min_length=1)
    limit: int | None = Field(16, ge=1, le=MAX_LIMIT)
    orders: Literal["both", "random"] = "both"
    protocols: list[str] = [QA.name, QAWithArticle.name]
    agent: ModelRef | None = None
    judges: list[ModelRef] = []
    debate: DebateOptions = DebateOptions()
    consultancy: ConsultancyOptions = ConsultancyOptions()
    judge: JudgeOptions = JudgeOptions()
    agents: AgentOptions = AgentOptions()
    tournament: TournamentSpec | None = None
    budget_usd: float | None = Field(None, gt=0, allow_inf_nan=False)
    concurrency: int = Field(256, ge=1, le=MAX_CONCURRENCY)  # episodes in flight; each model has its own call limit
    cache_dir: str | None = None  # default: the user cache dir, or $OVERSIGHT_CACHE_DIR
    description: str = ""

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        # The name becomes runs/NAME/: a path in it would write elsewhere (`../..`, `/tmp/x`).
        if not NAME_CHARS.fullmatch(v) or ".." in v or len(v) > 100:
            raise ValueError(
                "a run name must be a plain name of at most 100 letters, digits, '_', '-' or '.', "
                "starting with a letter or digit, without '..' or slashes (it becomes runs/NAME/)"
            )
        return v

    @field_validator("tasks", "protocols")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        repeated = sorted({x for x in v if v.count(x) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once; list each once")
        return v

    @field_validator("cache_dir")
    @classmethod
    def _cache_dir_given(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("cache_dir is empty; give a directory or leave the key out for the default")
        return v


def _set_path(data: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        if not k:
            raise OversightError(f"--set {dotted}: empty key; use dotted keys like debate.rounds=2.")
        nxt = node.setdefault(k, LineDict())
        if not isinstance(nxt, dict):
            raise OversightError(f"--set {dotted}: '{k}' in {source} is not a mapping.")
        node = nxt
    if not keys[-1]:
        raise OversightError(f"--set {dotted}: empty key; use dotted keys like debate.rounds=2.")
    node[keys[-1]] = value
    if isinstance(node, LineDict):
        node.lines[keys[-1]] = "--set"  # the file's line no longer holds this value


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Apply `key=value` overrides (dotted keys; values parsed as YAML: `limit=4`, `judges=[sim/weak]`)."""
    for item in overrides:
        if "=" not in item:
            raise OversightError(f"--set expects key=value (e.g. --set limit=4), got '{item}'.")
        key, raw = item.split("=", 1)
        if not raw.strip():
            # `--set budget_usd=$BUDGET` with the variable unset would otherwise lift the limit.
            raise OversightError(
                f"--set {key.strip()}= has no value (an unset shell variable?). Give a value, or "
                f"`--set {key.strip()}=null` to clear the key on purpose."
            )
        try:
            value = parse_yaml(raw, f"--set {key.strip()}")
        except OversightError as exc:
            if "refused" in str(exc):
                raise  # a duplicate key or alias bomb in a value is an error, not a string
            value = raw
        _set_path(data, key.strip(), value, source)
    return data


def load_spec(path: str | Path, overrides: list[str] | None = None) -> RunSpec:
    """A spec file, or a spec's name (`quickstart`) found in ./runs/ or the bundled specs."""
    from oversight.catalogue import resolve_spec

    p = Path(resolve_spec(str(path)))
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
