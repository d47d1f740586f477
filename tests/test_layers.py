"""Dependencies point one way: model/ and store/ at the bottom, the dialogue
types above them, protocol/ and judge/ on those, engine/ and score/ on top. Checked on the
source's import statements, including imports inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "oversight"

# A layer may import only the layers listed for it (and itself, and the top-level helpers).
ALLOWED = {
    "model": {"store"},  # both at the bottom; the batch journal reuses the run journal's rules
    "store": set(),
    "task": {"model"},
    "dialogue": {"model", "task"},
    "judge": {"model", "task", "dialogue"},
    "protocol": {"model", "task", "dialogue", "judge"},
    "engine": {"model", "task", "dialogue", "judge", "protocol", "store"},
    # score reads a protocol's display (name, colour, order, headline) through the registry only
    "score": {"store", "protocol"},
}
HELPERS = {"errors", "config", "catalogue", "testing", "testing_providers"}


def imports_of(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("oversight."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("oversight.")}
    return out


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_no_import_points_upward(layer: str) -> None:
    bad = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for target in imports_of(path) - ALLOWED[layer] - HELPERS - {layer}:
            bad.append(f"{path.relative_to(PACKAGE)} imports oversight.{target}")
    assert not bad, bad


def test_report_and_html_do_not_import_each_other() -> None:
    html, report = PACKAGE / "score" / "html.py", PACKAGE / "score" / "report.py"

    def names(path: Path) -> set[str]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    assert "oversight.score.report" not in names(html)
    assert "oversight.score.html" not in names(report)


def test_score_reaches_protocols_only_through_the_registry() -> None:
    bad = []
    for path in sorted((PACKAGE / "score").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            imported = [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else []
            if (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("oversight.protocol")
                    and (node.module != "oversight.protocol" or imported != ["registry"])):
                bad.append(f"{path.relative_to(PACKAGE)} imports {node.module}")
    assert not bad, bad
