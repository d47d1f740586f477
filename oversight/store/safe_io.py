"""The one way oversight writes a file: never through a symbolic link, never outside its folder.

Run directories are shared (copied, unpacked from archives, mounted), so a file found in one
may be a link planted to point anywhere. Every output is written to a new file created with
O_EXCL in the target's own folder and renamed over the target; a rename replaces a link
itself, never what it points at. Appends (the journals) open with O_NOFOLLOW. The folder a
file is written into must not be a link either, and with `root` given it must lie inside it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

from oversight.errors import OversightError

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # POSIX; elsewhere links need privileges to make


class UnsafePathError(OversightError):
    """A write would follow a symbolic link or land outside its run directory."""


def _linked_part(path: Path, root: Path | None) -> Path | None:
    """The first component of `path`'s folder (below `root`, or all of it) that is a symlink."""
    parent = Path(os.path.abspath(path.parent))
    start = Path(os.path.abspath(root)) if root is not None else None
    parts = [parent, *parent.parents]
    for p in parts:
        if start is not None and (p == start or start not in p.parents):
            # At or above the root: the root itself may be reached through a link the user made.
            break
        if p.is_symlink():
            return p
    return None


def check_target(path: Path, root: Path | None = None) -> None:
    """Refuse a write into a linked folder, or (with `root`) outside `root`."""
    path = Path(path)
    if root is not None:
        real_root = Path(os.path.realpath(root))
        real_parent = Path(os.path.realpath(path.parent))
        if real_parent != real_root and real_root not in real_parent.parents:
            raise UnsafePathError(
                f"Refusing to write {path}: its folder resolves to {real_parent}, outside {root}. "
                f"A symbolic link inside the run directory points elsewhere; remove it and retry."
            )
    linked = _linked_part(path, root)
    if linked is not None and root is not None:
        raise UnsafePathError(
            f"Refusing to write {path}: {linked} is a symbolic link (to {os.readlink(linked)}). "
            f"oversight never writes through links found in a run directory; remove it and retry."
        )


@contextlib.contextmanager
def replacing(path: Path, root: Path | None = None) -> Iterator[Path]:
    """A fresh temporary path beside `path`; renamed over `path` when the block succeeds."""
    path = Path(path)
    check_target(path, root)
    # The suffix stays last: writers such as savefig and write_eval_log choose a format by it.
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o644)
    os.close(fd)
    try:
        yield tmp
        if tmp.is_symlink() or not tmp.is_file():
            raise UnsafePathError(f"Refusing to write {path}: its temporary file {tmp} was replaced.")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()


def write_file(path: Path, data: str | bytes, root: Path | None = None) -> None:
    """Write `data` as the whole new content of `path` (a link there is replaced, not followed)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with replacing(path, root) as tmp:
        write_all(tmp, raw)


def write_all(path: str | Path, data: bytes) -> None:
    """`data` as the whole content of the file `path` (created if need be, never through a
    link), in unbuffered writes: a file object costs more than the write at thousands a second."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def write_with(path: Path, writer: Callable[[Path], object], root: Path | None = None) -> None:
    """Let a library writer (to_parquet, savefig, …) fill a fresh file, then rename it into place."""
    with replacing(path, root) as tmp:
        writer(tmp)


def open_append(path: Path, root: Path | None = None) -> int:
    """An O_APPEND descriptor on `path` that refuses a link (an append must not follow one)."""
    check_target(Path(path), root)
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW, 0o644)
    except OSError as exc:
        if Path(path).is_symlink():
            raise UnsafePathError(
                f"Refusing to append to {path}: it is a symbolic link (to {os.readlink(path)}). "
                f"oversight never writes through links found in a run directory; remove it and retry."
            ) from None
        raise exc
