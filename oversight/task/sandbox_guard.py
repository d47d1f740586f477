"""The sandbox's launcher: the trusted first code of every sandboxed Python process.

It reads its settings from argv, sets the rlimits (CPU seconds, address space, file size,
open files, no core dumps, processes), optionally installs the in-process guard, reports
the layers in force on a status fd, then runs `main.py` from the working directory.

The guard is an audit hook (`sys.addaudithook`) that refuses sockets and name lookups,
process creation, signals to other processes, writes outside the working directory, reads
outside the allowed roots and a few native modules that reach files or processes without
audit events. It lives in the same interpreter as the program, so a determined program can
switch it off (its allow-lists are globals of `__main__`); under bubblewrap it is only a
second layer that turns careless programs' mistakes into readable `blocked` entries. On the
`--unsafe-sandbox` path it is, with the rlimits, all there is.

Also here: the helpers that only the in-process path (no bubblewrap) needs.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

NOBODY = 65534
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"

# Runs as `python -I -B launcher.py CFG`. Settings: status_fd, drop, host_root, uid, cpu,
# mem, fsize, nofile, pidns, processes, nproc_effective, guard, root, read.
LAUNCHER = r"""
import json, os, sys
cfg = json.loads(sys.argv[1])
status = os.fdopen(cfg["status_fd"], "w", buffering=1)
layers = []
if cfg["drop"] and os.geteuid() == 0:
    try:
        os.setgroups([])
        os.setgid(cfg["uid"])
        os.setuid(cfg["uid"])
        layers.append("uid")
    except OSError:
        pass
import resource
def _lim(kind, soft, hard=None):
    try:
        resource.setrlimit(kind, (soft, soft if hard is None else hard))
    except (ValueError, OSError):
        return False
    return True
if all([
    _lim(resource.RLIMIT_CPU, cfg["cpu"], cfg["cpu"] + 1),
    _lim(resource.RLIMIT_AS, cfg["mem"]),
    _lim(resource.RLIMIT_FSIZE, cfg["fsize"]),
    _lim(resource.RLIMIT_NOFILE, cfg["nofile"]),
    _lim(resource.RLIMIT_CORE, 0),
]):
    layers.append("rlimits")
def _tasks():
    # In a private PID namespace every task in /proc is ours (the init reaper included);
    # RLIMIT_NPROC counts them all, so the budget starts from the current count.
    n = 0
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                n += len(os.listdir(f"/proc/{p}/task"))
            except OSError:
                pass
    return n
nproc = _tasks() + cfg["processes"] if cfg["pidns"] else 0
# The kernel exempts host uid 0 from RLIMIT_NPROC, so it only counts as a layer for others.
if _lim(resource.RLIMIT_NPROC, nproc) and (cfg["nproc_effective"] or "uid" in layers):
    layers.append("nproc")
if cfg["guard"]:
    ROOT = os.path.realpath(cfg["root"])
    READ_OK = tuple(os.path.realpath(p) for p in cfg["read"]) + (ROOT, os.path.realpath(__file__))
    READ_DENY = ("/etc/shadow", "/etc/gshadow", "/etc/sudoers")
    PID = str(os.getpid())
    DEVICES = ("/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr")
    PATH_EVENTS = {
        "os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "os.chmod": 1, "os.chown": 1,
        "os.truncate": 1, "os.utime": 1, "os.symlink": 2, "os.link": 2, "os.rename": 2,
        "shutil.rmtree": 1, "os.chflags": 1, "os.lchflags": 1, "os.mkfifo": 1, "os.mknod": 1,
        "os.setxattr": 1, "os.removexattr": 1, "sqlite3.connect": 1,
    }
    DENY = {
        "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
        "subprocess.Popen", "os.startfile", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym",
        "ctypes.call_function", "socket.__new__", "socket.connect", "socket.bind",
        "socket.sendto", "socket.sendmsg", "socket.getaddrinfo", "socket.gethostbyname",
        "socket.gethostbyaddr", "socket.gethostbyname_ex", "socket.getnameinfo",
        "socket.sethostname",
    }
    # Native modules that reach files, processes or raw memory without audit events, and
    # subinterpreters, which start without this hook.
    DENY_IMPORT = {"_ctypes", "ctypes", "_posixsubprocess", "_gdbm", "_dbm", "readline", "_tkinter",
                   "_xxsubinterpreters", "_xxinterpchannels", "_interpreters", "_interpchannels"}
    class SandboxViolation(PermissionError):
        pass
    def _real(p):
        if isinstance(p, int):
            return None
        try:
            return os.path.realpath(os.fsdecode(os.fspath(p)))
        except (TypeError, ValueError):
            return ""
    def _under(full, roots):
        return any(full == r or full.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
    def _may_write(p):
        full = _real(p)
        return full is None or full in DEVICES or _under(full, (ROOT,))
    def _may_read(p):
        full = _real(p)
        if full is None:
            return True
        if full in READ_DENY:
            return False
        parts = full.split(os.sep)
        if len(parts) > 2 and parts[1] == "proc":
            return parts[2] in (PID, "self", "thread-self") or not parts[2].isdigit()
        return _under(full, READ_OK)
    def _refuse(event, detail=""):
        status.write(json.dumps({"blocked": event, "detail": detail[:200]}) + "\n")
        raise SandboxViolation(f"sandbox: {event} is not allowed {detail}".strip())
    def _writes(mode, flags):
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            return True
        bits = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
        return isinstance(flags, int) and bool(flags & bits)
    def _hook(event, args):
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            if _writes(mode, flags):
                if not _may_write(path):
                    _refuse("write", repr(path))
            elif not _may_read(path):
                _refuse("read", repr(path))
        elif event in PATH_EVENTS:
            for p in args[: PATH_EVENTS[event]]:
                if not _may_write(p):
                    _refuse(event, repr(p))
        elif event in ("os.kill", "os.killpg"):
            if args and str(args[0]) not in (PID, "0"):
                _refuse(event, repr(args[0]))
        elif event == "import":
            if args and str(args[0]).split(".")[0] in DENY_IMPORT:
                _refuse("import", str(args[0]))
        elif event in DENY:
            _refuse(event)
    import subprocess  # loads _posixsubprocess, whose entry point is disabled below
    def _no_process(*a, **k):
        _refuse("process", "(starting processes is disabled)")
    # The hook sees socket creation itself (socket.__new__), so the socket module is left
    # intact (ssl subclasses socket.socket). _posixsubprocess.fork_exec raises no event.
    sys.modules["_posixsubprocess"].fork_exec = _no_process
    # Audit events carry the path but not `dir_fd`, so a path relative to a directory fd is
    # only allowed when that directory is inside ROOT and the path cannot climb out of it.
    def _dir_fd_guard(name, fn):
        def guarded(*args, **kwargs):
            for key in ("dir_fd", "src_dir_fd", "dst_dir_fd"):
                fd = kwargs.get(key)
                if fd is None:
                    continue
                try:
                    where = os.path.realpath(os.readlink(f"/proc/self/fd/{int(fd)}"))
                except (OSError, TypeError, ValueError):
                    where = ""
                named = [kwargs.get(k) for k in ("path", "src", "dst")]
                paths = [a for a in (*args[:2], *named) if isinstance(a, str | bytes)]
                climbs = any(os.pardir in os.fsdecode(a).split(os.sep) for a in paths)
                if not _under(where, (ROOT,)) or climbs:
                    _refuse(name, f"with {key} outside the work directory")
            return fn(*args, **kwargs)
        return guarded
    import posix
    for _name in ("open", "mkdir", "rmdir", "unlink", "remove", "rename", "replace", "symlink",
                  "link", "chmod", "chown", "utime", "mkfifo", "mknod"):
        if hasattr(posix, _name):
            _g = _dir_fd_guard("os." + _name, getattr(posix, _name))
            setattr(posix, _name, _g)
            setattr(os, _name, _g)
    sys.addaudithook(_hook)
    layers.append("guard")
status.write(json.dumps({"layers": layers}) + "\n")
sys.argv = ["main.py"]
with open("main.py", encoding="utf-8") as _f:
    _code = compile(_f.read(), "main.py", "exec")
try:
    exec(_code, {"__name__": "__main__", "__builtins__": __builtins__})
except SystemExit as _exit:
    # Under bubblewrap an exit status above 128 also means "killed by a signal"; this
    # record tells a program's own sys.exit(137) from a SIGKILL.
    if type(_exit.code) is int:
        status.write(json.dumps({"exit": _exit.code & 0xFF}) + "\n")
    raise
"""

# Read access for the in-process path: the Python installation and system directories,
# nothing else outside the working directory (no home directories, no project, no /tmp).
_SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/dev", "/sys", "/opt")


def inproc_read_roots() -> list[str]:
    import sysconfig

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            roots.add(p)
    return sorted(roots | set(_SYSTEM_READ))


@functools.cache
def nobody_can_run_python() -> bool:
    """Whether `nobody` can traverse to and read the interpreter's library directories."""
    import stat
    import sysconfig
    from pathlib import Path

    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if not p or not os.path.isdir(p):
            continue
        target = Path(os.path.realpath(p))
        for d in (*reversed(target.parents), target):
            try:
                mode = os.stat(d).st_mode
            except OSError:
                return False
            need = stat.S_IXOTH | (stat.S_IROTH if d == target else 0)
            if mode & need != need:
                return False
    return True


@functools.cache
def netns_prefix() -> tuple[str, ...]:
    """The `unshare` command that gives an empty network namespace here, or ()."""
    exe = shutil.which("unshare")
    if exe is None:
        return ()
    candidates: list[tuple[str, ...]] = [(exe, "-n")] if os.geteuid() == 0 else []
    candidates.append((exe, "-r", "-n"))
    for cmd in candidates:
        try:
            probe = subprocess.run([*cmd, "true"], capture_output=True, timeout=10, env={"PATH": SAFE_PATH})
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return cmd
    return ()
