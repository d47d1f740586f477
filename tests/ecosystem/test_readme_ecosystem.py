"""The README's installation, model, notebook, Inspect and Hugging Face sections are real:
the judge-card templates work as printed (the local one with no key), the notebook example
runs inside a running event loop, and the snippets name real options."""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from oversight.cli import _parser
from oversight.model.card import resolve_model
from oversight.task.card import TaskCard
from tests.ecosystem.helpers import KEY_VARS, ROOT, cli, listening

README = (ROOT / "README.md").read_text(encoding="utf-8")


def block(marker: str, lang: str) -> str:
    """The `lang` code block that holds `marker`, else the first one after it."""
    at = README.index(marker)
    for match in re.finditer(rf"```{lang}\n(.*?)```", README, re.DOTALL):
        if match.end() > at:
            return match.group(1)
    raise AssertionError(f"no {lang} block after {marker!r}")


def write_card(folder: Path, text: str) -> Path:
    name = re.match(r"# judges/(\S+)\.yaml", text)
    assert name, text[:60]
    path = folder / "judges" / f"{name.group(1)}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_local_server_card_works_as_printed_with_no_key(tmp_path: Path) -> None:
    text = block("# judges/my-local-judge.yaml", "yaml")
    write_card(tmp_path, text)
    with listening(8000):
        p = cli(["validate", "quickstart", "--set", "judges=[my-local-judge]"], tmp_path)
    assert p.returncode == 0, p.stderr
    card = resolve_model(yaml.safe_load(text))
    assert card.base_url == "http://127.0.0.1:8000/v1" and card.api_key() is None


def test_the_judge_card_template_needs_a_key_only_for_the_hosted_endpoint(tmp_path: Path) -> None:
    text = block("# judges/my-judge.yaml", "yaml")
    write_card(tmp_path, text)
    hosted = cli(["validate", "quickstart", "--set", "judges=[my-judge]"], tmp_path)
    assert hosted.returncode == 2 and "OPENAI_API_KEY" in hosted.stderr
    # Copied for a local server: only the base_url its comment shows is changed.
    url = re.search(r"e\.g\. (http://\S+)", text)
    assert url
    local = text.replace("base_url: null", f"base_url: {url.group(1)}", 1)
    write_card(tmp_path, local)
    with listening(int(re.search(r":(\d+)/", url.group(1)).group(1))):  # type: ignore[union-attr]
        p = cli(["validate", "quickstart", "--set", "judges=[my-judge]"], tmp_path)
    assert p.returncode == 0, p.stderr


def test_the_notebook_example_runs_inside_a_running_event_loop(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    source = block("### In a notebook", "python")
    code = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}

    async def cell() -> None:  # what Jupyter does with a cell that awaits
        result = eval(code, namespace)
        if inspect.iscoroutine(result):
            await result

    asyncio.run(cell())
    assert namespace["result"].status == "complete"
    assert len(namespace["res"].judgments) == len(namespace["result"].judgments) > 0
    assert set(namespace["table"]["protocol"]) >= {"qa", "debate"}
    assert (tmp_path / "runs" / "nb").is_dir()
    # The same cell as a plain call from a running loop, the other form the example names (in
    # another folder: run ids are made to the second, and both runs share the spec's name).
    (tmp_path / "sync").mkdir()
    monkeypatch.chdir(tmp_path / "sync")
    sync = source.replace("await oversight.run_async(spec)", "oversight.run(spec)")
    asyncio.run(_exec_in_loop(sync))
    assert (tmp_path / "sync" / "runs" / "nb").is_dir()


async def _exec_in_loop(source: str) -> None:
    exec(compile(source, "README.md", "exec"), {})


def test_the_install_section_commands_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    commands = [ln.split("#")[0].split() for ln in block("## Installation", "bash").splitlines()]
    parser = _parser()
    for words in commands:
        if words[:1] == ["oversight"]:
            assert parser.parse_args(words[1:]).command in ("list", "run")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in ("openai", "anthropic", "google", "all", "inspect", "hf", "transformers", "dev"):
        assert extra in extras and f"`{extra}`" in README


def test_the_inspect_commands_and_the_plugin_entry_point() -> None:
    bash = block("### Inspect logs", "bash")
    assert "oversight export inspect runs/quickstart/<run_id>" in bash
    _parser().parse_args(["export", "inspect", "runs/quickstart/x"])
    toml = tomllib.loads(block("**Adding a provider**", "toml"))
    assert toml["project"]["entry-points"]["oversight.providers"] == {"myprov": "my_package.api:MyAPI"}


def test_the_hugging_face_card_is_a_valid_card() -> None:
    card = TaskCard.model_validate(yaml.safe_load(block("### Hugging Face datasets", "yaml")))
    assert card.hf is not None and card.hf.path == "google/boolq" and card.path is None


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)
