"""Escapes from the sandbox: each attempt must fail against bubblewrap itself.

Every test runs under each way of starting bwrap that works here (as root: `nobody`, and
the `setuid` fallback for machines without unprivileged user namespaces). Most programs
run with the in-process guard off (`guard=False`), so that only bubblewrap and the rlimits
stand in the way; the attacks from issue 9 that start by switching the
guard off run with it on, as the issue did. Every program reports its attempts as JSON
(`[outcome, detail]` per attempt, outcome "ok" or the exception's name), and the test then
also checks the host side: files not created, processes not left, listeners not reached.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from oversight.task import sandbox_bwrap
from oversight.task.sandbox import Limits, SandboxResult, run_python, sandbox_problem

_PROBLEM = sandbox_problem()
pytestmark = pytest.mark.skipif(_PROBLEM is not None, reason=f"bubblewrap cannot run on this machine: {_PROBLEM}")


def _plans() -> list[sandbox_bwrap.Plan]:
    found = sandbox_bwrap.plan()
    if not isinstance(found, sandbox_bwrap.Plan):
        return []
    plans = [found]
    if found.mode == "nobody":
        fallback = dataclasses.replace(found, mode="setuid")
        if sandbox_bwrap._probe(fallback) is None:
            plans.append(fallback)
    return plans


@pytest.fixture(autouse=True, params=_plans() or [None], ids=lambda p: p.mode if p else "none")
def bw(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> sandbox_bwrap.Plan:
    """The bwrap plan this test runs under."""
    plan: sandbox_bwrap.Plan | None = request.param
    if plan is None:
        pytest.skip(f"bubblewrap cannot run on this machine: {_PROBLEM}")
    monkeypatch.setattr(sandbox_bwrap, "plan", lambda: plan)
    return plan

BARE = Limits(cpu_s=5, wall_s=20, memory_mb=512, guard=False)
PROJECT = Path(__file__).resolve().parents[2]
PRELUDE = """
import json, os, sys
results = {}
def attempt(name, fn):
    try:
        results[name] = ["ok", repr(fn())[:300]]
    except BaseException as e:
        results[name] = [type(e).__name__, str(e)[:300]]
"""
# The trick from issue 9: the guard's allow-lists are globals of `__main__`.
BYPASS = """
import __main__ as m
m._may_read = m._may_write = lambda p: True
m.DENY.clear(); m.DENY_IMPORT.clear(); m.PATH_EVENTS.clear()
"""


def run(body: str, limits: Limits = BARE) -> tuple[SandboxResult, dict[str, list[str]]]:
    r = run_python(PRELUDE + body + "\nprint(json.dumps(results))\n", limits)
    lines = r.stdout.strip().splitlines()
    assert lines, r.stderr
    return r, json.loads(lines[-1])


def failed(results: dict[str, list[str]], *names: str) -> bool:
    return all(results[n][0] != "ok" for n in names)


def host_pids_with(marker: str) -> list[int]:
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{p}/cmdline").read_bytes():
                    found.append(int(p))
            except OSError:
                pass
    return found


def unprivileged(uid: int, bw: sandbox_bwrap.Plan) -> bool:
    return uid == 65534 if bw.userns else uid in sandbox_bwrap.SETUID_UIDS


def test_issue_guard_bypass_then_shell_files_and_secrets(tmp_path: Path, bw: sandbox_bwrap.Plan):
    secret = tmp_path / "secret.env"
    secret.write_text("OPENAI_API_KEY=sk-canary-5d1f")
    target, shell_target, usr = tmp_path / "pwned.txt", tmp_path / "pwned-by-shell.txt", Path("/usr/oversight-pwned")
    body = BYPASS + f"""
import socket
attempt("guard_is_off", lambda: socket.socket().close())
attempt("uid_via_shell", lambda: os.system("id -u > /tmp/uid") or open("/tmp/uid").read().strip())
attempt("shell_write_host", lambda: os.system("echo x > {shell_target}"))
attempt("read_secret", lambda: open({str(secret)!r}).read())
attempt("write_host", lambda: open({str(target)!r}, "w").write("x"))
attempt("write_usr", lambda: open({str(usr)!r}, "w").write("x"))
"""
    try:
        r, res = run(body, Limits(cpu_s=5, wall_s=20, memory_mb=512, processes=4))
        assert res["guard_is_off"][0] == "ok" and not r.blocked  # the bypass still works on the guard...
        assert res["uid_via_shell"][0] == "ok"  # ...but the shell runs unprivileged
        assert unprivileged(int(res["uid_via_shell"][1].strip("'")), bw)
        assert res["shell_write_host"][0] == "ok" and res["shell_write_host"][1] != "0"
        assert res["read_secret"][0] == "FileNotFoundError" and "sk-canary" not in r.stdout
        assert res["write_host"][0] == "FileNotFoundError"
        assert res["write_usr"][0] == "OSError" and "Read-only file system" in res["write_usr"][1]
        assert not target.exists() and not shell_target.exists() and not usr.exists()
    finally:
        usr.unlink(missing_ok=True)


def test_subinterpreter_without_the_hook_gets_nothing_more(tmp_path: Path):
    refused = run_python("import _xxsubinterpreters", Limits(cpu_s=5, wall_s=20))
    assert refused.blocked == ["import: _xxsubinterpreters"]
    target = tmp_path / "from-subinterpreter.txt"
    sub = f"""
import json, os
out = {{}}
for name, fn in [
    ("write_host", lambda: open({str(target)!r}, "w").write("x")),
    ("write_usr", lambda: open("/usr/oversight-sub", "w").write("x")),
    ("read_root", lambda: os.listdir("/root/.ssh")),
    ("system", lambda: os.system("true")),
]:
    try:
        out[name] = ["ok", repr(fn())]
    except Exception as e:
        out[name] = [type(e).__name__, str(e)]
open("/tmp/sub.json", "w").write(json.dumps(out))
"""
    body = BYPASS + f"""
import _xxsubinterpreters as interpreters
interp = interpreters.create()
interpreters.run_string(interp, {sub!r})
results.update(json.load(open("/tmp/sub.json")))
"""
    r, res = run(body, Limits(cpu_s=5, wall_s=20))
    assert r.ok, r.stderr
    assert failed(res, "write_host", "write_usr", "read_root")
    assert res["system"] == ["ok", str(127 << 8)]  # glibc's status when the spawn fails: RLIMIT_NPROC
    assert not target.exists() and not Path("/usr/oversight-sub").exists()


def test_sqlite_attach_creates_files_only_in_the_private_tmp(tmp_path: Path):
    outside = [str(tmp_path / "evil.db"), "/usr/oversight-evil.db", "/root/oversight-evil.db",
               "/etc/oversight-evil.db", "/oversight-evil.db"]
    body = f"""
import sqlite3
db = sqlite3.connect(":memory:")
for i, path in enumerate({outside!r} + ["/tmp/fine.db"]):
    attempt(path, lambda i=i, path=path: db.execute(f"ATTACH DATABASE ? AS a{{i}}", (path,))
            and db.execute(f"CREATE TABLE a{{i}}.t(x)") and None)
"""
    try:
        r, res = run(body, Limits(cpu_s=5, wall_s=20))  # the guard on: ATTACH raises no audit event
        assert res["/tmp/fine.db"] == ["ok", "None"]
        assert all(res[p][0] == "OperationalError" for p in outside), res
        assert not any(Path(p).exists() for p in outside)
    finally:
        for p in outside[1:]:
            Path(p).unlink(missing_ok=True)


@pytest.mark.parametrize("hang", [False, True], ids=["program_exits", "wall_timeout"])
def test_setsid_double_fork_child_is_gone_after_the_call(hang: bool):
    marker = f"oversight-daemon-{uuid.uuid4().hex}"
    body = f"""
import time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(3600)", {marker!r}])
    os._exit(0)
os.wait()
def running():
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and {marker!r}.encode() in open(f"/proc/{{p}}/cmdline", "rb").read():
                return True
        except OSError:
            pass
    return False
for _ in range(1000):
    if running():
        break
    time.sleep(0.01)
print("daemon running" if running() else "daemon missing", flush=True)
if {hang!r}:
    time.sleep(3600)
"""
    limits = Limits(cpu_s=5, wall_s=6 if hang else 20, memory_mb=512, guard=False, processes=4)
    r = run_python(PRELUDE + body, limits)
    assert r.stdout.startswith("daemon running"), r.stderr
    assert r.timed_out is hang and (r.killed_reason == "wall_timeout" if hang else r.ok)
    assert host_pids_with(marker) == []


def test_host_etc_is_not_visible():
    body = """
attempt("etc", lambda: sorted(os.listdir("/etc")))
attempt("passwd", lambda: open("/etc/passwd").read())
for p in ("/etc/shadow", "/etc/hostname", "/etc/hosts", "/etc/ssh", "/etc/resolv.conf"):
    attempt(p, lambda p=p: open(p).read())
"""
    r, res = run(body)
    assert set(eval(res["etc"][1])) <= {"passwd", "group", "ld.so.cache", "localtime"}  # noqa: S307
    passwd = res["passwd"][1]
    assert passwd.count("\\n") == 1 and ":x:0:" not in passwd and "root" not in passwd
    assert all(res[p][0] == "FileNotFoundError" for p in ("/etc/shadow", "/etc/hostname", "/etc/hosts",
                                                          "/etc/ssh", "/etc/resolv.conf"))


def test_root_home_and_project_are_not_visible(bw: sandbox_bwrap.Plan):
    found = bw
    # Only the interpreter's own directories may show, with nothing beside them.
    chains: dict[str, set[str]] = {}
    for root in found.roots:
        parts = Path(root).parts
        for i in range(1, len(parts) - 1):
            chains.setdefault(str(Path(*parts[: i + 1])), set()).add(parts[i + 1])
    probes = ["/", "/root", *chains]
    body = f"""
for d in {probes!r}:
    attempt("ls " + d, lambda d=d: sorted(os.listdir(d)))
for p in ({str(PROJECT)!r}, {str(PROJECT / "pyproject.toml")!r}, {sys.prefix!r}, "/home", "/root/.bashrc",
          "/root/.ssh", "/root/.pyenv/shims", "/work", "/var", "/run", "/sys"):
    attempt(p, lambda p=p: os.stat(p))
"""
    r, res = run(body)
    top = eval(res["ls /"][1])  # noqa: S307
    allowed_top = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "proc", "dev", "tmp", "sandbox"}
    allowed_top |= {Path(p).parts[1] for p in found.roots}
    assert set(top) <= allowed_top, top
    for d, names in chains.items():
        assert set(eval(res["ls " + d][1])) == names, (d, res["ls " + d])  # noqa: S307
    if not any(p.startswith("/root/") for p in found.roots):
        assert res["ls /root"][0] == "FileNotFoundError"
    hidden = [str(PROJECT), str(PROJECT / "pyproject.toml"), sys.prefix, "/home", "/root/.bashrc", "/root/.ssh",
              "/root/.pyenv/shims", "/work", "/var", "/run", "/sys"]
    # Ancestors of the interpreter's own directories exist, holding just the path to them.
    gone = [p for p in hidden if not any(r == p or r.startswith(p.rstrip("/") + "/") for r in found.roots)]
    assert all(res[p][0] == "FileNotFoundError" for p in gone), res


def test_host_processes_are_invisible_and_unkillable():
    helper = subprocess.Popen(["sleep", "60"])
    try:
        body = f"""
import signal
attempt("pids", lambda: sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
attempt("helper_environ", lambda: open("/proc/{helper.pid}/environ", "rb").read())
attempt("parent_cmdline", lambda: open("/proc/{os.getpid()}/cmdline", "rb").read())
attempt("kill_helper", lambda: os.kill({helper.pid}, signal.SIGKILL))
attempt("kill_parent", lambda: os.kill({os.getpid()}, signal.SIGKILL))
attempt("kill_all", lambda: os.kill(-1, signal.SIGKILL))
"""
        r, res = run(body)
        assert max(eval(res["pids"][1])) < 10  # noqa: S307 - its own PID namespace
        assert res["helper_environ"][0] == res["parent_cmdline"][0] == "FileNotFoundError"
        assert res["kill_helper"][0] == res["kill_parent"][0] == "ProcessLookupError"
        assert helper.poll() is None  # kill(-1) reached only the sandbox's own processes
    finally:
        helper.kill()
        helper.wait()


def test_network_reaches_no_host_listener(tmp_path: Path):
    tcp = socket.create_server(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(tmp_path / "host.sock"))
    unix.listen()
    abstract_name = f"\0oversight-test-{uuid.uuid4().hex}"
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(abstract_name)
    abstract.listen()
    listeners = (tcp, unix, abstract)
    try:
        body = f"""
import socket
def connect(family, address):
    s = socket.socket(family)
    s.settimeout(5)
    s.connect(address)
attempt("interfaces", lambda: [name for _, name in socket.if_nameindex()])
attempt("tcp_host", lambda: connect(socket.AF_INET, ("127.0.0.1", {tcp.getsockname()[1]})))
attempt("tcp_outside", lambda: connect(socket.AF_INET, ("192.0.2.1", 80)))
attempt("unix_path", lambda: connect(socket.AF_UNIX, {str(tmp_path / "host.sock")!r}))
attempt("unix_abstract", lambda: connect(socket.AF_UNIX, {abstract_name!r}))
attempt("dbus", lambda: connect(socket.AF_UNIX, "/run/dbus/system_bus_socket"))
attempt("dns", lambda: socket.getaddrinfo("example.com", 80))
"""
        r, res = run(body)
        assert res["interfaces"] == ["ok", "['lo']"]
        assert failed(res, "tcp_host", "tcp_outside", "unix_path", "unix_abstract", "dbus", "dns"), res
        for listener in listeners:
            listener.setblocking(False)
            with pytest.raises(BlockingIOError):
                listener.accept()
    finally:
        for listener in listeners:
            listener.close()


def test_writes_outside_the_private_tmp_fail(tmp_path: Path, bw: sandbox_bwrap.Plan):
    found = bw
    name = f"oversight-escape-{uuid.uuid4().hex}"
    dirs = ["/", "/usr", "/usr/lib", "/etc", "/root", "/dev", "/dev/shm", "/proc", "/sandbox", str(tmp_path),
            *found.roots]
    targets = [str(Path(d) / name) for d in dirs]
    body = f"""
for t in {targets!r}:
    attempt("write " + t, lambda t=t: open(t, "w").write("x"))
attempt("mkdir", lambda: os.mkdir("/usr/{name}"))
attempt("chmod", lambda: os.chmod("/usr/bin/env", os.stat("/usr/bin/env").st_mode))
attempt("rename", lambda: os.rename({found.python!r}, "/tmp/python"))
attempt("sysctl", lambda: open("/proc/sys/kernel/hostname", "w").write("pwned"))
# Global sysctls: opening for writing is where permission is checked; nothing is written.
for name in ("kernel/core_pattern", "kernel/modprobe", "vm/overcommit_memory"):
    attempt("open " + name, lambda name=name: os.close(os.open("/proc/sys/" + name, os.O_WRONLY)))
attempt("tmp", lambda: open("/tmp/{name}", "w").write("fine"))
"""
    try:
        r, res = run(body)
        assert res["tmp"] == ["ok", "4"]
        sysctls = ("open kernel/core_pattern", "open kernel/modprobe", "open vm/overcommit_memory")
        assert failed(res, *("write " + t for t in targets), "mkdir", "chmod", "rename", "sysctl", *sysctls), res
        assert not any(Path(t).exists() for t in targets) and not Path("/usr", name).exists()
        assert Path(found.python).exists()
    finally:
        for t in targets:
            Path(t).unlink(missing_ok=True)


def test_environment_secrets_never_reach_the_program(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-openai-91c2")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-canary-77ab")
    body = """
attempt("environ", lambda: dict(os.environ))
for p in os.listdir("/proc"):
    if p.isdigit() or p == "self":
        attempt(p + "/environ", lambda p=p: open(f"/proc/{p}/environ", "rb").read())
        attempt(p + "/cmdline", lambda p=p: open(f"/proc/{p}/cmdline", "rb").read())
"""
    r, res = run(body)
    assert "canary" not in r.stdout and "canary" not in r.stderr
    assert set(eval(res["environ"][1])) <= {  # noqa: S307
        "PWD", "PATH", "HOME", "TMPDIR", "LANG", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
    }


def test_program_has_no_privileges_inside_or_on_the_host(bw: sandbox_bwrap.Plan):
    found = bw
    marker = f"oversight-uid-{uuid.uuid4().hex}"
    body = f"""
import time
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
attempt("ids", lambda: (os.getuid(), os.geteuid(), os.getgid(), os.getgroups()))
attempt("caps", lambda: (status["CapEff"].strip(), status["CapPrm"].strip(), status["NoNewPrivs"].strip()))
attempt("setuid", lambda: os.setuid(0))
def new_user_namespace():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000) != 0:  # CLONE_NEWUSER
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
attempt("userns", new_user_namespace)
print(json.dumps(results), flush=True)
os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(3600)", {marker!r}])
"""
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set() and not seen:
            for pid in host_pids_with(marker):
                with open(f"/proc/{pid}/status") as f:
                    seen.extend(line.split()[1] for line in f if line.startswith("Uid:"))
            done.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        r = run_python(PRELUDE + body, Limits(cpu_s=5, wall_s=6, memory_mb=512, guard=False, processes=2))
    finally:
        done.set()
        watcher.join()
    res = json.loads(r.stdout.splitlines()[0])
    uid, euid, gid, groups = eval(res["ids"][1])  # noqa: S307
    assert uid == euid == gid and groups == [] and unprivileged(uid, bw)
    assert res["caps"] == ["ok", "('0000000000000000', '0000000000000000', '1')"]
    # In a user namespace uid 0 does not even exist (EINVAL); without one, EPERM.
    assert res["setuid"][0] == ("OSError" if found.userns else "PermissionError"), res["setuid"]
    # The seccomp filter denies unshare() (before it, --disable-userns made it ENOSPC).
    assert res["userns"][0] == "PermissionError", res["userns"]
    assert r.timed_out and host_pids_with(marker) == []
    # The uid the host kernel sees: never root; as root, the sandbox uid itself.
    assert seen and seen[0] == (str(uid) if os.geteuid() == 0 else str(os.geteuid()))


def test_process_limit_holds_without_the_guard():
    marker = f"oversight-fork-{uuid.uuid4().hex}"
    body = f"""
import time
started = 0
try:
    while True:
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(3600)", {marker!r}])
        started += 1
except BlockingIOError:
    pass
results["started"] = started
"""
    r, res = run(body, Limits(cpu_s=5, wall_s=20, memory_mb=512, guard=False, processes=3))
    assert "nproc" in r.isolation and res["started"] == 3
    assert host_pids_with(marker) == []


def test_signals_from_the_host_side_reach_the_whole_namespace():
    # A program that ignores SIGTERM and forks still ends at the wall-clock limit.
    body = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
for _ in range(2):
    if os.fork() == 0:
        break
time.sleep(3600)
"""
    r = run_python(PRELUDE + body, Limits(cpu_s=5, wall_s=2, guard=False, processes=4))
    assert r.timed_out and r.killed_reason == "wall_timeout" and r.returncode == -signal.SIGKILL
