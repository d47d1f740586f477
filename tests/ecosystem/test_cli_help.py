"""The command explains itself: what it does and three example commands at the top, help
for every argument of every command, `--version`, `list judges` as an alias."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import oversight
from oversight.cli import _parser
from tests.ecosystem.helpers import cli


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_argument_of_every_command_has_help() -> None:
    parser = _parser()
    missing = []
    for name, sub in {"(top level)": parser, **_subparsers(parser)}.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if action.help is None or not str(action.help).strip():
                missing.append(f"{name}: {action.option_strings or action.dest}")
    assert not missing, missing


def test_top_level_help_says_what_the_tool_does_with_three_examples(tmp_path: Path) -> None:
    p = cli(["--help"], tmp_path)
    assert p.returncode == 0
    assert "Compare scalable-oversight protocols" in p.stdout and "weak LLM judges" in p.stdout
    examples = re.findall(r"^  (oversight \S.*?)\s+#", p.stdout, re.MULTILINE)
    assert len(examples) == 3
    parser = _parser()
    for example in examples:  # each one parses as a real command line
        args = parser.parse_args(example.split()[1:])
        assert args.command in ("run", "report", "validate", "list")


def test_version(tmp_path: Path) -> None:
    p = cli(["--version"], tmp_path)
    assert p.returncode == 0 and p.stdout.startswith(f"oversight {oversight.__version__} ")


def test_list_judges_is_list_models(tmp_path: Path) -> None:
    models, judges = cli(["list", "models"], tmp_path), cli(["list", "judges"], tmp_path)
    assert models.returncode == judges.returncode == 0 and models.stdout == judges.stdout
    assert "gpt-4o-mini" in judges.stdout and "sim/weak" in judges.stdout
