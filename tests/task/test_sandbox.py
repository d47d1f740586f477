"""The sandbox contains misbehaving programs and reports what happened.

Each case checks the outcome and that the parent's files and environment are untouched.
Most run under bubblewrap with the in-process guard on (the default); the escape attempts
against bubblewrap alone are in test_sandbox_escapes.py. The last part covers what happens
without bubblewrap: a refusal, or with `unsafe` the old in-process path.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from oversight.cli import main
from oversight.errors import OversightError
from oversight.task import sandbox, sandbox_bwrap
from oversight.task.sandbox import Limits, require_sandbox, run_python, run_python_async, sandbox_problem
from oversight.testing import FakeOpenAI

FAST = Limits(cpu_s=2, wall_s=6, memory_mb=512)
_PROBLEM = sandbox_problem()


@pytest.fixture(autouse=True)
def _needs_bwrap(request: pytest.FixtureRequest) -> None:
    if _PROBLEM is not None and "no_bwrap" not in request.fixturenames:
        pytest.skip(f"bubblewrap cannot run on this machine: {_PROBLEM}")


def test_plain_program_runs_in_a_fresh_directory():
    r = run_python("import os\nprint(6 * 7)\nprint(sorted(os.listdir('.')))", FAST)
    assert r.ok and r.returncode == 0 and r.killed_reason is None and not r.blocked
    assert r.stdout.splitlines() == ["42", "['main.py']"]
    assert {"bwrap", "userns", "pidns", "netns", "mountns", "rlimits", "guard"} <= set(r.isolation)


def test_stdin_and_writes_inside_the_work_directory():
    src = "import sys\nopen('f.txt', 'w').write(sys.stdin.read())\nprint(open('f.txt').read())"
    r = run_python(src, FAST, stdin="hello")
    assert r.ok and r.stdout.strip() == "hello"


def test_infinite_loop_hits_the_cpu_limit():
    r = run_python("while True:\n    pass", Limits(cpu_s=1, wall_s=10))
    assert not r.ok and r.killed_reason == "cpu_time" and not r.timed_out


def test_sleeping_program_hits_the_wall_timeout():
    r = run_python("import time\ntime.sleep(60)", Limits(cpu_s=5, wall_s=1))
    assert not r.ok and r.timed_out and r.killed_reason == "wall_timeout"


def test_memory_bomb_is_contained():
    src = "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 * 1024))"
    r = run_python(src, Limits(cpu_s=5, wall_s=20, memory_mb=256))
    assert not r.ok and r.killed_reason == "memory" and "MemoryError" in r.stderr


def test_fork_bomb_is_refused():
    r = run_python("import os\nwhile True:\n    os.fork()", FAST)
    assert not r.ok and r.killed_reason == "blocked" and r.blocked == ["os.fork"]


@pytest.mark.parametrize(
    "src",
    [
        "import subprocess\nsubprocess.run(['true'])",
        "import os\nos.system('true')",
        "import os\nos.posix_spawn('/bin/true', ['true'], {})",
        "import _posixsubprocess\n_posixsubprocess.fork_exec()",
        "import ctypes\nctypes.CDLL(None).fork()",
    ],
)
def test_other_ways_to_start_processes_are_refused(src):
    r = run_python(src, FAST)
    assert not r.ok and r.killed_reason == "blocked" and r.blocked


@pytest.mark.parametrize(
    "src",
    [
        "import socket\nsocket.create_connection(('127.0.0.1', 9))",
        "import socket\ns = socket.socket()\ns.connect(('93.184.216.34', 80))",
        "import _socket\n_socket.socket()",
        "import socket\nsocket.getaddrinfo('example.com', 80)",
        "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9/')",
    ],
)
def test_network_is_refused(src):
    r = run_python(src, FAST)
    assert not r.ok and r.blocked, r.stderr


def _writes_outside(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    target = tmp_path / "new.txt"
    return victim, target, [
        f"open({str(target)!r}, 'w').write('x')",
        f"import os\nos.open({str(target)!r}, os.O_WRONLY | os.O_CREAT)",
        f"import os\nos.remove({str(victim)!r})",
        f"import os\nos.rename({str(victim)!r}, 'stolen.txt')",
        f"import os\nos.symlink({str(victim)!r}, 'link')\nopen('link', 'w').write('x')",
        f"import shutil\nshutil.rmtree({str(tmp_path)!r})",
    ]


def test_writes_outside_the_work_directory_fail(tmp_path: Path):
    # The host's temporary directory is not in the sandbox at all (its /tmp is private).
    victim, target, programs = _writes_outside(tmp_path)
    for src in programs:
        r = run_python(src, FAST)
        assert not r.ok and r.killed_reason is None and "FileNotFoundError" in r.stderr, src
    assert victim.read_text() == "keep" and not target.exists()


def test_writes_to_system_directories_are_refused_by_the_guard():
    r = run_python("open('/usr/oversight-sandbox-test', 'w')", FAST)
    assert not r.ok and r.killed_reason == "blocked" and r.blocked == ["write: '/usr/oversight-sandbox-test'"]
    assert not Path("/usr/oversight-sandbox-test").exists()


def test_environment_secrets_do_not_leak(monkeypatch):
    monkeypatch.setenv("OVERSIGHT_TEST_CANARY", "canary-7f3e9b")
    r = run_python("import os\nprint(sorted(os.environ))", FAST)
    assert r.ok and "OVERSIGHT_TEST_CANARY" not in r.stdout
    assert set(eval(r.stdout)) <= {  # noqa: S307 - our own printed list
        "PWD",  # bwrap sets it for --chdir
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "LC_CTYPE",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
    }
    leak = run_python("import os\nprint(open(f'/proc/{os.getppid()}/environ', 'rb').read())", FAST)
    assert "canary-7f3e9b" not in leak.stdout and leak.blocked
    mine = run_python("print(open('/proc/self/environ', 'rb').read())", FAST)
    assert mine.ok and b"canary" not in mine.stdout.encode()


def test_reading_outside_allowed_places_fails(tmp_path: Path):
    secret = tmp_path / "secret.env"
    secret.write_text("API_KEY=canary-1234")
    r = run_python(f"print(open({str(secret)!r}).read())", FAST)
    assert not r.ok and "canary-1234" not in r.stdout and "FileNotFoundError" in r.stderr
    shadow = run_python("print(open('/etc/shadow').read())", FAST)
    assert not shadow.ok and shadow.blocked == ["read: '/etc/shadow'"]


def test_signals_to_other_processes_are_refused():
    r = run_python(f"import os, signal\nos.kill({os.getpid()}, signal.SIGTERM)", FAST)
    assert not r.ok and r.blocked  # and this test process is still alive to check it


def test_runaway_output_is_capped():
    r = run_python("while True:\n    print('x' * 1000)", Limits(cpu_s=5, output_bytes=10_000))
    assert not r.ok and r.killed_reason == "output_limit"
    assert len(r.stdout) < 11_000 and r.stdout.endswith("[output truncated]")


def test_ordinary_failures_are_not_blamed_on_the_sandbox():
    r = run_python("raise ValueError('boom')", FAST)
    assert not r.ok and r.returncode == 1 and r.killed_reason is None and not r.blocked
    assert "ValueError: boom" in r.stderr


def test_stdlib_imports_work():
    src = (
        "import fractions, decimal, datetime, itertools, math, re, collections, json, "
        "statistics, heapq, bisect, functools, string, typing, dataclasses, random, hashlib\n"
        "print(math.comb(5, 2))"
    )
    r = run_python(src, FAST)
    assert r.ok and r.stdout.strip() == "10", r.stderr


async def test_many_programs_concurrently():
    results = await asyncio.gather(*(run_python_async(f"print({i} * 2)", FAST) for i in range(8)))
    assert [r.stdout.strip() for r in results] == [str(i * 2) for i in range(8)]


def test_directory_fd_tricks_are_refused():
    # /usr is readable in the sandbox, so only the dir_fd guard stands in the way here.
    target = Path("/usr/oversight-sandbox-escape-test")
    src = f"import os\nd = os.open('/usr', os.O_RDONLY)\nos.open({target.name!r}, os.O_WRONLY | os.O_CREAT, dir_fd=d)\n"
    try:
        r = run_python(src, FAST)
        assert not r.ok and not target.exists()
        assert r.blocked == ["os.open: with dir_fd outside the work directory"]
    finally:
        target.unlink(missing_ok=True)
    climb = "import os\nd = os.open('.', os.O_RDONLY)\nos.mkdir('../../x', dir_fd=d)\n"
    r = run_python(climb, FAST)
    assert not r.ok and r.blocked == ["os.mkdir: with dir_fd outside the work directory"]


def test_directory_fds_inside_the_work_directory_still_work():
    src = (
        "import os, shutil\n"
        "os.makedirs('a/b/c')\n"
        "open('a/b/c/f.txt', 'w').write('x')\n"
        "shutil.rmtree('a')\n"
        "print(os.path.exists('a'))\n"
    )
    r = run_python(src, FAST)
    assert r.ok and r.stdout.strip() == "False", r.stderr


def test_exit_status_above_128_is_not_taken_for_a_signal():
    r = run_python("import sys\nsys.exit(137)", FAST)
    assert not r.ok and r.returncode == 137 and r.killed_reason is None
    k = run_python("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", FAST)
    assert not k.ok and k.returncode == -9 and k.killed_reason == "signal:SIGKILL"


def test_private_tmp_is_capped():
    src = "f = open('big', 'wb')\nfor _ in range(64):\n    f.write(b'x' * (1 << 20))\n"
    r = run_python(src, Limits(cpu_s=5, wall_s=20, output_bytes=1 << 30, tmp_mb=8))
    assert not r.ok and "No space left on device" in r.stderr


# ---------------------------------------------------------------------------------------
# Without bubblewrap


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_bwrap, "plan", lambda: "bwrap is hidden by this test")
    monkeypatch.setattr(sandbox, "_warned_unsafe", type(sandbox._warned_unsafe)())


@pytest.mark.usefixtures("no_bwrap")
def test_without_bwrap_model_code_is_refused():
    with pytest.raises(OversightError, match=r"bwrap is hidden by this test.*--unsafe-sandbox"):
        run_python("print(1)", FAST)
    with pytest.raises(OversightError, match="apt-get install bubblewrap"):
        require_sandbox()


@pytest.mark.usefixtures("no_bwrap")
def test_unsafe_falls_back_to_the_in_process_guard_with_a_loud_warning(capsys: pytest.CaptureFixture[str]):
    r = run_python("print(6 * 7)", FAST, unsafe=True)
    assert r.ok and r.stdout.strip() == "42"
    assert "bwrap" not in r.isolation and "guard" in r.isolation and "rlimits" in r.isolation
    run_python("print(1)", FAST, unsafe=True)
    err = capsys.readouterr().err
    assert err.count("WARNING: --unsafe-sandbox") == 1 and "can escape" in err


@pytest.mark.usefixtures("no_bwrap")
def test_in_process_guard_refuses_writes_reads_and_network(tmp_path: Path):
    victim, target, programs = _writes_outside(tmp_path)
    for src in programs:
        r = run_python(src, FAST, unsafe=True)
        assert not r.ok and r.killed_reason == "blocked" and r.blocked, src
    assert victim.read_text() == "keep" and not target.exists()
    secret = tmp_path / "secret.env"
    secret.write_text("API_KEY=canary-1234")
    r = run_python(f"print(open({str(secret)!r}).read())", FAST, unsafe=True)
    assert not r.ok and "canary-1234" not in r.stdout and r.blocked
    net = run_python("import _socket\n_socket.socket()", Limits(network_namespace=False), unsafe=True)
    assert "netns" not in net.isolation and net.killed_reason == "blocked"


def _programs(body: dict) -> list[str]:
    right = "```python\nprint((16 - 3 - 4) * 2)\n```"
    return [right, "```python\nprint(16 * 2)\n```"]


GSM_SAMPLE = Path(__file__).resolve().parents[2] / "tasks" / "samples" / "gsm8kqa" / "test.jsonl"


@pytest.mark.usefixtures("no_bwrap")
def test_build_task_cli_refuses_without_bwrap_and_runs_with_unsafe_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("BUILD_KEY", "sk-test")
    (tmp_path / "judges").mkdir()
    out = tmp_path / "built.jsonl"
    with FakeOpenAI(reply=_programs) as server:
        (tmp_path / "judges" / "coder.yaml").write_text(
            f"provider: openai\nmodel: coder\nbase_url: {server.base_url}\napi_key_env: BUILD_KEY\n")
        args = ["--include", str(tmp_path), "build-task", "gsm8kqa", "--from", str(GSM_SAMPLE),
                "--model", "coder", "--samples", "2", "--limit", "1", "--out", str(out)]
        refused = main(args)
        err = capsys.readouterr().err
        assert refused != 0 and "bubblewrap" in err and "--unsafe-sandbox" in err and "Traceback" not in err
        assert not server.requests and not out.exists()  # refused before any model call
        assert main([*args, "--unsafe-sandbox"]) == 0
    captured = capsys.readouterr()
    assert "WARNING: --unsafe-sandbox" in captured.err and "1 of 1 problems written" in captured.out
    assert json.loads(out.read_text().splitlines()[0])["correct_output"] == "18"
