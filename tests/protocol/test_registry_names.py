"""Protocols are plugins: the engine, dry run, judge-ui and report know no protocol by name.
A protocol's name may be written only in its own module (where its class sets `name`) and
in the registry; everywhere else it comes from the registry or the protocol's class."""

from __future__ import annotations

import ast
import importlib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from oversight.protocol import registry

PACKAGE = Path(__file__).resolve().parents[2] / "oversight"
BUILTINS = {"qa", "qa_with_article", "consultancy", "debate", "open_consultancy", "open_debate"}


def own_modules() -> dict[str, Path]:
    """protocol name -> the file of the module its entry point names."""
    out = {}
    for ep in entry_points(group=registry.GROUP):
        module = importlib.import_module(ep.value.partition(":")[0])
        if module.__file__ and Path(module.__file__).resolve().is_relative_to(PACKAGE):
            out[ep.name] = Path(module.__file__).resolve()
    return out


def literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = [(n.lineno, n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    # Also the words of embedded code (the report's JavaScript compares `c.p === 'debate'`).
    return out


def test_the_six_builtins_come_from_oversights_own_entry_points() -> None:
    assert set(registry.builtin_names()) == BUILTINS
    assert set(own_modules()) == BUILTINS


def test_no_protocol_name_is_written_outside_its_own_module_and_the_registry() -> None:
    own = own_modules()
    allowed = {path: {name} for name, path in own.items()}
    for name, path in own.items():
        allowed.setdefault(path, set()).add(name)
    registry_file = (PACKAGE / "protocol" / "registry.py").resolve()
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        path = path.resolve()
        if path == registry_file:
            continue
        for line, value in literals(path):
            quoted = {value} | {w.strip("'\"") for w in value.replace("(", " ").replace(")", " ").split()
                                if w.startswith(("'", '"')) and w.endswith(("'", '"'))}
            for name in quoted & (set(own) - allowed.get(path, set())):
                bad.append(f"{path.relative_to(PACKAGE)}:{line} '{name}'")
    assert not bad, "protocol names written outside their own module:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_is_an_instance_of_the_interface(name: str) -> None:
    from oversight.protocol.base import Protocol

    p = registry.get(name)
    assert isinstance(p, Protocol) and p.name == name and p.title and p.colour.startswith("#")
