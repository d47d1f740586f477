"""Secrets are scrubbed from error text at its source: the registry of key values, the
header-shaped patterns, ModelCallError, ModelCard.api_key(), log records, and every
adapter facing a server that echoes the request's headers into its 401 body."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import pytest

from oversight.model import redact
from oversight.model.card import ModelCard
from oversight.model.providers import provider_class
from oversight.model.redact import REDACTED, clip, scrub
from oversight.model.types import GenerateRequest, Message, ModelCallError
from oversight.model.wrapper import CallFailure, Model
from oversight.testing import FakeOpenAI, Fault, LoopbackServer
from oversight.testing_providers import FakeAnthropic, FakeGemini

SECRET = "sk-redact-unit-0123456789abcdef"


@pytest.fixture(autouse=True)
def _registered() -> None:
    redact.register(SECRET)


# --- registered values -----------------------------------------------------------------


def test_a_registered_secret_is_replaced_wherever_it_appears() -> None:
    text = f"bad key {SECRET}; again:{SECRET}."
    assert scrub(text) == f"bad key {REDACTED}; again:{REDACTED}."


def test_escaped_and_encoded_forms_are_replaced_too() -> None:
    odd = 'k3y/with+odd"chars\\0123'
    redact.register(odd)
    escaped = json.dumps({"echo": odd})
    assert odd not in scrub(escaped) and json.dumps(odd)[1:-1] not in scrub(escaped)
    assert quote(odd, safe="") not in scrub(f"GET /v1?token={quote(odd, safe='')}")


def test_short_values_are_not_secrets() -> None:
    # A 3-character "key" would turn ordinary words into [REDACTED].
    redact.register("abc")
    assert not redact.is_registered("abc")
    assert scrub("abc def") == "abc def"
    assert redact.is_registered(SECRET)


def test_standard_key_variables_are_scrubbed_even_if_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-the-environment-42")
    assert "from-the-environment" not in scrub("echo: sk-ant-from-the-environment-42")


def test_model_card_registers_the_key_it_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_PROXY_TOKEN", "tok-read-by-the-card-777")
    card = ModelCard(provider="openai", model="m", api_key_env="MY_PROXY_TOKEN")
    assert card.api_key() == "tok-read-by-the-card-777"
    assert redact.is_registered("tok-read-by-the-card-777")
    assert scrub("saw tok-read-by-the-card-777") == f"saw {REDACTED}"


# --- header-shaped credentials (values never registered) -------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer unknown-proxy-token", f"Authorization: Bearer {REDACTED}"),
        ("authorization:Basic dXNlcjpwYXNz\nhost: x", f"authorization:Basic {REDACTED}\nhost: x"),
        ("Proxy-Authorization: Bearer p-tok", f"Proxy-Authorization: Bearer {REDACTED}"),
        ("x-api-key: ant-unknown-1", f"x-api-key: {REDACTED}"),
        ("X-Goog-Api-Key: AIzaUnknown", f"X-Goog-Api-Key: {REDACTED}"),
        ('{"authorization": "Bearer a b c", "host": "h"}', f'{{"authorization": "{REDACTED}", "host": "h"}}'),
        ('{"x-api-key":"ant-unknown-2"}', f'{{"x-api-key":"{REDACTED}"}}'),
        ("{'x-goog-api-key': 'AIzaRepr'}", f"{{'x-goog-api-key': '{REDACTED}'}}"),
        ('"{\\"authorization\\": \\"Bearer nested\\"}"', f'"{{\\"authorization\\": \\"{REDACTED}\\"}}"'),
        ("[('authorization', 'Bearer pair')]", f"[('authorization', '{REDACTED}')]"),
        ("GET /v1beta/models/m?key=AIzaQuery&alt=json", f"GET /v1beta/models/m?key={REDACTED}&alt=json"),
        ("OPENAI_API_KEY=sk-env-dump", f"OPENAI_API_KEY={REDACTED}"),
        ('{"api_key": "sk-json-field"}', f'{{"api_key": "{REDACTED}"}}'),
        ("token was Bearer sk-bare, sadly", f"token was Bearer {REDACTED}, sadly"),
    ],
)
def test_header_shaped_values_are_replaced(text: str, expected: str) -> None:
    assert scrub(text) == expected
    assert scrub(expected) == expected  # idempotent: scrubbing twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "Answer: 1",
        "missing authorization header",
        "invalid x-api-key",
        "rate limit exceeded; retry after 3s",
        "the bearer of bad news",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert scrub(text) == text


def test_clip_scrubs_before_it_shortens() -> None:
    # Cut first, the secret's prefix would survive, no longer matching the whole value.
    text = "x" * 40 + SECRET + " tail"
    clipped = clip(text, 50)
    assert SECRET[:8] not in clipped
    assert len(clipped) <= 50 and clipped.startswith("x" * 40 + "[REDACT")


# --- where it is applied ---------------------------------------------------------------


def test_model_call_error_scrubs_its_message_at_the_source() -> None:
    err = ModelCallError("auth", f"echo: authorization: Bearer {SECRET}", status=401)
    assert SECRET not in str(err) and SECRET not in err.args[0]
    assert str(err) == f"auth HTTP 401: echo: authorization: Bearer {REDACTED}"
    failure = CallFailure(err, 0, "m")
    assert SECRET not in str(failure) and SECRET not in repr(failure)


def test_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("oversight.test.redact")
    with caplog.at_level(logging.INFO):
        log.info("calling with %s", SECRET)
        try:
            raise RuntimeError(f"boom x-api-key: {SECRET}")
        except RuntimeError:
            log.exception("failed")
    assert SECRET not in caplog.text
    assert caplog.text.count(REDACTED) >= 2


SERVERS: list[tuple[str, type[LoopbackServer]]] = [
    ("openai", FakeOpenAI),
    ("anthropic", FakeAnthropic),
    ("google", FakeGemini),
]


@pytest.mark.parametrize(("provider", "server_cls"), SERVERS, ids=[s[0] for s in SERVERS])
async def test_adapters_never_pass_on_an_echoed_key(
    provider: str, server_cls: type[LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    key = f"sk-echoed-{provider}-4f9c2a7e1b"
    with server_cls(fault_plan=lambda body: Fault(401, echo_headers=True)) as server:
        card = ModelCard.model_validate({"provider": provider, "model": "m", "base_url": server.base_url})
        api = provider_class(provider)(card, key)
        try:
            with pytest.raises(CallFailure) as info:
                await Model(card, api).generate(GenerateRequest([Message.text("user", "hi")]))
        finally:
            await api.aclose()
        sent = server.headers[0]
    # The key was sent (as authorization or x-api-key or x-goog-api-key), and echoed back.
    assert any(key in value for value in sent.values())
    err = info.value.error
    assert (err.kind, err.status) == ("auth", 401)
    assert "request headers were" in str(err) and REDACTED in str(err)
    assert key not in str(info.value) and key not in repr(err)
    # The SDK's exception (holding the raw body) does not ride along on the chain.
    assert err.__cause__ is None and err.__suppress_context__
