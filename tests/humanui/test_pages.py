"""Pages and command line: escaping, passage rendering, what the app leaves to other layers,
and the one-paragraph errors of `oversight judge-ui`."""

from __future__ import annotations

import ast
import json
import re
import socket
from pathlib import Path

import pytest

import oversight
from oversight.cli import main
from oversight.dialogue.transcript import Turn
from oversight.humanui import pages
from oversight.humanui.episode import clean_question
from oversight.humanui.run import load_run

PACKAGE = Path(__file__).resolve().parents[2] / "oversight"


def test_passages_are_highlighted_and_everything_else_escaped() -> None:
    text = 'Look: <v_passage>a "real" quote</v_passage> and <u_passage>made up</u_passage> <script>x()</script>'
    out = pages.passages(text)
    assert '<span class="passage verified"><span class="tag">verified</span>a &quot;real&quot; quote</span>' in out
    assert '<span class="passage unverified"><span class="tag">unverified</span>made up</span>' in out
    assert "&lt;script&gt;x()&lt;/script&gt;" in out and "<script>" not in out
    # An unclosed tag stays text.
    assert pages.passages("<v_passage>open") == "&lt;v_passage&gt;open"


def test_a_persons_question_cannot_forge_a_quote_and_keeps_the_word_limit() -> None:
    q, cut = clean_question("Is <v_passage>this</v_passage> true? " + "word " * 200, 20)
    assert "passage" not in q and cut and len(q.split()) == 20


def test_private_thinking_never_reaches_a_page() -> None:
    view = pages.EpisodeView("debate", "Q?", ("yes", "no"), (), [Turn(1, "Alice", "debater", 1, "visible words",
                                                                         private="SECRET plan")],
                             extractive=False, simulated=True, side=None, step="verdict", rounds=0,
                             questions_left=0, word_limit=150)
    page = pages.episode_page(view, who="human/x", progress="", csrf="c", nonce="n")
    assert "visible words" in page and "SECRET" not in page and "SECRET" not in pages.view_text(view)


def test_nothing_below_the_cli_imports_the_web_app() -> None:
    """humanui sits on top (like cli.py): no layer imports it, so the run path never loads
    a web framework."""
    bad = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "humanui" or rel.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            bad += [f"{rel} imports {n}" for n in names if n.startswith("oversight.humanui")]
    assert bad == []


def test_a_run_recorded_before_a_null_field_existed_still_opens(run_dir: Path) -> None:
    """A card field added since the run, null by default, changes nothing a judge sees; the
    run's own salt keeps its episode ids and transcript keys."""
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    card = manifest["identity"]["tasks"]["quality"]["card"]
    null_key = next(k for k, v in card.items() if v is None)
    del card[null_key]
    path.write_text(json.dumps(manifest))
    run = load_run(run_dir)
    assert sum(u.kind == "debate" for u in run.units) == 4 and run.missing_transcripts == 0


def test_cli_errors_are_one_paragraph(tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["judge-ui", str(tmp_path / "nowhere")]) == 2
    assert "Run directory not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["judge-ui", str(tmp_path / "empty")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["judge-ui", str(run_dir), "--protocols", "qa_with_article", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "has no episodes a person can judge" in err and "consultancy, debate, qa" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["judge-ui", str(run_dir), "--port", str(port)]) == 2
    assert "cannot listen" in capsys.readouterr().err
    assert main(["judge-ui", str(run_dir), "--seal"]) == 0
    assert "0 human verdict(s)" in capsys.readouterr().out


def test_code_answers_are_shown_as_code_over_http(tmp_path: Path) -> None:
    import html

    from tests.humanui.helpers import HttpJudge, make_run, start_server

    run_dir = make_run(tmp_path, tasks=["gsm8kqa"], protocols=["qa", "debate"])
    items = oversight.load(run_dir).items
    programs = {p.strip("\n") for p in [*items["answer_0"], *items["answer_1"]]}
    assert all("\n" in p for p in programs)
    server, _ = start_server(run_dir, record=False, views="all")  # every view: several per item
    try:
        judge = HttpJudge(server, "Ann")
        seen = 0
        while judge.step() in ("verdict", "question"):
            shown = {html.unescape(c) for c in re.findall(r'<code class="answer">(.*?)</code>', judge.page, re.S)}
            # both answers in the list and beside the two verdict buttons, lines and indents kept
            assert len(shown) == 2 and shown <= programs, shown
            assert judge.page.count('<code class="answer">') == 4
            seen += 1
            judge.finish_episode()
        assert seen >= 2
    finally:
        server.stop()


def test_the_confidence_starts_unset_and_a_verdict_needs_one(run_dir: Path) -> None:
    from tests.humanui.helpers import HttpJudge, field, start_server

    server, _ = start_server(run_dir, record=False)
    try:
        judge = HttpJudge(server, "Ann")
        while judge.step() == "question":
            judge.ask("Which passage settles it?")
        page = judge.page
        levels = re.findall(r'<input type="radio" name="confidence"[^>]*>', page)
        assert len(levels) == 6 and not any("checked" in x for x in levels)
        assert 'type="range"' not in page and "75%" not in page  # no default to anchor on
        refused = judge.client.post("/verdict", data={"csrf": field(page, "csrf"), "nonce": field(page, "nonce"),
                                                      "answer": "1", "confidence": ""})
        assert refused.status_code == 400 and "Choose how sure you are" in refused.text
    finally:
        server.stop()


def test_a_report_made_while_judge_ui_runs_says_verdicts_are_not_sealed(run_dir: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.humanui.helpers import start_server

    def report() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "oversight", "report", str(run_dir), "--resamples", "50",
                               "--out", str(tmp_path / "rep")], capture_output=True, text=True, timeout=600)

    server, _ = start_server(run_dir, record=False)
    try:
        during = report()
    finally:
        server.stop()
    assert during.returncode == 0, during.stderr
    assert "warning:" in during.stderr and "not sealed into judgments.parquet yet" in during.stderr
    assert "Not sealed:" in (tmp_path / "rep" / "report.html").read_text()
    after = report()
    assert after.returncode == 0 and "not sealed" not in after.stderr
    assert "Not sealed:" not in (tmp_path / "rep" / "report.html").read_text()


def test_the_calibration_of_human_judges_is_not_labelled_simulated(run_dir: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from oversight.score import plots
    from oversight.score.build import build_report
    from tests.humanui.helpers import HttpJudge, start_server

    server, _ = start_server(run_dir, record=False, views="all")  # four episodes for one person
    try:
        judge = HttpJudge(server, "Ann")
        for _ in range(4):
            judge.finish_episode(answer=1)
    finally:
        server.stop()
    titles: dict[str, str] = {}

    def keep(fig, path):  # type: ignore[no-untyped-def]
        titles[Path(path).name] = fig._suptitle.get_text() if fig._suptitle else ""
        return Path(path)

    monkeypatch.setattr(plots, "_save", keep)
    rep = build_report([run_dir], tmp_path / "rep", n_resamples=50, elo_bootstrap=0)
    rel = rep.tables["reliability"]
    human = rel[rel["judge"].astype(str).str.startswith("human/")]
    assert len(human) and rep.simulated  # the arguments came from sim models
    machine = pd.DataFrame(rel[~rel.index.isin(human.index)])
    assert len(machine) == 0  # sim judges give no probabilities here: only people's confidence is plotted
    assert "SIMULATED" not in titles["calibration.png"]  # real data, though the arguments were simulated
    assert "people's verdicts" in titles["calibration.png"] and "sim models" in titles["calibration.png"]
    assert "SIMULATED" in titles["accuracy.png"]
