"""Model providers by name: the built-in ones, and those that installed packages add.

A provider is a subclass of `oversight.model.api.ModelAPI` (the contract):

- `__init__(self, card, api_key, http_client=None)`: `card` is the validated ModelCard
  (model id, base_url, limits, generation settings), `api_key` the key read from the
  environment (None when the provider needs none), `http_client` an optional
  `httpx2.AsyncClient` that tests inject;
- `async generate(request) -> GenerateResponse`: one call with all `request.n` samples;
  raise `ModelCallError(kind, message)` for any failure (kinds in model/types.py: a
  `rate_limit`, `server`, `timeout`, `connection` or `malformed` one is retried by the shared
  wrapper, `auth` and `not_found` stop the run). No retries, limits, caching or accounting
  of its own: the wrapper owns them;
- `async aclose()`: release connections (optional);
- class attributes: `default_capabilities` (images, logprobs, temperature), and two read
  by oversight when a card leaves them out: `default_base_url` (str or None) and
  `default_key_env` (the environment variable that holds the key; None: no key needed).

A package adds a provider with an entry point in the `oversight.providers` group:

    [project.entry-points."oversight.providers"]
    myprov = "my_package.api:MyAPI"

after which a card may say `provider: myprov`. Built-in names cannot be taken over by a
plugin. In a notebook, `register("myprov", MyAPI)` does the same for one process.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from oversight.errors import OversightError, unknown_name

if TYPE_CHECKING:
    from oversight.model.api import ModelAPI

GROUP = "oversight.providers"
_OPENAI = "oversight.model.providers.openai:OpenAIAPI"


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    target: str | type[Any]  # "module:Class", or the class itself (registered in process)
    extra: str | None = None  # the `pip install 'oversight[EXTRA]'` its SDK comes with
    base_url: str | None = None  # used when a card gives none
    key_envs: tuple[str, ...] = ()  # accepted variables, the first that is set wins; () = no key
    origin: str = "built-in"
    loaded: bool = True  # False for a plugin: base_url and key_envs are read from its class on demand


BUILTIN: dict[str, ProviderInfo] = {
    p.name: p
    for p in (
        ProviderInfo("openai", _OPENAI, "openai", key_envs=("OPENAI_API_KEY",)),
        ProviderInfo("anthropic", "oversight.model.providers.anthropic:AnthropicAPI", "anthropic",
                     key_envs=("ANTHROPIC_API_KEY",)),
        # Google's SDK and Inspect read GOOGLE_API_KEY, and prefer it when both are set.
        ProviderInfo("google", "oversight.model.providers.google:GoogleAPI", "google",
                     key_envs=("GOOGLE_API_KEY", "GEMINI_API_KEY")),
        ProviderInfo("sim", "oversight.model.providers.sim:SimAPI"),
        # OpenAI-compatible local servers at their usual default ports; they need no key.
        ProviderInfo("vllm", _OPENAI, "openai", base_url="http://127.0.0.1:8000/v1"),
        ProviderInfo("sglang", _OPENAI, "openai", base_url="http://127.0.0.1:30000/v1"),
        ProviderInfo("ollama", _OPENAI, "openai", base_url="http://127.0.0.1:11434/v1"),
        ProviderInfo("llama_cpp", _OPENAI, "openai", base_url="http://127.0.0.1:8080/v1"),
        # A Hugging Face model run in this process, without a server.
        ProviderInfo("transformers", "oversight.model.providers.transformers_local:TransformersAPI",
                     "transformers"),
    )
}

_registered: dict[str, ProviderInfo] = {}
_plugins: tuple[tuple[str, ...], dict[str, ProviderInfo]] | None = None


def register(name: str, api: type[ModelAPI] | str, *, base_url: str | None = None,
             key_env: str | None = None) -> None:
    """Add a provider for this process (a notebook's own class, or "module:Class")."""
    if name in BUILTIN:
        raise OversightError(f"'{name}' is a built-in provider; register yours under another name.")
    _registered[name] = ProviderInfo(name, api, None, base_url, (key_env,) if key_env else (), "registered")


def _discovered() -> dict[str, ProviderInfo]:
    """Entry points of the `oversight.providers` group, read again whenever sys.path changes
    (a package installed into a running notebook and added to the path is found)."""
    global _plugins
    key = tuple(sys.path)
    if _plugins is None or _plugins[0] != key:
        found: dict[str, ProviderInfo] = {}
        for ep in entry_points(group=GROUP):
            if ep.name not in BUILTIN and ep.name not in found:
                dist = getattr(ep, "dist", None)
                origin = f"plugin {dist.name}" if dist is not None else "plugin"
                found[ep.name] = ProviderInfo(ep.name, ep.value, origin=origin, loaded=False)
        _plugins = (key, found)
    return _plugins[1]


def names() -> list[str]:
    return sorted({*BUILTIN, *_discovered(), *_registered})


def import_target(target: str) -> Any:
    """What an entry point's `module:attr.path` names (None for a missing attribute); the
    import's own exceptions are the caller's to explain. Shared with the protocol registry."""
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part, None)
    return obj


def _import(info: ProviderInfo) -> type[ModelAPI]:
    if not isinstance(info.target, str):
        return info.target
    try:
        obj = import_target(info.target)
    except ImportError as exc:
        if info.extra:
            raise OversightError(
                f"The '{info.name}' provider needs its SDK, which is not installed ({exc.name}). "
                f"Install it with `pip install 'oversight[{info.extra}]'`."
            ) from None
        raise OversightError(
            f"The '{info.name}' provider ({info.origin}, {info.target}) cannot be imported: "
            f"{type(exc).__name__}: {exc}. Reinstall the package that provides it."
        ) from None
    from oversight.model.api import ModelAPI

    if not (isinstance(obj, type) and issubclass(obj, ModelAPI)):
        raise OversightError(
            f"The '{info.name}' provider ({info.origin}) names {info.target}, which is not a subclass of "
            f"oversight.model.api.ModelAPI."
        )
    return obj


def info(name: str, where: str = "") -> ProviderInfo:
    """A provider's description; a plugin's defaults are read from its class."""
    if name in BUILTIN:
        return BUILTIN[name]
    found = _registered.get(name) or _discovered().get(name)
    if found is None:
        raise unknown_name("provider", name, names(), where)
    if found.loaded:
        return found
    cls = _import(found)
    key = getattr(cls, "default_key_env", None)
    return ProviderInfo(found.name, found.target, None, getattr(cls, "default_base_url", None),
                        (key,) if key else (), found.origin)


def provider_class(name: str) -> type[ModelAPI]:
    return _import(info(name))


def known_message(name: str) -> str:
    """Why `name` is not a provider, for a card's validation error (one sentence)."""
    return str(unknown_name("provider", name, names())).removesuffix(".") + (
        f" (a package adds one through the '{GROUP}' entry-point group)"
    )
