"""Harness overhead: N QA episodes against a loopback fake OpenAI server.

The server (a separate process, so its CPU is not counted) answers every call after a fixed
latency L; the judge card allows C calls in flight. With no overhead the run would take
N·L/C seconds.

By default each side is a whole process, timed from its start to its exit, with its CPU
(user + system, from the kernel's accounting of the child):
- harness: `python -m oversight run bench.yaml` (imports, planning, calls, cache, journal,
  sealing the tables and the end-of-run summary), cache on and empty;
- with --baseline, the bare SDK: a fresh `python` that imports only `openai`, reads the very
  requests the harness sent (their messages from the run's prompts.parquet, with the same
  max_tokens, logprobs and prompt_cache_key) and sends them through one client per 16
  connections under a semaphore of C, storing nothing. Twice:
  - `create`: `client.chat.completions.create(...)`, the bare SDK as its README shows it
    (the issue's reference);
  - `post`: `client.post("/chat/completions", body=..., cast_to=object)`, the SDK's generic
    path that the harness's adapter uses (no typed request transform, no reply objects):
    the floor of the harness's own path, so that ratio is the harness's own overhead.

    python benchmarks/overhead.py --n 5000 --latency 0.1 --concurrency 128 --baseline --repeats 3

--repeats R runs the three R times, one after the other, and prints each and the best.
--in-process runs the harness inside this process (`oversight.run`), for profiling it:
    py-spy record -o prof.txt -f raw -- python benchmarks/overhead.py --in-process
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("fake server did not start")


def proc_cpu(pid: int) -> float:
    """CPU seconds a process has used (Linux /proc), to show whether the fake server kept up."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


async def sdk_baseline(port: int, requests: list[dict[str, Any]], concurrency: int, how: str) -> tuple[float, float]:
    import asyncio
    import math

    import openai

    cpu0, t0 = time.process_time(), time.perf_counter()
    shards = math.ceil(concurrency / 16)
    clients = [openai.AsyncOpenAI(api_key="sk-bench", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
               for _ in range(shards)]
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int, kwargs: dict[str, Any]) -> None:
        async with sem:
            client = clients[i % shards]
            if how == "create":
                await client.chat.completions.create(**kwargs)
            else:
                await client.post("/chat/completions", body=kwargs, cast_to=object)

    await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
    for c in clients:
        await c.close()
    return time.perf_counter() - t0, time.process_time() - cpu0


def run_child(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one child process, from its start to its exit."""
    before = os.times()
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def sdk_worker(args: argparse.Namespace) -> None:
    """The bare-SDK process: send the requests in args.requests and exit."""
    import asyncio

    with open(args.requests) as f:
        requests = [json.loads(line) for line in f]
    asyncio.run(sdk_baseline(args.port, requests, args.concurrency, args.worker))


def harness_requests(run_dir: Path, model: str) -> list[dict[str, Any]]:
    """The requests the harness sent, rebuilt from its own audit trail."""
    import hashlib

    import oversight

    res = oversight.load(run_dir)
    prompts = dict(zip(res.prompts.prompt_id, res.prompts.messages, strict=True))
    out = []
    for _, call in res.calls.iterrows():
        messages = [{"role": m["role"], "content": "".join(p.get("text", "") for p in m["parts"])}
                    for m in json.loads(prompts[call.prompt_id])]
        item = res.judgments.loc[res.judgments.episode_id == call.episode_id].iloc[0]
        key = "ov-" + hashlib.sha256(f"{item.task}|{item.item_id}|judge".encode()).hexdigest()[:16]
        out.append({"model": model, "messages": messages, "max_tokens": 1024, "logprobs": True,
                    "top_logprobs": 5, "prompt_cache_key": key})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--concurrency", type=int, default=128)
    ap.add_argument("--baseline", action="store_true", help="also measure the bare OpenAI SDK")
    ap.add_argument("--repeats", type=int, default=1, help="run harness and baseline this many times")
    ap.add_argument("--in-process", action="store_true", help="run the harness in this process (to profile it)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (runs, caches, requests)")
    ap.add_argument("--worker", choices=["create", "post"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--requests", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        sdk_worker(args)
        return

    work = Path(tempfile.mkdtemp(prefix="oversight-bench-"))
    data = work / "items.jsonl"
    with open(data, "w") as f:
        for i in range(args.n):
            f.write(json.dumps({"id": f"q{i}", "question": f"Is {i} even?", "answers": ["yes", "no"],
                                "label": i % 2}) + "\n")
    (work / "tasks").mkdir()
    (work / "tasks" / "bench.yaml").write_text(
        f"name: bench\ngroup: closed\nloader: generic\npath: {data}\n"
        "fields: {id: id, question: question, answers: answers, correct: label}\n"
    )
    port = free_port()
    spec = {
        "name": "bench", "tasks": ["bench"], "limit": None, "orders": "random", "protocols": ["qa"],
        "concurrency": args.concurrency * 2,
        "judges": [{"name": "fake", "provider": "openai", "model": "fake", "api_key_env": "BENCH_KEY",
                    "base_url": f"http://127.0.0.1:{port}/v1", "max_concurrency": args.concurrency}],
    }
    (work / "bench.yaml").write_text(json.dumps(spec))  # JSON is YAML
    env = {**os.environ, "BENCH_KEY": "sk-bench"}
    server = subprocess.Popen([sys.executable, "-m", "oversight.testing", "--port", str(port),
                               "--latency", str(args.latency)], stdout=subprocess.DEVNULL)
    try:
        wait_for(port)
        rows = []
        for r in range(args.repeats):
            env["OVERSIGHT_CACHE_DIR"] = str(work / f"cache{r}")  # cache on, and empty
            run_dir = work / f"run{r}"
            if args.in_process:
                wall, cpu = harness_in_process(work, spec, run_dir, env)
            else:
                wall, cpu = run_child([sys.executable, "-m", "oversight", "run", "bench.yaml", "--out", str(run_dir)],
                                      work, env)
            baselines = {}
            if args.baseline:
                requests = work / f"requests{r}.jsonl"
                with open(requests, "w") as f:
                    for req in harness_requests(run_dir, "fake"):
                        f.write(json.dumps(req) + "\n")
                for how in ("create", "post"):
                    baselines[how] = run_child(
                        [sys.executable, __file__, "--worker", how, "--port", str(port), "--concurrency",
                         str(args.concurrency), "--requests", str(requests)], work, env)
            totals = json.loads((run_dir / "manifest.json").read_text())["totals"]
            rows.append((wall, cpu, totals["provider_requests"], totals["episode_errors"], baselines))
        server_cpu = proc_cpu(server.pid)
    finally:
        server.terminate()
        server.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ideal = args.n * args.latency / args.concurrency
    what = "in this process" if args.in_process else "whole processes"
    print(f"N={args.n} L={args.latency * 1000:g}ms C={args.concurrency}, {what} "
          f"(fake server CPU {server_cpu:.2f}s in all)")
    for wall, cpu, calls, errors, baselines in rows:
        line = (f"harness: {calls} calls, {errors} errors, wall {wall:.2f}s (ideal {ideal:.2f}s, ratio "
                f"{wall / ideal:.2f}), CPU {cpu / max(calls, 1) * 1000:.2f} ms/call")
        for how, (b_wall, b_cpu) in baselines.items():
            line += (f" | SDK {how}: wall {b_wall:.2f}s, CPU {b_cpu / max(calls, 1) * 1000:.2f} ms/call,"
                     f" harness/SDK wall {wall / b_wall:.2f}x, CPU {cpu / b_cpu:.2f}x")
        print(line)
    wall, cpu = min(x[0] for x in rows), min(x[1] for x in rows)
    summary = f"best of {len(rows)}: harness wall {wall:.2f}s, CPU {cpu:.2f}s"
    for how in rows[0][4]:
        b_wall, b_cpu = min(x[4][how][0] for x in rows), min(x[4][how][1] for x in rows)
        summary += (f"; SDK {how}: wall {b_wall:.2f}s, CPU {b_cpu:.2f}s, ratios wall {wall / b_wall:.2f}x,"
                    f" CPU {cpu / b_cpu:.2f}x")
    print(summary)


def harness_in_process(work: Path, spec: dict[str, Any], run_dir: Path, env: dict[str, str]) -> tuple[float, float]:
    """The harness as `oversight.run` in this process, imports done before the clock starts."""
    import pandas  # noqa: F401 - imported first so start-up is not in the measured window
    import pyarrow.parquet  # noqa: F401 - (sealing the tables imports them)

    import oversight
    import oversight.model.providers.openai  # noqa: F401 - SDK import time is not per-call cost
    from oversight import catalogue

    os.environ.update(env)
    catalogue.include(work)
    with open(os.devnull, "w") as devnull:  # progress lines are not the measurement
        cpu0, t0 = time.process_time(), time.perf_counter()
        oversight.run(spec, out=run_dir, stream=devnull)
        return time.perf_counter() - t0, time.process_time() - cpu0


if __name__ == "__main__":
    main()
