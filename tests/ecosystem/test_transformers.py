"""The in-process Hugging Face provider, on a tiny randomly initialised GPT-2 and a word-level
tokenizer built here and saved to a folder (nothing is downloaded). Its replies are noise,
so the judge's verdicts are mostly invalid: what is checked is that the provider runs a
real model through the whole harness, counts tokens, samples n replies, is reproducible,
and reports a prompt too long for the model as a bad request.

Skipped when torch or transformers is missing: they are the optional extra
`oversight[transformers]`, not part of the dev install (PyPI's torch wheel for Linux pulls
several GB of CUDA libraries)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

import oversight  # noqa: E402
from oversight.model.card import resolve_model  # noqa: E402
from oversight.model.providers import make_api  # noqa: E402
from oversight.model.types import GenerateRequest, Message, ModelCallError  # noqa: E402

WORDS = ["answer", "1", "2", ":", "the", "question", "is", "true", "false", "yes", "no", "which", "of", "two",
         "answers", "correct", "reply", "with", "a", "single", "line", "and", "nothing", "else", "judge", "read"]
TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}" \
           "assistant:{% endif %}"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    vocab = {w: i for i, w in enumerate(["[UNK]", "[PAD]", "[EOS]", *dict.fromkeys(WORDS)])}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                                eos_token="[EOS]")
    fast.chat_template = TEMPLATE
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=len(vocab), n_positions=512, n_embd=16, n_layer=1, n_head=2,
                                     eos_token_id=vocab["[EOS]"], pad_token_id=vocab["[PAD]"])
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
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
