"""The README's commands and code are real: the Quickstart block has exactly two commands
(CI runs the second), and the pandas analysis snippet runs against a real run directory."""

from __future__ import annotations

import re
from pathlib import Path

import oversight

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def code_block(after_heading: str, lang: str) -> str:
    section = README.split(after_heading, 1)[1]
    match = re.search(rf"```{lang}\n(.*?)```", section, re.DOTALL)
    assert match, f"no {lang} block after {after_heading}"
    return match.group(1)


def test_quickstart_has_two_commands_and_ci_runs_the_second() -> None:
    commands = [c for c in code_block("## Quickstart", "bash").splitlines() if c.strip()]
    assert len(commands) == 2
    assert "runs/quickstart.yaml" in commands[0] and "pytest" in commands[1]
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_pandas_analysis_snippet_runs(tmp_path: Path, capsys: object) -> None:
    spec = {"name": "doc", "tasks": ["boolq", "prontoqa"], "limit": 3, "agent": "sim/strong",
            "judges": ["sim/weak"], "protocols": ["qa", "consultancy", "debate"], "debate": {"rounds": 2}}
    run = oversight.run(spec, out=tmp_path / "run")
    snippet = code_block("### Analysis in pandas", "python").replace("runs/quickstart/<run_id>", str(run.run_dir))
    exec(compile(snippet, "README.md", "exec"), {})


def test_writing_a_protocol_quotes_the_example_as_it_is() -> None:
    """The walkthrough's code is the example's own, word for word (no copy to drift)."""
    example = ROOT / "docs" / "examples" / "cross_examination"
    section = README.split("## Writing a protocol", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    source = (example / "cross_examination.py").read_text()
    assert len(blocks) == 4 and all(b in source for b in blocks)
    toml = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert toml and toml.group(1) == (example / "pyproject.toml").read_text()
