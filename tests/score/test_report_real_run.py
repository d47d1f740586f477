"""`oversight report` and the end of `oversight run` on real run directories: a sim run of
every protocol, and a run whose judge (a loopback OpenAI server) fails some episodes,
refuses others and gives invalid answers to others."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import oversight
from oversight.cli import main, oversight_command
from oversight.score.report import build_report

ROOT = Path(__file__).resolve().parents[2]


def fits(text: str, command_last: bool = False) -> list[str]:
    lines = text.rstrip("\n").splitlines()
    assert len(lines) <= 50, f"{len(lines)} lines"
    # a command (the last line after a run) is never cut, so it works as printed
    body = lines[:-1] if command_last else lines
    assert max(len(line) for line in body) <= 100, max(body, key=len)
    assert "DataFrame" not in text and " NaN" not in text
    return lines


def browser_json(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="ov-data">(.*?)</script>', page, re.S)
    assert m
    return json.loads(m.group(1))


def test_report_for_a_sim_run_of_every_protocol(sim_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(sim_run), "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    fits(out)
    assert "SIMULATED" in out and "open_debate" in out and "Headline" in out
    assert out.index("Headline") < out.index("Judge accuracy by task group") < out.index("Agent's own QA")
    html = (sim_run / "report.html").read_text()
    assert "SIMULATED" in html
    for name in ("summary.parquet", "headline.parquet", "comparisons.parquet", "agent_qa.parquet",
                 "open.parquet", "accuracy.png", "open_protocols.png"):
        assert (sim_run / name).exists(), name
    # the agent's own QA is its own table, never a judge's row
    summary = pd.read_parquet(sim_run / "summary.parquet")
    assert set(summary.judge) == {"sim/weak", "sim/medium"}
    assert set(pd.read_parquet(sim_run / "agent_qa.parquet").agent) == {"sim/strong"}
    # every card knows its item: question and both answers, as items.parquet holds them
    data = browser_json(html)
    items = oversight.load(sim_run).items
    shown = {(i[0], i[1]): i for i in data["items"]}
    for row in items.itertuples():
        question, a0, a1, correct = shown[(row.task, row.item_id)][3:7]
        assert (question, a0, a1, correct) == (row.question, row.answer_0, row.answer_1, row.correct)
    assert any(a is not None and a >= 0 for a in (i[7] for i in data["items"]))  # articles recovered
    # every prompt a card points to is in the page
    refs = {v[10] for c in data["cards"] for v in c["v"] if v[10] is not None}
    refs |= {t[12] for c in data["cards"] for t in c.get("turns", []) if t[12] is not None}
    assert refs and all(isinstance(r, int) and 0 <= r < len(data["prompts"]) for r in refs)
    lines = data["lines"]
    judge_prompt = "\n".join(lines[i] for i in data["prompts"][data["cards"][0]["v"][0][10]][0][1])
    assert "Answer" in judge_prompt


def test_report_with_failed_episodes_refusals_and_invalid_verdicts(failure_run: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    j = oversight.load(failure_run).judgments
    statuses = j.verdict_status.value_counts().to_dict()
    assert statuses.get("error", 0) >= 4 and statuses.get("refused", 0) >= 3 and statuses.get("invalid", 0) >= 3
    assert main(["report", str(failure_run), "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    lines = fits(out)
    assert lines.index(next(x for x in lines if x.startswith("FAILURES"))) < \
        lines.index(next(x for x in lines if x.startswith("Headline")))
    assert "flaky  server" in out and "flaky  bad_request" in out and "scripted 500" in out
    assert "err)" in out  # the failures are counted beside their accuracy cells
    html = (failure_run / "report.html").read_text()
    assert html.index("Failures: ") < html.index('id="headline"')
    assert "scripted 400" in html
    excluded = pd.read_parquet(failure_run / "summary.parquet")
    n_err = int((j.verdict_status == "error").sum())
    assert excluded[excluded.level == "task"].n_errors.sum() == n_err - int(
        ((j.verdict_status == "error") & j.qa_role.eq("agent")).sum())
    assert main(["report", str(failure_run), "--resamples", "200", "--errors-as-wrong"]) == 0
    assert "scored as wrong answers" in capsys.readouterr().out
    wrong = pd.read_parquet(failure_run / "summary.parquet")
    key = ["level", "task", "group", "condition", "judge"]
    both = excluded.merge(wrong, on=key, suffixes=("", "_wrong"))
    hit = both[both.n_errors > 0]
    assert len(hit) and (hit.accuracy_wrong <= hit.accuracy).all() and (hit.accuracy_wrong < hit.accuracy).any()


def test_capped_transcript_browser_keeps_every_protocol(tmp_path: Path) -> None:
    spec = {"name": "c", "tasks": ["boolq"], "limit": 4, "agent": "sim/strong", "judges": ["sim/weak"],
            "protocols": ["qa", "qa_with_article", "consultancy", "debate"], "debate": {"rounds": 1}}
    run = oversight.run(spec, out=tmp_path / "run")
    build_report([run.run_dir], None, n_resamples=100, write_plots=False, max_transcripts=8)
    data = browser_json((run.run_dir / "report.html").read_text())
    assert len(data["cards"]) == 8 and data["total"] > 8
    protocols = {v[0] for c in data["cards"] for v in c["v"]}
    assert {"qa", "qa_with_article", "consultancy", "debate"} <= protocols


def test_end_of_run_summary_fits_and_its_hint_works_as_printed(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text("name: tiny\ntasks: [boolq]\nlimit: 2\nprotocols: [qa, consultancy, debate, open_debate]\n"
                    "agent: sim/strong\njudges: [sim/weak]\ndebate: {rounds: 1}\nconsultancy: {rounds: 1}\n")
    exe = Path(sys.executable).parent / "oversight"
    assert exe.exists()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OVERSIGHT_CACHE_DIR": str(tmp_path / "cache")}
    # the virtual environment is not activated: `oversight` is not on PATH
    p = subprocess.run([str(exe), "run", str(spec), "--out", str(tmp_path / "run")], capture_output=True,
                       text=True, cwd=ROOT, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = fits(p.stdout, command_last=True)
    assert "Headline" in p.stdout and "Judge accuracy by task group" in p.stdout
    hint = lines[-1].strip()
    assert hint.startswith(str(exe)) and hint.endswith(f"report {tmp_path / 'run'}")
    again = subprocess.run(shlex.split(hint), capture_output=True, text=True,
                           cwd=ROOT, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "run" / "report.html").exists()
    # `report` prints the same summary (with where its files are instead of the hint)
    assert again.stdout.split("\nReport: ")[0] == p.stdout.split("\nResults in ")[0]


def test_end_of_run_summary_imports_neither_matplotlib_nor_scipy(sim_run: Path) -> None:
    code = ("import sys, pandas as pd\n"
            "from oversight.score.report import run_summary\n"
            f"text = run_summary({str(sim_run)!r}, pd.read_parquet({str(sim_run / 'judgments.parquet')!r}))\n"
            "assert 'Headline' in text, text\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'scipy')))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_oversight_command_is_the_bare_name_only_when_path_finds_this_program(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    exe = tmp_path / "bin" / "oversight"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(exe), "run"])
    monkeypatch.setenv("PATH", "/usr/bin")
    assert oversight_command() == str(exe)
    monkeypatch.setenv("PATH", f"{exe.parent}:/usr/bin")
    assert oversight_command() == "oversight"
    monkeypatch.setattr(sys, "argv", ["/x/oversight/__main__.py"])
    assert oversight_command().endswith(" -m oversight")
