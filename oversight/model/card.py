"""Model cards: how to reach a model, its limits and prices.

A model reference in a spec is a card name (judges/NAME.yaml), a `provider/model` string
(`openai/gpt-4o-mini`, `sim/weak`) or an inline mapping with a card's fields.

Numbers are bounded when the card is read, so that a typo fails at once instead of hanging
or failing every call later: `max_concurrency` 1 … 4,096 (each slot may hold a connection);
`rpm` and `tpm` at least 1 (fractions above 1 are fine; a limiter cannot grant one request
out of a budget below one); `max_tokens` ≤ 1,000,000; `temperature` 0 … 2; `timeout_s`
≤ 3,600; `max_retries` ≤ 100; prices 0 … 1,000,000 USD per million tokens; every float
finite; a name printable, on one line. `base_url` is an http(s)
URL and `api_key_env` the name of an environment variable.

`provider` is any name in the provider registry (oversight/model/registry.py): the built-in
ones and those installed packages add. A provider with a default server (vllm, sglang,
ollama, llama_cpp) fills in `base_url` when the card leaves it out. The key comes from
`api_key_env` when set, else from the provider's own variables (Google: GOOGLE_API_KEY or
GEMINI_API_KEY); an `openai` card with a base_url and no `api_key_env` needs no key.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from oversight import catalogue
from oversight.config import Strict, read_yaml, validate
from oversight.errors import OversightError, excerpt, unknown_name
from oversight.model import registry

MAX_MODEL_CONCURRENCY = 4_096
MAX_PRICE = 1_000_000.0  # USD per million tokens
# A card's name reaches file names, HTML and log lines: printable, no path separators
# beyond the one in `provider/model`, no control characters.
CARD_NAME = re.compile(r"[^\x00-\x1f\x7f-\x9f\\]{1,200}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
URL = re.compile(r"https?://[^\s/?#]+[^\s]*")


class Price(Strict):
    """USD per million tokens. Input tokens are every prompt token, cached or not; those the
    provider read from its prompt cache are billed at `cached_input_per_mtok` and those it
    wrote to the cache (Anthropic bills a write above the input price) at
    `cache_write_per_mtok`. Either left null means "not discounted": the input price. The
    shipped cards carry each provider's real rates."""

    # A negative price would make spending go down and the budget never trip.
    # A huge one (1e308) would make a call's cost infinite; $1,000,000 per million tokens is
    # far above any real price and keeps every cost and total finite.
    input_per_mtok: float = Field(0.0, ge=0, le=MAX_PRICE, allow_inf_nan=False)
    output_per_mtok: float = Field(0.0, ge=0, le=MAX_PRICE, allow_inf_nan=False)
    cached_input_per_mtok: float | None = Field(None, ge=0, le=MAX_PRICE, allow_inf_nan=False)
    cache_write_per_mtok: float | None = Field(None, ge=0, le=MAX_PRICE, allow_inf_nan=False)


class SimParams(Strict):
    """Parameters of a simulated model's little world (see oversight/model/providers/sim.py)."""

    knowledge: float = Field(0.5, ge=0, le=1)  # chance of knowing the right answer
    persuasiveness: float = Field(0.5, ge=0, le=1)
    honesty: float = Field(0.9, ge=0, le=1)  # chance a quote is copied exactly
    seed: int = 0


class ModelCard(Strict):
    name: str | None = None  # filled in from the file name or reference
    provider: str  # a registry name (oversight/model/registry.py), checked below
    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key_env: str | None = None
    max_concurrency: int = Field(32, ge=1, le=MAX_MODEL_CONCURRENCY)
    rpm: float | None = Field(None, ge=1, le=1e9, allow_inf_nan=False)
    tpm: float | None = Field(None, ge=1, le=1e12, allow_inf_nan=False)
    max_tokens: int = Field(1024, ge=1, le=1_000_000)
    temperature: float | None = Field(None, ge=0, le=2, allow_inf_nan=False)
    price: Price = Price()
    timeout_s: float = Field(120.0, gt=0, le=3600, allow_inf_nan=False)
    max_retries: int = Field(6, ge=0, le=100)
    # A server's Retry-After is honoured up to this many seconds per wait: a 429 asking for
    # an hour must not stall a run silently (the progress line says who waits until when).
    max_retry_after_s: float = Field(300.0, gt=0, le=86_400, allow_inf_nan=False)
    images: bool | None = None  # None: the provider's default capability
    logprobs: bool | None = None
    # Provider prompt caching (oversight/model/prompt_cache.py): Anthropic cache breakpoints,
    # OpenAI's prompt_cache_key. It never changes a reply, only the bill; false sends neither
    # (e.g. for a strict OpenAI-compatible server that rejects unknown fields).
    prompt_cache: bool = True
    # Google only: also upload each item's shared prompt prefix as an explicit cache that
    # lives this many seconds (guaranteed discount; Google bills its storage per hour, which
    # the harness does not count). Null: implicit caching only.
    explicit_cache_ttl_s: int | None = Field(None, ge=60, le=86_400)
    sim: SimParams | None = None
    # As a judge, always force the verdict's format (like the spec's `judge.constrain`).
    constrain: bool = False
    # A local model the harness serves itself (oversight/model/local_server.py): a GGUF
    # file's path or a packaged model's short name (oversight/model/gguf.py). Its llama.cpp
    # server is started for the run; no base_url.
    gguf: str | None = None
    threads: int | None = Field(None, ge=1, le=1024)  # the managed server's CPU threads
    chat_template: str | None = None  # the managed server's template, for a GGUF without one
    # Tokens a request may hold, prompt and reply together (null: the server says, if it can).
    context_window: int | None = Field(None, ge=64, le=100_000_000)
    # A prompt that cannot fit with its max_tokens: refused before the run (`error`), its item
    # left out and counted (`skip`), or its article cut to fit (`truncate`; the cut is recorded).
    context_overflow: Literal["error", "skip", "truncate"] = "error"
    # false: the model has no system role, so system text goes into the first user message.
    system_role: bool = True
    # Provider batch APIs (oversight/model/batch.py): send this model's calls in batches.
    batch: bool = False
    # The share of the online price a batch call saves (null: 0.5 for openai, anthropic and
    # google, whose batch APIs are half price); `batch_price` instead gives the prices outright.
    batch_discount: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    batch_price: Price | None = None
    batch_poll_s: float = Field(30.0, gt=0, le=86_400, allow_inf_nan=False)  # how often a batch is polled

    @field_validator("name")
    @classmethod
    def _printable_name(cls, v: str | None) -> str | None:
        if v is not None and (not CARD_NAME.fullmatch(v) or not v.isprintable() or v != v.strip()):
            raise ValueError(
                "a model name must be 1 to 200 printable characters with no line breaks, control "
                "characters, backslashes or surrounding spaces"
            )
        return v

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, v: str) -> str:
        if v not in registry.names():
            raise ValueError(registry.known_message(v))
        return v

    @model_validator(mode="before")
    @classmethod
    def _gguf_model_name(cls, data: Any) -> Any:
        # A managed model is named by its file; `model` (what the server is asked for) may be left out.
        if isinstance(data, dict) and data.get("gguf") and not data.get("model"):
            data = {**data, "model": str(data["gguf"])}
        return data

    @model_validator(mode="after")
    def _provider_defaults(self) -> ModelCard:
        if self.gguf is not None:
            if self.provider != "llama_cpp":
                raise ValueError(f"gguf: a managed local model is served by llama.cpp; set provider: llama_cpp "
                                 f"(not {self.provider})")
            if self.base_url is not None and self.base_url != registry.info("llama_cpp").base_url:
                raise ValueError("give either gguf: (the harness starts the server) or base_url: (a server "
                                 "you run), not both")
            return self
        for key in ("threads", "chat_template"):
            if getattr(self, key) is not None:
                raise ValueError(f"{key} is a setting of a managed local model; it needs gguf: MODEL")
        # A named local server (vllm, ollama, ...) at its usual address unless the card says otherwise.
        if self.base_url is None:
            self.base_url = registry.info(self.provider).base_url
        return self

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not URL.fullmatch(v):
            raise ValueError("base_url must be an http:// or https:// URL, e.g. http://127.0.0.1:8000/v1")
        if v is not None:
            from oversight.model import redact

            # The host after any credentials (which may be a [REDACTED] placeholder).
            host = re.split(r"[/?#]", v.split("://", 1)[1], maxsplit=1)[0].rsplit("@", 1)[-1]
            port = host.rsplit("]", 1)[-1].rpartition(":")[2] if ":" in host.rsplit("]", 1)[-1] else None
            if port is not None and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
                raise ValueError("base_url has a port outside 1 … 65535 (or one that is not a number)")

            redact.public_url(v)  # registers any key the URL carries, so nothing prints or stores it
        return v

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not ENV_NAME.fullmatch(v):
            raise ValueError(
                "api_key_env is the NAME of an environment variable (letters, digits, '_'), "
                "e.g. OPENAI_API_KEY, never the key itself"
            )
        return v

    @model_validator(mode="after")
    def _explicit_cache_is_google(self) -> ModelCard:
        if self.explicit_cache_ttl_s is not None and self.provider != "google":
            raise ValueError("explicit_cache_ttl_s is a Google option (Gemini explicit context caching)")
        return self

    @property
    def label(self) -> str:
        return self.name or f"{self.provider}/{self.model}"

    def key_envs(self) -> tuple[str, ...]:
        """The environment variables that may hold this model's key, preferred first; ()
        when it needs none."""
        if self.api_key_env:
            return (self.api_key_env,)
        if self.provider == "openai" and self.base_url:
            return ()  # local OpenAI-compatible servers usually need no key
        return registry.info(self.provider).key_envs

    def key_env(self) -> str | None:
        """The variable the key is read from: the first accepted one that is set."""
        envs = self.key_envs()
        return next((e for e in envs if os.environ.get(e)), envs[0] if envs else None)

    def missing_key(self) -> str | None:
        """What to set when this model's key is missing (e.g. "GOOGLE_API_KEY or
        GEMINI_API_KEY"), or None when it is there or not needed."""
        envs = self.key_envs()
        if not envs or any(os.environ.get(e) for e in envs):
            return None
        return " or ".join(envs)

    def api_key(self) -> str | None:
        env = self.key_env()
        if env is None:
            return None
        from oversight.model import redact

        value = os.environ.get(env)
        # Registered the moment it is read, so no error text or log line can carry it.
        redact.register(value)
        if not value:
            envs = self.key_envs()
            where = (f"the environment variable {env}" if len(envs) == 1 else
                     f"{' or '.join(envs)} (either works; {envs[0]} wins if both are set)")
            raise OversightError(
                f"Model '{self.label}' needs an API key in {where}, which is not set. Export it "
                f"(e.g. `export {env}=...`) or point the card's api_key_env at the variable that holds it."
            )
        return value

    def public_dict(self) -> dict[str, Any]:
        """The card as recorded in a manifest: never a secret, only the variable's name (and a
        base_url with its credentials replaced)."""
        data = self.model_dump(mode="json")
        if self.base_url:
            from oversight.model import redact

            data["base_url"] = redact.public_url(self.base_url)
        return data

    def batch_rate(self) -> float:
        """What a batch call costs as a share of the online price (with no batch_price)."""
        default = 0.5 if self.provider in ("openai", "anthropic", "google") else 0.0
        return 1.0 - (default if self.batch_discount is None else self.batch_discount)

    def cost(
        self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0, cache_write_tokens: int = 0,
        *, batch: bool = False,
    ) -> float:
        """USD for one call. `input_tokens` counts every prompt token; the cached and written
        ones are part of it (clamped to it, so a provider's odd report cannot make a cost
        negative) and priced at their own rates."""
        p = self.batch_price if batch and self.batch_price is not None else self.price
        scale = self.batch_rate() if batch and self.batch_price is None else 1.0
        cached = max(0, min(cached_input_tokens, input_tokens))
        written = max(0, min(cache_write_tokens, input_tokens - cached))
        fresh = input_tokens - cached - written
        read_rate = p.input_per_mtok if p.cached_input_per_mtok is None else p.cached_input_per_mtok
        write_rate = p.input_per_mtok if p.cache_write_per_mtok is None else p.cache_write_per_mtok
        return scale * (
            fresh * p.input_per_mtok + cached * read_rate + written * write_rate + output_tokens * p.output_per_mtok
        ) / 1e6


def resolve_model(ref: str | dict[str, Any], where: str = "spec") -> ModelCard:
    """Turn a card name, `provider/model` string or inline mapping into a ModelCard."""
    if isinstance(ref, dict):
        return validate(ModelCard, ref, f"{where} (inline model)")
    if not isinstance(ref, str) or not ref:
        raise OversightError(f"{where}: a model reference must be a name or mapping, got {excerpt(ref)}.")
    path = catalogue.find("judges", ref)
    if path is not None:
        data = read_yaml(path) or {}
        if isinstance(data, dict):
            data.setdefault("name", ref if "/" not in ref else path.stem)
        return validate(ModelCard, data, str(path))
    if "/" in ref:
        provider, model = ref.split("/", 1)
        if provider not in registry.names():
            raise unknown_name("provider", provider, registry.names(), where)
        data = {"name": ref, "provider": provider, "model": model}
        if provider == "sim":
            data["sim"] = sim_preset(model, where)
        return validate(ModelCard, data, where)
    err = unknown_name("model", ref, [*catalogue.names("judges"), "provider/model"], where)
    raise OversightError(f"{err} {catalogue.searched('judges')}")


SIM_PRESETS: dict[str, dict[str, float]] = {
    "weak": {"knowledge": 0.25, "persuasiveness": 0.3, "honesty": 0.8},
    "medium": {"knowledge": 0.5, "persuasiveness": 0.5, "honesty": 0.9},
    "strong": {"knowledge": 0.8, "persuasiveness": 0.7, "honesty": 0.97},
    "oracle": {"knowledge": 1.0, "persuasiveness": 0.9, "honesty": 1.0},
}


def sim_preset(name: str, where: str) -> dict[str, float]:
    if name not in SIM_PRESETS:
        raise unknown_name("sim model", f"sim/{name}", [f"sim/{k}" for k in SIM_PRESETS], where)
    return dict(SIM_PRESETS[name])
