"""The one YAML loader every spec, card and preset goes through: duplicate keys and alias
bombs refused, lines remembered for messages, offending values quoted only in excerpt."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

import oversight.config as config
from oversight.config import LineDict, Strict, load_yaml, parse_yaml, read_yaml, validate
from oversight.engine.spec import load_spec
from oversight.errors import OversightError, excerpt


class Small(Strict):
    name: str
    rounds: int = Field(1, ge=1, le=20)
    nested: dict[str, int] = {}


def test_duplicate_key_names_file_and_both_lines() -> None:
    with pytest.raises(OversightError, match=r"x\.yaml, line 3: .*duplicate key 'a' \(first at line 1\)"):
        parse_yaml("a: 1\nb: 2\na: 3\n", "x.yaml")


@pytest.mark.parametrize("text", ["outer:\n  k: 1\n  k: 2\n", "outer: {k: 1, k: 2}\n", "- {k: 1, k: 2}\n"])
def test_duplicate_keys_refused_at_any_depth(text: str) -> None:
    with pytest.raises(OversightError, match="duplicate key 'k'"):
        parse_yaml(text, "x.yaml")


def test_merge_keys_and_small_aliases_still_work() -> None:
    data = parse_yaml("base: &b {provider: sim, model: weak}\n"
                      "judge:\n  <<: *b\n  model: strong\n"
                      "judges: [*b, *b]\n", "x.yaml")
    assert data["judge"] == {"provider": "sim", "model": "strong"}
    assert data["judges"] == [{"provider": "sim", "model": "weak"}] * 2


def test_alias_bomb_and_recursive_alias_refused() -> None:
    levels = [f"l0: &l0 [{', '.join(['lol'] * 9)}]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    with pytest.raises(OversightError, match="aliases") as exc:
        parse_yaml("\n".join(levels), "bomb.yaml")
    assert len(str(exc.value)) < 300
    with pytest.raises(OversightError, match="recursive alias"):
        parse_yaml("x: &x [1, *x]\n", "x.yaml")


def test_unreadable_values_are_errors_not_tracebacks() -> None:
    with pytest.raises(OversightError, match="4,300 digits"):
        parse_yaml("seed: " + "7" * 5000, "x.yaml")
    with pytest.raises(OversightError, match="nested too deeply"):
        parse_yaml("[" * 5000 + "]" * 5000, "x.yaml")
    with pytest.raises(OversightError, match="x.yaml"):
        parse_yaml("day: 2024-13-45\n", "x.yaml")  # a timestamp that is no date


def test_mappings_remember_their_lines() -> None:
    data = parse_yaml("name: t\n\nnested:\n  a: 1\n  b: 2\n", "x.yaml")
    assert isinstance(data, LineDict) and data.lines == {"name": 1, "nested": 3}
    assert data["nested"].lines == {"a": 4, "b": 5}


def test_validation_error_points_at_the_line_and_quotes_an_excerpt(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: t\nrounds: 100\n")
    with pytest.raises(OversightError, match=r"s\.yaml: key 'rounds' \(line 2\): .*less than or equal to 20"):
        load_yaml(Small, path)
    path.write_text("name: " + "x" * 1_000_000 + "\nrounds: [1]\nnested: {a: " + "y" * 1_000_000 + "}\n")
    with pytest.raises(OversightError) as exc:
        load_yaml(Small, path)
    assert len(str(exc.value)) < 600 and "(line 3)" in str(exc.value)


def test_many_problems_are_counted_not_listed() -> None:
    with pytest.raises(OversightError, match=r"and \d+ more problem") as exc:
        validate(Small, {"name": "t", "nested": {f"k{i}": "x" for i in range(500)}}, "src")
    assert len(str(exc.value)) < 1500


def test_files_utf8_with_bom_accepted_other_encodings_refused(tmp_path: Path) -> None:
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfname: t\n")
    assert read_yaml(bom) == {"name": "t"}
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: t\n\ndescription: caf\xe9\n")
    with pytest.raises(OversightError, match=r"latin\.yaml, line 3: not valid UTF-8"):
        read_yaml(latin)


def test_oversized_yaml_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_YAML_BYTES", 64)
    path = tmp_path / "big.yaml"
    path.write_text("description: " + "x" * 100 + "\n")
    with pytest.raises(OversightError, match="larger than"):
        read_yaml(path)


def test_set_override_is_blamed_on_set_not_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: t\ntasks: [boolq]\ndebate: {rounds: 2}\n")
    with pytest.raises(OversightError, match=r"debate\.rounds' \(from --set\).*less than or equal to 20"):
        load_spec(path, ["debate.rounds=1000000000"])
    with pytest.raises(OversightError, match=r"consultancy\.rounds' \(from --set\)"):
        load_spec(path, ["consultancy.rounds=0"])
    with pytest.raises(OversightError, match="duplicate key 'mode'"):
        load_spec(path, ["judge={mode: cot, mode: answer}"])


@pytest.mark.parametrize("name", ["../..", "/tmp/x", "a/b", "..", ".hidden", "", "a b", "x" * 101])
def test_run_names_are_plain(tmp_path: Path, name: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"name: {name!r}\ntasks: [boolq]\n")
    with pytest.raises(OversightError, match="plain name"):
        load_spec(path)


def test_plain_run_names_pass(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    for name in ("quickstart", "kenton2024_mmmu", "v1.2-final"):
        path.write_text(f"name: {name}\ntasks: [boolq]\n")
        assert load_spec(path).name == name


def test_excerpt_is_short_and_cheap() -> None:
    nested: object = ["lol"] * 9
    for _ in range(9):
        nested = [nested] * 9  # 9^10 leaves when walked in full
    assert len(excerpt(nested)) <= 80
    assert len(excerpt("x" * 10_000)) <= 80
    assert excerpt("short") == "'short'"


def test_excerpt_of_a_huge_integer() -> None:
    assert "too large" in excerpt(10**5000)  # repr() itself refuses more than 4,300 digits
