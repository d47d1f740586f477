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


# Files the developers keep outside the repository; users never have them.
OUTSIDE = re.compile(r"PAPER\.md|DESIGN\.md|DESIGN §|PAPER \"|/work/shared", re.I)


def test_nothing_in_the_repository_cites_a_file_users_do_not_have() -> None:
    import subprocess

    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    cited = []
    for name in set(files) - {"tests/test_readme.py"}:  # this file names the pattern
        path = ROOT / name
        if path.suffix in {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".cfg"} and path.is_file():
            cited += [f"{name}: {m.group(0)}" for m in OUTSIDE.finditer(path.read_text(errors="replace"))]
    assert not cited, cited


def test_the_method_is_in_the_repository_and_every_readme_link_resolves() -> None:
    method = ROOT / "docs" / "METHOD.md"
    text = method.read_text()
    for heading in ("## Protocols", "## What each prompt contains", "## Statistics", "## The reference experiment"):
        assert heading in text
    assert "(docs/METHOD.md)" in README
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if not re.match(r"[a-z]+:", target):
            assert (ROOT / target).exists(), f"README links to {target}, which is not in the repository"


def test_list_runs_cites_no_missing_file() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "oversight", "list", "runs"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "elo" in out.stdout and not OUTSIDE.search(out.stdout), out.stdout


def test_writing_a_protocol_quotes_the_example_as_it_is() -> None:
    """The walkthrough's code is the example's own, word for word (no copy to drift)."""
    example = ROOT / "docs" / "examples" / "cross_examination"
    section = README.split("## Writing a protocol", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    source = (example / "cross_examination.py").read_text()
    assert len(blocks) == 4 and all(b in source for b in blocks)
    toml = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert toml and toml.group(1) == (example / "pyproject.toml").read_text()
