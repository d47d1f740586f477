"""Provider prompt caching: where a prompt's reusable prefix ends, and how providers bill it.

Every hosted provider discounts a prompt prefix it has seen recently; they differ in who
decides what the prefix is:
- OpenAI (and vLLM, SGLang) cache every long prompt automatically; a `prompt_cache_key`
  only routes requests that share a prefix to the same machine (`routing_key`).
- Gemini 2.5+ caches implicitly, like OpenAI; an explicit cache is content we upload once.
- Anthropic caches only up to a `cache_control` breakpoint, and a later request can read
  the cache only at a content-block boundary that ends exactly where an earlier breakpoint
  did.

Our prompts are one user message, rendered from templates, so nothing in the request says
where its stable part (instructions, article, question) ends. `PrefixPlanner` learns it:
a prompt is compared with earlier prompts about the same item, and the points where they
part company (snapped back to a line start) become the cuts. A debater's second round
shares everything up to the transcript with its first; its third shares one round more; an
order or a role that shares the article shares that much. Cutting there, and marking each
cut, makes the first repeat write the shared prefix and every later one read it. The
planner needs no marker in the templates, so any template layout works, and a layout that
puts more stable text first simply caches more.

A provider holds a prefix only once a request carrying it has been answered, so
`WriteGate` sends the first of several requests sharing a new prefix alone and the others
after it (best-of-N candidates are one prompt sent N times at once).

The second half of this module models the providers' side (what they would report as
cached), for the loopback test servers (oversight/testing*.py) and the dry run's projection
(oversight/engine/estimate.py). Token counts there are characters / 4, as everywhere else
the harness estimates tokens.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

CHARS_PER_TOKEN = 4
# Anthropic's minimum cacheable prefix is 1024 tokens on most models (2048-4096 on Haiku);
# a shorter marked prefix is not cached, so cutting there would only split the message.
MIN_CACHE_TOKENS = 1024
# Anthropic allows four breakpoints per request; one is kept for a long system prompt.
MAX_CUTS = 3
# What the planner and the simulated caches remember, bounded so that a long run's memory
# stays flat: prompts are compared only with recent prompts of the same item.
TEXTS_PER_KEY = 16
CUTS_PER_KEY = 32
CUT_KEYS = 8192
PLANNED = 65_536
MEMORY_CHARS = 32_000_000


def common_prefix_len(a: str, b: str) -> int:
    """Length of the longest common prefix, by bisection on slice equality: each probe is a
    C-level comparison, so long articles cost microseconds, not a Python loop per char."""
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while lo < hi:  # invariant: a[:lo] == b[:lo] and a[:hi] != b[:hi]
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def snap_to_line(text: str, end: int) -> int:
    """Move a cut back to just after a newline, so it falls between lines (stable across
    prompts that part mid-line, e.g. at "round 2" vs "round 3"); 0 if there is none."""
    if end >= len(text):
        return len(text)
    return text.rfind("\n", 0, end) + 1


def routing_key(metadata: Mapping[str, Any], *, role: bool = True) -> str | None:
    """A short, opaque key for the prompts of one item (and role): a hash, so no episode
    fact (and never the ground truth) leaves the process. None without an item."""
    task, item = metadata.get("task"), metadata.get("item_id")
    if task is None or item is None:
        return None
    return _routing_hash(str(task), str(item), str(metadata.get("role", "")) if role else None)


@functools.lru_cache(maxsize=4096)
def _routing_hash(task: str, item: str, role: str | None) -> str:
    # Cached: every call of an item and role asks for the same key.
    parts = [task, item] + ([role] if role is not None else [])
    return "ov-" + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def repeat_prefixes(text: str, salt: str = "") -> list[str]:
    """For a provider that caches automatically: the whole prompt as the one prefix a
    WriteGate holds back, so that repeats of a long prompt sent together (best-of-N
    candidates) follow the first instead of all missing; nothing for a short prompt."""
    if len(text) < MIN_CACHE_TOKENS * CHARS_PER_TOKEN:
        return []
    return [hashlib.sha256(f"{salt}\x1f{text}".encode()).hexdigest()]


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class _TextMemory:
    """Recent texts per key, least recently used keys forgotten past a character budget."""

    def __init__(self, per_key: int = TEXTS_PER_KEY, budget_chars: int = MEMORY_CHARS) -> None:
        self.per_key = per_key
        self.budget = budget_chars
        self.chars = 0
        self._keys: OrderedDict[str, deque[str]] = OrderedDict()

    def texts(self, key: str) -> Iterable[str]:
        texts = self._keys.get(key)
        if texts is None:
            return ()
        self._keys.move_to_end(key)
        return tuple(texts)

    def add(self, key: str, text: str) -> None:
        texts = self._keys.setdefault(key, deque())
        self._keys.move_to_end(key)
        if text in texts:
            return
        if len(texts) == self.per_key:
            self.chars -= len(texts.popleft())
        texts.append(text)
        self.chars += len(text)
        while self.chars > self.budget and len(self._keys) > 1:
            _, old = self._keys.popitem(last=False)
            self.chars -= sum(len(t) for t in old)

    def longest_shared(self, key: str, text: str) -> int:
        return max((common_prefix_len(text, t) for t in self.texts(key)), default=0)


class PrefixPlanner:
    """Learns, per key (an item), where prompts stop sharing text, and proposes cuts.

    `cuts(key, text)` returns up to MAX_CUTS ascending positions in `text`, each at least
    `min_chars` long: the longest prefix `text` shares with a remembered prompt of the key
    (a new cache entry to write, or an exact repeat to read), and earlier cuts that are
    prefixes of `text` (entries already written, to read). Then `text` is remembered.
    """

    def __init__(self, min_tokens: int = MIN_CACHE_TOKENS) -> None:
        self.min_chars = min_tokens * CHARS_PER_TOKEN
        self._texts = _TextMemory()
        self._cuts: OrderedDict[str, OrderedDict[int, bytes]] = OrderedDict()
        # A prompt seen before gets the same cuts again: a retried request is then the same
        # request, instead of one that marks (and pays to write) its whole text.
        self._planned: OrderedDict[bytes, list[int]] = OrderedDict()

    def cuts(self, key: str, text: str, whole: bool = False) -> list[int]:
        """`whole`: the same prompt is about to be sent again (several samples of it), so
        the end of the text is a cut too: the first sample writes it all, the rest read it."""
        seen = _digest(f"{key}\x1f{text}")
        if seen in self._planned:
            self._planned.move_to_end(seen)
            chosen = self._planned[seen]
        else:
            chosen = self._plan(key, text)
            self._planned[seen] = chosen
            while len(self._planned) > PLANNED:
                self._planned.popitem(last=False)
        if whole and len(text) >= self.min_chars and len(text) not in chosen:
            return [*chosen, len(text)][-MAX_CUTS:]
        return list(chosen)

    def _plan(self, key: str, text: str) -> list[int]:
        found: set[int] = set()
        for other in self._texts.texts(key):
            cut = snap_to_line(text, common_prefix_len(text, other))
            if cut >= self.min_chars:
                found.add(cut)
        known = self._cuts.get(key, OrderedDict())
        for cut, digest in known.items():
            if cut <= len(text) and cut not in found and _digest(text[:cut]) == digest:
                found.add(cut)
        chosen = sorted(found)[-MAX_CUTS:]
        self._texts.add(key, text)
        if chosen:
            known = self._cuts.setdefault(key, known)
            self._cuts.move_to_end(key)
            for cut in chosen:
                known[cut] = _digest(text[:cut])
                known.move_to_end(cut)
            while len(known) > CUTS_PER_KEY:
                known.popitem(last=False)
            while len(self._cuts) > CUT_KEYS:
                self._cuts.popitem(last=False)
        return chosen


class WriteGate:
    """A provider caches a prefix only once a request carrying it has been answered, so
    requests sharing a new prefix that are sent together (best-of-N candidates: one prompt,
    several calls) all miss, and on Anthropic all pay to write it. Through the gate, the
    first request with a prefix not used lately goes alone; the others wait for its answer
    and then go, and read. A prefix used within `warm_s` (providers keep a prefix five
    minutes or more after its last use) goes straight through, as does everything after a
    failed request (the next one simply writes it)."""

    def __init__(self, warm_s: float = 240.0, entries: int = 65_536) -> None:
        self.warm_s = warm_s
        self.entries = entries
        self._writing: dict[str, asyncio.Future[None]] = {}  # prefix -> the request writing it
        self._warm: OrderedDict[str, float] = OrderedDict()  # prefix -> last written or read

    def _cold(self, prefixes: Iterable[str]) -> list[str]:
        now = time.monotonic()
        return [p for p in prefixes if now - self._warm.get(p, -self.warm_s) >= self.warm_s]

    async def run(self, prefixes: list[str], call: Callable[[], Awaitable[T]]) -> T:
        cold = self._cold(prefixes)
        while waits := {self._writing[p] for p in cold if p in self._writing}:
            await asyncio.wait(waits)
            cold = self._cold(cold)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for p in cold:
            self._writing[p] = done
        try:
            result = await call()
        finally:
            for p in cold:
                if self._writing.get(p) is done:
                    del self._writing[p]
            done.set_result(None)
        now = time.monotonic()
        for p in prefixes:
            self._warm[p] = now
            self._warm.move_to_end(p)
        while len(self._warm) > self.entries:
            self._warm.popitem(last=False)
        return result


def split_at(text: str, cuts: list[int]) -> list[str]:
    """`text` as consecutive pieces ending at each cut (then the rest, if any)."""
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(text[start:cut])
        start = cut
    if start < len(text):
        pieces.append(text[start:])
    return pieces


# --- the providers' side, modelled (loopback servers and the dry run) ------------------


def tokens(chars: int) -> int:
    return chars // CHARS_PER_TOKEN


@dataclass
class AutomaticPrefixCache:
    """OpenAI-style automatic caching (also Gemini's implicit caching and vLLM's prefix
    cache): a prompt reads from cache the longest prefix it shares with an earlier prompt
    routed to the same place (`bucket`), if that is at least `min_tokens`, counted in
    steps of `step` tokens above the minimum (OpenAI: 1024, then 128 at a time)."""

    min_tokens: int = 1024
    step: int = 128

    def __post_init__(self) -> None:
        self._texts = _TextMemory(per_key=64)

    def lookup(self, bucket: str, text: str, commit: bool = True) -> int:
        """Cached tokens for this prompt; the prompt is then cached itself (with `commit`;
        a server calls `commit` itself once it has answered, as a real cache holds a
        prompt only from then on)."""
        shared = tokens(self._texts.longest_shared(bucket, text))
        if commit:
            self.commit(bucket, text)
        if shared < self.min_tokens:
            return 0
        return self.min_tokens + (shared - self.min_tokens) // self.step * self.step

    def commit(self, bucket: str, text: str) -> None:
        self._texts.add(bucket, text)


@dataclass(frozen=True)
class Block:
    """One content block as a breakpoint cache sees it: what identifies it, its size in
    characters, and whether it carries a cache breakpoint."""

    content: str
    chars: int
    breakpoint: bool = False


@dataclass
class BreakpointCache:
    """Anthropic-style caching. A breakpoint writes the prefix up to it (if at least
    `min_tokens`); a request reads the longest prefix, ending at one of its block
    boundaries up to its last breakpoint, that an earlier request wrote. Requests with no
    breakpoint neither read nor write. Returns (read, written) tokens."""

    min_tokens: int = 1024
    capacity: int = 200_000  # prefixes remembered

    def __post_init__(self) -> None:
        self._written: OrderedDict[bytes, None] = OrderedDict()

    def account(self, blocks: list[Block], commit: bool = True) -> tuple[int, int]:
        """(read, written) tokens for this request; with `commit` its breakpoints are then
        cached (a server commits once it has answered: `commit(blocks)`)."""
        read, written = self._account(blocks, commit=False)
        if commit:
            self.commit(blocks)
        return read, written

    def commit(self, blocks: list[Block]) -> None:
        self._account(blocks, commit=True)

    def _account(self, blocks: list[Block], commit: bool) -> tuple[int, int]:
        last = max((i for i, b in enumerate(blocks) if b.breakpoint), default=-1)
        if last < 0:
            return 0, 0
        h = hashlib.blake2b(digest_size=16)
        chars = read_chars = 0
        prefixes: list[tuple[bytes, int, bool]] = []
        for block in blocks[: last + 1]:
            h.update(_digest(block.content))
            chars += block.chars
            key = h.copy().digest()
            prefixes.append((key, chars, block.breakpoint))
            if key in self._written:
                read_chars = chars
                self._written.move_to_end(key)
        end_chars = prefixes[-1][1]
        for key, size, is_breakpoint in prefixes if commit else ():
            if is_breakpoint and tokens(size) >= self.min_tokens and key not in self._written:
                self._written[key] = None
        while len(self._written) > self.capacity:
            self._written.popitem(last=False)
        if tokens(end_chars) < self.min_tokens:
            return tokens(read_chars), 0
        return tokens(read_chars), tokens(end_chars) - tokens(read_chars)
