"""Run integrity through the CLI, against the loopback OpenAI server: a resumed, retried,
replicated or interrupted run is exactly the experiment its spec says (issue: run integrity
and an audit trail)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import oversight
from oversight.testing import FakeOpenAI, Fault

ROOT = Path(__file__).resolve().parents[2]
KEY_ENV = "FAKE_INTEGRITY_KEY"
# Columns that must not differ between an interrupted-and-resumed run and a clean one.
STABLE = ["episode_id", "task", "item_id", "protocol", "judge", "order", "assigned", "judge_answer",
          "verdict_status", "transcript_id", "replicate", "judge_prompt_id"]


def scripted(body: dict[str, Any]) -> str:
    """A deterministic reply for any role: a function of the prompt alone."""
    blob = json.dumps(body.get("messages"), sort_keys=True)
    n = int(hashlib.sha256(blob.encode()).hexdigest(), 16)
    return f"Thinking: weighing it.\nArgument: The text supports my answer ({n % 97}).\nAnswer: {1 + n % 2}"


def card(server: FakeOpenAI, **kw: Any) -> dict[str, Any]:
    c = {"name": "fake", "provider": "openai", "model": "fake-model", "base_url": server.base_url,
         "api_key_env": KEY_ENV, "max_retries": 0, "timeout_s": 10,
         "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
    c.update(kw)
    return c


def write_spec(path: Path, server: FakeOpenAI, **kw: Any) -> Path:
    spec: dict[str, Any] = {
        "name": "integrity", "tasks": ["boolq", "quality"], "limit": 3,
        "protocols": ["qa", "consultancy", "debate"], "agent": card(server), "judges": [card(server)],
        "debate": {"rounds": 2}, "consultancy": {"rounds": 2}, "concurrency": 4,
    }
    spec.update(kw)
    path.write_text(yaml.safe_dump(spec))
    return path


def cli(*args: str, cache: Path, env: dict[str, str] | None = None, timeout: float = 180,
        prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, KEY_ENV: "sk-integrity", "OVERSIGHT_CACHE_DIR": str(cache), **(env or {})}
    return subprocess.run([*(prefix or []), sys.executable, "-m", "oversight", *args], env=full_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def start(*args: str, cache: Path) -> subprocess.Popen[str]:
    env = {**os.environ, KEY_ENV: "sk-integrity", "OVERSIGHT_CACHE_DIR": str(cache)}
    # Ctrl-C's default action restored in the child: an ignored SIGINT is inherited through
    # exec, and a test runner's worker may have it ignored (the run then never heard it).
    return subprocess.Popen([sys.executable, "-m", "oversight", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_lines(journal: Path, n: int, proc: subprocess.Popen[str], limit_s: float = 120) -> None:
    """Poll (bounded) until the journal has n episode records (prompt records are written
    as calls go out, before anything finished); not a timing assertion."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_bytes().count(b'{"type":"episode"') >= n:
            return
        time.sleep(0.01)


def no_traceback(p: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, p.stderr[-3000:]


def stable(d: Path) -> pd.DataFrame:
    j = pd.read_parquet(d / "judgments.parquet")
    return j[STABLE].sort_values("episode_id").reset_index(drop=True)


# --- 1. one resolved spec -------------------------------------------------------------------


def test_resume_with_a_changed_spec_stops_before_any_call_and_names_the_keys(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with FakeOpenAI(reply=scripted) as server:
        spec = write_spec(tmp_path / "s.yaml", server, protocols=["qa"])
        out = tmp_path / "run"
        assert cli("run", str(spec), "--out", str(out), cache=cache).returncode == 0
        spec_before = (out / "spec.yaml").read_bytes()
        journal_before = (out / "journal.jsonl").read_bytes()
        sent = len(server.requests)
        p = cli("run", str(spec), "--set", "judge.mode=cot", "--set", "agents.word_limit=90",
                "--resume", "--out", str(out), cache=cache)
        assert len(server.requests) == sent
    no_traceback(p)
    assert p.returncode == 2
    assert "spec.judge.mode: answer → cot" in p.stderr and "spec.agents.word_limit: 150 → 90" in p.stderr
    assert "without --resume" in p.stderr
    assert (out / "spec.yaml").read_bytes() == spec_before
    assert (out / "journal.jsonl").read_bytes() == journal_before


def test_a_changed_prompt_template_or_task_file_is_a_different_experiment(tmp_path: Path) -> None:
    from oversight.dialogue.prompts import Templates
    from oversight.engine.identity import differences, run_identity
    from oversight.engine.prepare import prepare
    from oversight.engine.spec import spec_from_any

    data = tmp_path / "my.jsonl"
    data.write_text('{"id": "a", "question": "Is it?", "options": ["yes", "no"], "label": 0}\n'
                    '{"id": "b", "question": "Or not?", "options": ["no", "yes"], "label": 1}\n')
    task = tmp_path / "mine.yaml"
    task.write_text(yaml.safe_dump({"name": "mine", "group": "closed", "loader": "generic", "path": str(data),
                                    "fields": {"id": "id", "question": "question", "answers": "options",
                                               "correct": "label"}}))
    spec = {"name": "x", "tasks": [str(task)], "judges": ["sim/weak"], "protocols": ["qa"]}
    before = run_identity(prepare(spec_from_any(spec)), Templates())
    data.write_text(data.read_text().replace("Is it?", "Is it so?"))
    after = run_identity(prepare(spec_from_any(spec)), Templates())
    keys = [k for k, _, _ in differences(before, after)]
    assert "tasks.mine.data_sha256" in keys and "tasks.mine.items_sha256" in keys
    # A reworded template found first through --include changes the identity too.
    from oversight import catalogue

    override = tmp_path / "inc" / "protocols" / "templates"
    override.mkdir(parents=True)
    original = ROOT / "protocols" / "templates" / "judge_answer_only.txt"
    (override / "judge_answer_only.txt").write_text(original.read_text() + "\nBe brief.\n")
    catalogue.include(tmp_path / "inc")
    try:
        reworded = run_identity(prepare(spec_from_any(spec)), Templates())
    finally:
        catalogue._extra.clear()
    assert [k for k, _, _ in differences(after, reworded)] == ["templates.judge_answer_only"]


def test_resume_of_a_directory_without_a_run_is_an_error(tmp_path: Path) -> None:
    p = cli("run", str(sim_spec(tmp_path / "s.yaml")), "--resume", "--out", str(tmp_path / "new"),
            cache=tmp_path / "cache")
    no_traceback(p)
    assert p.returncode == 2 and "holds no run to resume" in p.stderr
    assert not (tmp_path / "new" / "journal.jsonl").exists()


def test_a_setting_added_since_with_a_null_value_is_not_a_difference() -> None:
    from oversight.engine.identity import differences

    old = {"tasks": {"boolq": {"card": {"path": "x"}}}}
    new = {"tasks": {"boolq": {"card": {"path": "x", "hf": None}}}}
    assert differences(old, new) == []
    assert differences(old, {"tasks": {"boolq": {"card": {"path": "x", "hf": {"path": "google/boolq"}}}}}) != []


# --- 2. one writer per run directory --------------------------------------------------------


def test_a_second_writer_is_refused_at_once_naming_the_pid(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with FakeOpenAI(reply=scripted, latency_s=0.05) as server:
        spec = write_spec(tmp_path / "s.yaml", server, concurrency=1)
        out = tmp_path / "run"
        first = start("run", str(spec), "--out", str(out), cache=cache)
        wait_for_lines(out / "journal.jsonl", 1, first)
        assert first.poll() is None
        second = cli("run", str(spec), "--resume", "--out", str(out), cache=cache)
        first.send_signal(signal.SIGKILL)
        first.wait()
    no_traceback(second)
    assert second.returncode == 2
    assert f"PID {first.pid}" in second.stderr and "in use by another oversight run" in second.stderr


def test_a_stale_lock_from_a_killed_run_never_blocks_its_resume(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with FakeOpenAI(reply=scripted) as server:
        spec = write_spec(tmp_path / "s.yaml", server, protocols=["qa"])
        out = tmp_path / "run"
        assert cli("run", str(spec), "--out", str(out), cache=cache).returncode == 0
        (out / ".lock").write_text("999999\n")  # a dead holder's PID, no lock held
        p = cli("run", str(spec), "--resume", "--out", str(out), cache=cache)
    assert p.returncode == 0, p.stderr
    # While a lock is really held, the same resume is refused.
    fd = os.open(out / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with FakeOpenAI(reply=scripted):
            refused = cli("run", str(spec), "--resume", "--out", str(out), cache=cache)
        assert refused.returncode == 2 and "in use" in refused.stderr
    finally:
        os.close(fd)


# --- 3. torn journal tail -------------------------------------------------------------------


def test_a_torn_journal_tail_is_cut_and_every_finished_record_kept(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with FakeOpenAI(reply=scripted) as server:
        spec = write_spec(tmp_path / "s.yaml", server, protocols=["qa"], tasks=["boolq"], limit=4)
        out = tmp_path / "run"
        assert cli("run", str(spec), "--out", str(out), cache=cache).returncode == 0
        reference = stable(out)
        journal = out / "journal.jsonl"
        data = journal.read_bytes()
        journal.write_bytes(data[:3000])  # `head -c 3000`: ends mid-line
        assert not data[:3000].endswith(b"\n")
        p = cli("run", str(spec), "--resume", "--out", str(out), cache=cache)
    assert p.returncode == 0, p.stderr
    assert "cut a torn final journal line" in p.stderr
    pd.testing.assert_frame_equal(stable(out), reference)
    for line in journal.read_bytes().splitlines():
        json.loads(line)  # every line whole
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


# --- 4. totals and budget span the run ------------------------------------------------------


def totals_from_rows(d: Path) -> dict[str, float]:
    calls = pd.read_parquet(d / "calls.parquet")
    passes = [json.loads(x) for x in (d / "journal.jsonl").read_text().splitlines()
              if json.loads(x).get("type") == "pass"]
    paid = calls[~calls.cache_hit.astype(bool)]
    return {"calls": len(calls) + sum(p["unjournaled"]["calls"] for p in passes),
            "cost_usd": round(float(paid.cost_usd.sum()) + sum(p["unjournaled"]["cost_usd"] for p in passes), 6)}


def test_budget_and_totals_span_every_resume(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with FakeOpenAI(reply=scripted) as server:
        pricey = card(server, price={"input_per_mtok": 2000.0, "output_per_mtok": 2000.0})
        spec = write_spec(tmp_path / "s.yaml", server, protocols=["qa"], tasks=["boolq"], limit=6,
                          judges=[pricey], agent=None, concurrency=1, budget_usd=1.0)
        out = tmp_path / "run"
        first = cli("run", str(spec), "--out", str(out), cache=cache)
        m1 = json.loads((out / "manifest.json").read_text())
        sent = len(server.requests)
        again = cli("run", str(spec), "--resume", "--out", str(out), cache=cache)
        m2 = json.loads((out / "manifest.json").read_text())
        sent_again = len(server.requests) - sent
    assert first.returncode == 0 and m1["status"] == "budget_exhausted"
    assert 1.0 <= m1["totals"]["cost_usd"] < 2.0
    # The resume counts what was already spent: it is over budget before its first call.
    assert again.returncode == 0 and m2["status"] == "budget_exhausted" and sent_again == 0
    assert m2["totals"]["cost_usd"] == m1["totals"]["cost_usd"]
    assert m2["totals"]["calls"] == totals_from_rows(out)["calls"]
    assert m2["totals"]["cost_usd"] == totals_from_rows(out)["cost_usd"]
    assert len(m2["invocations"]) == 2


def test_ctrl_c_is_quiet_keeps_totals_and_says_how_to_resume(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    # Slow enough replies that the run is still going when the signal comes, even when this
    # process is starved of CPU (at 0.2 s the run once finished first on a busy machine).
    with FakeOpenAI(reply=scripted, latency_s=1.0) as server:
        spec = write_spec(tmp_path / "s.yaml", server, concurrency=16)
        out = tmp_path / "run"
        proc = start("run", str(spec), "--out", str(out), cache=cache)
        wait_for_lines(out / "journal.jsonl", 3, proc)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
        assert len(server.requests) > 0
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Task exception" not in stderr and "Error" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip() and "episodes ·" not in ln and "starting" not in ln]
    assert len(lines) == 1 and "--resume --out" in lines[0] and str(out) in lines[0], stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "interrupted" and m["totals"]["episodes_done"] >= 3 and m["totals"]["calls"] > 0
    assert m["totals"]["calls"] == totals_from_rows(out)["calls"]


# --- 5. failures are retried and fail fast --------------------------------------------------


def test_errored_episodes_exit_1_and_a_resume_runs_them_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    spec_kw = {"protocols": ["qa"], "tasks": ["boolq"], "limit": 3, "agent": None}
    with FakeOpenAI(reply=scripted, faults=[Fault(500)] * 4) as server:
        spec = write_spec(tmp_path / "s.yaml", server, concurrency=1, **spec_kw)
        out = tmp_path / "run"
        first = cli("run", str(spec), "--out", str(out), cache=cache)
        j1 = pd.read_parquet(out / "judgments.parquet")
        kept = cli("run", str(spec), "--resume", "--keep-errors", "--out", str(out), cache=cache)
        sent = len(server.requests)
        second = cli("run", str(spec), "--resume", "--out", str(out), cache=cache)
        resent = len(server.requests) - sent
    no_traceback(first)
    assert first.returncode == 1 and (j1.verdict_status == "error").sum() == 4
    assert "4 of 6 episodes ended in error" in first.stderr
    assert kept.returncode == 1 and sent == 4 + 2  # --keep-errors made no call
    assert second.returncode == 0, second.stderr
    assert "running again 4 episode(s)" in second.stderr and resent == 4
    j2 = pd.read_parquet(out / "judgments.parquet")
    assert len(j2) == 6 and (j2.verdict_status == "ok").all()
    calls = pd.read_parquet(out / "calls.parquet")
    assert calls.superseded.sum() == 4 and calls[calls.superseded].error.notna().all()


def test_a_bad_key_stops_the_run_at_once_with_one_clear_message(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with FakeOpenAI(reply=scripted, faults=[Fault(401)] * 10_000) as server:
        spec = write_spec(tmp_path / "s.yaml", server, concurrency=2, limit=8)
        out = tmp_path / "run"
        p = cli("run", str(spec), "--out", str(out), cache=cache)
        sent = len(server.requests)
    no_traceback(p)
    assert p.returncode == 1
    assert "model 'fake'" in p.stderr and f"${KEY_ENV}" in p.stderr and "no new episodes were started" in p.stderr
    m = json.loads((out / "manifest.json").read_text())
    planned = m["plan"]["episodes"]
    assert m["status"] == "stopped" and sent <= 4 and planned > 100
    assert m["totals"]["episode_errors"] == sent


def test_the_exit_code_table_is_what_the_cli_returns(tmp_path: Path) -> None:
    from oversight.engine.runner import EXIT_BAD_INPUT, EXIT_ERRORS, EXIT_INTERRUPTED, EXIT_OK

    assert (EXIT_OK, EXIT_ERRORS, EXIT_BAD_INPUT, EXIT_INTERRUPTED) == (0, 1, 2, 130)
    p = cli("run", str(tmp_path / "missing.yaml"), cache=tmp_path / "cache")
    assert p.returncode == EXIT_BAD_INPUT


# --- 6. replicates and the cache switch -----------------------------------------------------


def sim_spec(path: Path, **kw: Any) -> Path:
    spec = {"name": "rep", "tasks": ["boolq", "quality"], "limit": 3, "protocols": ["qa", "debate"],
            "agent": "sim/strong", "judges": ["sim/weak"], "debate": {"rounds": 1}}
    spec.update(kw)
    path.write_text(yaml.safe_dump(spec))
    return path


def manifest_totals(d: Path) -> dict[str, Any]:
    return dict(json.loads((d / "manifest.json").read_text())["totals"])


def test_replicates_and_seeds_draw_fresh_samples_and_identical_reruns_cost_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    spec = sim_spec(tmp_path / "s.yaml", replicates=2)
    assert cli("run", str(spec), "--out", str(tmp_path / "a"), cache=cache).returncode == 0
    res = oversight.load(tmp_path / "a")
    for table in (res.judgments, res.turns, res.calls):
        assert set(table.replicate) == {0, 1}
    one = res.judgments[res.judgments.replicate == 0].sort_values(["task", "item_id", "protocol", "order"])
    two = res.judgments[res.judgments.replicate == 1].sort_values(["task", "item_id", "protocol", "order"])
    assert len(one) == len(two)
    t = res.turns[res.turns.speaker != "Judge"]
    assert t[t.replicate == 0].visible.tolist() != t[t.replicate == 1].visible.tolist()
    assert manifest_totals(tmp_path / "a")["provider_requests"] > 0
    # the same spec again: every call from the cache
    assert cli("run", str(spec), "--out", str(tmp_path / "b"), cache=cache).returncode == 0
    assert manifest_totals(tmp_path / "b")["provider_requests"] == 0
    # a new seed: fresh samples
    assert cli("run", str(spec), "--set", "seed=1", "--out", str(tmp_path / "c"), cache=cache).returncode == 0
    assert manifest_totals(tmp_path / "c")["provider_requests"] == manifest_totals(tmp_path / "c")["calls"]
    # --cache off: fresh calls, and the cache is not touched
    files = sorted(cache.rglob("*.json"))
    assert cli("run", str(spec), "--cache", "off", "--out", str(tmp_path / "d"), cache=cache).returncode == 0
    assert manifest_totals(tmp_path / "d")["cache_hits"] == 0 and sorted(cache.rglob("*.json")) == files
    # --cache read: served from the cache, writes nothing new
    assert cli("run", str(spec), "--set", "seed=2", "--cache", "read", "--out", str(tmp_path / "e"),
               cache=cache).returncode == 0
    assert sorted(cache.rglob("*.json")) == files


def test_scoring_averages_replicates_within_an_item(tmp_path: Path) -> None:
    from oversight.score.accuracy import item_scores

    r = oversight.run({"name": "rep", "tasks": ["boolq"], "limit": 4, "protocols": ["qa"], "judges": ["sim/weak"],
                       "replicates": 3}, out=tmp_path / "r")
    j = r.judgments
    per_item = item_scores(j)
    assert len(per_item) == j.item_id.nunique()
    expected = j.assign(c=j.is_correct.astype(float)).groupby("item_id").c.mean().sort_index()
    got = per_item.set_index("item_id")["score"].sort_index()
    assert (expected.round(9) == got.round(9)).all()


# --- 7. no hang, ever -----------------------------------------------------------------------


def in_mount_ns(options: str, target: Path) -> list[str]:
    """A prefix that runs the CLI in a private mount namespace with a small tmpfs at target."""
    script = f'mount -t tmpfs -o {options} tmpfs "{target}" && exec "$@"'
    return ["unshare", "-rm", "sh", "-c", script, "sh"]


def unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.parametrize("options", ["size=24k", "ro"])
def test_a_full_or_read_only_cache_is_one_warning_and_the_run_completes(tmp_path: Path, options: str) -> None:
    if not unshare_works():
        pytest.fail("this test needs `unshare -rm` (util-linux) with user namespaces")
    cache = tmp_path / "cache"
    cache.mkdir()
    spec = sim_spec(tmp_path / "s.yaml", protocols=["qa", "consultancy", "debate"], concurrency=64)
    out = tmp_path / "run"
    p = cli("run", str(spec), "--out", str(out), cache=cache, prefix=in_mount_ns(options, cache))
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    # once as it happens (and at most once more in the end-of-run summary), not once per call
    assert 1 <= p.stderr.count("could not be written") <= 2, p.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "complete" and m["totals"]["episode_errors"] == 0
    assert m["totals"]["episodes_done"] == m["plan"]["episodes"]


def test_a_full_disk_under_the_journal_stops_the_run_cleanly_and_a_resume_finishes(tmp_path: Path) -> None:
    if not unshare_works():
        pytest.fail("this test needs `unshare -rm` (util-linux) with user namespaces")
    runs, saved = tmp_path / "runs", tmp_path / "saved"
    runs.mkdir()
    saved.mkdir()
    spec = sim_spec(tmp_path / "s.yaml", protocols=["qa", "consultancy"], concurrency=4)
    out = runs / "run"
    py = f'"{sys.executable}" -m oversight run "{spec}" --out "{out}"'
    # In a private mount namespace the run directory lives on a 48 KB filesystem, which the
    # journal fills part-way; then the filesystem grows and the run is resumed.
    script = (f'mount -t tmpfs -o size=48k tmpfs "{runs}" || exit 99; '
              f'{py} 2> "{saved}/first.err"; echo $? > "{saved}/first.rc"; '
              f'mount -o remount,size=64m "{runs}"; '
              f'{py} --resume 2> "{saved}/second.err"; echo $? > "{saved}/second.rc"; '
              f'cp "{out}/judgments.parquet" "{out}/manifest.json" "{saved}/"')
    env = {**os.environ, "OVERSIGHT_CACHE_DIR": str(tmp_path / "cache")}
    subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, cwd=ROOT, timeout=300, check=False,
                   capture_output=True)
    first_err = (saved / "first.err").read_text()
    assert (saved / "first.rc").read_text().strip() == "1", first_err
    assert "Traceback" not in first_err and "No space left on device" in first_err
    assert "--resume --out" in first_err and str(out) in first_err
    second_err = (saved / "second.err").read_text()
    assert (saved / "second.rc").read_text().strip() == "0", second_err
    m = json.loads((saved / "manifest.json").read_text())
    assert m["status"] == "complete" and m["totals"]["episodes_done"] == m["plan"]["episodes"]
    assert len(pd.read_parquet(saved / "judgments.parquet")) >= m["plan"]["episodes"]


def test_an_unexpected_failure_resolves_the_shared_call_of_every_waiter() -> None:
    import asyncio

    from oversight.model.api import ModelAPI
    from oversight.model.card import resolve_model
    from oversight.model.types import GenerateRequest, GenerateResponse, Message
    from oversight.model.wrapper import CallFailure, Model

    class Broken(ModelAPI):
        provider = "sim"

        async def generate(self, request: GenerateRequest) -> GenerateResponse:
            await asyncio.sleep(0.01)
            raise RuntimeError("a bug below the wrapper")

    async def main() -> list[BaseException | GenerateResponse]:
        c = resolve_model("sim/weak")
        model = Model(c, Broken(c, None), None)
        req = [GenerateRequest([Message.text("user", "same")]) for _ in range(5)]
        # The guard only stops a hang from stalling the suite; the assertion is on the outcome.
        return await asyncio.wait_for(asyncio.gather(*(model.generate(r) for r in req), return_exceptions=True), 30)

    results = asyncio.run(main())
    assert all(isinstance(r, CallFailure) for r in results), results
    assert "a bug below the wrapper" in str(results[0])


# --- kill -9 anywhere ------------------------------------------------------------------------


def test_kill_9_at_random_points_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    rng = random.Random(8)
    with FakeOpenAI(reply=scripted, latency_s=0.01) as server:
        spec = write_spec(tmp_path / "s.yaml", server, concurrency=8)
        ref = tmp_path / "ref"
        assert cli("run", str(spec), "--out", str(ref), cache=tmp_path / "cache-ref").returncode == 0
        total = len(pd.read_parquet(ref / "judgments.parquet"))
        out, cache = tmp_path / "run", tmp_path / "cache"
        for i in range(3):
            args = ["run", str(spec), "--out", str(out)] + (["--resume"] if i else [])
            proc = start(*args, cache=cache)
            wait_for_lines(out / "journal.jsonl", rng.randrange(5, max(6, total // 2)) * (i + 1), proc)
            time.sleep(rng.uniform(0, 0.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        final = cli("run", str(spec), "--resume", "--out", str(out), cache=cache)
    assert final.returncode == 0, final.stderr
    pd.testing.assert_frame_equal(stable(out), stable(ref))
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "complete" and m["totals"]["episodes_done"] == total
    assert m["totals"]["calls"] == totals_from_rows(out)["calls"]
    assert m["totals"]["cost_usd"] == totals_from_rows(out)["cost_usd"]
    turns, ref_turns = (pd.read_parquet(d / "turns.parquet") for d in (out, ref))
    cols = ["transcript_id", "turn", "speaker", "visible", "prompt_id"]
    pd.testing.assert_frame_equal(turns[cols].sort_values(cols[:2]).reset_index(drop=True),
                                  ref_turns[cols].sort_values(cols[:2]).reset_index(drop=True))


# --- 8. the audit trail ---------------------------------------------------------------------


def test_every_judgment_leads_to_its_item_and_the_exact_prompt_its_judge_saw(tmp_path: Path) -> None:
    with FakeOpenAI(reply=scripted) as server:
        spec = write_spec(tmp_path / "s.yaml", server)
        out = tmp_path / "run"
        assert cli("run", str(spec), "--out", str(out), cache=tmp_path / "cache").returncode == 0
        sent = [m for body in server.requests for m in body["messages"]]
    res = oversight.load(out)
    assert res.judgments.judge_prompt_id.notna().all()
    sent_texts = {m["content"] if isinstance(m["content"], str) else m["content"][0]["text"] for m in sent}
    for _, row in res.judgments.iterrows():
        item = res.item(row)
        shown = (item.answer_0, item.answer_1) if row.order == 0 else (item.answer_1, item.answer_0)
        correct_text = item[f"answer_{item.correct}"]
        assert shown[row.correct_answer - 1] == correct_text
        prompt = res.judge_prompt(row)
        assert item.question in prompt and shown[0] in prompt and shown[1] in prompt
        body = prompt.split("\n", 1)[1]  # drop the "[user]" header
        assert body in sent_texts  # byte for byte what the server received
    # every call and every agent turn links to a stored prompt; each prompt stored once
    assert set(res.calls.prompt_id) <= set(res.prompts.prompt_id)
    assert set(res.turns.prompt_id) <= set(res.prompts.prompt_id)
    assert res.prompts.prompt_id.is_unique
    assert len(res.prompts) == len({json.dumps(m, sort_keys=True) for m in sent})
    quality = res.items[res.items.task == "quality"]
    assert quality.article_sha256.notna().all() and (quality.article_chars > 0).all()


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    from oversight.engine import rundir

    monkeypatch.setattr(rundir, "new_run_id", lambda: "20261130-000000-0001")
    spec = {"name": "same", "tasks": ["boolq"], "limit": 1, "protocols": ["qa"], "judges": ["sim/weak"]}
    first = oversight.run(spec)
    second = oversight.run(spec)
    assert first.run_dir != second.run_dir and second.run_dir.name == "20261130-000000-0001~2"
    assert (second.run_dir / "judgments.parquet").exists()


def test_the_python_api_runs_a_bundled_spec_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = oversight.run("quickstart", overrides=["limit=1", "tasks=[boolq]", "protocols=[qa]"])
    assert r.status == "complete" and r.run_dir.parts[:2] == ("runs", "quickstart")
