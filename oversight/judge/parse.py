"""Parsing a judge's (or a best-of-N selector's) reply.

The answer is read from the last line that carries an `Answer:` marker (any case; `:`,
`-`, `=` or a full-width colon; markdown emphasis and brackets tolerated), so
chain-of-thought that discusses "answer 1" and "answer 2" along the way does not decide.
On that line:
- the label right after the marker wins ("Answer: 2 (the one that mentions 1 apple)");
- otherwise the line must name exactly one label;
- a line that names both ("1 or 2", "1 and 2", "both", "neither 1 nor 2") or none is no
  answer. A bare marker whose label sits alone on the next line is accepted.

When no line carries the marker at all, a documented lenient rule reads the unambiguous
forms that real judges (small local models especially) write instead:
- a reply that is only a label: `1`, `(2)`, `**2**`, `2.`;
- a phrase that names one label: `The answer is 2`, `The correct answer is (1)`,
  `Answer 2`, `Option 2`, `Choice 1`, `(2)`;
- a leading label line: the first line starts with a label (`1. Yes`, `2: No`, `1)`).
Every form found in the reply is collected; the reply is read only if they all name the
same label. Two labels (a listing such as "1. Yes / 2. No", or "option 1 … option 2") are
never chosen between. A marker line that is itself ambiguous ("Answer: 1 or 2") is not
overridden by the lenient rule: the judge said it would not choose.

A constrained reply (the provider forced the format, `judge.constrain`) is read by the
strict rule, or, for providers whose constraint is a JSON schema, from its `answer` field.

Each verdict records which rule read it (`Verdict.rule`): `strict`, `lenient`,
`constrained` or `none`. A reply without a usable answer is `refused` when it declines
("I can't help with that", "As an AI…") and `invalid` otherwise. Nothing is guessed.
"""

from __future__ import annotations

import itertools
import json
import math
import re

from oversight.dialogue.transcript import Verdict, VerdictRule
from oversight.model.types import ChoiceLogprobs

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


def _pick(rest: str, labels: tuple[str, ...]) -> tuple[str, int] | None:
    """The label the text after a marker gives, and where in `rest` it stands."""
    canon = {x.lower(): x for x in labels}
    lead = re.match(_DECOR + r"(?:(?:answer|option|choice)\s*)?" + _DECOR + _label_re(labels), rest, re.I)
    if lead is not None:
        # "1 or 2", "1/2", "1 and answer 2": the leading label is not a choice.
        joined = re.match(
            r"\s*[*_`'\")\]}]*\s*(?:,|/|&|\band\b|\bor\b|\bnor\b)\s*(?:answer\s*)?" + _label_re(labels),
            rest[lead.end() :],
            re.IGNORECASE,
        )
        return None if joined else (canon[lead.group(1).lower()], lead.start(1))
    if _BOTH.search(rest):
        return None
    found = list(re.finditer(r"(?<![\w.])" + _label_re(labels), rest, re.I))
    if len({m.group(1).lower() for m in found}) != 1:
        return None
    return canon[found[0].group(1).lower()], found[0].start(1)


def locate_choice(text: str, labels: tuple[str, ...] = ("1", "2")) -> tuple[str, int] | None:
    """The label given on the last `Answer:` line and its offset in `text`, or None."""
    body = text.strip()
    base = len(text) - len(text.lstrip())
    lines = body.splitlines(keepends=True)
    # Running offsets (a sum per line would be quadratic in a long chain of thought).
    starts = list(itertools.accumulate((len(x) for x in lines[:-1]), initial=base))
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i].rstrip("\r\n")
        markers = list(_MARKER.finditer(line))
        if not markers:
            continue
        marker = markers[-1]
        rest, at = line[marker.end() :], starts[i] + marker.end()
        if not re.sub(r"[\s*_`]", "", rest):
            k = next((k for k in range(i + 1, len(lines)) if lines[k].strip()), None)
            following = lines[k].rstrip("\r\n") if k is not None else ""
            ok = re.fullmatch(_DECOR + _label_re(labels) + r"[\s*_`'\".)\]}]*", following, re.I)
            rest, at = (following, starts[k]) if ok and k is not None else ("", at)
        picked = _pick(rest, labels)
        return (picked[0], at + picked[1]) if picked else None
    return None


def parse_choice(text: str, labels: tuple[str, ...] = ("1", "2")) -> str | None:
    """The label given on the last `Answer:` line, or None if absent or ambiguous."""
    found = locate_choice(text, labels)
    return found[0] if found else None


_LENIENT_ONLY = re.compile(r"[\s*_`'\"(\[{#]*([12])[\s*_`'\".)\]}:!]*")
_LENIENT_PHRASE = re.compile(
    r"(?:\b(?:answer|option|choice)\s*(?:is|would be|should be|must be|=|-)?\s*[*_`'\"(\[]*\s*"
    r"|(?<![\w(])\()([12])(?![\w]|\.\d)",
    re.IGNORECASE,
)
_LENIENT_LEAD = re.compile(r"^[ \t*_#>`]*\(?([12])(?:\s*[.):\]-](?!\d)|\s*$)", re.MULTILINE)


def locate_lenient(text: str) -> tuple[str, int] | None:
    """The one label the lenient forms (module docstring) name, and where the first stands;
    None when they name none or both."""
    only = _LENIENT_ONLY.fullmatch(text)
    if only is not None:
        return only.group(1), only.start(1)
    hits = [(m.group(1), m.start(1)) for m in _LENIENT_PHRASE.finditer(text)]
    # Lines that start with a label: the first line is a commitment, later ones are only
    # read to see whether the reply lists both labels.
    lead = [(m.group(1), m.start(1)) for m in _LENIENT_LEAD.finditer(text)]
    first_line = len(text) - len(text.lstrip())
    hits += [h for h in lead if h[1] - first_line < 8 and "\n" not in text[first_line : h[1]]]
    labels = {label for label, _ in hits} | {label for label, _ in lead}
    if not hits or len(labels) != 1:
        return None
    return min(hits, key=lambda h: h[1])


def _constrained_json(text: str) -> tuple[str, int] | None:
    """The `answer` of a reply forced into a JSON schema ({"answer": "1"}), and its offset."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    answer = value.get("answer") if isinstance(value, dict) else None
    if str(answer) not in ("1", "2"):
        return None
    m = re.search(r'"answer"\s*:\s*"?([12])', text)
    return (str(answer), m.start(1) if m else 0)


def parse_verdict(
    text: str, logprobs: list[ChoiceLogprobs] | None = None, *, constrained: bool = False
) -> Verdict:
    """The verdict, with P(1), P(2) read at the token of the parsed answer itself (not at the
    first "1" or "2" a chain of thought happens to write), and the rule that read it."""
    found = locate_choice(text)
    rule: VerdictRule = "constrained" if constrained else "strict"
    if found is None and constrained:
        found = _constrained_json(text.strip())
        if found is not None:
            found = (found[0], found[1] + len(text) - len(text.lstrip()))
    if found is None and not _MARKER.search(text):
        found, rule = locate_lenient(text), "lenient"
    if found is not None:
        return Verdict(int(found[0]), text, "ok", _probs(logprobs, found[1]), rule=rule)
    if text.strip() and _REFUSAL.search(text):
        return Verdict(None, text, "refused", None)
    return Verdict(None, text, "invalid", None)


def _probs(logprobs: list[ChoiceLogprobs] | None, offset: int) -> tuple[float, float] | None:
    """P(answer 1), P(answer 2), renormalised over the two, at the token that holds the
    character at `offset`; None when the provider gave no log-probabilities there."""
    at = next((p for p in logprobs or [] if p.start <= offset < p.end), None)
    if at is None or "1" not in at.probs or "2" not in at.probs:
        return None
    a, b = math.exp(at.probs["1"]), math.exp(at.probs["2"])
    return (a / (a + b), b / (a + b))
