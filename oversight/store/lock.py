"""One writer per run directory: an OS-level lock held for the whole run.

`flock` locks belong to the open file, so the kernel drops them when the process dies,
however it dies: a lock left by a killed run never blocks its resume. The file keeps the
holder's PID only to name it in the error a second writer gets.
"""

from __future__ import annotations

import os
from pathlib import Path

from oversight.errors import OversightError
from oversight.store.safe_io import NOFOLLOW

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"


def holder(run_dir: Path) -> str | None:
    """The PID of the process that holds the run's lock now (a run, a resume, judge-ui),
    or None when nobody does. Looks without taking the lock, so a reader never blocks it."""
    path = run_dir / LOCK
    if fcntl is None or not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
    finally:
        os.close(fd)  # drops the shared lock if it was taken
    return None


class RunLock:
    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o644)
        except OSError as exc:
            raise OversightError(
                f"Cannot open the run lock {self.path}: {exc.strerror or exc}"
                f"{' (it is a symbolic link; remove it)' if self.path.is_symlink() else ''}."
            ) from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise OversightError(
                    f"{self.path.parent} is in use by another oversight run (PID {holder}). Two "
                    f"writers would make every call twice and interleave their records; wait for "
                    f"it to finish (or stop it), or write this run elsewhere with --out."
                ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
