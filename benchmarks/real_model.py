"""A real model end to end, measured: the README's "Real models" table.

Runs one spec twice through the CLI on a managed llama.cpp model (SmolLM2-135M-Instruct by
default), once with free judge answers and once with `judge.constrain: true`, then reads
the stored rows (nothing printed here comes from anywhere else) and prints, per protocol:
episodes, the judge's invalid rate under strict and lenient reading and with constrained
decoding, accuracy (lenient; constrained), agents' format adherence and truncation (cut at
max_tokens), seconds of model time per episode (the calls' latencies: an open protocol's
are its source episodes') and generated tokens per second.

    python benchmarks/real_model.py [--model smollm2-135m-instruct] [--limit 3] [--threads 1]

The accuracies are what a 135M model gives as its own judge (near chance is expected), not
findings. Wall times depend on what else the machine runs: llama.cpp slows many-fold when
its cores are shared.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

PROTOCOLS = ["qa", "qa_with_article", "consultancy", "debate", "open_consultancy", "open_debate"]


def run(work: Path, name: str, args: argparse.Namespace, constrain: bool) -> tuple[Path, float]:
    spec = {"name": name, "seed": 0, "tasks": args.tasks, "limit": args.limit, "orders": "random",
            "protocols": PROTOCOLS, "agent": "real", "judges": ["real"], "agents": {"word_limit": args.word_limit},
            "debate": {"rounds": 2}, "consultancy": {"rounds": 2}, "judge": {"mode": "answer", "constrain": constrain}}
    (work / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    out = work / name
    start = time.perf_counter()
    command = [sys.executable, "-m", "oversight", "run", f"{name}.yaml", "--out", str(out), "--cache", "off"]
    done = subprocess.run(command, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"{name}: oversight run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return out, wall


def table(free: Path, forced: Path, wall: dict[str, float]) -> pd.DataFrame:
    rows = []
    j0, j1 = (pd.read_parquet(d / "judgments.parquet") for d in (free, forced))
    turns = pd.read_parquet(free / "turns.parquet")
    calls = pd.read_parquet(free / "calls.parquet")
    for protocol in PROTOCOLS:
        a, b = (j[(j["protocol"] == protocol) & j["qa_role"].ne("agent").fillna(True)] for j in (j0, j1))
        if len(a) == 0:
            continue
        lenient_ok = a["verdict_status"].eq("ok")
        strict_ok = lenient_ok & a["verdict_rule"].ne("lenient")
        agents = turns[(turns["protocol"] == protocol) & turns["role"].isin(["debater", "consultant"])]
        own = calls[calls["episode_id"].isin(a["episode_id"]) | calls["transcript_id"].isin(a["transcript_id"])]
        gen_s = own["latency_s"].sum()
        rows.append({
            "protocol": protocol, "episodes": len(a),
            "invalid_strict": 1 - strict_ok.mean(), "invalid_lenient": 1 - lenient_ok.mean(),
            "invalid_constrained": 1 - b["verdict_status"].eq("ok").mean() if len(b) else float("nan"),
            "accuracy_lenient": a["is_correct"].astype(bool).mean(),
            "accuracy_constrained": b["is_correct"].astype(bool).mean() if len(b) else float("nan"),
            "format_ok": agents["format_ok"].astype(bool).mean() if len(agents) else float("nan"),
            "cut_max_tokens": agents["finish_reason"].eq("max_tokens").mean() if len(agents) else float("nan"),
            "s_per_episode": gen_s / len(a),
            "tokens_per_s": own["output_tokens"].sum() / gen_s if gen_s else float("nan"),
        })
    out = pd.DataFrame(rows)
    episodes = len(j0)
    own_qa = len(j0[j0["qa_role"].eq("agent")])
    print(f"free run: {episodes} rows ({own_qa} the agent's own QA) in {wall['free']:.0f} s "
          f"= {wall['free'] / max(episodes, 1):.1f} s a row; constrained run: {wall['forced']:.0f} s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct", help="a packaged model's short name or a GGUF path")
    ap.add_argument("--tasks", nargs="+", default=["my_task", "prontoqa"])
    ap.add_argument("--limit", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--word-limit", type=int, default=40)
    ap.add_argument("--max-tokens", type=int, default=96)
    args = ap.parse_args()
    card = {"provider": "llama_cpp", "gguf": args.model, "threads": args.threads, "max_concurrency": 1,
            "context_window": 4096, "max_tokens": args.max_tokens, "temperature": 0.0, "timeout_s": 900}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "judges").mkdir()
        (work / "judges" / "real.yaml").write_text(yaml.safe_dump(card))
        free, w0 = run(work, "free", args, constrain=False)
        forced, w1 = run(work, "forced", args, constrain=True)
        out = table(free, forced, {"free": w0, "forced": w1})
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.2f}".format):
        print(out.to_string(index=False))


if __name__ == "__main__":
    main()
