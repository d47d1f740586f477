"""Run untrusted Python (model-written programs) in a sandbox and report what happened.

The boundary is bubblewrap (see `sandbox_bwrap`): separate mount, PID, IPC, UTS, network
and (where allowed) user namespaces, uid 65534 (on the host too) without capabilities, a
read-only view of only what the interpreter needs, a private size-capped tmpfs as working directory, no inherited
environment, and a wall-clock kill of the whole PID namespace. Inside it the launcher
(`sandbox_guard`) sets rlimits (CPU seconds, address space, file size, open files,
processes) and installs the in-process guard, a second layer that turns a careless
program's socket, subprocess or stray-file call into a readable `blocked` entry.

`SandboxResult.isolation` lists the layers in force: `bwrap`, `userns`, `pidns`, `netns`,
`ipcns`, `utsns`, `mountns`, `uid` (the host uid is not root), `rlimits`, `nproc`,
`seccomp`, `guard`.

Where bwrap is missing or cannot run, `run_python` refuses with an `OversightError` unless
the caller passes `unsafe=True` (the CLI's `--unsafe-sandbox`); then it prints a loud
warning once and uses the old in-process path: an `unshare -n` network namespace when
possible, `nobody` when started as root and the interpreter allows it, the rlimits and the
guard, which a determined program can switch off.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oversight.errors import OversightError
from oversight.task import sandbox_bwrap
from oversight.task.sandbox_guard import (
    LAUNCHER,
    NOBODY,
    SAFE_PATH,
    inproc_read_roots,
    netns_prefix,
    nobody_can_run_python,
)

__all__ = ["NOBODY", "Limits", "SandboxResult", "require_sandbox", "run_python", "run_python_async", "sandbox_problem"]


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 10
    wall_s: float = 20.0
    memory_mb: int = 1024
    output_bytes: int = 1_000_000  # per stream, and the largest file the program may write
    open_files: int = 64
    network_namespace: bool = True  # in-process path only: try `unshare -n` (bwrap always has one)
    drop_privileges: bool = True  # in-process path: when started as root, run as `nobody` (bwrap always does)
    processes: int = 0  # processes or threads the program may start (bwrap; the guard refuses them anyway)
    tmp_mb: int = 64  # size of the private /tmp (bwrap)
    guard: bool = True  # the in-process audit-hook layer (off: bwrap alone, e.g. to test it)


@dataclass
class SandboxResult:
    ok: bool  # exited 0, not killed, no timeout
    stdout: str
    stderr: str
    returncode: int | None  # negative: killed by that signal
    timed_out: bool
    # wall_timeout | cpu_time | memory | output_limit | blocked | start_failed | signal:NAME
    killed_reason: str | None
    blocked: list[str] = field(default_factory=list)  # guard refusals, e.g. "socket.connect"
    isolation: list[str] = field(default_factory=list)  # layers that were in force
    duration_s: float = 0.0


_BWRAP_LAYERS = ["bwrap", "userns", "pidns", "netns", "ipcns", "utsns", "mountns", "uid", "seccomp"]
_warned_unsafe = threading.Event()


def sandbox_problem() -> str | None:
    """Why bubblewrap cannot be used on this machine, or None when it can."""
    found = sandbox_bwrap.plan()
    return found if isinstance(found, str) else None


def require_sandbox(unsafe: bool = False) -> None:
    """Refuse (OversightError) unless model code can run under bubblewrap; with `unsafe`,
    warn loudly instead (once per process)."""
    problem = sandbox_problem()
    if problem is None:
        return
    if not unsafe:
        raise OversightError(
            f"Model-written programs run only inside a bubblewrap sandbox, and it cannot be used "
            f"here: {problem}. Install it (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora: "
            f"`dnf install bubblewrap`) and make sure user namespaces are allowed (sysctl "
            f"user.max_user_namespaces above 0; on Ubuntu 24.04 also an AppArmor profile for bwrap or "
            f"kernel.apparmor_restrict_unprivileged_userns=0), or build as root. To run the programs anyway under the "
            f"weaker in-process guard, which a determined program can escape, pass --unsafe-sandbox."
        )
    if not _warned_unsafe.is_set():
        _warned_unsafe.set()
        print(
            f"WARNING: --unsafe-sandbox: bubblewrap cannot be used ({problem}). Model-written programs "
            f"now run with only an in-process guard and rlimits, which a determined program can escape "
            f"to read your files and API keys, write anywhere you can and reach the network. Use this "
            f"only with models you trust, on a machine with nothing to lose.",
            file=sys.stderr,
        )


def run_python(source: str, limits: Limits | None = None, stdin: str = "", *, unsafe: bool = False) -> SandboxResult:
    """Run `source` as a program in the sandbox and wait for it (blocking)."""
    lim = limits or Limits()
    require_sandbox(unsafe)
    found = sandbox_bwrap.plan()
    outer = Path(tempfile.mkdtemp(prefix="oversight-sbx-"))
    stage = Path(tempfile.mkdtemp(prefix="oversight-sbx-ro-"))
    try:
        with contextlib.ExitStack() as stack:
            if isinstance(found, sandbox_bwrap.Plan):
                return _run_bwrap(found, source, lim, stdin, outer, stage, stack)
            return _run_inproc(source, lim, stdin, outer, stack)
    finally:
        shutil.rmtree(outer, ignore_errors=True)
        shutil.rmtree(stage, ignore_errors=True)


async def run_python_async(
    source: str, limits: Limits | None = None, stdin: str = "", *, unsafe: bool = False
) -> SandboxResult:
    """`run_python` off the event loop, for callers that run many programs concurrently."""
    import asyncio

    return await asyncio.to_thread(run_python, source, limits, stdin, unsafe=unsafe)


def _config(lim: Limits, status_fd: int, **extra: Any) -> dict[str, Any]:
    return {
        "status_fd": status_fd,
        "uid": NOBODY,
        "cpu": max(1, int(lim.cpu_s)),
        "mem": lim.memory_mb * 1024 * 1024,
        "fsize": lim.output_bytes,
        "nofile": lim.open_files,
        "guard": lim.guard,
        **extra,
    }


def _streams(stack: contextlib.ExitStack) -> dict[str, Any]:
    """The program's stdout, stderr and status fd: anonymous memory files, so that the links
    in its /proc/self/fd name no host path."""
    return {n: stack.enter_context(os.fdopen(os.memfd_create(f"oversight-{n}"), "w+b"))
            for n in ("stdout", "stderr", "status")}


def _run_bwrap(
    plan: sandbox_bwrap.Plan, source: str, lim: Limits, stdin: str, outer: Path, stage: Path,
    stack: contextlib.ExitStack,
) -> SandboxResult:
    files = _streams(stack)
    status_fd = files["status"].fileno()
    (outer / "main.py").write_text(source, encoding="utf-8")
    (outer / "launcher.py").write_text(LAUNCHER, encoding="utf-8")
    uid = plan.new_uid()
    fds = sandbox_bwrap.data_files(outer, uid)
    fds["program"] = os.open(outer / "main.py", os.O_RDONLY)
    fds["launcher"] = os.open(outer / "launcher.py", os.O_RDONLY)
    info_r, fds["info"] = os.pipe()
    # Without a user namespace (mode setuid) bwrap's own monitor process, outside the PID
    # namespace and so not counted by the launcher, runs as the same uid.
    budget = max(0, lim.processes) + (0 if plan.userns else 1)
    cfg = _config(
        lim, status_fd, drop=False, host_root=False, pidns=True, processes=budget,
        nproc_effective=True, root=sandbox_bwrap.HOME, read=plan.read_roots(),
    )
    inner = [plan.python, "-I", "-B", sandbox_bwrap.LAUNCHER_PATH, json.dumps(cfg)]
    cmd = sandbox_bwrap.command(plan, stage, fds, lim.tmp_mb << 20, inner, uid)
    layers = [x for x in _BWRAP_LAYERS if plan.userns or x != "userns"]
    return _launch(cmd, dict(sandbox_bwrap.LAUNCH), (status_fd, *fds.values()), tuple(fds.values()), info_r, files,
                   lim, stdin, layers)


def _run_inproc(source: str, lim: Limits, stdin: str, outer: Path, stack: contextlib.ExitStack) -> SandboxResult:
    work = outer / "work"
    work.mkdir()
    (work / "main.py").write_text(source, encoding="utf-8")
    (outer / "run.py").write_text(LAUNCHER, encoding="utf-8")
    host_root = os.geteuid() == 0
    drop = host_root and lim.drop_privileges and nobody_can_run_python()
    if drop:
        os.chown(work, NOBODY, NOBODY)
        os.chmod(outer, 0o711)  # nobody may reach work/ but not list outer/
    prefix = netns_prefix() if lim.network_namespace else ()
    files = _streams(stack)
    status_fd = files["status"].fileno()
    cfg = _config(
        lim, status_fd, drop=drop, host_root=host_root, pidns=False, processes=0,
        nproc_effective=not host_root, root=str(work), read=inproc_read_roots(),
    )
    env = dict(sandbox_bwrap.ENV, HOME=str(work), TMPDIR=str(work))
    cmd = [*prefix, sys.executable, "-I", "-B", str(outer / "run.py"), json.dumps(cfg)]
    return _launch(cmd, {"cwd": work, "env": env}, (status_fd,), (), None, files, lim, stdin,
                   ["netns"] if prefix else [])


def _launch(
    cmd: list[str], popen: dict[str, Any], pass_fds: tuple[int, ...], owned: tuple[int, ...], info_r: int | None,
    files: dict[str, Any], lim: Limits, stdin: str, layers: list[str],
) -> SandboxResult:
    """Start `cmd` and wait for it. `owned` fds are only for the child and are closed once it
    has them (the info pipe's write end among them, so that its reader sees EOF)."""
    started = time.monotonic()
    timed_out = False
    popen.setdefault("env", {"PATH": SAFE_PATH})
    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=files["stdout"], stderr=files["stderr"],
            pass_fds=pass_fds, start_new_session=True, **popen,
        )
    except OSError as exc:
        if info_r is not None:
            os.close(info_r)
        return SandboxResult(False, "", f"sandbox: cannot start: {exc}", None, False, "start_failed")
    finally:
        for fd in owned:
            os.close(fd)
    ns = sandbox_bwrap.Namespace(info_r, started + lim.wall_s) if info_r is not None else None
    try:
        proc.communicate(stdin.encode(), timeout=max(0.0, started + lim.wall_s - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _end(proc, ns)
    duration = time.monotonic() - started
    return _result(proc.returncode, timed_out, duration, files, lim, layers, bwrap=ns is not None)


def _end(proc: subprocess.Popen[bytes], ns: sandbox_bwrap.Namespace | None) -> None:
    """Leave nothing running: the namespace's init first (the kernel then kills every
    process in it), then bwrap's own process group (or the in-process path's group)."""
    if ns is not None:
        ns.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if ns is not None:
        ns.wait_gone(10)
        ns.close()


def _result(
    rc: int | None, timed_out: bool, duration: float, files: dict[str, Any], lim: Limits, layers: list[str], *,
    bwrap: bool,
) -> SandboxResult:
    for f in files.values():
        f.flush()
    stdout, out_full = _read_capped(files["stdout"], lim.output_bytes)
    stderr, err_full = _read_capped(files["stderr"], lim.output_bytes)
    blocked: list[str] = []
    started, exits = False, []
    files["status"].seek(0)
    for line in files["status"].read().decode("utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(rec, dict):
            continue
        if "blocked" in rec:
            detail = str(rec.get("detail") or "")
            blocked.append(f"{rec['blocked']}: {detail}" if detail else str(rec["blocked"]))
        elif isinstance(rec.get("layers"), list):
            started = True
            layers = layers + [str(x) for x in rec["layers"]]
        elif isinstance(rec.get("exit"), int):
            exits.append(rec["exit"])
    # bwrap's init reports a program killed by signal N as exit status 128 + N.
    if bwrap and rc is not None and 128 < rc < 128 + 65 and rc not in exits:
        rc = -(rc - 128)
    if not started and not timed_out and rc != 0:
        reason: str | None = "start_failed"
    else:
        reason = _reason(rc, stderr, timed_out, out_full or err_full, duration >= lim.cpu_s)
    if reason is None and rc != 0 and blocked:
        reason = "blocked"  # the program died of a refused operation
    return SandboxResult(
        ok=rc == 0 and reason is None,
        stdout=stdout,
        stderr=stderr,
        returncode=rc,
        timed_out=timed_out,
        killed_reason=reason,
        blocked=blocked,
        isolation=layers,
        duration_s=duration,
    )


def _reason(rc: int | None, stderr: str, timed_out: bool, output_full: bool, long_enough: bool) -> str | None:
    if timed_out:
        return "wall_timeout"
    # Python ignores SIGXFSZ, so a full stdout shows up as a failed write, not a signal.
    if output_full and rc != 0:
        return "output_limit"
    if rc is None or rc >= 0:
        tail = stderr.strip().splitlines()[-1:] if stderr.strip() else []
        return "memory" if tail and tail[0].startswith("MemoryError") else None
    sig = -rc
    # SIGKILL is the hard CPU limit only if the program could have used that much CPU.
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and long_enough):
        return "cpu_time"
    if sig == signal.SIGXFSZ:
        return "output_limit"
    try:
        return f"signal:{signal.Signals(sig).name}"
    except ValueError:
        return f"signal:{sig}"


def _read_capped(f: Any, cap: int) -> tuple[str, bool]:
    """The stream's text and whether it hit the size limit (then marked as truncated)."""
    f.seek(0)
    data = f.read(cap + 1)
    full = len(data) >= cap
    text = data[:cap].decode("utf-8", errors="replace")
    return text + ("\n[output truncated]" if full else ""), full
