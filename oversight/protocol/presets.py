"""Protocol presets: `protocols/NAME.yaml`, plain data describing each protocol.

A preset names the protocol, says what it is, lists the prompt templates it uses (so a
reader can find its wording, and `oversight list protocols` can show it) and may set
options. Unknown keys are rejected with the file, the key and the nearest valid key
(oversight/config.py).

Every name a spec lists under `protocols:` is a *variant*: a base protocol (a registered
protocol: the six built-ins or a plugin's, oversight/protocol/registry.py) plus the
options its preset sets. The six base presets set none, so the spec's `debate:`,
`consultancy:`, `judge:` and `agents:` blocks govern them; a variant's own options override
those blocks for that variant alone. So `protocols: [debate, debate_seq, debate_bo4,
consultancy_cot]` runs an ablation grid in one run, and every row says which variant and
which settings produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator

from oversight import catalogue
from oversight.config import Strict, load_yaml
from oversight.errors import OversightError, unknown_name
from oversight.protocol import registry

OPEN_KIND = "open"  # a derived protocol; which one, its derived_from says
ALL_GROUPS = ("extractive", "closed", "multimodal")


class PresetOptions(Strict):
    """Defaults for the options a protocol reads (see oversight.dialogue.context.Options);
    a key left out keeps Options' own default."""

    rounds: int | None = Field(default=None, ge=1, le=20)
    turns: Literal["simultaneous", "sequential"] | None = None
    first_round_simultaneous: bool | None = None
    best_of: int | None = Field(default=None, ge=1, le=26)
    interactive: bool | None = None
    consultancy_rounds: int | None = Field(default=None, ge=1, le=20)
    word_limit: int | None = Field(default=None, ge=10, le=4000)
    passage_match: Literal["exact", "tolerant"] | None = None
    judge_mode: Literal["answer", "cot", "fewshot"] | None = None
    shots: int | None = Field(default=None, ge=1, le=64)
    # A folder under protocols/templates/ whose files replace the default templates of the
    # same name (a reworded prompt set); templates it lacks come from the default set.
    prompt_set: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

    def set_values(self) -> dict[str, object]:
        return self.model_dump(exclude_none=True)


class ProtocolPreset(Strict):
    name: str
    description: str
    kind: str  # a registered protocol, or `open`
    base: str | None = None  # a registered protocol
    groups: list[Literal["extractive", "closed", "multimodal"]] = [
        "extractive",
        "closed",
        "multimodal",
    ]
    templates: list[str] = []
    # Open protocols are derived from these protocols' rows plus the agent's own QA answer.
    derived_from: list[str] = []
    options: PresetOptions = PresetOptions()

    @field_validator("kind", "base")
    @classmethod
    def _registered(cls, value: str | None) -> str | None:
        known = registry.names()
        if value is not None and value != OPEN_KIND and value not in known:
            raise ValueError(f"'{value}' is not a protocol; known: {', '.join(known)} (or `{OPEN_KIND}`)")
        return value

    def base_protocol(self) -> str:
        if self.base is not None:
            return self.base
        if self.name in registry.names():
            return self.name
        if self.kind == OPEN_KIND:
            if not self.derived_from:
                raise OversightError(f"protocols/{self.name}.yaml: kind `{OPEN_KIND}` needs derived_from (its source).")
            source = resolve_variant(self.derived_from[0], f"protocols/{self.name}.yaml (derived_from)").base
            for p in registry.ordered():
                if p.derived_from == source:
                    return p.name
            raise OversightError(f"protocols/{self.name}.yaml: no registered protocol is derived from '{source}'.")
        return self.kind


@dataclass(frozen=True)
class Variant:
    """A protocol as a spec lists it: its base protocol and the options its preset sets."""

    name: str
    base: str
    overrides: dict[str, Any] = field(default_factory=dict, hash=False)
    source: str | None = None  # open variants: the assigned variant whose rows they select from
    groups: tuple[str, ...] = ALL_GROUPS  # the task groups it runs on (the preset's `groups:`)

    @property
    def is_open(self) -> bool:
        """Derived from another variant's rows (no episodes of its own)."""
        return registry.get(self.base).derived_from is not None


def resolve_variant(name: str, where: str = "spec") -> Variant:
    """The variant a `protocols:` entry names (a preset in protocols/, or a base protocol)."""
    path = catalogue.find("protocols", name)
    if path is None:
        if name in registry.names():
            proto = registry.get(name)
            return Variant(name, name, {}, proto.derived_from, tuple(proto.groups))
        raise unknown_name("protocol", name, sorted({*preset_names(), *registry.names()}), where)
    preset = load_preset(name)
    base = preset.base_protocol()
    if base not in registry.names():
        raise OversightError(f"{path}: base protocol '{base}' is not one of {', '.join(registry.names())}.")
    proto = registry.get(base)
    source = proto.derived_from
    if source is not None and preset.derived_from:
        source = preset.derived_from[0]
    groups = tuple(g for g in preset.groups if g in proto.groups)
    return Variant(name, base, preset.options.set_values(), source, groups)


def check_options(preset: ProtocolPreset, base: str, path: str) -> None:
    """Refuse an option the base protocol never reads (its `reads`), naming the file, the
    key and what would be valid: it would be listed, shown in every row and silently
    ignored (a "rounds do not matter" ablation that never varied the rounds)."""
    values = preset.options.set_values()
    proto = registry.get(base)
    valid = proto.reads
    for key in values:
        if key in valid:
            continue
        if proto.derived_from is not None:
            source = preset.derived_from[0] if preset.derived_from else proto.derived_from
            hint = (f"a derived protocol generates nothing: its rows are those of '{source}', so set the option "
                    f"in that variant's preset and name it in derived_from")
        elif key == "rounds" and "consultancy_rounds" in valid:
            hint = f"a {base} preset sets its rounds as consultancy_rounds"
        else:
            hint = f"a {base} preset may set {', '.join(valid)}"
        raise OversightError(
            f"{path}: options.{key} does not apply to the {base} protocol, so it would be shown in every row "
            f"and ignored; {hint}. Remove the key (or change `base:`)."
        )
    mode = values.get("judge_mode")
    if "shots" in values and mode is not None and mode != "fewshot":
        raise OversightError(
            f"{path}: options.shots is set but options.judge_mode is '{mode}', so no examples would be shown; "
            f"set judge_mode: fewshot or remove shots."
        )
    if "first_round_simultaneous" in values and values.get("turns") == "simultaneous":
        raise OversightError(
            f"{path}: options.first_round_simultaneous only matters with turns: sequential (every round of a "
            f"simultaneous debate is simultaneous); remove it or set turns: sequential."
        )


def load_preset(name: str) -> ProtocolPreset:
    path = catalogue.find("protocols", name)
    if path is None:
        raise unknown_name("protocol", name, preset_names())
    preset = load_yaml(ProtocolPreset, path)
    if preset.name != path.stem:
        raise OversightError(f"{path}: name '{preset.name}' does not match the file name '{path.stem}'.")
    if preset.base_protocol() in registry.names():
        # Checked on every read, so `list protocols` never shows a setting a run would ignore.
        check_options(preset, preset.base_protocol(), str(path))
    return preset


def preset_names() -> list[str]:
    return catalogue.names("protocols")
