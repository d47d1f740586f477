"""The model-call contract shared by every provider, the wrapper and the protocols.

A request is provider-neutral: messages made of text and image parts, generation settings
and `n` samples. `metadata` carries facts about the episode (role, sides, the ground truth)
that only the built-in `sim` models read; real providers never send it anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

# No model reads or writes this many tokens in one call (n samples included); a larger count
# is a broken or hostile reply. Bounded so that a run's sums stay far inside int64 and its
# cost finite.
MAX_TOKENS_PER_CALL = 100_000_000
# A log-probability may come back a hair above 0 from float rounding; more than this is not one.
LOGPROB_SLACK = 1e-4

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    data: bytes
    mime: str = "image/png"

    def b64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


Part = TextPart | ImagePart


@dataclass(frozen=True)
class Message:
    role: Role
    parts: tuple[Part, ...]

    @staticmethod
    def text(role: Role, text: str) -> Message:
        return Message(role, (TextPart(text),))

    @property
    def plain_text(self) -> str:
        """The message's text parts joined; images are left out."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))


@dataclass
class GenerateRequest:
    messages: list[Message]
    max_tokens: int | None = None
    temperature: float | None = None
    n: int = 1
    # Distinguishes otherwise identical requests that must be sampled independently
    # (e.g. the two answer orders of a closed task whose prompt does not change).
    sample: int = 0
    # Ask for log-probabilities of these single-token answers (e.g. ("1", "2")).
    logprob_choices: tuple[str, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # The run's seed and the episode's replicate: part of the cache identity, so a new seed
    # or replicate draws fresh samples while an identical rerun is served from the cache.
    seed: int = 0
    replicate: int = 0
    # Constrained decoding of a judge's verdict (`judge.constrain`): "answer" forces the whole
    # reply to `Answer: 1` or `Answer: 2`; "cot" leaves the reasoning free and forces only the
    # final line. Each provider translates it into its own mechanism (a llama.cpp grammar, a
    # regex, a JSON schema); None sends nothing.
    constrain: Literal["answer", "cot"] | None = None
    # A game of the Elo tournament: its debaters sample their own turns, even where the
    # prompt is the same in another game (a simultaneous opening does not depend on the
    # opponent), so the games are independent draws. Empty elsewhere (and then left out of
    # the cache identity, which keeps every other call's key as it was).
    draw: str = ""

    def messages_payload(self) -> list[dict[str, Any]]:
        """The messages as plain JSON-able data (images by content hash)."""
        msgs = []
        for m in self.messages:
            parts: list[dict[str, str]] = []
            for p in m.parts:
                if isinstance(p, TextPart):
                    parts.append({"text": p.text})
                else:
                    parts.append({"image_sha256": hashlib.sha256(p.data).hexdigest(), "mime": p.mime})
            msgs.append({"role": m.role, "parts": parts})
        return msgs

    def cache_payload(self, include_metadata: bool) -> dict[str, Any]:
        """Everything that determines the response, as plain JSON-able data."""
        payload: dict[str, Any] = {
            "messages": self.messages_payload(),
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "n": self.n,
            "sample": self.sample,
            "logprob_choices": list(self.logprob_choices) if self.logprob_choices else None,
            "seed": self.seed,
            "replicate": self.replicate,
        }
        if self.constrain:
            # Only when set, so that the keys of every unconstrained request stay as they were.
            payload["constrain"] = self.constrain
        if self.draw:
            payload["draw"] = self.draw
        if include_metadata:
            payload["metadata"] = json.loads(json.dumps(self.metadata, sort_keys=True, default=str))
        return payload

    def prompt_text(self) -> str:
        """All text the model is shown, for visibility tests and logs."""
        return "\n\n".join(f"[{m.role}] {m.plain_text}" for m in self.messages)


@dataclass
class Usage:
    """Tokens of one call. `input_tokens` is every prompt token, whatever the provider's
    own convention (Anthropic reports cache reads and writes apart from its input_tokens;
    the adapter adds them back); `cached_input_tokens` (read from the provider's prompt
    cache) and `cache_write_tokens` (written to it) are the parts of it billed at their own
    rates (ModelCard.cost)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    def to_list(self) -> list[int]:
        # Entries written before prompt caching hold [input, output]; the two new counts are
        # only added when non-zero, so an uncached reply is stored exactly as before.
        out = [self.input_tokens, self.output_tokens]
        if self.cached_input_tokens or self.cache_write_tokens:
            out += [self.cached_input_tokens, self.cache_write_tokens]
        return out

    @staticmethod
    def from_list(values: list[int]) -> Usage:
        """Reads both the old two-number form and the new four-number form (missing = 0);
        anything else (a string, a float, a bool, a count out of range) is a ValueError, so a
        cache entry of the wrong shape is a miss."""
        if not isinstance(values, list) or not 2 <= len(values) <= 4:
            raise ValueError(f"usage must be a list of 2 to 4 token counts, not {values!r:.80}")
        usage = Usage(*values)
        if (bad := usage.problem()) is not None:
            raise ValueError(bad)
        return usage

    def problem(self) -> str | None:
        """Why these counts cannot be true (None when they can): every count a whole number
        in 0 … MAX_TOKENS_PER_CALL, the cached and written parts within the input."""
        for name in ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_TOKENS_PER_CALL:
                return f"{name} = {v!r:.40} is not a token count in 0 … {MAX_TOKENS_PER_CALL:,}"
        return None


@dataclass
class ChoiceLogprobs:
    """Log-probabilities of the choices at one token of a reply: the token spans characters
    [start, end) of the text. A judge's parser reads the one at its parsed answer."""

    start: int
    end: int
    probs: dict[str, float]

    def to_json(self) -> list[Any]:
        return [self.start, self.end, self.probs]

    @staticmethod
    def from_json(d: Any) -> list[ChoiceLogprobs]:
        """One sample's positions; an entry cached before positions were kept (a bare
        {choice: logprob}) has no known position and is dropped rather than guessed."""
        if isinstance(d, list):
            out = []
            for entry in d:
                if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], dict)):
                    raise ValueError(f"a log-probability entry must be [start, end, {{choice: logprob}}], "
                                     f"not {entry!r:.80}")
                a, b, p = entry
                if not all(isinstance(x, int) and not isinstance(x, bool) for x in (a, b)):
                    raise ValueError(f"log-probability positions must be whole numbers, not {entry!r:.80}")
                out.append(ChoiceLogprobs(a, b, dict(p)))
            return out
        return []

    def problem(self) -> str | None:
        if not 0 <= self.start <= self.end:
            return f"log-probability position [{self.start}, {self.end}) is not a span of the text"
        for k, v in self.probs.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v > LOGPROB_SLACK:
                return f"log-probability of {k!r:.20} is {v!r:.40}, not a finite number <= 0"
        return None


# One reply token as a provider reports it: its text, its log-probability, and the top
# alternatives at that position as (text, log-probability).
TokenLogprobs = tuple[str, float | None, Iterable[tuple[str, float | None]]]


def choice_positions(tokens: Iterable[TokenLogprobs], wanted: tuple[str, ...]) -> list[ChoiceLogprobs]:
    """Every token of a reply that is one of the choices, with where it stands in the text
    (the tokens join back into it) and the choices' log-probabilities there; variants of one
    choice ("1", " 1") add up. Which of them is the verdict is the judge parser's business."""
    out: list[ChoiceLogprobs] = []
    at = 0
    for text, logprob, alternatives in tokens:
        start, at = at, at + len(text)
        if text.strip() not in wanted:
            continue
        seen = dict(alternatives)
        seen.setdefault(text, logprob)
        probs: dict[str, float] = {}
        for token, lp in seen.items():
            key = token.strip()
            if key in wanted and lp is not None:
                probs[key] = float(lp) if key not in probs else _logaddexp(probs[key], float(lp))
        out.append(ChoiceLogprobs(start, at, probs))
    return out


def _logaddexp(a: float, b: float) -> float:
    hi, lo = max(a, b), min(a, b)
    return hi + math.log1p(math.exp(lo - hi))


@dataclass
class GenerateResponse:
    texts: list[str]
    usage: Usage = field(default_factory=Usage)
    # Per sample: every token that is one of the request's logprob_choices, with the
    # choices' log-probabilities there, when the provider gives them.
    logprobs: list[list[ChoiceLogprobs]] | None = None
    latency_s: float = 0.0
    # Filled in by the wrapper, not the provider.
    cache_hit: bool = False
    retries: int = 0
    cost_usd: float = 0.0
    # Filled in by the protocol's call context: the content hash of the prompt (prompts.parquet).
    prompt_id: str = ""
    # Per sample, why generation ended as the provider says it: "stop" (the model ended its
    # reply) or "max_tokens" (cut at the limit); None where the provider does not say.
    finish_reasons: list[str] | None = None

    def __post_init__(self) -> None:
        # A provider may send a lone UTF-16 surrogate (a JSON "\ud800" escape); no UTF-8
        # file (journal, parquet) can hold one, so it becomes U+FFFD here, one character for
        # one, which keeps every log-probability position in place.
        self.texts = [t if not isinstance(t, str) or t.isascii() or not _LONE_SURROGATE.search(t)
                      else _LONE_SURROGATE.sub("\ufffd", t) for t in self.texts]
    # The provider batch that answered this call (oversight/model/batch.py); "" if online.
    batch_id: str = ""
    # The model the provider says answered (its reply's `model` field), "" if it names none:
    # a gateway or a misrouted alias may answer with another model than the card asked for.
    reply_model: str = ""

    def scrub_secrets(self) -> None:
        """Replace every value the process knows to be secret in the texts: a server may echo
        the request's key in a 200 reply, and from here a text reaches the journal, the
        tables, the report, the Inspect export and the cache. A changed sample's
        log-probability positions no longer hold, so they are dropped."""
        from oversight.model.redact import scrub_known

        clean = [scrub_known(t) for t in self.texts]
        if clean != self.texts:
            if self.logprobs is not None:
                self.logprobs = [s if c == t else [] for s, c, t in zip(self.logprobs, clean, self.texts, strict=False)]
            self.texts = clean

    def problem(self) -> str | None:
        """Why this reply cannot be used as it is (None when it can). Checked where a reply
        enters the harness, from a provider or from the cache, so that what passes keeps
        every total finite and monotone and every verdict's probability a probability.
        (Cached and written input tokens beyond the input are left to ModelCard.cost, which
        clamps them.)"""
        if not isinstance(self.texts, list) or not all(isinstance(t, str) for t in self.texts):
            return "texts must be a list of strings"
        if (bad := self.usage.problem()) is not None:
            return bad
        if not isinstance(self.latency_s, int | float) or not 0 <= self.latency_s < math.inf:
            return f"latency {self.latency_s!r:.40} is not a finite number of seconds"
        if self.logprobs is not None:
            if not isinstance(self.logprobs, list) or len(self.logprobs) != len(self.texts):
                return "log-probabilities must be given per sample"
            for text, sample in zip(self.texts, self.logprobs, strict=True):
                for c in sample:
                    if (bad := c.problem()) is not None:
                        return bad
                    if c.end > len(text):
                        return (f"log-probability position [{c.start}, {c.end}) lies outside a "
                                f"{len(text)}-character reply")
        if not isinstance(self.reply_model, str) or len(self.reply_model) > 200 or not self.reply_model.isprintable():
            return f"the reply's model name {self.reply_model!r:.80} is not a printable name"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "texts": self.texts,
            "usage": self.usage.to_list(),
            "logprobs": [[p.to_json() for p in s] for s in self.logprobs] if self.logprobs else None,
            "latency_s": self.latency_s,
            **({"reply_model": self.reply_model} if self.reply_model else {}),
            **({"finish": self.finish_reasons} if self.finish_reasons else {}),
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> GenerateResponse:
        """A cached reply; ValueError for any entry of the wrong shape (the cache then treats
        it as a miss rather than trusting it)."""
        if not isinstance(d, dict) or not isinstance(d.get("texts"), list):
            raise ValueError("a cached reply must be an object with a list of texts")
        logprobs = d.get("logprobs")
        if logprobs is not None and not isinstance(logprobs, list):
            raise ValueError("cached log-probabilities must be a list per sample")
        latency = d.get("latency_s", 0.0)
        if isinstance(latency, bool) or not isinstance(latency, int | float):
            raise ValueError("cached latency must be a number")
        finish = d.get("finish")
        out = GenerateResponse(
            texts=list(d["texts"]),
            usage=Usage.from_list(d["usage"]),
            logprobs=[ChoiceLogprobs.from_json(x) for x in logprobs] if logprobs else None,
            latency_s=float(latency),
            reply_model=d.get("reply_model", ""),
            finish_reasons=[str(f) for f in finish] if isinstance(finish, list) else None,
        )
        if (bad := out.problem()) is not None:
            raise ValueError(bad)
        out.scrub_secrets()  # an entry written before its secret was known
        return out


def finish_reason(raw: object) -> str | None:
    """A provider's finish reason in the harness's words: "stop" or "max_tokens" (other
    reasons, such as a content filter, pass through as the provider names them)."""
    if raw is None or raw == "":
        return None
    text = str(raw).lower()
    if text in ("length", "max_tokens", "model_length", "finish_reason_max_tokens"):
        return "max_tokens"
    if text in ("stop", "end_turn", "stop_sequence", "eos", "finish_reason_stop"):
        return "stop"
    return text


ErrorKind = Literal[
    "rate_limit",  # 429
    "server",  # 5xx, overloaded
    "timeout",
    "connection",  # dropped or refused connection
    "malformed",  # empty or unparseable response body
    "bad_request",  # 400, 413, 422
    "auth",  # 401, 403
    "not_found",  # 404
    "unreachable",  # a server on this machine refused the connection: nothing listens there
    "other",
]

RETRYABLE: frozenset[str] = frozenset({"rate_limit", "server", "timeout", "connection", "malformed"})


class ModelCallError(Exception):
    """A classified failure of one model call. Providers raise only this.

    The message is scrubbed of secrets here, at its source: error text often quotes the
    provider's reply, which may echo the request's headers, and from here it travels into
    the journal, the tables and the report.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        from oversight.model.redact import scrub

        super().__init__(scrub(message))
        self.kind: ErrorKind = kind
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    def __str__(self) -> str:
        code = f" HTTP {self.status}" if self.status else ""
        return f"{self.kind}{code}: {self.args[0]}"


_LOCAL_HOSTS = frozenset({"localhost", "localhost.localdomain", "0.0.0.0", "::", "host.docker.internal"})


def is_local_url(base_url: str | None) -> bool:
    """Whether `base_url` points at this machine (loopback, localhost, or its own name)."""
    import ipaddress
    import socket
    from urllib.parse import urlsplit

    if not base_url:
        return False
    host = (urlsplit(base_url if "//" in base_url else f"//{base_url}").hostname or "").lower()
    if not host:
        return False
    if host in _LOCAL_HOSTS or host == socket.gethostname().lower():
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def kind_for_status(status: int) -> ErrorKind:
    """Map an HTTP status to an error kind (shared by all adapters)."""
    if status == 429:
        return "rate_limit"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status == 408:
        return "timeout"
    if status >= 500 or status == 529:
        return "server"
    if 400 <= status < 500:
        return "bad_request"
    return "other"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After (or retry-after-ms) header value; None if absent or a date."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` (preferred, more precise) or `retry-after`."""
    if not headers:
        return None
    ms = parse_retry_after(headers.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000.0
    return parse_retry_after(headers.get("retry-after"))
