"""Loopback fake model servers for tests and benchmarks.

`FakeOpenAI` speaks enough of the Chat Completions wire format for the real `openai` SDK:
POST /v1/chat/completions answers `Answer: 1` (or a scripted reply), with usage, after a
fixed latency. `oversight.testing_providers` has the same server speaking the Anthropic
Messages and Gemini generateContent formats. They listen on 127.0.0.1 only.

Each face reports prompt-cache hits the way its real API does (oversight/model/prompt_cache.py
models the providers' side): OpenAI in `usage.prompt_tokens_details.cached_tokens`, for
the longest prefix of 1024+ tokens shared with an earlier prompt of the same
`prompt_cache_key`, in steps of 128; Anthropic and Gemini as described in
`oversight.testing_providers`.

Failures are injected per request: a scripted list of `Fault`s is consumed first, then an
optional fault plan (e.g. `RandomFaults`) is asked. A fault is an error status (with or
without Retry-After), a hang, a connection dropped before or during the reply, a 200 with
a broken JSON body, a 200 with no samples or blank text, or an error body that quotes the
request headers (as some proxies do). Every request body and its headers are logged.

Run it in a thread (`with FakeOpenAI() as srv:`) or as its own process for benchmarks:
`python -m oversight.testing --port 8765 --latency 0.1`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from oversight.model.prompt_cache import AutomaticPrefixCache


@dataclass(frozen=True)
class Fault:
    """One injected failure. Plain: an error `status` with the wire format's error body."""

    status: int = 500
    retry_after: float | None = None
    hang: bool = False  # never answer (the client's timeout fires)
    drop: bool = False  # close the connection without a response
    cut: bool = False  # promise a whole 200 reply, send half of it, then close
    broken: bool = False  # a 200 whose JSON body is cut short (a proxy's truncated reply)
    empty: Literal["samples", "text"] | None = None  # a 200 with no samples, or blank text
    echo_headers: bool = False  # the error body quotes every request header, secrets included
    body: dict[str, Any] | None = None  # the error body to send instead of the default

    @property
    def label(self) -> str:
        for name in ("hang", "drop", "cut", "broken", "echo_headers"):
            if getattr(self, name):
                return name
        if self.empty:
            return f"empty_{self.empty}"
        if self.retry_after is not None:
            return f"{self.status}+retry_after"
        return str(self.status)


_CREDENTIAL_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")

# A plan is asked for a fault once per request (after the scripted list runs out).
FaultPlan = Callable[[dict[str, Any]], Fault | None]


@dataclass
class RandomFaults:
    """Faults drawn at random with given rates, reproducibly.

    The draw for a request depends only on the seed, the request body and how many times
    that body was seen before, never on arrival order: so a concurrent run meets the same
    faults every time, and a retried request gets a fresh draw.
    """

    rates: Sequence[tuple[float, Fault]]
    seed: int = 0
    seen: Counter[str] = field(default_factory=Counter)

    def __call__(self, body: dict[str, Any]) -> Fault | None:
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        attempt = self.seen[digest]
        self.seen[digest] += 1
        u = random.Random(f"{self.seed}:{digest}:{attempt}").random()
        for rate, fault in self.rates:
            if u < rate:
                return fault
            u -= rate
        return None


# A reply is one text for every sample, or a list with one text per sample (`n`).
Reply = Callable[[dict[str, Any]], str | list[str]]


def _default_reply(body: dict[str, Any]) -> str:
    return "Answer: 1"


@dataclass
class LoopbackServer:
    """The HTTP/1.1 server and fault injection shared by every wire format; a subclass
    says what a success, an error and an empty reply look like."""

    latency_s: float = 0.0
    reply: Reply = _default_reply
    port: int = 0
    faults: list[Fault] = field(default_factory=list)  # consumed one per request, first
    fault_plan: FaultPlan | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)  # fault label -> times sent
    # Provider batch endpoints (see FakeBatch): every batch created, by id.
    batches: dict[str, FakeBatch] = field(default_factory=dict)
    batch_hold: bool = False  # batches stay in progress while set (a batch that takes hours)
    batch_polls_needed: int = 1  # polls that see a batch in progress before it runs
    batch_expire: int = 0  # the next N batches to run expire with only their first half answered
    batch_item_faults: list[int] = field(default_factory=list)  # statuses for the next requests run in batches
    batch_requests: list[dict[str, Any]] = field(default_factory=list)  # every request body run in a batch

    def __post_init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._batch_ids = itertools.count(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What a model card's base_url should be to reach this server."""
        return self.url

    # --- the wire format (subclasses) -------------------------------------------------

    def arrived(self, body: dict[str, Any], path: str) -> None:
        """Called as each request arrives, before any latency: a prompt cache looks a
        prompt up now and holds it only once answered (in `success`), so requests sent
        together all miss, as on a real server."""

    def success(self, body: dict[str, Any], path: str) -> dict[str, Any]:
        raise NotImplementedError

    def error(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"message": message}}

    def empty(self, body: dict[str, Any], path: str, kind: Literal["samples", "text"]) -> dict[str, Any]:
        raise NotImplementedError

    def texts(self, body: dict[str, Any], n: int) -> list[str]:
        reply = self.reply(body)
        texts = reply if isinstance(reply, list) else [reply] * n
        return [texts[i % len(texts)] for i in range(n)]

    def batch_route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes, str] | None:
        """A provider's batch endpoints: (status, body, content type), or None for any
        other request (answered as a single call)."""
        return None

    def new_batch(self, items: list[tuple[str, dict[str, Any]]], prefix: str) -> FakeBatch:
        with self._lock:
            # Numbered by a counter, not the dict's size: ids stay unique when a test deletes one.
            batch = FakeBatch(f"{prefix}{next(self._batch_ids)}", items)
            self.batches[batch.id] = batch
        return batch

    def advance(self, batch: FakeBatch, path_for: Callable[[dict[str, Any]], str]) -> None:
        """A poll: once `batch_polls_needed` polls have seen it in progress (and unless
        held), the batch runs: each request is answered, fails with a scripted status, or
        (if the batch expires) is never run."""
        with self._lock:
            if batch.ended or self.batch_hold:
                return
            batch.polls += 1
            if batch.polls < self.batch_polls_needed:
                return
            expire = self.batch_expire > 0
            self.batch_expire -= expire
            for i, (cid, body) in enumerate(batch.items):
                if expire and i >= len(batch.items) // 2:
                    batch.results.append((cid, 0, None))
                    continue
                self.batch_requests.append(body)
                if self.batch_item_faults:
                    status = self.batch_item_faults.pop(0)
                    batch.results.append((cid, status, self.error(status, f"scripted {status} in a batch")))
                else:
                    batch.results.append((cid, 200, self.success(body, path_for(body))))
            batch.ended = True
            batch.expired = expire

    # --- HTTP ---------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                method = line.decode("latin-1").split(" ")[0]
                path = line.decode("latin-1").split(" ")[1] if line.count(b" ") >= 2 else "/"
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body_bytes = await reader.readexactly(int(headers.get("content-length", "0")))
                routed = self.batch_route(method, path, headers, body_bytes)
                if routed is not None:
                    status, data, ctype = routed
                    writer.write((f"HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\n"
                                  f"content-length: {len(data)}\r\n\r\n").encode() + data)
                    await writer.drain()
                    continue
                body = json.loads(body_bytes or b"{}")
                with self._lock:
                    self.requests.append(body)
                    self.headers.append(headers)
                    self.paths.append(path)
                    self.arrived(body, path)
                    fault = self.faults.pop(0) if self.faults else None
                    if fault is None and self.fault_plan is not None:
                        fault = self.fault_plan(body)
                    if fault is not None:
                        self.injected[fault.label] += 1
                if fault and fault.drop:
                    break
                if fault and fault.hang:
                    await asyncio.sleep(3600)
                if self.latency_s:
                    await asyncio.sleep(self.latency_s)
                status, data, extra = self._respond(body, path, headers, fault)
                head = [f"HTTP/1.1 {status} X", "content-type: application/json",
                        f"content-length: {len(data)}", *extra]
                if fault and fault.cut:
                    data = data[: len(data) // 2]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
                await writer.drain()
                if fault and fault.cut:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Shutdown cancels hung handlers; ending normally keeps Python 3.11's stream
            # callback from logging the cancellation as an unhandled error.
            pass
        finally:
            writer.close()

    def _respond(
        self, body: dict[str, Any], path: str, headers: dict[str, str], fault: Fault | None
    ) -> tuple[int, bytes, list[str]]:
        if fault is None or fault.cut:
            return 200, json.dumps(self.success(body, path)).encode(), []
        if fault.broken:
            whole = json.dumps(self.success(body, path)).encode()
            return 200, whole[: len(whole) // 2], []
        if fault.empty:
            return 200, json.dumps(self.empty(body, path, fault.empty)).encode(), []
        extra = [f"retry-after: {fault.retry_after:g}"] if fault.retry_after is not None else []
        if fault.body is not None:
            payload = fault.body
        elif fault.echo_headers:
            # The credential first (as "Incorrect API key provided: ..." messages do), then
            # every header in header syntax, then all of them again as a JSON object.
            credential = next((headers[h] for h in _CREDENTIAL_HEADERS if h in headers), "")
            lines = "\n".join(f"{k}: {v}" for k, v in headers.items())
            payload = self.error(
                fault.status, f"credential {credential} is not valid; request headers were:\n{lines}"
            )
            payload["request_headers"] = dict(headers)
        else:
            payload = self.error(fault.status, f"scripted {fault.status}")
        return fault.status, json.dumps(payload).encode(), extra

    async def serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        async with self._server:
            await self._server.serve_forever()

    def __enter__(self) -> LoopbackServer:
        def target() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self.serve())
            except asyncio.CancelledError:
                pass
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop and self._server:
            loop = self._loop
            loop.call_soon_threadsafe(lambda: [t.cancel() for t in asyncio.all_tasks(loop)])
        if self._thread:
            self._thread.join(5)


@dataclass
class FakeBatch:
    """One batch on a fake server: its requests (custom id, provider request body) and,
    once run, a result for each: (custom id, status, body), status 0 and body None for a
    request the batch never ran (it expired)."""

    id: str
    items: list[tuple[str, dict[str, Any]]]
    tag: dict[str, Any] = field(default_factory=dict)  # metadata (OpenAI) or display name (Gemini)
    polls: int = 0
    ended: bool = False
    expired: bool = False
    results: list[tuple[str, int, dict[str, Any] | None]] = field(default_factory=list)


def _multipart_file(headers: dict[str, str], raw: bytes) -> bytes:
    """The `file` part of a multipart/form-data upload."""
    boundary = headers.get("content-type", "").split("boundary=", 1)[-1].strip('"').encode()
    for part in raw.split(b"--" + boundary):
        head, _, content = part.partition(b"\r\n\r\n")
        if b'name="file"' in head:
            return content[:-2] if content.endswith(b"\r\n") else content
    return b""


def _json(status: int, data: Any) -> tuple[int, bytes, str]:
    return status, json.dumps(data).encode(), "application/json"


@dataclass
class FakeOpenAI(LoopbackServer):
    """OpenAI Chat Completions (and so any OpenAI-compatible server)."""

    prompt_cache: AutomaticPrefixCache = field(default_factory=AutomaticPrefixCache)
    _cached_at_arrival: dict[int, int] = field(default_factory=dict, repr=False)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def __enter__(self) -> FakeOpenAI:
        super().__enter__()
        return self

    # --- the Batch API: POST /v1/files, POST /v1/batches, GET /v1/batches/ID, GET /v1/files/ID/content

    files: dict[str, bytes] = field(default_factory=dict)

    def batch_route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes, str] | None:
        route = path.split("?", 1)[0]
        if method == "POST" and route == "/v1/files":
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = _multipart_file(headers, raw)
            return _json(200, {"id": file_id, "object": "file", "bytes": len(self.files[file_id]), "created_at": 0,
                               "filename": "batch.jsonl", "purpose": "batch", "status": "processed"})
        if method == "POST" and route == "/v1/batches":
            spec = json.loads(raw)
            lines = [json.loads(x) for x in self.files[spec["input_file_id"]].decode().splitlines() if x.strip()]
            made = self.new_batch([(x["custom_id"], x["body"]) for x in lines], "batch_")
            made.tag = dict(spec.get("metadata") or {})
            return _json(200, self._batch_object(made, spec["input_file_id"]))
        if method == "GET" and route == "/v1/batches":
            listed = [self._batch_object(b, "") for b in reversed(self.batches.values())]  # newest first
            ends = (listed[0]["id"], listed[-1]["id"]) if listed else (None, None)
            return _json(200, {"object": "list", "data": listed, "has_more": False,
                               "first_id": ends[0], "last_id": ends[1]})
        if method == "GET" and route.startswith("/v1/batches/"):
            batch = self.batches.get(route.rsplit("/", 1)[-1])
            if batch is None:
                return _json(404, self.error(404, "no such batch"))
            self.advance(batch, lambda body: "/v1/chat/completions")
            return _json(200, self._batch_object(batch, ""))
        if method == "GET" and route.startswith("/v1/files/") and route.endswith("/content"):
            data = self.files.get(route.split("/")[3])
            if data is None:
                return _json(404, self.error(404, "no file"))
            return 200, data, "application/octet-stream"
        return None

    def _batch_object(self, batch: FakeBatch, input_file: str) -> dict[str, Any]:
        out: dict[str, Any] = {"id": batch.id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": None,
                               "input_file_id": input_file, "completion_window": "24h", "created_at": 0,
                               "status": "in_progress", "output_file_id": None, "error_file_id": None,
                               "metadata": batch.tag,
                               "request_counts": {"total": len(batch.items), "completed": 0, "failed": 0}}
        if not batch.ended:
            return out
        ok, bad = [], []
        for i, (cid, status, body) in enumerate(batch.results):
            if status == 200:
                ok.append({"id": f"batch_req_{i}", "custom_id": cid, "error": None,
                           "response": {"status_code": 200, "request_id": f"req_{i}", "body": body}})
            elif status:
                bad.append({"id": f"batch_req_{i}", "custom_id": cid, "error": None,
                            "response": {"status_code": status, "request_id": f"req_{i}", "body": body}})
            else:
                bad.append({"id": f"batch_req_{i}", "custom_id": cid, "response": None,
                            "error": {"code": "batch_expired", "message": "This request could not be executed "
                                      "before the completion window expired."}})
        for name, rows in (("output_file_id", ok), ("error_file_id", bad)):
            if rows:
                file_id = f"file-{batch.id}-{name[:3]}"
                self.files[file_id] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                out[name] = file_id
        out["status"] = "expired" if batch.expired else "completed"
        out["request_counts"] = {"total": len(batch.items), "completed": len(ok), "failed": len(bad)}
        return out

    @staticmethod
    def _cache_view(body: dict[str, Any]) -> tuple[str, str]:
        """(routing bucket, prompt text as the cache sees it: each message's role, then its content)."""
        text = "".join(f"{m.get('role')}\n{m.get('content')}\n" for m in body.get("messages", []))
        return str(body.get("prompt_cache_key", "")), text

    def arrived(self, body: dict[str, Any], path: str) -> None:
        self._cached_at_arrival[id(body)] = self.prompt_cache.lookup(*self._cache_view(body), commit=False)

    def success(self, body: dict[str, Any], path: str) -> dict[str, Any]:
        n = int(body.get("n") or 1)
        texts = self.texts(body, n)
        prompt_chars = sum(len(str(m.get("content"))) for m in body.get("messages", []))
        choices = [{"index": i, "message": {"role": "assistant", "content": texts[i]},
                    "finish_reason": "stop", "logprobs": self._logprobs(texts[i], body)}
                   for i in range(n)]
        prompt_tokens = prompt_chars // 4 + 1
        bucket, text = self._cache_view(body)
        cached = self._cached_at_arrival.pop(id(body), None)
        if cached is None:  # not received over HTTP (a direct call): looked up now
            cached = self.prompt_cache.lookup(bucket, text, commit=False)
        self.prompt_cache.commit(bucket, text)
        cached = min(prompt_tokens, cached)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 3 * n,
                 "total_tokens": prompt_tokens + 3 * n,
                 "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0}}
        return {"id": "cmpl-fake", "object": "chat.completion", "created": 0,
                "model": body.get("model", "fake"), "choices": choices, "usage": usage}

    def empty(self, body: dict[str, Any], path: str, kind: Literal["samples", "text"]) -> dict[str, Any]:
        reply = self.success(body, path)
        if kind == "samples":
            reply["choices"] = []
        else:
            reply["choices"][0]["message"]["content"] = ""
        return reply

    @staticmethod
    def _logprobs(text: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """When asked, token log-probabilities for the whole reply, split into words with
        their leading spaces (the tokens join back into the text): every "1" or "2" token
        gets P = 0.8 for itself and 0.2 for the other digit among its top alternatives."""
        if not body.get("logprobs") or not any(d in text for d in ("1", "2")):
            return None
        content: list[dict[str, Any]] = []
        for token in re.findall(r"\s*[^\s:]+|\s*:|\s+$", text):
            digit = token.strip()
            if digit in ("1", "2"):
                other = "2" if digit == "1" else "1"
                lead = token[: len(token) - len(digit)]
                top = [{"token": token, "logprob": -0.2231, "bytes": None},
                       {"token": lead + other, "logprob": -1.6094, "bytes": None}]
                content.append({"token": token, "logprob": -0.2231, "bytes": None, "top_logprobs": top})
            else:
                content.append({"token": token, "logprob": -0.01, "bytes": None, "top_logprobs": []})
        return {"content": content, "refusal": None}


def main() -> None:
    ap = argparse.ArgumentParser(description="loopback fake OpenAI server")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--latency", type=float, default=0.1)
    args = ap.parse_args()
    server = FakeOpenAI(latency_s=args.latency, port=args.port)
    print(f"listening on http://127.0.0.1:{args.port}/v1", flush=True)
    asyncio.run(server.serve())


if __name__ == "__main__":
    main()
