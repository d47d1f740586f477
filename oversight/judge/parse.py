"""Parsing a judge's (or a best-of-N selector's) reply.

The answer is read from the last line that carries an `Answer:` marker (any case; `:`,
`-`, `=` or a full-width colon; markdown emphasis and brackets tolerated), so
chain-of-thought that discusses "answer 1" and "answer 2" along the way does not decide.
On that line:
- the label right after the marker wins ("Answer: 2 (the one that mentions 1 apple)");
- otherwise the line must name exactly one label;
- a line that names both ("1 or 2", "1 and 2", "both", "neither 1 nor 2") or none is no
  answer. A bare marker whose label sits alone on the next line is accepted.

A reply without a usable answer is `refused` when it declines ("I can't help with that",
"As an AI…") and `invalid` otherwise. Nothing is guessed.
"""

from __future__ import annotations

import math
import re

from oversight.dialogue.transcript import Verdict

_MARKER = re.compile(r"answer\s*(?:[*_]+\s*)?(?:[:：=]|-(?![\w-]))", re.IGNORECASE)
_DECOR = r"[\s*_`'\"(\[{#]*"
_REFUSAL = re.compile(
    r"\b(?:i\s*(?:can(?:no|['’])t|won['’]t|will not|am unable to|['’]m unable to|am not able to|"
    r"refuse to|must decline|decline to)\b|as an ai\b|i['’]m sorry,? but\b)",
    re.IGNORECASE,
)
_BOTH = re.compile(r"\b(?:both|neither)\b", re.IGNORECASE)


def _label_re(labels: tuple[str, ...]) -> str:
    return "(" + "|".join(map(re.escape, labels)) + r")(?![\w]|\.\d)"


def _pick(rest: str, labels: tuple[str, ...]) -> str | None:
    canon = {x.lower(): x for x in labels}
    lead = re.match(_DECOR + r"(?:(?:answer|option|choice)\s*)?" + _DECOR + _label_re(labels), rest, re.I)
    if lead is not None:
        # "1 or 2", "1/2", "1 and answer 2": the leading label is not a choice.
        joined = re.match(
            r"\s*[*_`'\")\]}]*\s*(?:,|/|&|\band\b|\bor\b|\bnor\b)\s*(?:answer\s*)?" + _label_re(labels),
            rest[lead.end() :],
            re.IGNORECASE,
        )
        return None if joined else canon[lead.group(1).lower()]
    if _BOTH.search(rest):
        return None
    named = {m.group(1).lower() for m in re.finditer(r"(?<![\w.])" + _label_re(labels), rest, re.I)}
    return canon[named.pop()] if len(named) == 1 else None


def parse_choice(text: str, labels: tuple[str, ...] = ("1", "2")) -> str | None:
    """The label given on the last `Answer:` line, or None if absent or ambiguous."""
    lines = text.strip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        markers = list(_MARKER.finditer(lines[i]))
        if not markers:
            continue
        marker = markers[-1]
        rest = lines[i][marker.end() :]
        if not re.sub(r"[\s*_`]", "", rest):
            following = next((ln for ln in lines[i + 1 :] if ln.strip()), "")
            rest = following if re.fullmatch(_DECOR + _label_re(labels) + r"[\s*_`'\".)\]}]*", following, re.I) else ""
        return _pick(rest, labels)
    return None


def parse_verdict(text: str, logprobs: dict[str, float] | None = None) -> Verdict:
    probs = _probs(logprobs)
    choice = parse_choice(text)
    if choice is not None:
        return Verdict(int(choice), text, "ok", probs)
    if text.strip() and _REFUSAL.search(text):
        return Verdict(None, text, "refused", probs)
    return Verdict(None, text, "invalid", probs)


def _probs(logprobs: dict[str, float] | None) -> tuple[float, float] | None:
    """P(answer 1), P(answer 2), renormalised over the two, from token log-probabilities."""
    if not logprobs or "1" not in logprobs or "2" not in logprobs:
        return None
    a, b = math.exp(logprobs["1"]), math.exp(logprobs["2"])
    return (a / (a + b), b / (a + b))
