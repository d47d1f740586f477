"""Provider adapters, looked up by name in the registry (oversight/model/registry.py): the
built-in ones (openai, anthropic, google, sim; vllm, sglang, ollama and llama_cpp, which are
OpenAI-compatible servers; transformers, in process) and any that an installed package adds
through the `oversight.providers` entry-point group. SDK imports happen lazily, so a missing
extra only matters for the provider that needs it."""

from __future__ import annotations

from typing import Any

from oversight.model import registry
from oversight.model.api import ModelAPI
from oversight.model.card import ModelCard


def provider_class(provider: str) -> type[ModelAPI]:
    return registry.provider_class(provider)


def make_api(card: ModelCard, http_client: Any = None) -> ModelAPI:
    api_cls = provider_class(card.provider)
    return api_cls(card, card.api_key(), http_client=http_client)
