"""The append-only run journal: one JSON line per finished piece of work.

Each record is written with a single write() and flushed, so a process killed at any
instant leaves every finished record on disk; at worst the last line is torn. Opening the
journal for appending first cuts such a torn tail off (and says how many bytes), so the
next record starts on a line of its own instead of being glued to the fragment and lost.

Records: `episode` (a judged instance: its row, turns and calls), `transcript` (a shared
debate transcript), `pass` (one invocation's accounting, written when it ends), `prompt`
(one prompt, journaled as it is sent). Any record may carry `prompts`: prompts that no
earlier record holds, by prompt_id (the content hash the calls refer to), so each distinct
prompt is in the journal once. Runs now journal every prompt in a `prompt` record of its
own as it is sent, so that no prompt waits in memory for its episode to end; journals from
before, whose episode and transcript records carry their prompts, read the same.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oversight.errors import OversightError
from oversight.store.safe_io import open_append

JOURNAL = "journal.jsonl"


class JournalWriteError(OversightError):
    """The journal could not be written (a full disk, a file-size limit): the run must stop."""


def cut_torn_tail(path: Path) -> int:
    """Truncate a final line that has no newline (a write cut short); return bytes removed."""
    try:
        f = open(path, "rb+")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return 0
    with f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        # Walk back in blocks to the last newline.
        pos = size
        keep = 0
        while pos > 0:
            start = max(0, pos - 65536)
            f.seek(start)
            block = f.read(pos - start)
            nl = block.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            pos = start
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
        return size - keep


@dataclass
class Written:
    """What this invocation has journaled, for its accounting."""

    calls: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


class Journal:
    def __init__(self, run_dir: Path, known_prompts: set[str] | None = None,
                 scrub: Callable[[str], str] | None = None) -> None:
        # The last guard of every record: the caller's scrubber (model/redact.py: every
        # value the process knows to be secret) over the whole line.
        self._scrub = scrub
        self.path = run_dir / JOURNAL
        try:
            self.torn_bytes = cut_torn_tail(self.path)
            self._fd = open_append(self.path, root=run_dir)
        except OSError as exc:
            raise JournalWriteError(f"Cannot open the run journal {self.path}: {exc.strerror or exc}.") from None
        self._prompts = set(known_prompts or ())
        self.written = Written()
        self.failed: str | None = None

    def write(self, record: dict[str, Any], prompts: dict[str, str] | None = None) -> None:
        if prompts:
            new = {k: v for k, v in prompts.items() if k not in self._prompts}
            if new:
                record["prompts"] = new
        text = json.dumps(record, default=str, separators=(",", ":"), ensure_ascii=False) + "\n"
        line = (self._scrub(text) if self._scrub is not None else text).encode("utf-8")
        try:
            # One write() of the whole line on the unbuffered descriptor: nothing waits in a
            # buffer, and a kill can at worst tear this one line.
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            self.failed = f"Cannot write the run journal {self.path}: {exc.strerror or exc}"
            raise JournalWriteError(self.failed + ".") from None
        if prompts:
            self._prompts.update(record.get("prompts", {}))
        for c in record.get("calls", ()):
            self.written.calls += 1
            if not c.get("cache_hit"):
                self.written.cost_usd += c.get("cost_usd") or 0.0
                self.written.input_tokens += c.get("input_tokens") or 0
                self.written.output_tokens += c.get("output_tokens") or 0

    def write_prompt(self, prompt_id: str, messages: str) -> None:
        """Journal a prompt as it is sent, unless the journal already holds it."""
        if prompt_id not in self._prompts:
            self.write({"type": "prompt"}, {prompt_id: messages})

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            os.fsync(self._fd)
        except OSError:
            pass  # already reported by write(); the records that made it are on disk
        finally:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


@dataclass
class JournalScan:
    records: list[dict[str, Any]] = field(default_factory=list)
    unreadable: int = 0  # lines that are not a JSON object (damaged by hand or by a bug)


class JournalReader:
    """The journal's records one at a time (a full-size run's journal is too big to hold
    parsed); `unreadable` counts the lines skipped so far."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / JOURNAL
        self.unreadable = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    self.unreadable += 1
                    continue
                if isinstance(record, dict):
                    yield record
                else:
                    self.unreadable += 1


def scan_journal(run_dir: Path) -> JournalScan:
    reader = JournalReader(run_dir)
    records = list(reader)
    return JournalScan(records, reader.unreadable)


def read_journal(run_dir: Path) -> Iterator[dict[str, Any]]:
    yield from JournalReader(run_dir)


def journal_prompts(run_dir: Path) -> Iterator[tuple[str, str]]:
    """Each distinct prompt the journal holds, (prompt_id, messages JSON), in journal order."""
    seen: set[str] = set()
    for record in JournalReader(run_dir):
        prompts = record.get("prompts")
        if not isinstance(prompts, dict):
            continue
        for pid, blob in prompts.items():
            if pid not in seen and isinstance(blob, str):
                seen.add(pid)
                yield pid, blob
