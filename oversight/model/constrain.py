"""Constrained verdicts: how each OpenAI-compatible server is told to force `Answer: 1|2`.

`GenerateRequest.constrain` is "answer" (the whole reply is `Answer: 1` or `Answer: 2`) or
"cot" (free reasoning, then a final line `Answer: N`). Servers differ in how they take it:

- llama.cpp: a GBNF `grammar`. For "cot" the reasoning is bounded in characters, never
  more than the reply's token budget less room for the answer line: a token holds at least
  one character, so the answer line always fits inside `max_tokens`.
- vLLM (0.12 and later): `structured_outputs: {"regex": ...}`; SGLang: `regex`.
- OpenAI and any other compatible server (Ollama included): a strict JSON schema through
  `response_format`; the reply is then `{"answer": "1"}` (or `{"reasoning": ..., "answer":
  ...}`), which the verdict parser reads as a constrained reply.

Gemini takes the same schema as `response_schema` (oversight/model/providers/google.py).
Anthropic's API has no such option, so `judge.constrain` with an Anthropic judge is refused
by `validate` and before a run starts (never a silent fallback to unconstrained answers).
"""

from __future__ import annotations

from typing import Any

# Room for "\nAnswer: 1" and its end-of-reply token, in tokens.
_ANSWER_TOKENS = 8


def answer_regex(mode: str) -> str:
    return r"Answer: [12]" if mode == "answer" else r"[\s\S]*\nAnswer: [12]"


def grammar(mode: str, max_tokens: int) -> str:
    if mode == "answer":
        return 'root ::= "Answer: " [12]'
    budget = max(0, max_tokens - _ANSWER_TOKENS)
    return f'root ::= [^\\x00]{{0,{budget}}} "\\nAnswer: " [12]'


def json_schema(mode: str) -> dict[str, Any]:
    properties: dict[str, Any] = {"answer": {"type": "string", "enum": ["1", "2"]}}
    if mode == "cot":
        # Reasoning first, so that the answer is written after it, as in a free chain of thought.
        properties = {"reasoning": {"type": "string"}, **properties}
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def constraint(provider: str, mode: str, max_tokens: int) -> dict[str, Any]:
    """The request fields that force the verdict's format on this kind of server."""
    if provider == "llama_cpp":
        return {"grammar": grammar(mode, max_tokens)}
    if provider == "vllm":
        return {"structured_outputs": {"regex": answer_regex(mode)}}
    if provider == "sglang":
        return {"regex": answer_regex(mode)}
    return {"response_format": {"type": "json_schema",
                                "json_schema": {"name": "verdict", "strict": True, "schema": json_schema(mode)}}}
