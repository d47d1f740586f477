"""Load at the reference grid's scale: `runs/kenton2024.yaml` against loopback servers.

The grid (8 tasks x `--limit` questions x both orders x six protocols, a debate of 3
rounds best-of-4, four judges) runs against a loopback OpenAI server (the local vLLM judge
and gpt-4o-mini) and a loopback Gemini server (gemini-flash, gemini-pro), both in a child
process with no latency, so the harness's own cost is what is measured. The task files are
synthesised in the upstream formats by copying the bundled samples until each task has
`--limit` questions (each copy's question, and QuALITY's article, marked so that no two
prompts coincide); the cards are the bundled ones with `base_url` pointing at the servers
and no rate limits.

Three runs of the harness CLI, each a child process (peak RSS from the kernel's accounting
of that child):

1. online: `oversight run spec.yaml`;
2. batch: `oversight run spec.yaml --batch`, where every episode starts at once and each
   model's calls go out as batches (gpt-4o-mini with `batch: true`, as at OpenAI; the local
   vLLM judge stays online); killed with SIGKILL once `--kill-at` of the episodes are
   journaled, then `oversight run --resume` finishes it.

Printed per run: wall and CPU seconds, peak RSS, calls, journal and cache sizes, the
prompts the journal holds and how many distinct ones (a prompt journaled twice is counted);
then whether the batch run's judgments equal the online run's, row for row.

    nice -n 5 python benchmarks/grid_load.py              # full size: about 181,000 calls
    nice -n 5 python benchmarks/grid_load.py --limit 32 --modes batch   # a quarter, batch only
    python benchmarks/grid_load.py --limit 2 --tasks boolq mmlu   # a tiny check
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tasks" / "samples"
KEY_ENV = "GRID_LOAD_KEY"
OPENAI_CARDS = ("local-vllm", "gpt-4o-mini")


# --- task files in the upstream formats --------------------------------------------------


def _tag(text: str, copy: int) -> str:
    return text if copy == 0 else f"{text} (variant {copy})"


def _jsonl(src: Path, dst: Path, copies: int, change: Any) -> None:
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    with open(dst, "w", encoding="utf-8") as f:
        for c in range(copies):
            for row in rows:
                f.write(json.dumps(change(json.loads(json.dumps(row)), c), ensure_ascii=False) + "\n")


def _boolq(row: dict[str, Any], c: int) -> dict[str, Any]:
    row["question"] = _tag(row["question"], c)
    return row


def _gsm8kqa(row: dict[str, Any], c: int) -> dict[str, Any]:
    row["id"] = f"{row['id']}-{c}"
    row["question"] = _tag(row["question"], c)
    return row


def _quality(row: dict[str, Any], c: int) -> dict[str, Any]:
    row["article_id"] = f"{row['article_id']}{c:04d}"
    row["set_unique_id"] = f"{row['set_unique_id']}-{c}"
    row["article"] = f"(Copy {c}.)\n{row['article']}"
    for q in row["questions"]:
        q["question_unique_id"] = f"{q['question_unique_id']}-{c}"
        q["question"] = _tag(q["question"], c)
    return row


def _csv(src: Path, dst: Path, copies: int, columns: dict[str, bool], header: bool = True) -> None:
    """Copy a CSV `copies` times; `columns` names (or, without a header, indexes) the
    cells to mark: True = question text, False = an id."""
    with open(src, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    head, body = (rows[0], rows[1:]) if header else ([], rows)
    where = {(head.index(k) if header else int(k)): is_text for k, is_text in columns.items()}
    with open(dst, "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        if header:
            out.writerow(head)
        for c in range(copies):
            for row in body:
                row = list(row)
                for i, is_text in where.items():
                    row[i] = _tag(row[i], c) if is_text else f"{row[i]}-{c}"
                out.writerow(row)


def _prontoqa(src: Path, dst: Path, copies: int) -> None:
    data = json.loads(src.read_text(encoding="utf-8"))
    out = {}
    for c in range(copies):
        for key, example in data.items():
            example = json.loads(json.dumps(example))
            if c:
                example["test_example"]["question"] = f"Case {c}. " + example["test_example"]["question"]
            out[f"{key}-{c}"] = example
    dst.write_text(json.dumps(out), encoding="utf-8")


def synthesise(folder: Path, copies: int) -> None:
    """tasks/samples/* copied `copies` times into `folder`/tasks/samples, cards alongside."""
    samples = folder / "tasks" / "samples"
    for name in ("boolq", "gpqa", "gsm8kqa", "mmlu/test", "prontoqa", "quality", "truthfulqa"):
        (samples / name).mkdir(parents=True, exist_ok=True)
    _jsonl(SAMPLES / "boolq/dev.jsonl", samples / "boolq/dev.jsonl", copies, _boolq)
    _jsonl(SAMPLES / "gsm8kqa/gsm8kqa.jsonl", samples / "gsm8kqa/gsm8kqa.jsonl", copies, _gsm8kqa)
    quality = "quality/QuALITY.v1.0.1.htmlstripped.dev"
    _jsonl(SAMPLES / quality, samples / quality, copies, _quality)
    gpqa = "gpqa/gpqa_synthetic.csv"
    _csv(SAMPLES / gpqa, samples / gpqa, copies, {"Record ID": False, "Question": True})
    _csv(SAMPLES / "truthfulqa/TruthfulQA.csv", samples / "truthfulqa/TruthfulQA.csv", copies, {"Question": True})
    for sub in sorted((SAMPLES / "mmlu/test").glob("*.csv")):
        _csv(sub, samples / "mmlu/test" / sub.name, copies, {"0": True}, header=False)
    _prontoqa(SAMPLES / "prontoqa/345hop_random_true.json", samples / "prontoqa/345hop_random_true.json", copies)
    for card in (ROOT / "tasks").glob("*.yaml"):
        shutil.copy(card, folder / "tasks" / card.name)


def grid_spec(folder: Path, openai_port: int, gemini_port: int, limit: int, tasks: list[str] | None,
              batch: bool = False) -> Path:
    """runs/kenton2024.yaml with its cards pointed at the loopback servers (`batch`: with
    gpt-4o-mini's card batching, as OpenAI's own endpoint does)."""
    spec = yaml.safe_load((ROOT / "runs" / "kenton2024.yaml").read_text())
    spec["limit"] = limit
    if tasks:
        spec["tasks"] = tasks
    spec.pop("budget_usd", None)  # the loopback servers charge list prices for nothing
    (folder / "judges").mkdir(exist_ok=True)
    for name in {spec["agent"], *spec["judges"]}:
        card = yaml.safe_load((ROOT / "judges" / f"{name}.yaml").read_text())
        for key in ("rpm", "tpm"):
            card.pop(key, None)
        openai = card["provider"] == "openai"
        card["base_url"] = f"http://127.0.0.1:{openai_port if openai else gemini_port}" + ("/v1" if openai else "")
        card["api_key_env"] = KEY_ENV
        if name == "gpt-4o-mini" and batch:
            card["batch"] = True  # OpenAI's own endpoint batches; a base_url alone would not
        card["batch_poll_s"] = 0.5
        (folder / "judges" / f"{name}.yaml").write_text(yaml.safe_dump(card))
    path = folder / "grid.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


# --- the loopback servers (a child process) ----------------------------------------------


class _Discard(list):  # type: ignore[type-arg]
    """A request log that keeps nothing: 181,000 long prompts would fill the server's memory."""

    def append(self, item: Any) -> None:
        pass


def reply(body: dict[str, Any]) -> str:
    """Deterministic in the prompt, so online and batch runs get the same answers."""
    prompt = body.get("contents") or body.get("messages")
    digest = hashlib.sha256(json.dumps(prompt, sort_keys=True).encode()).hexdigest()
    return f"Point {digest[:10]}: the passage bears this out. Answer: {1 + int(digest[10], 16) % 2}"


def serve(openai_port: int, gemini_port: int) -> None:
    from oversight.testing import FakeOpenAI
    from oversight.testing_providers import FakeGemini

    servers = [FakeOpenAI(port=openai_port, reply=reply), FakeGemini(port=gemini_port, reply=reply)]
    for s in servers:
        s.requests, s.headers, s.paths, s.batch_requests = _Discard(), _Discard(), _Discard(), _Discard()
        s.__enter__()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


# --- measuring ---------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _episodes(run_dir: Path) -> int:
    try:
        with open(run_dir / "journal.jsonl", "rb") as f:
            return sum(line.startswith(b'{"type":"episode"') for line in f)
    except FileNotFoundError:
        return 0


def _planned(run_dir: Path) -> float:
    """Episodes the run plans (from the manifest it writes as it starts); inf before that."""
    try:
        return float(json.loads((run_dir / "manifest.json").read_text())["plan"]["episodes"])
    except (OSError, ValueError, KeyError):
        return float("inf")


def run_harness(args: list[str], cwd: Path, env: dict[str, str], kill_when: Any = None) -> dict[str, Any]:
    """One `oversight` child: wall and CPU seconds, peak RSS (MB); SIGKILLed once
    `kill_when()` is true."""
    t0 = time.perf_counter()
    log = cwd / "harness.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "oversight", *args], cwd=cwd, env=env, stdout=out, stderr=out)
    killed = False
    while True:
        # wait4, not Popen.poll (which would reap the child and lose its rusage).
        pid, status, usage = os.wait4(proc.pid, 0 if kill_when is None else os.WNOHANG)
        if pid:
            break
        if kill_when():
            proc.send_signal(signal.SIGKILL)
            killed = True
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.5)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1) and not killed:  # 1: some episodes ended in error (counted below)
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"oversight {' '.join(args)} failed ({proc.returncode}):\n{tail}")
    return {"wall_s": time.perf_counter() - t0, "cpu_s": usage.ru_utime + usage.ru_stime,
            "rss_mb": usage.ru_maxrss / 1024, "killed": killed}


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def journal_prompts(run_dir: Path) -> tuple[int, int, int]:
    """(prompts journaled, distinct prompt texts, distinct prompt ids) over every record."""
    texts: Counter[str] = Counter()
    ids: set[str] = set()
    with open(run_dir / "journal.jsonl", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            for pid, blob in (rec.get("prompts") or {}).items():
                ids.add(pid)
                texts[hashlib.sha256(blob.encode()).hexdigest()] += 1
    return sum(texts.values()), len(texts), len(ids)


def describe(label: str, run_dir: Path, cache: Path, runs: list[dict[str, Any]]) -> str:
    totals = json.loads((run_dir / "manifest.json").read_text())["totals"]
    held, distinct, _ = journal_prompts(run_dir)
    wall = sum(r["wall_s"] for r in runs)
    cpu = sum(r["cpu_s"] for r in runs)
    rss = " + ".join(f"{r['rss_mb']:.0f}" for r in runs)
    return (f"{label}: {totals['episodes_done']} episodes ({totals['episode_errors']} errors), {totals['calls']} calls,"
            f" wall {wall:.0f} s, CPU {cpu:.0f} s, peak RSS {rss} MB; journal {_size_mb(run_dir / 'journal.jsonl'):.0f}"
            f" MB holding {held} prompts, {distinct} distinct; response cache {_size_mb(cache):.0f} MB")


def same_rows(a: Path, b: Path) -> str:
    import pandas as pd

    drop = ["run_id", "episode_cost_usd"]
    frames = []
    for d in (a, b):
        j = pd.read_parquet(d / "judgments.parquet").drop(columns=drop, errors="ignore")
        j = j.astype(object).where(j.notna(), "<missing>").astype(str)  # one spelling of a missing value
        frames.append(j.sort_values(list(j.columns)).reset_index(drop=True))
    if frames[0].shape != frames[1].shape:
        return f"DIFFERENT shapes {frames[0].shape} vs {frames[1].shape}"
    diff = (frames[0] != frames[1]).any(axis=1).sum()
    return f"{len(frames[0])} judgments, {diff} differing" if diff else f"{len(frames[0])} judgments, all equal"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=128, help="questions per task (the grid's is 128)")
    ap.add_argument("--tasks", nargs="*", help="a subset of the grid's tasks (default: all eight)")
    ap.add_argument("--kill-at", type=float, default=0.5, help="fraction of episodes journaled before SIGKILL")
    ap.add_argument("--modes", nargs="+", choices=["online", "batch"], default=["online", "batch"])
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    work = Path(tempfile.mkdtemp(prefix="oversight-grid-"))
    ports = _free_port(), _free_port()
    # Enough copies that every task has `limit` questions after its filters (QuALITY keeps
    # only some of a sample's questions; the smallest sample has 2 articles).
    synthesise(work, copies=max(1, -(-args.limit // 4)))
    spec = grid_spec(work, *ports, args.limit, args.tasks)
    server = subprocess.Popen([sys.executable, __file__, "--serve", *map(str, ports)], stdout=subprocess.PIPE,
                              text=True)
    env = {**os.environ, KEY_ENV: "sk-grid-load"}
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise SystemExit("the loopback servers did not start")
        lines = []
        for label, extra in (("online", []), ("batch", ["--batch"])):
            if label not in args.modes:
                continue
            env["OVERSIGHT_CACHE_DIR"] = str(work / f"cache-{label}")
            run_dir = work / f"run-{label}"
            base = ["run", str(spec), "--out", str(run_dir), "--include", str(work)]
            grid_spec(work, *ports, args.limit, args.tasks, batch=bool(extra))
            if label == "online":
                runs = [run_harness(base, work, env)]
            else:
                first = run_harness([*base, *extra], work, env,
                                    kill_when=lambda d=run_dir: _episodes(d) >= args.kill_at * _planned(d))
                at, planned = _episodes(run_dir), int(_planned(run_dir))
                second = run_harness([*base, *extra, "--resume"], work, env)
                runs = [first, second]
                label += f" (SIGKILL at {at} of {planned} episodes journaled, then --resume)" if first["killed"] \
                    else " (finished before the kill)"
            lines.append(describe(label, run_dir, work / f"cache-{label.split()[0]}", runs))
            print(lines[-1], flush=True)
        if len(args.modes) == 2:
            print(f"batch vs online: {same_rows(work / 'run-online', work / 'run-batch')}")
    finally:
        server.terminate()
        server.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    main()
