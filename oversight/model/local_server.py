"""A managed local model: llama.cpp's own HTTP server, started for a run and stopped after it.

A card with `gguf:` (a GGUF file, or a packaged model's short name; oversight/model/gguf.py)
instead of a `base_url` gets a server of its own: llama.cpp's server as the prebuilt
`xllamacpp` wheel embeds it (`pip install 'oversight[local]'`), in a child process, on a
free loopback port. The run waits until the model is loaded, then talks to it like any
`llama_cpp` server.

The child stops when the run ends, on Ctrl-C, on an exception, and when the harness is
killed outright, in three independent ways: on Linux the kernel kills it with its parent
(PR_SET_PDEATHSIG, even on `kill -9`); everywhere it blocks reading its stdin, a pipe only
the harness holds, and exits when that pipe closes; and a watchdog thread in it exits as
soon as its parent process is no longer the harness that started it (told by pid), which
holds even if another process kept the pipe open. It runs in a session of its own, so a
Ctrl-C in the terminal reaches the harness, which stops it.

Server settings from the card: `threads` (llama.cpp's own default when null),
`context_window` (tokens per request; default the model's trained context, at most
DEFAULT_MAX_CONTEXT), one slot per `max_concurrency` up to MAX_SLOTS (llama.cpp divides its
context among its slots, so it is given `context_window` × slots), and `chat_template` (a
llama.cpp built-in template name such as `gemma`, for a GGUF that carries none).

What the run's identity records (oversight/engine/identity.py, and each call's cache key):
the model file's sha256 and the server library's version, never the port.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from oversight.errors import OversightError
from oversight.model import gguf
from oversight.model.card import ModelCard

DEFAULT_MAX_CONTEXT = 8192
MAX_SLOTS = 8
START_TIMEOUT_S = 600.0  # loading a large model from a slow disk


def server_version() -> str | None:
    try:
        return importlib.metadata.version("xllamacpp")
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class ServerConfig:
    model: str  # the GGUF file
    threads: int | None
    context_window: int  # per slot
    slots: int
    chat_template: str | None

    def argv(self) -> list[str]:
        # The harness's pid lets the child notice when it has been orphaned.
        return [sys.executable, "-m", "oversight.model.llama_serve",
                json.dumps({**self.__dict__, "parent": os.getpid()})]


def config_for(card: ModelCard, where: str = "card") -> ServerConfig:
    """How the card's model is served (the file found, the defaults filled in)."""
    assert card.gguf is not None
    path = gguf.resolve(card.gguf, where)
    meta = gguf.header(path)
    trained = gguf.trained_context(meta)
    window = card.context_window or min(trained or DEFAULT_MAX_CONTEXT, DEFAULT_MAX_CONTEXT)
    template = card.chat_template
    packaged = gguf.PACKAGED.get(card.gguf)
    if template is None and "tokenizer.chat_template" not in meta and packaged is not None:
        template = packaged.chat_template
    return ServerConfig(str(path), card.threads, window, min(card.max_concurrency, MAX_SLOTS), template)


def identity(card: ModelCard) -> dict[str, Any]:
    """What of a managed model shapes its replies: the weights, the server, the template."""
    assert card.gguf is not None
    cfg = config_for(card)
    return {"gguf_sha256": gguf.sha256(Path(cfg.model)), "server": f"xllamacpp {server_version()}",
            "chat_template": cfg.chat_template, "context_window": cfg.context_window}


@dataclass
class _Child:
    config: ServerConfig
    process: subprocess.Popen[str]
    log: IO[str]
    url: str = ""


@dataclass
class LocalServers:
    """The servers of one run, one per distinct model file and setting."""

    stream: TextIO = sys.stderr
    children: dict[ServerConfig, _Child] = field(default_factory=dict)

    def start(self, cards: dict[str, ModelCard]) -> dict[str, ModelCard]:
        """The cards with every managed model's `base_url` pointing at its running server."""
        out = dict(cards)
        for label, card in cards.items():
            if card.gguf is None:
                continue
            if server_version() is None:
                raise OversightError(
                    f"Model '{label}' names a GGUF file (gguf: {card.gguf}), which needs llama.cpp's server: "
                    f"install it with `pip install 'oversight[local]'` (the prebuilt xllamacpp wheel)."
                )
            cfg = config_for(card, f"model '{label}'")
            child = self.children.get(cfg) or self._launch(label, cfg)
            out[label] = card.model_copy(update={"base_url": f"{child.url}/v1"})
        return out

    def _launch(self, label: str, cfg: ServerConfig) -> _Child:
        print(f"starting llama.cpp for '{label}' ({Path(cfg.model).name}, context {cfg.context_window}, "
              f"{cfg.slots} slot(s), threads {cfg.threads or 'default'})", file=self.stream, flush=True)
        # Open as long as the server runs (closed in stop()); its tail explains a failed start.
        log = tempfile.TemporaryFile("w+", prefix="oversight-llama-", suffix=".log")  # noqa: SIM115
        started = time.monotonic()
        process = subprocess.Popen(cfg.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                   text=True, start_new_session=True,
                                   preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        child = _Child(cfg, process, log)
        self.children[cfg] = child
        assert process.stdout is not None
        line = _read_line(process.stdout, START_TIMEOUT_S)
        try:
            child.url = str(json.loads(line)["url"]).rstrip("/")
        except (ValueError, KeyError, TypeError):
            self.stop()
            raise OversightError(
                f"llama.cpp could not serve '{label}' ({cfg.model}): {_tail(log) or 'it exited without a word'}"
            ) from None
        print(f"llama.cpp for '{label}' is ready at {child.url} ({time.monotonic() - started:.1f} s)",
              file=self.stream, flush=True)
        return child

    def stop(self) -> None:
        for child in self.children.values():
            with contextlib.suppress(OSError):
                if child.process.stdin is not None:
                    child.process.stdin.close()
            try:
                child.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            child.log.close()
        self.children.clear()

    def __enter__(self) -> LocalServers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child, on Linux: the kernel sends it SIGKILL when the harness dies, kill -9
    included (PR_SET_PDEATHSIG); the closed stdin pipe is the portable second way out."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _read_line(stream: IO[str], timeout: float) -> str:
    """The child's first line (its address), or "" if it exits or the time runs out."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return stream.readline()


def _tail(log: IO[str], lines: int = 8) -> str:
    log.seek(0)
    text = [ln.strip() for ln in log.read().splitlines() if ln.strip()]
    wanted = [ln for ln in text if any(w in ln.lower() for w in ("error", "failed", "unable", "invalid"))]
    return " | ".join((wanted or text)[-lines:])


def server_context_window(card: ModelCard, timeout: float = 3.0) -> int | None:
    """The context window a running local server reports (llama.cpp's `/props`, vLLM's
    `max_model_len` in `/v1/models`), or None when it does not say or cannot be reached."""
    if not card.base_url or card.provider not in ("llama_cpp", "vllm"):
        return None
    import httpx2 as httpx

    root = card.base_url.rstrip("/").removesuffix("/v1")
    try:
        with httpx.Client(timeout=timeout) as client:
            if card.provider == "llama_cpp":
                props = client.get(f"{root}/props").json()
                settings = props.get("default_generation_settings") or {}
                value = settings.get("n_ctx") or props.get("n_ctx")
            else:
                models = client.get(f"{root}/v1/models").json().get("data") or []
                value = next((m.get("max_model_len") for m in models if m.get("id") == card.model), None)
    except (httpx.HTTPError, ValueError, AttributeError, OSError):
        return None
    return int(value) if isinstance(value, int) and value > 0 else None


def context_window(card: ModelCard) -> int | None:
    """A model's context window in tokens: the card's, a managed server's, or what its
    server reports; None when nothing says."""
    if card.context_window:
        return card.context_window
    if card.gguf is not None:
        return config_for(card).context_window
    return server_context_window(card)

