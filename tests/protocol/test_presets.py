from __future__ import annotations

from pathlib import Path

import pytest

from oversight import catalogue
from oversight.errors import OversightError
from oversight.protocol.presets import ProtocolPreset, load_preset, preset_names

PROTOCOLS = ["consultancy", "debate", "open_consultancy", "open_debate", "qa", "qa_with_article"]


def test_every_protocol_has_a_preset_whose_templates_exist() -> None:
    assert set(PROTOCOLS) <= set(preset_names())
    template_dir = catalogue.folders("protocols")[0] / "templates"
    for name in PROTOCOLS:
        preset = load_preset(name)
        assert preset.name == name and preset.description
        for template in preset.templates:
            assert (template_dir / f"{template}.txt").exists(), (name, template)


def test_preset_contents() -> None:
    assert load_preset("qa_with_article").groups == ["extractive"]
    # Base presets set no options (the spec's blocks govern them); variants set their own.
    assert load_preset("debate").options.set_values() == {}
    assert load_preset("debate_seq").options.set_values() == {"turns": "sequential"}
    assert load_preset("debate_seq").base_protocol() == "debate"
    assert load_preset("consultancy_cot").base_protocol() == "consultancy"
    assert load_preset("open_debate").kind == "open" and "debate" in load_preset("open_debate").derived_from


def test_unknown_keys_are_rejected_with_a_hint(tmp_path: Path) -> None:
    folder = tmp_path / "protocols"
    folder.mkdir()
    (folder / "mine.yaml").write_text("name: mine\ndescription: x\nkind: debate\noptions: {rouns: 2}\n")
    catalogue.include(tmp_path)
    try:
        with pytest.raises(OversightError, match="rouns.*did you mean 'rounds'"):
            load_preset("mine")
    finally:
        catalogue._extra.remove(tmp_path.resolve())


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(OversightError, match="debait.*debate"):
        load_preset("debait")


def test_model_is_strict() -> None:
    with pytest.raises(ValueError):
        ProtocolPreset.model_validate({"name": "x", "description": "y", "kind": "qa", "colour": 1})
