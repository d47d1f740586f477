"""Protocol presets: `protocols/NAME.yaml`, plain data describing each protocol.

A preset names the protocol, says what it is, lists the prompt templates it uses (so a
reader can find its wording, and `oversight list protocols` can show it) and may set
options. Unknown keys are rejected with the file, the key and the nearest valid key
(oversight/config.py).

Every name a spec lists under `protocols:` is a *variant*: a base protocol (one of the six)
plus the options its preset sets. The six base presets set none, so the spec's `debate:`,
`consultancy:`, `judge:` and `agents:` blocks govern them; a variant's own options override
those blocks for that variant alone. So `protocols: [debate, debate_seq, debate_bo4,
consultancy_cot]` runs an ablation grid in one run, and every row says which variant and
which settings produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from oversight import catalogue
from oversight.config import Strict, load_yaml
from oversight.errors import OversightError, unknown_name

Kind = Literal["qa", "consultancy", "debate", "open"]
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


BASES = ("qa", "qa_with_article", "consultancy", "debate", "open_consultancy", "open_debate")

# The options each base protocol reads. Any other option a preset sets would be listed,
# shown in every row and silently ignored (a "rounds do not matter" ablation that never
# varied the rounds), so it is refused. Open protocols generate nothing: their rows are
# their source variant's, run with that variant's options.
_JUDGE = ("judge_mode", "shots", "prompt_set")
_AGENT = ("word_limit", "passage_match")
APPLIES: dict[str, tuple[str, ...]] = {
    "qa": _JUDGE,
    "qa_with_article": _JUDGE,
    "consultancy": ("consultancy_rounds", *_AGENT, *_JUDGE),
    "debate": ("rounds", "turns", "first_round_simultaneous", "best_of", "interactive", *_AGENT, *_JUDGE),
    "open_consultancy": (),
    "open_debate": (),
}


class ProtocolPreset(Strict):
    name: str
    description: str
    kind: Kind
    base: Literal["qa", "qa_with_article", "consultancy", "debate", "open_consultancy", "open_debate"] | None = None
    groups: list[Literal["extractive", "closed", "multimodal"]] = [
        "extractive",
        "closed",
        "multimodal",
    ]
    templates: list[str] = []
    # Open protocols are derived from these protocols' rows plus the agent's own QA answer.
    derived_from: list[str] = []
    options: PresetOptions = PresetOptions()


    def base_protocol(self) -> str:
        if self.base is not None:
            return self.base
        if self.name in BASES:
            return self.name
        if self.kind == "open":
            source = self.derived_from[0] if self.derived_from else "debate"
            return "open_consultancy" if "consultancy" in source else "open_debate"
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
        return self.base.startswith("open_")


def resolve_variant(name: str, where: str = "spec") -> Variant:
    """The variant a `protocols:` entry names (a preset in protocols/, or a base protocol)."""
    path = catalogue.find("protocols", name)
    if path is None:
        if name in BASES:
            return Variant(name, name, {}, name.removeprefix("open_") if name.startswith("open_") else None,
                           ("extractive",) if name == "qa_with_article" else ALL_GROUPS)
        raise unknown_name("protocol", name, preset_names(), where)
    preset = load_preset(name)
    base = preset.base_protocol()
    if base not in BASES:
        raise OversightError(f"{path}: base protocol '{base}' is not one of {', '.join(BASES)}.")
    source = None
    if base.startswith("open_"):
        source = preset.derived_from[0] if preset.derived_from else base.removeprefix("open_")
    return Variant(name, base, preset.options.set_values(), source, tuple(preset.groups))


def check_options(preset: ProtocolPreset, base: str, path: str) -> None:
    """Refuse an option the base protocol never reads, naming the file, the key and what
    would be valid (oversight/protocol/presets.py, APPLIES)."""
    values = preset.options.set_values()
    valid = APPLIES[base]
    for key in values:
        if key in valid:
            continue
        if base.startswith("open_"):
            source = preset.derived_from[0] if preset.derived_from else base.removeprefix("open_")
            hint = (f"an open protocol generates nothing: its rows are those of '{source}', so set the option "
                    f"in that variant's preset and name it in derived_from")
        elif base == "consultancy" and key == "rounds":
            hint = "a consultancy preset sets its rounds as consultancy_rounds"
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
    if preset.base_protocol() in BASES:
        # Checked on every read, so `list protocols` never shows a setting a run would ignore.
        check_options(preset, preset.base_protocol(), str(path))
    return preset


def preset_names() -> list[str]:
    return catalogue.names("protocols")
