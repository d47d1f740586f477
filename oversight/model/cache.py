"""The on-disk response cache: one JSON file per call, keyed by the call's content.

Writes are atomic (temporary file + rename), so a process killed mid-write leaves either
the old state or the complete entry, never a torn file. A response is cached as soon as it
arrives, which is what lets `--resume` repeat no finished call.

A cache that cannot be read or written (a full or read-only disk) never fails a call: the
first failure is reported once through `warn` and the cache stops doing what failed, so the
run goes on uncached. `read` and `write` are the run's `--cache` setting.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import platformdirs

from oversight.model.types import GenerateResponse
from oversight.store.safe_io import write_all


def default_cache_dir() -> Path:
    env = os.environ.get("OVERSIGHT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("oversight")) / "calls"


def cache_key(identity: dict[str, Any], payload: dict[str, Any]) -> str:
    blob = json.dumps({"id": identity, "req": payload}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


CACHE_MODES = ("on", "off", "read", "write")


class ResponseCache:
    def __init__(
        self,
        root: Path | None = None,
        *,
        read: bool = True,
        write: bool = True,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.read = read
        self.write = write
        self._warn = warn
        self._made: set[str] = set()
        self._root = str(self.root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._fail("created", exc)

    @staticmethod
    def for_mode(
        root: Path | None, mode: str, warn: Callable[[str], None] | None = None
    ) -> ResponseCache | None:
        if mode not in CACHE_MODES:
            raise ValueError(f"cache mode must be one of {CACHE_MODES}, got {mode!r}")
        if mode == "off":
            return None
        return ResponseCache(root, read=mode in ("on", "read"), write=mode in ("on", "write"), warn=warn)

    def _fail(self, what: str, exc: OSError) -> None:
        """Stop using the cache for what failed, and say so once."""
        was = (self.read, self.write)
        if what in ("created", "read"):
            self.read = False
        if what in ("created", "written"):
            self.write = False
        if was != (self.read, self.write) and self._warn is not None:
            reason = exc.strerror or type(exc).__name__
            rest = "uncached" if what != "read" else "without reading the cache"
            self._warn(f"the response cache at {self.root} could not be {what} ({reason}); this run "
                       f"continues {rest}, so a resume may repeat calls of unfinished episodes.")

    def _path(self, key: str) -> str:
        # Plain strings: pathlib costs more than the write itself at thousands of calls a second.
        return os.path.join(self._root, key[:2], key + ".json")

    def get(self, key: str) -> GenerateResponse | None:
        if not self.read:
            return None
        try:
            with open(self._path(key), encoding="utf-8") as f:
                return GenerateResponse.from_json(json.load(f))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, UnicodeDecodeError):
            return None  # a damaged entry is treated as absent and rewritten
        except OSError as exc:
            self._fail("read", exc)
            return None

    def put(self, key: str, response: GenerateResponse) -> None:
        if not self.write:
            return
        path = self._path(key)
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            if key[:2] not in self._made:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                self._made.add(key[:2])
            write_all(tmp, json.dumps(response.to_json()).encode("utf-8"))
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            self._fail("written", exc)
