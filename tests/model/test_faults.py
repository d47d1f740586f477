"""Every provider fault, on every adapter, through the real SDK against a loopback server
speaking that provider's wire format: the adapter classifies it as a retryable kind, and
the shared wrapper then retries it into a normal answer. Faults that retrying cannot fix
are classified as not retryable and tried once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from oversight.model.card import ModelCard
from oversight.model.providers import provider_class
from oversight.model.types import GenerateRequest, Message, ModelCallError
from oversight.model.wrapper import CallFailure, Model
from oversight.testing import FakeOpenAI, Fault, LoopbackServer
from oversight.testing_providers import FakeAnthropic, FakeGemini


@dataclass(frozen=True)
class Adapter:
    name: str
    provider: str
    server: type[LoopbackServer]
    key: str | None


ADAPTERS = [
    Adapter("openai", "openai", FakeOpenAI, "sk-openai-fault-test"),
    # A local vLLM/Ollama-style server: no key at all.
    Adapter("openai-compatible", "openai", FakeOpenAI, None),
    Adapter("anthropic", "anthropic", FakeAnthropic, "sk-ant-fault-test"),
    Adapter("google", "google", FakeGemini, "g-fault-test-key"),
]

RETRYABLE = [
    (Fault(429), "rate_limit"),
    (Fault(429, retry_after=0.25), "rate_limit"),
    (Fault(500), "server"),
    (Fault(502), "server"),
    (Fault(503), "server"),
    (Fault(529), "server"),  # Anthropic's "overloaded"
    (Fault(hang=True), "timeout"),
    (Fault(drop=True), "connection"),
    (Fault(cut=True), "connection"),
    (Fault(broken=True), "malformed"),
    (Fault(empty="samples"), "malformed"),
    (Fault(empty="text"), "malformed"),
]

FINAL = [
    (Fault(400), "bad_request"),
    (Fault(401), "auth"),
    (Fault(403), "auth"),
    (Fault(404), "not_found"),
]

# How long a hung request is waited for. Every request of that card gets this limit, so on
# a loaded machine an ordinary one may hit it too: the hang tests then allow extra retries.
HANG_TIMEOUT_S = 0.5
TIMEOUT_S = 30.0  # every other test: never reached, so a slow machine changes nothing


@pytest.fixture(params=ADAPTERS, ids=[a.name for a in ADAPTERS])
def adapter(request: pytest.FixtureRequest) -> Adapter:
    param: Adapter = request.param
    return param


@pytest.fixture
def server(adapter: Adapter, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    with adapter.server() as srv:
        yield srv


def make_card(adapter: Adapter, server: LoopbackServer, **kw: Any) -> ModelCard:
    kw.setdefault("timeout_s", TIMEOUT_S)
    return ModelCard.model_validate(
        {"provider": adapter.provider, "model": "fault-model", "base_url": server.base_url, **kw}
    )


def ask(text: str) -> GenerateRequest:
    return GenerateRequest(messages=[Message.text("system", "Be brief."), Message.text("user", text)])


class Sleeps:
    """The wrapper's sleep, recorded and instant: the backoff is checked, not waited for."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.mark.parametrize(("fault", "kind"), RETRYABLE, ids=[f.label for f, _ in RETRYABLE])
async def test_fault_is_retryable_and_retried(adapter: Adapter, server: LoopbackServer, fault: Fault,
                                              kind: str) -> None:
    card = make_card(adapter, server, max_retries=6, timeout_s=HANG_TIMEOUT_S if fault.hang else TIMEOUT_S)
    api = provider_class(adapter.provider)(card, adapter.key)
    try:
        # The adapter alone: one request, classified.
        server.faults = [fault]
        with pytest.raises(ModelCallError) as info:
            await api.generate(ask("first"))
        assert len(server.requests) == 1  # the SDK's own retries are off
        err = info.value
        assert (err.kind, err.retryable) == (kind, True), str(err)
        assert err.retry_after == fault.retry_after
        if kind in ("rate_limit", "server"):
            assert err.status == fault.status

        # Through the wrapper: the fault costs one retry and the call succeeds.
        server.faults = [fault]
        sleeps = Sleeps()
        model = Model(card, api, sleep=sleeps)
        out = await model.generate(ask("second"))
    finally:
        await api.aclose()
    assert out.texts == ["Answer: 1"]
    assert model.stats.errors == 0
    if fault.hang:
        assert out.retries >= 1 and len(server.requests) == 2 + out.retries
        return
    assert out.retries == 1
    assert len(server.requests) == 3
    assert model.stats.attempts == 2
    if fault.retry_after is not None:
        assert sleeps.seconds == [fault.retry_after]  # Retry-After is honoured exactly
    else:
        assert len(sleeps.seconds) == 1


@pytest.mark.parametrize(("fault", "kind"), FINAL, ids=[f.label for f, _ in FINAL])
async def test_fault_retrying_cannot_fix_is_tried_once(adapter: Adapter, server: LoopbackServer, fault: Fault,
                                                       kind: str) -> None:
    card = make_card(adapter, server, max_retries=3)
    api = provider_class(adapter.provider)(card, adapter.key)
    server.faults = [fault]
    try:
        with pytest.raises(CallFailure) as info:
            await Model(card, api, sleep=Sleeps()).generate(ask("once"))
    finally:
        await api.aclose()
    assert (info.value.error.kind, info.value.error.status, info.value.retries) == (kind, fault.status, 0)
    assert len(server.requests) == 1


async def test_retries_run_out_on_a_server_that_keeps_failing(adapter: Adapter, server: LoopbackServer) -> None:
    card = make_card(adapter, server, max_retries=3)
    api = provider_class(adapter.provider)(card, adapter.key)
    server.faults = [Fault(broken=True), Fault(empty="text"), Fault(503), Fault(429)]
    try:
        with pytest.raises(CallFailure) as info:
            await Model(card, api, sleep=Sleeps()).generate(ask("doomed"))
    finally:
        await api.aclose()
    assert info.value.error.kind == "rate_limit" and info.value.retries == 3
    assert len(server.requests) == 4
