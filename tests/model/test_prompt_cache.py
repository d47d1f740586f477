"""Provider prompt caching: what each adapter sends (Anthropic breakpoints at learned cuts,
OpenAI's prompt_cache_key, Gemini explicit caches), and that the cached-read and
cache-write tokens each provider reports are recorded and priced, through the real SDKs
against loopback servers that report cache hits the way the real APIs do."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from oversight.model.card import ModelCard
from oversight.model.prompt_cache import (
    AutomaticPrefixCache,
    Block,
    BreakpointCache,
    PrefixPlanner,
    common_prefix_len,
    routing_key,
    snap_to_line,
    split_at,
)
from oversight.model.providers import provider_class
from oversight.model.types import GenerateRequest, GenerateResponse, Message, Usage
from oversight.model.wrapper import Model
from oversight.testing import FakeOpenAI
from oversight.testing_providers import FakeAnthropic, FakeGemini, _text_chars

# A prompt laid out as the templates lay it out: a long stable part, then what changes.
ARTICLE = "".join(f"Line {i} of the article, which every prompt about this item repeats.\n" for i in range(120))
META = {"task": "quality", "item_id": "q-17", "role": "debater", "correct": 1, "side": 2}


def prompt(round_: int, role: str = "debater") -> GenerateRequest:
    transcript = "".join(f"Round {r}: an argument made in round {r}.\n" for r in range(1, round_))
    text = f"{ARTICLE}\nThe debate so far:\n{transcript}This is round {round_}. Write your turn."
    return GenerateRequest([Message.text("user", text)], metadata={**META, "role": role})


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def card(provider: str, base_url: str, **kw: Any) -> ModelCard:
    return ModelCard.model_validate({"provider": provider, "model": "cache-model", "base_url": base_url,
                                     "timeout_s": 30, "max_retries": 0, **kw})


# --- the planner and the provider models ----------------------------------------------


def test_common_prefix_and_line_snapping() -> None:
    assert common_prefix_len("abcdef", "abcxyz") == 3
    assert common_prefix_len("abc", "abc") == 3
    assert common_prefix_len("abc", "abcd") == 3
    assert common_prefix_len("", "abc") == 0
    long = "x" * 50_000
    assert common_prefix_len(long + "a", long + "b") == 50_000
    text = "first line\nround 2 of 3"
    assert snap_to_line(text, text.index("2")) == len("first line\n")
    assert snap_to_line("no newline here", 5) == 0
    assert snap_to_line(text, len(text)) == len(text)


def test_planner_cuts_where_prompts_of_an_item_part() -> None:
    planner = PrefixPlanner()
    first, second, third = (prompt(r).messages[0].plain_text for r in (1, 2, 3))
    assert planner.cuts("item", first) == []  # nothing to compare with yet
    [cut] = planner.cuts("item", second)
    assert second[:cut] == first[:cut] and second[:cut].endswith("The debate so far:\n")
    # The third round shares one round more with the second; the first cut is kept so the
    # cache entry written there is read.
    cuts = planner.cuts("item", third)
    assert cuts[0] == cut and len(cuts) == 2 and third[: cuts[1]].endswith("Round 1: an argument made in round 1.\n")
    # Another item learns nothing from this one.
    assert planner.cuts("other item", third) == []
    # A prompt seen before (a retry, another sample) is cut exactly as it was the first time.
    assert planner.cuts("item", third) == cuts
    assert "".join(split_at(third, cuts)) == third


def test_planner_ignores_prefixes_too_short_to_cache() -> None:
    planner = PrefixPlanner()
    planner.cuts("k", "short shared line\nthen one thing")
    assert planner.cuts("k", "short shared line\nthen another") == []


def test_routing_key_is_an_opaque_hash_of_item_and_role() -> None:
    key = routing_key(META)
    assert key is not None and key.startswith("ov-") and len(key) == 19
    assert "q-17" not in key and routing_key({**META, "correct": 2}) == key  # the truth plays no part
    assert routing_key({**META, "role": "judge"}) != key
    assert routing_key(META, role=False) == routing_key({**META, "role": "judge"}, role=False)
    assert routing_key({"role": "judge"}) is None


def test_automatic_prefix_cache_counts_like_openai() -> None:
    cache = AutomaticPrefixCache(1024, step=128)
    base = "y" * 4 * 1500
    assert cache.lookup("k", base + "a") == 0  # first sight
    assert cache.lookup("k", base + "b") == 1024 + 3 * 128  # 1500 shared tokens, in steps of 128
    assert cache.lookup("other", base + "c") == 0  # routed elsewhere
    assert cache.lookup("k", "y" * 4 * 1000 + "z") == 0  # under the minimum


def test_breakpoint_cache_reads_only_at_written_boundaries() -> None:
    cache = BreakpointCache(1024)
    a, b, c = "a" * 8000, "b" * 2000, "c" * 400
    assert cache.account([Block(a, len(a)), Block(c, len(c))]) == (0, 0)  # no breakpoint, no caching
    assert cache.account([Block(a, len(a), True), Block(c, len(c))]) == (0, 2000)
    assert cache.account([Block(a, len(a), True), Block(b, len(b), True), Block(c, len(c))]) == (2000, 500)
    assert cache.account([Block(a + b, len(a + b), True)]) == (0, 2500)  # same text, other boundary: a miss


# --- prices and the stored form ---------------------------------------------------------


def test_cost_prices_cached_reads_and_writes() -> None:
    priced = ModelCard.model_validate({"provider": "anthropic", "model": "m", "price": {
        "input_per_mtok": 1.0, "output_per_mtok": 5.0, "cached_input_per_mtok": 0.1, "cache_write_per_mtok": 1.25}})
    # 1M prompt tokens: 600k read from cache, 300k written, 100k fresh; 200k out.
    assert priced.cost(1_000_000, 200_000, 600_000, 300_000) == pytest.approx(0.1 + 0.06 + 0.375 + 1.0)
    assert priced.cost(1_000_000, 0) == pytest.approx(1.0)
    # An odd report never makes a cost negative or counts a token twice.
    assert priced.cost(100, 0, 500, 500) == pytest.approx(100 * 0.1 / 1e6)
    # Left null, cache prices are the input price: no discount is assumed.
    plain = ModelCard.model_validate({"provider": "openai", "model": "m",
                                      "price": {"input_per_mtok": 2.0, "output_per_mtok": 8.0}})
    assert plain.cost(1_000_000, 0, 900_000, 100_000) == pytest.approx(2.0)


def test_card_options() -> None:
    assert ModelCard.model_validate({"provider": "openai", "model": "m"}).prompt_cache is True
    with pytest.raises(Exception, match="explicit_cache_ttl_s"):
        ModelCard.model_validate({"provider": "anthropic", "model": "m", "explicit_cache_ttl_s": 300})
    with pytest.raises(Exception, match="cached_input_per_mtok"):
        ModelCard.model_validate({"provider": "openai", "model": "m", "price": {"cached_input_per_mtok": -1}})


def test_cached_responses_stored_before_caching_still_read() -> None:
    old = GenerateResponse.from_json({"texts": ["Answer: 1"], "usage": [120, 4], "logprobs": None})
    assert old.usage == Usage(120, 4, 0, 0)
    new = GenerateResponse(["x"], Usage(5000, 10, 4096, 512))
    assert GenerateResponse.from_json(new.to_json()).usage == Usage(5000, 10, 4096, 512)
    # An uncached reply is stored exactly as before.
    assert GenerateResponse(["x"], Usage(7, 1)).to_json()["usage"] == [7, 1]


# --- OpenAI -------------------------------------------------------------------------------


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as srv:
        yield srv


async def test_openai_sends_a_cache_key_and_records_cached_tokens(openai_server: FakeOpenAI) -> None:
    c = card("openai", openai_server.base_url, price={"input_per_mtok": 0.15, "output_per_mtok": 0.6,
                                                        "cached_input_per_mtok": 0.075})
    api = provider_class("openai")(c, "sk-cache-test")
    model = Model(c, api)
    try:
        first = await model.generate(prompt(1))
        second = await model.generate(prompt(2))
        other_role = await model.generate(prompt(3, role="judge"))
    finally:
        await api.aclose()
    bodies = openai_server.requests
    assert bodies[0]["prompt_cache_key"] == routing_key(META) == bodies[1]["prompt_cache_key"]
    assert bodies[2]["prompt_cache_key"] != bodies[0]["prompt_cache_key"]
    assert "metadata" not in bodies[0] and "q-17" not in str(bodies[0]) and "quality" not in str(bodies[0])
    assert first.usage.cached_input_tokens == 0
    assert second.usage.cached_input_tokens >= 1024 and second.usage.cached_input_tokens % 128 == 0
    assert other_role.usage.cached_input_tokens == 0  # routed by another key
    u = second.usage
    assert second.cost_usd == pytest.approx(
        ((u.input_tokens - u.cached_input_tokens) * 0.15 + u.cached_input_tokens * 0.075 + u.output_tokens * 0.6) / 1e6)
    assert model.stats.cached_input_tokens == u.cached_input_tokens
    assert model.stats.cost_usd == pytest.approx(first.cost_usd + second.cost_usd + other_role.cost_usd)


async def test_openai_card_can_turn_the_cache_key_off(openai_server: FakeOpenAI) -> None:
    c = card("openai", openai_server.base_url, prompt_cache=False)
    api = provider_class("openai")(c, None)
    try:
        await api.generate(prompt(1))
        out = await api.generate(prompt(2))
    finally:
        await api.aclose()
    assert all("prompt_cache_key" not in b for b in openai_server.requests)
    # OpenAI's caching is automatic: shared prefixes are still read, and still recorded.
    assert out.usage.cached_input_tokens > 0


async def test_openai_candidates_sent_together_follow_the_first(openai_server: FakeOpenAI) -> None:
    """The server caches a prompt only once it has answered it (as a real one does), so
    best-of-N candidates sent at once would all miss; the first goes alone, and the rest
    then find the whole prompt cached."""
    openai_server.latency_s = 0.05  # the candidates really overlap in flight
    c = card("openai", openai_server.base_url)
    api = provider_class("openai")(c, None)

    def candidate(i: int) -> GenerateRequest:
        request = prompt(1)
        request.sample = i
        return request

    try:
        outs = await asyncio.gather(*(api.generate(candidate(i)) for i in range(4)))
    finally:
        await api.aclose()
    cached = [o.usage.cached_input_tokens for o in outs]
    assert cached[0] == 0 and min(cached[1:]) >= outs[0].usage.input_tokens - 128


# --- Anthropic ------------------------------------------------------------------------------


@pytest.fixture
def anthropic_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as srv:
        yield srv


def _texts(body: dict[str, Any]) -> list[dict[str, Any]]:
    [message] = body["messages"]
    blocks: list[dict[str, Any]] = message["content"]
    return blocks


async def test_anthropic_marks_learned_cuts_and_records_reads_and_writes(anthropic_server: FakeAnthropic) -> None:
    price = {"input_per_mtok": 0.8, "output_per_mtok": 4.0, "cached_input_per_mtok": 0.08,
             "cache_write_per_mtok": 1.0}
    c = card("anthropic", anthropic_server.base_url, price=price)
    api = provider_class("anthropic")(c, "sk-ant-cache-test")
    model = Model(c, api)
    try:
        outs = [await model.generate(prompt(r)) for r in (1, 2, 3)]
    finally:
        await api.aclose()
    bodies = anthropic_server.requests
    # The first prompt has nothing to share with yet: sent as one block, unmarked.
    assert _texts(bodies[0]) == [{"type": "text", "text": prompt(1).messages[0].plain_text}]
    for i, body in enumerate(bodies):
        # Split or not, the model reads exactly the prompt.
        assert "".join(b["text"] for b in _texts(body)) == prompt(i + 1).messages[0].plain_text
    assert [("cache_control" in b) for b in _texts(bodies[1])] == [True, False]
    assert [("cache_control" in b) for b in _texts(bodies[2])] == [True, True, False]
    assert _texts(bodies[2])[0]["cache_control"] == {"type": "ephemeral"}

    u0, u1, u2 = (o.usage for o in outs)
    assert (u0.cached_input_tokens, u0.cache_write_tokens) == (0, 0)
    assert u1.cached_input_tokens == 0 and u1.cache_write_tokens > 1024  # the shared article, written
    assert u2.cached_input_tokens == u1.cache_write_tokens  # ... and read back
    assert 0 < u2.cache_write_tokens < 50  # only the one new round is written
    # input_tokens is the whole prompt, as the server counted it: read + written + the rest.
    for out, body in zip(outs, bodies, strict=True):
        assert out.usage.input_tokens == _text_chars(body["messages"]) // 4 + 1
    fresh = u2.input_tokens - u2.cached_input_tokens - u2.cache_write_tokens
    assert outs[2].cost_usd == pytest.approx(
        (fresh * 0.8 + u2.cached_input_tokens * 0.08 + u2.cache_write_tokens * 1.0 + u2.output_tokens * 4.0) / 1e6)
    assert outs[2].cost_usd < c.cost(u2.input_tokens, u2.output_tokens)
    assert model.stats.cache_write_tokens == u1.cache_write_tokens + u2.cache_write_tokens


async def test_anthropic_long_system_prompt_gets_its_own_breakpoint(anthropic_server: FakeAnthropic) -> None:
    c = card("anthropic", anthropic_server.base_url)
    api = provider_class("anthropic")(c, "sk-ant-cache-test")
    request = GenerateRequest([Message.text("system", ARTICLE), Message.text("user", "Which answer?")])
    try:
        await api.generate(request)
        out = await api.generate(request)
    finally:
        await api.aclose()
    system = anthropic_server.requests[0]["system"]
    assert system == [{"type": "text", "text": ARTICLE, "cache_control": {"type": "ephemeral"}}]
    assert out.usage.cached_input_tokens == len(ARTICLE) // 4


async def test_anthropic_card_can_turn_caching_off(anthropic_server: FakeAnthropic) -> None:
    c = card("anthropic", anthropic_server.base_url, prompt_cache=False)
    api = provider_class("anthropic")(c, "sk-ant-cache-test")
    try:
        outs = [await api.generate(prompt(r)) for r in (1, 2, 3)]
    finally:
        await api.aclose()
    assert "cache_control" not in str(anthropic_server.requests)
    assert all(o.usage.cached_input_tokens == o.usage.cache_write_tokens == 0 for o in outs)


async def test_anthropic_samples_read_what_the_first_wrote(anthropic_server: FakeAnthropic) -> None:
    c = card("anthropic", anthropic_server.base_url)
    api = provider_class("anthropic")(c, "sk-ant-cache-test")
    request = prompt(1)
    request.n = 3
    try:
        out = await api.generate(request)
    finally:
        await api.aclose()
    # Nothing learned yet, but the samples repeat the whole prompt: it is marked at its end,
    # the first sample (sent alone) writes it and the other two read it.
    assert len(anthropic_server.requests) == 3
    assert all(_texts(b)[-1].get("cache_control") == {"type": "ephemeral"} for b in anthropic_server.requests)
    assert out.usage.cache_write_tokens > 1024
    assert out.usage.cached_input_tokens == 2 * out.usage.cache_write_tokens


async def test_anthropic_best_of_n_candidates_write_once_and_read(anthropic_server: FakeAnthropic) -> None:
    """Best-of-N candidates are concurrent calls of one prompt (sample 0..N-1): the first
    to mark a new prefix writes it while the others wait, then read it."""
    c = card("anthropic", anthropic_server.base_url)
    api = provider_class("anthropic")(c, "sk-ant-cache-test")

    def candidate(i: int) -> GenerateRequest:
        request = prompt(2)
        request.sample = i
        return request

    try:
        await api.generate(prompt(1))
        outs = await asyncio.gather(*(api.generate(candidate(i)) for i in range(4)))
    finally:
        await api.aclose()
    writes = [o.usage.cache_write_tokens for o in outs]
    reads = [o.usage.cached_input_tokens for o in outs]
    # Sample 0 writes the shared article; sample 1 (a repeat) the rest of the prompt too;
    # samples 2 and 3 read it all. No prefix is written twice.
    assert writes[0] > 1024 and 0 < writes[1] < writes[0] and writes[2:] == [0, 0]
    assert reads[0] == 0 and reads[1] == writes[0] and reads[2] == reads[3] == writes[0] + writes[1]


# --- Google -----------------------------------------------------------------------------------


@pytest.fixture
def gemini_server() -> Iterator[FakeGemini]:
    with FakeGemini() as srv:
        yield srv


async def test_google_records_implicit_cache_hits(gemini_server: FakeGemini) -> None:
    c = card("google", gemini_server.base_url, price={"input_per_mtok": 1.25, "output_per_mtok": 10.0,
                                                        "cached_input_per_mtok": 0.125})
    api = provider_class("google")(c, "g-cache-test")
    model = Model(c, api)
    try:
        first = await model.generate(prompt(1))
        second = await model.generate(prompt(2))
    finally:
        await api.aclose()
    assert "cachedContent" not in gemini_server.requests[1]  # implicit: nothing to send
    assert first.usage.cached_input_tokens == 0
    u = second.usage
    assert 1024 < u.cached_input_tokens < u.input_tokens
    assert second.cost_usd == pytest.approx(
        ((u.input_tokens - u.cached_input_tokens) * 1.25 + u.cached_input_tokens * 0.125 + u.output_tokens * 10) / 1e6)


async def test_google_explicit_cache_uploads_the_shared_prefix_once(gemini_server: FakeGemini) -> None:
    c = card("google", gemini_server.base_url, explicit_cache_ttl_s=600)
    api = provider_class("google")(c, "g-cache-test")
    try:
        outs = [await api.generate(prompt(r)) for r in (1, 2, 3)]
        live = dict(gemini_server.caches)  # name -> tokens, as the server counted them
    finally:
        await api.aclose()
    paths = gemini_server.paths
    creates = [i for i, p in enumerate(paths) if p.split("?")[0].endswith("/cachedContents")]
    assert len(creates) == 1  # the second prompt made the cache; the third reused it
    [(name, cached)] = live.items()
    generate = [b for p, b in zip(paths, gemini_server.requests, strict=True) if ":generateContent" in p]
    assert "cachedContent" not in generate[0]
    assert generate[1]["cachedContent"] == generate[2]["cachedContent"] == name
    # What was uploaded plus what was sent is the prompt.
    uploaded = gemini_server.requests[creates[0]]["contents"][0]["parts"][0]["text"]
    assert uploaded + generate[2]["contents"][0]["parts"][0]["text"] == prompt(3).messages[0].plain_text
    assert outs[1].usage.cache_write_tokens == cached  # the call that uploaded it pays for it
    assert outs[1].usage.cached_input_tokens == outs[2].usage.cached_input_tokens == cached
    assert outs[2].usage.cache_write_tokens == 0
    assert gemini_server.deleted == [name]  # storage is billed while it lives


async def test_google_explicit_cache_refused_falls_back_to_the_whole_prompt(gemini_server: FakeGemini) -> None:
    gemini_server.explicit_min_tokens = 10**6
    c = card("google", gemini_server.base_url, explicit_cache_ttl_s=600)
    api = provider_class("google")(c, "g-cache-test")
    try:
        outs = [await api.generate(prompt(r)) for r in (1, 2, 3)]
    finally:
        await api.aclose()
    generate = [b for p, b in zip(gemini_server.paths, gemini_server.requests, strict=True) if ":generateContent" in p]
    assert len(generate) == 3 and all("cachedContent" not in b for b in generate)
    assert generate[2]["contents"][0]["parts"][0]["text"] == prompt(3).messages[0].plain_text
    # Refused once for that prefix, never asked again; implicit caching still applies.
    assert sum(p.split("?")[0].endswith("/cachedContents") for p in gemini_server.paths) == 1
    assert outs[2].usage.cached_input_tokens > 0 and outs[2].usage.cache_write_tokens == 0
