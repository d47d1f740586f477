"""The sandbox's seccomp filter and what the program can learn about the host, tried from
inside: a program run in the sandbox makes each denied system call itself (numbers resolved
here for this machine's architecture, arguments chosen so that the unfiltered call would
succeed or fail differently), and reads every /proc file that used to show host paths.
Runs under each way of starting bwrap that works here (the `bw` fixture)."""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from pathlib import Path

import pytest

from oversight.errors import OversightError
from oversight.task import sandbox, sandbox_bwrap, sandbox_seccomp
from oversight.task.sandbox import Limits, run_python
from tests.task.test_sandbox_escapes import BARE, PROJECT, bw, run  # noqa: F401 - bw: autouse fixture

pytestmark = pytest.mark.skipif(sandbox.sandbox_problem() is not None, reason="bubblewrap cannot run here")

# Each call with arguments under which, unfiltered, it would not fail with EPERM in the
# sandbox (PTRACE_TRACEME and the keyring lookup succeed; the others fail with EFAULT,
# EINVAL or EBADF on their NULL or bogus arguments).
CALLS = {
    "ptrace": (0, 0, 0, 0),  # PTRACE_TRACEME
    "process_vm_readv": ("os.getpid()", 0, 0, 0, 0, 0),
    "kcmp": ("os.getpid()", "os.getpid()", 0, 0, 0),  # KCMP_FILE fd 0 with itself
    "io_uring_setup": (1, 0),
    "io_uring_enter": (-1, 0, 0, 0, 0, 0),
    "io_uring_register": (-1, 0, 0, 0),
    "keyctl": (0, -3, 0),  # KEYCTL_GET_KEYRING_ID of the session keyring
    "add_key": (0, 0, 0, 0, 0),
    "bpf": (0, 0, 0),
    "perf_event_open": (0, 0, -1, -1, 0),
    "userfaultfd": (1,),  # UFFD_USER_MODE_ONLY
    "mount": (0, 0, 0, 0, 0),
    "umount2": (0, 0),
    "pivot_root": (0, 0),
    "unshare": (0,),
    "setns": (-1, 0),
    "open_tree": (-1, 0, 0),
    "fsopen": (0, 0),
    "kexec_load": (0, 0, 0, 0),
    "init_module": (0, 0, 0),
    "finit_module": (-1, 0, 0),
    "open_by_handle_at": (-1, 0, 0),
    "swapon": (0, 0),
    "acct": (0,),
    "syslog": (10, 0, 0),  # SYSLOG_ACTION_SIZE_BUFFER
    "sethostname": (0, 0),
    "chroot": (0,),
}


def numbers() -> dict[str, int]:
    import pyseccomp

    found = {n: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, n) for n in (*CALLS, "clone3")}
    return {n: nr for n, nr in found.items() if nr >= 0}


def test_denied_calls_fail_with_eperm_from_inside_and_ordinary_work_goes_on():
    nrs = numbers()
    calls = {n: (nrs[n], args) for n, args in CALLS.items() if n in nrs}
    body = f"""
import ctypes, errno, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for name, (nr, args) in {calls!r}.items():
    args = [eval(a) if isinstance(a, str) else a for a in args]
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    results[name] = [rc, errno.errorcode.get(ctypes.get_errno(), "0")]
ctypes.set_errno(0)
results["clone3"] = [libc.syscall(ctypes.c_long({nrs['clone3']}), ctypes.c_long(0), ctypes.c_long(0)),
                     errno.errorcode.get(ctypes.get_errno(), "0")]
attempt("subprocess", lambda: subprocess.run(["/bin/echo", "child"], capture_output=True).stdout)
box = []
t = threading.Thread(target=lambda: box.append("thread"))
t.start(); t.join()
attempt("thread", lambda: box)
"""
    r, res = run(body, Limits(cpu_s=5, wall_s=20, memory_mb=512, guard=False, processes=4))
    assert "seccomp" in r.isolation
    assert {n: res[n] for n in calls} == {n: [-1, "EPERM"] for n in calls}
    # clone3's flags are out of a filter's reach: ENOSYS makes the C library use clone.
    assert res["clone3"] == [-1, "ENOSYS"]
    assert res["subprocess"] == ["ok", "b'child\\n'"] and res["thread"] == ["ok", "['thread']"]


def test_new_namespaces_through_clone_are_denied():
    body = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for name, flag in (("newuser", 0x10000000), ("newnet", 0x40000000), ("newns", 0x00020000)):
    # clone(flags | SIGCHLD, stack NULL): were it allowed, a child would run on as after fork
    # and exit at once.
    ctypes.set_errno(0)
    pid = libc.syscall(ctypes.c_long(56 if os.uname().machine == "x86_64" else 220), ctypes.c_long(flag | 17),
                       ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))
    if pid == 0:
        os._exit(0)
    results[name] = [pid, ctypes.get_errno()]
"""
    if os.uname().machine not in ("x86_64", "aarch64"):
        pytest.skip("clone's number is written for x86_64 and arm64")
    r, res = run(body, Limits(cpu_s=5, wall_s=20, memory_mb=512, guard=False, processes=4))
    assert res == {n: [-1, errno.EPERM] for n in ("newuser", "newnet", "newns")}


def test_host_paths_do_not_show_in_proc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    # The caller's working directory, the project, and the temporary folders the sandbox is
    # built from (the helper's mount points, the program's files) are host paths.
    here = tmp_path / "caller-cwd-6f1d"
    here.mkdir()
    monkeypatch.chdir(here)
    body = """
for p in os.listdir("/proc"):
    if p.isdigit() or p in ("self", "thread-self"):
        for f in ("cmdline", "environ", "mountinfo", "mounts", "status", "stat", "cwd", "root", "exe", "maps"):
            path = f"/proc/{p}/{f}"
            link = f in ("cwd", "root", "exe")
            attempt(path, lambda path=path, link=link: os.readlink(path) if link else open(path, "rb").read())
        for fd in os.listdir(f"/proc/{p}/fd") if os.access(f"/proc/{p}/fd", os.R_OK) else ():
            attempt(f"/proc/{p}/fd/{fd}", lambda p=p, fd=fd: os.readlink(f"/proc/{p}/fd/{fd}"))
attempt("/proc/mounts", lambda: open("/proc/mounts", "rb").read())
"""
    r, res = run(body)
    seen = r.stdout + r.stderr
    assert res["/proc/1/cmdline"][0] == "ok" and res["/proc/self/mountinfo"][0] == "ok"
    assert res["/proc/self/fd/1"][0] == "ok"  # the program's stdout, a file the caller reads
    for host in (str(here), str(PROJECT), tempfile.gettempdir() + "/oversight-sbx", "caller-cwd-6f1d", sys.prefix):
        assert host not in seen, host
    # bwrap's own process (PID 1) has an empty environment but for the shell's PWD=/.
    assert res["/proc/1/environ"][1] in ("b''", "b'PWD=/\\x00'"), res["/proc/1/environ"]


def test_missing_seccomp_library_refuses_with_a_clear_reason(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # as if not installed
    sandbox_seccomp.program.cache_clear()
    sandbox_bwrap._plan_cached.cache_clear()
    monkeypatch.setattr(sandbox_bwrap, "plan", sandbox_bwrap._plan_cached)
    try:
        with pytest.raises(OversightError, match=r"seccomp library cannot be loaded.*libseccomp2.*--unsafe-sandbox"):
            run_python("print(1)", BARE)
    finally:
        sandbox_seccomp.program.cache_clear()
        sandbox_bwrap._plan_cached.cache_clear()
