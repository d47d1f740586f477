"""Bubblewrap (`bwrap`): the boundary around model-written programs.

The program runs in new mount, PID, IPC, UTS, network (where possible cgroup, and except in
mode `setuid`, user) namespaces as uid/gid 65534 (mode `setuid`: a fresh high uid), on the
host too, with no capabilities and no_new_privs. Its filesystem is an empty read-only root
holding only read-only binds of /usr, the top-level /bin, /lib... links or directories,
the Python installation that runs it, `/etc/ld.so.cache` and `/etc/localtime`; a
synthetic /etc/passwd and /etc/group naming only the sandbox user; a private /proc (its
own processes only); a minimal read-only /dev; and a size-capped tmpfs at /tmp, its
working and only writable directory. No other /etc, no /root or /home, no project
directory, no host /tmp, no /sys, no host sockets (a new network namespace has only its
own loopback; abstract AF_UNIX names are per namespace). `--clearenv` leaves only the
variables set here. A seccomp filter (`sandbox_seccomp`) denies rarely needed kernel calls.
bwrap's own init process is inside the PID namespace, so what it shows there names no
host path: its options come from a memory file (`--args`), not its command line, and it
starts with an empty environment in /. The PID namespace and `--die-with-parent` tie every process the
program starts to the namespace's init, which the caller kills to end them all.

Who runs bwrap (found by probing, once per process):

- `nobody` (started as root; the CI case): bwrap runs as host uid 65534 and builds its
  namespaces through an unprivileged user namespace. An unprivileged bwrap can only bind
  what `nobody` can reach, and a Python under /root (pyenv) is not, so a root-owned helper
  first bind-mounts the interpreter's directories, and a size-capped tmpfs for /tmp, onto
  mount points in a private mount namespace of its own (`unshare --mount`; host mounts
  are untouched), then drops to 65534 (`setpriv`) and executes bwrap.
- `setuid` (started as root where unprivileged user namespaces are off): the same helper,
  but it keeps effective uid 0 with an unprivileged real uid, which is how a setuid-root
  bwrap starts; bwrap then sets up the namespaces with its privileges and runs the program
  as the real uid. There is no user namespace, so RLIMIT_NPROC would count every process
  of that uid on the host: each run gets a fresh random uid from `SETUID_UIDS` instead of
  65534. bwrap forbids `--size` in this mode (hence the helper's tmpfs).
- `self` (started as an ordinary user): bwrap runs as that user.

Never host uid 0: bwrap run by root with `--unshare-user --uid 65534` gives uid 65534 only
inside the namespace, RLIMIT_NPROC does not bind (the kernel waives it for host root), and
bwrap leaves /proc/sys writable, so the program could set global sysctls such as
kernel.core_pattern. Found on the development machine (Debian 12, kernel 6.x, bwrap 0.8.0,
as root): `nobody` and `setuid` both work; `--userns FD --uid 65534` with a pre-made
namespace does not (bwrap calls setuid before setgid and then lacks CAP_SETGID), and
`--ro-bind-fd` cannot reach /root for `nobody` (bwrap 0.8 resolves the fd to its path).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oversight.task import sandbox_seccomp
from oversight.task.sandbox_guard import NOBODY, SAFE_PATH

HOME = "/tmp"
LAUNCHER_PATH = "/sandbox/launcher.py"
ENV = {
    "PATH": SAFE_PATH,
    "HOME": HOME,
    "TMPDIR": HOME,
    "LANG": "C.UTF-8",
    # Numeric libraries start worker threads on import; keep them to one.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
_TOP = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
# How bwrap is started: no environment and / as working directory, since its init process
# (inside the PID namespace) shows the program both in /proc/1/environ (a shell adds PWD).
LAUNCH: dict[str, Any] = {"env": {}, "cwd": "/"}
# Far above any uid a distribution or directory service hands out, below 2**31 - 1.
SETUID_UIDS = range(1 << 30, (1 << 31) - 2)


@dataclass(frozen=True)
class Plan:
    """How to start bwrap on this machine."""

    bwrap: str
    mode: str  # nobody | setuid | self (see the module docstring)
    python: str  # the interpreter, at the same path inside and outside
    system: tuple[str, ...]  # /usr and real top-level directories, bound read-only
    links: tuple[tuple[str, str], ...]  # (target, path): top-level symlinks such as /lib -> usr/lib
    roots: tuple[str, ...]  # the interpreter's directories outside /usr, bound read-only
    options: frozenset[str]  # optional bwrap flags this version has (--size, --disable-userns)
    helpers: tuple[str, ...] = ()  # unshare, mount, setpriv (started as root)

    @property
    def userns(self) -> bool:
        return self.mode != "setuid"

    def new_uid(self) -> int:
        """The uid for one run: 65534 inside a user namespace, else a fresh one (see above)."""
        return NOBODY if self.userns else SETUID_UIDS[secrets.randbelow(len(SETUID_UIDS))]

    def read_roots(self) -> list[str]:
        """What the sandbox can read, for the in-process guard's allow-list."""
        return [*self.system, *(p for _, p in self.links), *self.roots, "/etc", "/dev"]


def _interpreter() -> tuple[str, tuple[str, ...]]:
    """The base interpreter (never a venv's, which lives in the project) and its dirs."""
    exe = os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)
    dirs = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)}
    stdlib = sysconfig.get_paths().get("stdlib")
    if stdlib:
        dirs.add(os.path.realpath(stdlib))
    if not any(exe.startswith(d.rstrip("/") + "/") for d in dirs):
        dirs.add(os.path.dirname(exe))
    # /usr is bound whole; "/" would be the whole host, which a prefix of "/" must not get.
    dirs = {d for d in dirs if d != "/" and d != "/usr" and not d.startswith("/usr/")}
    minimal = sorted(d for d in dirs if not any(d.startswith(o.rstrip("/") + "/") for o in dirs))
    return exe, tuple(minimal)


def _candidates(bwrap: str) -> list[Plan]:
    exe, roots = _interpreter()
    system = ["/usr"]
    links: list[tuple[str, str]] = []
    for top in _TOP:
        if os.path.islink(top):
            links.append((os.readlink(top), top))
        elif os.path.isdir(top):
            system.append(top)
    try:
        help_text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        help_text = ""
    options = frozenset(o for o in ("--size", "--disable-userns") if o in help_text)
    base = Plan(bwrap, "self", exe, tuple(system), tuple(links), roots, options)
    if os.geteuid() != 0:
        return [base]
    helpers = tuple(shutil.which(h, path=SAFE_PATH + ":/usr/sbin:/sbin") or "" for h in ("unshare", "mount", "setpriv"))
    if not all(helpers):
        return []
    return [dataclasses.replace(base, mode=mode, helpers=helpers) for mode in ("nobody", "setuid")]


def bwrap_args(plan: Plan, stages: dict[str, str], fds: dict[str, int], tmp_bytes: int) -> list[str]:
    """bwrap and its options, up to (not including) the command. `stages` maps bound
    directories (and HOME) to the helper's mount points; `fds` holds open files: passwd,
    group, info and, when present, program and launcher."""
    a = [plan.bwrap]
    if plan.userns:
        a += ["--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
        if "--disable-userns" in plan.options:
            a.append("--disable-userns")  # no nested user namespaces: less kernel to attack
    else:
        # Setuid-style bwrap: the real uid is already 65534; a user namespace is not needed.
        a += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    a += ["--die-with-parent", "--new-session", "--hostname", "sandbox", "--clearenv"]
    for key, value in ENV.items():
        a += ["--setenv", key, value]
    for d in plan.system:
        a += ["--ro-bind", d, d]
    for target, path in plan.links:
        a += ["--symlink", target, path]
    for d in plan.roots:
        a += ["--ro-bind", stages.get(d, d), d]
    for f in _ETC_FILES:
        a += ["--ro-bind-try", f, f]
    a += ["--ro-bind-data", str(fds["passwd"]), "/etc/passwd", "--ro-bind-data", str(fds["group"]), "/etc/group"]
    a += ["--proc", "/proc", "--dev", "/dev"]
    if HOME in stages:
        a += ["--bind", stages[HOME], HOME]
    else:
        a += ["--size", str(tmp_bytes)] if "--size" in plan.options else []
        a += ["--tmpfs", HOME]
    if "program" in fds:
        a += ["--file", str(fds["program"]), f"{HOME}/main.py"]
    if "launcher" in fds:
        a += ["--ro-bind-data", str(fds["launcher"]), LAUNCHER_PATH]
    # Last, once every mount point exists: the root and /dev (a tmpfs with no size limit)
    # become read-only; device nodes such as /dev/null stay writable.
    a += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", HOME, "--info-fd", str(fds["info"])]
    if "seccomp" in fds:
        a += ["--seccomp", str(fds["seccomp"])]
    return a


def hidden_args(args: list[str], fds: dict[str, int]) -> list[str]:
    """bwrap with its options read from a memory file (`--args FD`) instead of its command
    line: its init process is inside the PID namespace, and its /proc/1/cmdline would show
    the program the host paths of the helper's mount points. Adds the fd to `fds`."""
    fds["args"] = sandbox_seccomp.memfd("oversight-bwrap-args", b"".join(x.encode() + b"\0" for x in args[1:]))
    return [args[0], "--args", str(fds["args"])]


def command(
    plan: Plan, stage: Path, fds: dict[str, int], tmp_bytes: int, inner: Sequence[str], uid: int = NOBODY
) -> list[str]:
    """The full command line: bwrap (behind the root helper when started as root) + `inner`.
    `stage` is a fresh temporary directory of its own: it holds the helper's mount points,
    and the sandbox uid must be able to pass through it, so it holds nothing else."""
    if plan.mode == "self":
        return [*hidden_args(bwrap_args(plan, {}, fds, tmp_bytes), fds), *inner]
    os.chmod(stage, 0o711)
    stages: dict[str, str] = {}
    for i, d in enumerate(plan.roots):
        stages[d] = str(stage / f"ro{i}")
    stages[HOME] = str(stage / "tmp")
    for point in stages.values():
        os.mkdir(point, 0o755)
    unshare, mount, setpriv = plan.helpers
    steps = [f"{shlex.quote(mount)} --bind {shlex.quote(d)} {shlex.quote(p)}" for d, p in stages.items() if d != HOME]
    steps.append(
        f"{shlex.quote(mount)} -t tmpfs -o size={int(tmp_bytes)},mode=1777,nosuid,nodev oversight-tmp "
        f"{shlex.quote(stages[HOME])}"
    )
    # --reuid drops to the sandbox uid entirely; --ruid keeps effective uid 0, as a setuid
    # bwrap has it.
    how = "--reuid" if plan.mode == "nobody" else "--ruid"
    steps.append(f'exec {shlex.quote(setpriv)} {how}={uid} --regid={uid} --clear-groups -- "$@"')
    args = hidden_args(bwrap_args(plan, stages, fds, tmp_bytes), fds)
    return [unshare, "--mount", "--propagation", "private", "--", "/bin/sh", "-c", " && ".join(steps), "sh",
            *args, *inner]


def data_files(outer: Path, uid: int = NOBODY) -> dict[str, int]:
    """Open read fds for the synthetic /etc/passwd and /etc/group and the seccomp filter
    (bwrap reads and closes them)."""
    user = "nobody" if uid == NOBODY else "sandbox"
    passwd = f"{user}:x:{uid}:{uid}:{user}:{HOME}:/usr/sbin/nologin\n"
    fds = {}
    for name, text in (("passwd", passwd), ("group", f"{user}:x:{uid}:\n")):
        path = outer / name
        path.write_text(text, encoding="utf-8")
        fds[name] = os.open(path, os.O_RDONLY)
    fds["seccomp"] = sandbox_seccomp.memfd("oversight-seccomp", sandbox_seccomp.program())
    return fds


class Namespace:
    """The sandbox's PID namespace, reached through its init process (bwrap's child).

    Killing init makes the kernel kill every process in the namespace, double-forked
    `setsid` daemons included, and init only finishes exiting once they are all reaped;
    a pidfd on it tells when that has happened without racing pid reuse."""

    def __init__(self, info_read: int, deadline: float) -> None:
        self.pidfd: int | None = None
        buf = b""
        poller = select.poll()
        poller.register(info_read, select.POLLIN)
        try:
            while (left := deadline - time.monotonic()) > 0 and poller.poll(int(left * 1000) + 1):
                chunk = os.read(info_read, 4096)
                buf += chunk
                m = re.search(rb'"child-pid":\s*(\d+)', buf)
                if m and self.pidfd is None:
                    # Without a pidfd (kernel < 5.3) the kill falls back to bwrap's process
                    # group and --die-with-parent, and nothing waits for the namespace.
                    with contextlib.suppress(OSError):
                        self.pidfd = os.pidfd_open(int(m.group(1)))
                # Read on to EOF (bwrap closes the pipe right after): closing it early
                # would kill bwrap with SIGPIPE in the middle of its report.
                if not chunk:
                    break
        except OSError:
            pass
        finally:
            os.close(info_read)

    def kill(self) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def wait_gone(self, timeout: float) -> bool:
        if self.pidfd is None:
            return True
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        return bool(poller.poll(int(timeout * 1000)))

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _probe(plan: Plan) -> str | None:
    """None if this plan runs the interpreter as the unprivileged uid, else why not."""
    outer = Path(tempfile.mkdtemp(prefix="oversight-sbx-probe-"))
    stage = Path(tempfile.mkdtemp(prefix="oversight-sbx-ro-"))
    uid = plan.new_uid()
    fds = data_files(outer, uid)
    info_r, info_w = os.pipe()
    fds["info"] = info_w
    inner = [plan.python, "-I", "-S", "-c", "import os; print(os.getuid())"]
    try:
        cmd = command(plan, stage, fds, 16 << 20, inner, uid)
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=30, pass_fds=tuple(fds.values()), **LAUNCH,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{plan.bwrap} could not be started ({exc})"
    finally:
        for fd in (*fds.values(), info_r):
            os.close(fd)
        shutil.rmtree(outer, ignore_errors=True)
        shutil.rmtree(stage, ignore_errors=True)
    if done.returncode == 0 and done.stdout.strip() == str(uid):
        return None
    tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    return f"{plan.bwrap} fails on this machine ({tail[:300]})"


_probe_lock = threading.Lock()


@functools.cache
def _plan_cached() -> Plan | str:
    exe = shutil.which("bwrap") or shutil.which("bwrap", path=SAFE_PATH)
    if exe is None:
        return "the `bwrap` program (Debian/Ubuntu package `bubblewrap`) is not installed"
    try:
        sandbox_seccomp.program()
    except sandbox_seccomp.SeccompUnavailable as exc:
        return f"{exc}; install libseccomp (Debian/Ubuntu package `libseccomp2`) and the `pyseccomp` package"
    plans = _candidates(exe)
    if not plans:
        return "started as root, but `unshare`, `mount` or `setpriv` (util-linux) is missing"
    problem = ""
    for candidate in plans:
        why = _probe(candidate)
        if why is None:
            return candidate
        problem = problem or why
    return problem


def plan() -> Plan | str:
    """How to run bwrap here (probed once per process), or why it cannot be used."""
    with _probe_lock:
        return _plan_cached()
