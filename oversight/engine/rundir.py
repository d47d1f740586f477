"""Choosing, claiming and checking a run directory.

A new run writes spec.yaml and its identity (engine/identity.py) into manifest.json once.
`--resume` continues only a directory that holds a run, only with a spec that resolves to
the same identity, and never rewrites spec.yaml.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import oversight
from oversight.engine.identity import describe_differences, differences
from oversight.engine.spec import RunSpec
from oversight.errors import OversightError
from oversight.model import redact
from oversight.store.journal import JOURNAL
from oversight.store.safe_io import write_file

MANIFEST = "manifest.json"


def new_run_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{os.getpid() % 10000:04d}"


def holds_run(d: Path) -> bool:
    return (d / MANIFEST).exists() or (d / JOURNAL).exists()


def _latest_run(spec: RunSpec) -> Path | None:
    base = Path("runs") / spec.name
    dirs = sorted((d for d in base.glob("*") if holds_run(d) and not d.is_symlink()), key=lambda d: d.name)
    return dirs[-1] if dirs else None


def choose_run_dir(spec: RunSpec, out: str | Path | None, resume: bool) -> Path:
    """The directory this invocation writes, created; errors for a mismatch of intent."""
    if out is not None:
        d = Path(out)
        if resume and not holds_run(d):
            raise OversightError(
                f"--resume: {d} holds no run to resume (no {MANIFEST} or {JOURNAL}). Drop --resume "
                f"to start a new run there, or point --out at the directory of the run to finish."
            )
    elif resume:
        latest = _latest_run(spec)
        if latest is None:
            raise OversightError(f"--resume: no earlier run of '{spec.name}' under runs/{spec.name}/ to resume.")
        d = latest
    else:
        d = Path("runs") / spec.name / new_run_id()
        # Two runs started within the same second (a notebook cell run twice) get ~2, ~3, …
        n = 1
        while holds_run(d) or d.exists():
            n += 1
            d = d.with_name(f"{d.name.split('~')[0]}~{n}")
    if holds_run(d) and not resume:
        raise OversightError(
            f"{d} already holds a run. Add --resume to finish it, or choose another --out directory."
        )
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OversightError(f"Cannot create the run directory {d}: {exc.strerror or exc}.") from None
    if not os.access(d, os.W_OK):
        raise OversightError(f"Cannot write to the run directory {d}: permission denied.")
    return d


LATEST = "latest"


def point_latest(run_dir: Path) -> None:
    """runs/NAME/latest → the newest run of NAME (a relative link, swapped in atomically),
    so `oversight report runs/NAME/latest` needs no run id. Best effort: a file system
    without links keeps working without it."""
    link = run_dir.parent / LATEST
    if link.exists() and not link.is_symlink():
        return  # a real folder named "latest": never replaced
    tmp = run_dir.parent / f".{LATEST}.{os.getpid()}"
    try:
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def read_manifest(d: Path) -> dict[str, Any]:
    try:
        data = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise OversightError(f"{d / MANIFEST} cannot be read ({exc}); the run's identity is unknown.") from None
    return data if isinstance(data, dict) else {}


def check_same_experiment(d: Path, old: dict[str, Any], identity: dict[str, Any], command: str) -> None:
    """Refuse to resume a run whose spec resolves differently (before any call)."""
    if "identity" not in old:
        raise OversightError(
            f"--resume: {d / MANIFEST} records no run identity (the run was started by an older "
            f"version of oversight, or its manifest is missing), so it cannot be checked that this "
            f"spec is the same experiment. Start a new run instead: `{command}` without --resume "
            f"and with a new --out."
        )
    diffs = differences(old["identity"], identity)
    if diffs:
        raise OversightError(
            f"--resume: this spec resolves differently from the run in {d}, so its rows would mix "
            f"two experiments. What differs (old → new): {describe_differences(diffs)}. To run the "
            f"new settings, start a new run: `{command}` without --resume and with another --out "
            f"(or none). To finish the old run, resume it with its own spec: "
            f"`oversight run {d / 'spec.yaml'} --resume --out {d}`."
        )


def write_json(path: Path, data: dict[str, Any]) -> None:
    # allow_nan=False: a non-finite number must never reach manifest.json as bare `Infinity`.
    text = redact.scrub_known(json.dumps(data, indent=2, default=str, allow_nan=False))
    write_file(path, text, root=path.parent)


def git_commit() -> str | None:
    src = Path(oversight.__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
