"""The sha256 of model files (weights, tokenizer, config), for a run's identity.

Hashing a folder of weights reads every byte: about a second per GB here, so minutes for a
large model, repeated at every `validate`, run and `--resume`. Each file's hash is kept in
`file-sha256.json` in the oversight cache folder (`$OVERSIGHT_CACHE_DIR`, else the user
cache directory), under its absolute path with its size and modification time; a file whose
size or mtime changed is hashed again, so new weights saved over old ones are never taken
for the old ones (a tool that rewrites a file keeping both its size and its mtime to the
nanosecond would defeat this; none of the usual savers does). Within one process the
answers are also kept in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from oversight.model.cache import default_cache_dir

_memory: dict[str, str] = {}


def cache_file() -> Path:
    env = os.environ.get("OVERSIGHT_CACHE_DIR")
    # Beside the response cache (whose default folder is .../oversight/calls).
    return (Path(env).expanduser() if env else default_cache_dir().parent) / "file-sha256.json"


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _read_store(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # absent or damaged: hashed again and rewritten
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _write_store(path: Path, store: dict[str, str]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    # A cache: a folder that cannot be written only costs hashing again next time.
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(store, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_files(files: list[Path]) -> dict[Path, str]:
    """Each file's sha256, from the cache where its stamp (absolute path, size, mtime) is
    unchanged."""
    stamps = {f: _stamp(f) for f in files}
    missing = [f for f, s in stamps.items() if s not in _memory]
    if missing:
        store = _read_store(cache_file())
        todo = [f for f in missing if stamps[f] not in store]
        for f in todo:
            store[stamps[f]] = sha256_file(f)
        _memory.update({stamps[f]: store[stamps[f]] for f in missing})
        if todo:
            # Entries of files since changed or deleted would only grow the file.
            live = {k: v for k, v in store.items() if Path(k.rsplit("|", 2)[0]).exists()}
            _write_store(cache_file(), live)
    return {f: _memory[stamps[f]] for f in files}


def folder_sha256(folder: Path) -> str:
    """One hash over every file in a model folder (names and contents; files and folders whose
    names start with '.' left out, e.g. a `.cache` a downloader keeps there)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    hashes = sha256_files(files)
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(folder).as_posix()}\0{hashes[f]}\n".encode())
    return h.hexdigest()
