"""The provider registry: named OpenAI-compatible local servers, providers added by an
installed package (entry points) or in process, Google's two key variables, and every
missing key named by one `validate`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import oversight
from oversight.cli import main
from oversight.errors import OversightError
from oversight.model import registry
from oversight.model.api import ModelAPI
from oversight.model.card import resolve_model
from oversight.model.providers import provider_class
from oversight.model.providers.openai import OpenAIAPI
from oversight.model.types import GenerateRequest, GenerateResponse, Usage
from oversight.testing import FakeOpenAI
from tests.ecosystem.helpers import KEY_VARS, clean_env, cli, listening

LOCAL = {"vllm": 8000, "sglang": 30000, "ollama": 11434, "llama_cpp": 8080}


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("name", sorted(LOCAL))
def test_named_local_servers_are_openai_compatible_at_their_default_port_with_no_key(name: str) -> None:
    card = resolve_model({"provider": name, "model": "m"})
    assert card.base_url == f"http://127.0.0.1:{LOCAL[name]}/v1"
    assert card.key_envs() == () and card.api_key() is None
    assert provider_class(name) is OpenAIAPI
    moved = resolve_model({"provider": name, "model": "m", "base_url": "http://10.0.0.5:9000/v1"})
    assert moved.base_url == "http://10.0.0.5:9000/v1"  # the card's own address wins
    assert resolve_model(f"{name}/some-model").base_url == card.base_url


def test_a_named_local_server_runs_a_judge_and_never_sends_a_real_key(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-secret-key-0001")
    with FakeOpenAI() as server:
        judge = {"name": "local", "provider": "ollama", "model": "llama3", "base_url": server.base_url}
        spec = {"name": "local", "tasks": ["boolq"], "limit": 2, "protocols": ["qa"], "judges": [judge]}
        result = oversight.run(spec, out=tmp_path / "run")
        headers = list(server.headers)
    assert result.status == "complete" and set(result.judgments["judge_answer"].dropna()) == {1}
    assert headers and not any("sk-real-secret" in str(h) for h in headers)


def test_an_unknown_provider_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(OversightError) as err:
        resolve_model({"provider": "vlm", "model": "m"}, "judges/x.yaml")
    text = str(err.value)
    assert "judges/x.yaml" in text and "'provider'" in text and "Did you mean 'vllm'?" in text
    for name in ("openai", "anthropic", "google", "sim", "vllm", "ollama", "sglang", "llama_cpp", "transformers"):
        assert name in text
    assert "oversight.providers" in text and "\n" not in text


@pytest.mark.parametrize(("env", "used"), [
    ({"GOOGLE_API_KEY": "g-1"}, "g-1"),
    ({"GEMINI_API_KEY": "m-1"}, "m-1"),
    ({"GOOGLE_API_KEY": "g-2", "GEMINI_API_KEY": "m-2"}, "g-2"),  # as Google's SDK: GOOGLE_API_KEY wins
])
def test_google_takes_either_key_variable(env: dict[str, str], used: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert resolve_model("google/gemini-2.0-flash").api_key() == used


def test_a_missing_google_key_names_both_variables() -> None:
    card = resolve_model("google/gemini-2.0-flash")
    with pytest.raises(OversightError) as err:
        card.api_key()
    assert "GOOGLE_API_KEY or GEMINI_API_KEY (either works; GOOGLE_API_KEY wins if both are set)" in str(err.value)


def test_validate_lists_every_missing_key_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = {"name": "keys", "tasks": ["boolq"], "limit": 1, "protocols": ["qa"],
            "judges": ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest", "google/gemini-2.0-flash",
                       "vllm/gemma", "sim/weak"]}
    path = tmp_path / "keys.yaml"
    path.write_text(yaml.safe_dump(spec))
    p = cli(["validate", str(path)], tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    err = p.stderr.strip()
    assert "\n" not in err and "3 models need API keys" in err
    assert "'openai/gpt-4o-mini' needs OPENAI_API_KEY" in err
    assert "'anthropic/claude-3-5-haiku-latest' needs ANTHROPIC_API_KEY" in err
    assert "'google/gemini-2.0-flash' needs GOOGLE_API_KEY or GEMINI_API_KEY" in err
    assert "vllm/gemma" not in err and "sim/weak" not in err  # they need no key

    keys = {"OPENAI_API_KEY": "sk-test-1", "ANTHROPIC_API_KEY": "sk-ant-test-1", "GEMINI_API_KEY": "gm-test-1"}
    for missing in keys:  # one missing: the single-model message (in process: the SDK imports are slow)
        with pytest.MonkeyPatch.context() as mp:
            for var, value in keys.items():
                if var != missing:
                    mp.setenv(var, value)
            assert main(["validate", str(path)]) == 2
            assert missing in capsys.readouterr().err
    with pytest.MonkeyPatch.context() as mp, listening(8000):  # vllm's server answers (validate checks)
        for var, value in keys.items():
            mp.setenv(var, value)
        assert main(["validate", str(path)]) == 0, capsys.readouterr().err


PLUGIN = '''
    """A provider that lives in its own package: every judge it backs answers 2."""
    from oversight.model.api import ModelAPI
    from oversight.model.types import GenerateResponse, Usage


    class AlwaysTwo(ModelAPI):
        provider = "myprov"
        default_base_url = "https://myprov.invalid/v1"
        default_key_env = "MYPROV_TOKEN"

        async def generate(self, request):
            assert self.api_key == "tok-123"  # read from default_key_env
            return GenerateResponse(texts=["Answer: 2"] * request.n, usage=Usage(10, 2))
'''

PLUGIN_PROJECT = '''
    [build-system]
    requires = ["hatchling"]
    build-backend = "hatchling.build"

    [project]
    name = "oversight-myprov"
    version = "0.1.0"

    [project.entry-points."oversight.providers"]
    myprov = "myprov_plugin:AlwaysTwo"

    [tool.hatch.build.targets.wheel]
    only-include = ["myprov_plugin.py"]
'''


def test_an_installed_package_adds_a_provider(tmp_path: Path) -> None:
    pytest.importorskip("hatchling", reason="the dev extra's hatchling builds the plugin offline")
    pkg = tmp_path / "plugin"
    pkg.mkdir()
    (pkg / "myprov_plugin.py").write_text(textwrap.dedent(PLUGIN))
    (pkg / "pyproject.toml").write_text(textwrap.dedent(PLUGIN_PROJECT))
    site = tmp_path / "site"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                        "-q", "--target", str(site), str(pkg)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert (site / "oversight_myprov-0.1.0.dist-info" / "entry_points.txt").exists()

    work = tmp_path / "work"
    (work / "judges").mkdir(parents=True)
    (work / "judges" / "mine.yaml").write_text("provider: myprov\nmodel: two-1\n")
    (work / "spec.yaml").write_text(yaml.safe_dump(
        {"name": "plug", "tasks": ["boolq"], "limit": 2, "protocols": ["qa"], "judges": ["mine"]}))
    env = clean_env(PYTHONPATH=str(site))

    listing = cli(["list", "models"], work, env)
    assert "myprov" in listing.stdout.splitlines()[-1]
    assert any(ln.startswith("mine ") and "myprov/two-1 @ https://myprov.invalid/v1" in ln
               for ln in listing.stdout.splitlines())
    missing = cli(["validate", "spec.yaml"], work, env)
    assert missing.returncode == 2 and "MYPROV_TOKEN" in missing.stderr

    ran = cli(["run", "spec.yaml", "--out", "out"], work, clean_env(PYTHONPATH=str(site), MYPROV_TOKEN="tok-123"))
    assert ran.returncode == 0, ran.stderr
    judgments = oversight.load(work / "out").judgments
    assert len(judgments) == 4 and set(judgments["judge_answer"]) == {2}

    # Without the package on the path the provider is unknown again, with the usual message.
    gone = cli(["validate", "spec.yaml"], work)
    assert gone.returncode == 2 and "Unknown provider 'myprov'" in gone.stderr


class Constant(ModelAPI):
    """A notebook's own provider."""

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        return GenerateResponse(texts=["Answer: 1"] * request.n, usage=Usage(1, 1))


def test_a_provider_registered_in_process(tmp_path: Path) -> None:
    oversight.register_provider("nbprov", Constant)
    try:
        spec = {"name": "nb", "tasks": ["boolq"], "limit": 1, "protocols": ["qa"],
                "judges": [{"provider": "nbprov", "model": "c"}]}
        result = oversight.run(spec, out=tmp_path / "run")
        assert set(result.judgments["judge_answer"]) == {1}
        with pytest.raises(OversightError, match="built-in provider"):
            oversight.register_provider("openai", Constant)
    finally:
        registry._registered.pop("nbprov", None)
