"""Live progress: a rich bar on a terminal, plain periodic lines otherwise (CI, logs)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


@dataclass
class Snapshot:
    done: int
    total: int
    errors: int
    calls: int
    cache_hits: int
    tokens: int
    cost_usd: float
    cached_input_tokens: int = 0  # part of `tokens` read from providers' prompt caches
    # Models waiting to retry (a 429's Retry-After, or backoff), with the wall-clock time
    # (epoch seconds) they wait until.
    backing_off: dict[str, float] = field(default_factory=dict)


class Reporter:
    """Call `update()` whenever work finishes; it decides how often to draw."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        label: str,
        stream: TextIO | None = None,
        interval_s: float = 5.0,
        simulated: bool = False,
    ) -> None:
        self.snapshot = snapshot
        self.stream = stream or sys.stderr
        self.interval_s = interval_s
        self.label = label + (" [simulated]" if simulated else "")
        self.start = time.monotonic()
        self._last = 0.0
        self.live = self.stream.isatty()
        self._progress: Progress | None = None
        self._task = None
        self._base = snapshot().done  # a resume's rate counts only its own episodes

    def _line(self, s: Snapshot) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        return (
            f"{s.done}/{s.total} episodes · {s.errors} errors · {s.calls} calls "
            f"({s.cache_hits} cached) · {s.tokens:,} tokens ({s.cached_input_tokens:,} prompt-cached) · "
            f"${s.cost_usd:.4f} · "
            f"{(s.done - self._base) / elapsed:.1f} ep/s"
            + self._waits(s)
        )

    @staticmethod
    def _waits(s: Snapshot) -> str:
        now = time.time()
        waiting = {m: t for m, t in s.backing_off.items() if t > now}
        if not waiting:
            return ""
        until = ", ".join(f"{m} until {time.strftime('%H:%M:%S %Z', time.localtime(t))}"
                          for m, t in sorted(waiting.items()))
        return f" · backing off (rate limit or errors): {until}"

    def __enter__(self) -> Reporter:
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.__enter__()
            s = self.snapshot()
            self._task = self._progress.add_task(self.label, total=s.total, stats="")  # type: ignore[assignment]
        else:
            print(f"{self.label}: starting", file=self.stream, flush=True)
        return self

    def update(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._progress is not None:
            if force or now - self._last >= 0.1:
                s = self.snapshot()
                self._progress.update(self._task, completed=s.done, total=s.total, stats=self._line(s))  # type: ignore[arg-type]
                self._last = now
        elif force or now - self._last >= self.interval_s:
            print(f"{self.label}: {self._line(self.snapshot())}", file=self.stream, flush=True)
            self._last = now

    def __exit__(self, *exc: object) -> None:
        self.update(force=True)
        if self._progress is not None:
            self._progress.__exit__(None, None, None)
