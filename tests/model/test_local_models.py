"""Real-model plumbing that needs no model: constrained decoding on the wire for each kind of
OpenAI-compatible server, finish reasons, a template without a system role, GGUF cards and
headers. (tests/realmodel runs the real thing.)"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import httpx2
import pytest

from oversight.errors import OversightError
from oversight.judge.parse import parse_verdict
from oversight.model import gguf
from oversight.model.card import ModelCard
from oversight.model.providers.openai import OpenAIAPI
from oversight.model.types import GenerateRequest, Message

from .helpers import Recorder, json_reply


def _reply(text: str, finish: str = "stop", logprobs: list[Any] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs}
    return {"choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": 3}}


def _api(provider: str, rec: Recorder, **kw: Any) -> OpenAIAPI:
    card = ModelCard(provider=provider, model="m", base_url="http://127.0.0.1:9/v1", **kw)
    return OpenAIAPI(card, None, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(rec)))


def _judge_request(mode: str | None) -> GenerateRequest:
    return GenerateRequest([Message.text("user", "Which? Answer: 1 or 2")], max_tokens=64,
                           constrain=mode, logprob_choices=("1", "2"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("provider", "mode", "field", "expect"),
    [
        ("llama_cpp", "answer", "grammar", 'root ::= "Answer: " [12]'),
        # The reasoning is bounded so that the answer line fits in max_tokens (64 - 8).
        ("llama_cpp", "cot", "grammar", 'root ::= [^\\x00]{0,56} "\\nAnswer: " [12]'),
        ("vllm", "answer", "structured_outputs", {"regex": "Answer: [12]"}),
        ("sglang", "cot", "regex", "[\\s\\S]*\\nAnswer: [12]"),
    ],
)
async def test_each_server_gets_its_own_constraint(provider: str, mode: str, field: str, expect: Any) -> None:
    rec = Recorder([json_reply(200, _reply("Answer: 2"))])
    out = await _api(provider, rec).generate(_judge_request(mode))
    assert rec.body[field] == expect
    assert "response_format" not in rec.body
    assert parse_verdict(out.texts[0], constrained=True).rule == "constrained"


async def test_openai_structured_outputs_reply_is_read_at_its_digit() -> None:
    text = '{"answer": "2"}'
    tokens = [("{\"", -0.1), ("answer", -0.1), ("\":", -0.1), (" \"", -0.1), ("2", -0.2), ("\"}", -0.1)]
    lp = [{"token": t, "logprob": p, "top_logprobs": [{"token": t, "logprob": p}] +
           ([{"token": "1", "logprob": -1.8}] if t == "2" else [])} for t, p in tokens]
    rec = Recorder([json_reply(200, _reply(text, logprobs=lp))])
    out = await _api("openai", rec).generate(_judge_request("answer"))
    schema = rec.body["response_format"]["json_schema"]
    assert schema["strict"] is True and schema["schema"]["properties"]["answer"]["enum"] == ["1", "2"]
    assert out.logprobs is not None
    v = parse_verdict(out.texts[0], out.logprobs[0], constrained=True)
    assert (v.answer, v.rule) == (2, "constrained")
    assert v.probs is not None and v.probs[1] > v.probs[0]
    # Without the constraint the same JSON is not a verdict the strict rule reads.
    assert parse_verdict(text).rule != "strict"


async def test_an_unconstrained_request_sends_no_constraint_and_keeps_its_cache_key() -> None:
    rec = Recorder([json_reply(200, _reply("Answer: 1"))])
    await _api("llama_cpp", rec).generate(_judge_request(None))
    assert not {"grammar", "regex", "structured_outputs", "response_format"} & set(rec.body)
    assert "constrain" not in _judge_request(None).cache_payload(False)
    assert _judge_request("answer").cache_payload(False)["constrain"] == "answer"


async def test_finish_reasons_in_the_harness_words() -> None:
    rec = Recorder([json_reply(200, _reply("Thinking: long", finish="length"))])
    out = await _api("llama_cpp", rec).generate(_judge_request(None))
    assert out.finish_reasons == ["max_tokens"]
    assert out.to_json()["finish"] == ["max_tokens"]
    from oversight.model.types import GenerateResponse

    assert GenerateResponse.from_json(out.to_json()).finish_reasons == ["max_tokens"]


def _system_request() -> GenerateRequest:
    return GenerateRequest([Message.text("system", "You judge debates."), Message.text("user", "Which one?")])


async def test_a_template_without_system_role_is_learnt_from_the_servers_refusal() -> None:
    refusal = json_reply(400, {"error": {"message": "System role not supported", "type": "invalid_request_error"}})
    rec = Recorder([refusal, json_reply(200, _reply("Answer: 1"))])
    api = _api("llama_cpp", rec)
    await api.generate(_system_request())
    await api.generate(_system_request())
    first, retried, later = rec.bodies
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    for body in (retried, later):  # merged at once after the refusal, and from then on
        assert [m["role"] for m in body["messages"]] == ["user"]
        assert body["messages"][0]["content"] == "You judge debates.\n\nWhich one?"
    assert rec.calls == 3


async def test_system_role_false_on_the_card_merges_from_the_first_call() -> None:
    rec = Recorder([json_reply(200, _reply("Answer: 1"))])
    await _api("vllm", rec, system_role=False).generate(_system_request())
    assert [m["role"] for m in rec.body["messages"]] == ["user"]


async def test_other_bad_requests_are_not_retried_as_system_role_problems() -> None:
    rec = Recorder([json_reply(400, {"error": {"message": "max_tokens too large"}})])
    with pytest.raises(Exception, match="max_tokens too large"):
        await _api("llama_cpp", rec).generate(_system_request())
    assert rec.calls == 1


def _write_gguf(path: Path, kv: dict[str, Any]) -> None:
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv) + 1)  # + the uint32 array below
    for key, value in kv.items():
        out += s(key)
        if isinstance(value, str):
            out += struct.pack("<I", 8) + s(value)
        elif isinstance(value, list):  # an array of strings, then one of uint32
            out += struct.pack("<I", 9) + struct.pack("<IQ", 8, len(value)) + b"".join(s(v) for v in value)
        else:
            out += struct.pack("<I", 4) + struct.pack("<I", value)
    out += s("ints") + struct.pack("<I", 9) + struct.pack("<IQ", 4, 3) + struct.pack("<3I", 1, 2, 3)
    path.write_bytes(out)


def test_gguf_header_is_read_without_the_tensors(tmp_path: Path) -> None:
    f = tmp_path / "m.gguf"
    _write_gguf(f, {"general.architecture": "llama", "llama.context_length": 8192,
                    "tokenizer.ggml.tokens": ["<s>", "a", "b"], "tokenizer.chat_template": "{{x}}"})
    meta = gguf.header(f)
    assert gguf.trained_context(meta) == 8192
    assert meta["tokenizer.chat_template"] == "{{x}}" and meta["ints"] is None
    assert gguf.resolve(str(f), "card") == f
    assert len(gguf.sha256(f)) == 64


def test_bad_gguf_references_are_clear_errors(tmp_path: Path) -> None:
    not_gguf = tmp_path / "weights.bin"
    not_gguf.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(OversightError, match="not a GGUF file"):
        gguf.resolve(str(not_gguf), "judges/x.yaml")
    with pytest.raises(OversightError, match=r"is not a file.*smollm2-135m-instruct"):
        gguf.resolve(str(tmp_path / "missing.gguf"), "judges/x.yaml")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"provider": "openai", "gguf": "x.gguf"}, "set provider: llama_cpp"),
        ({"provider": "llama_cpp", "gguf": "x.gguf", "base_url": "http://127.0.0.1:9999/v1"}, "not both"),
        ({"provider": "llama_cpp", "model": "m", "threads": 2}, "needs gguf"),
    ],
)
def test_gguf_cards_are_checked(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelCard(**fields)
