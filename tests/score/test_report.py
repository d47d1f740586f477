import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from score_synth import judgments_frame, tournament_frame, write_run

from oversight.errors import OversightError
from oversight.score import build_report, compute_tables, format_summary, format_tables, summary_table
from oversight.score.frame import CI_DIFF_HEADER, CI_HEADER, CI_METHOD
from oversight.score.html import render_text
from oversight.score.report import collapse_notes, summary_text


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = write_run(tmp_path_factory.mktemp("runs") / "quick" / "r1", n_items=4)
    return build_report([run], n_resamples=200, elo_bootstrap=20)


def test_files_written(report):
    out = report.out_dir
    for name in ("summary.parquet", "comparisons.parquet", "open.parquet", "elo.parquet",
                 "elo_slope.parquet", "diag_positional_bias.parquet", "diag_costs.parquet",
                 "diag_verification.parquet", "diag_calls.parquet", "diag_calibration.parquet",
                 "report.html", "accuracy.png", "open_protocols.png", "elo.png",
                 "accuracy_vs_elo.png"):
        assert (out / name).exists(), name
    saved = pd.read_parquet(out / "summary.parquet")
    again = summary_table(report.judgments)
    assert len(saved) == len(again)
    assert saved["accuracy"].tolist() == pytest.approx(again["accuracy"].tolist())


def test_failed_and_invalid_rows_are_counted(report):
    j = report.judgments
    assert (j.verdict_status == "error").any() and (j.verdict_status == "invalid").any()
    s = report.summary
    assert (s.invalid_rate > 0).any() and (s.n_errors > 0).any() and (s.error_rate > 0).any()
    task = s[s.level == "task"]
    assert task.n_rows.sum() + task.n_errors.sum() == len(j)  # every row: scored, or a counted failure
    f = report.tables["failures"]
    assert f.n_rows.sum() == (j.verdict_status == "error").sum()


def browser_json(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="ov-data">(.*?)</script>', page, re.S)
    assert m, "no browser data"
    return json.loads(m.group(1))


def test_html_sections_escaping_and_layout(report):
    page = report.html_path.read_text(encoding="utf-8")
    for anchor in ("failures", "headline", "accuracy", "open", "elo", "diagnostics", "transcripts"):
        assert f'id="{anchor}"' in page
    assert page.index('id="failures"') < page.index('id="headline"') < page.index('id="accuracy"')
    assert "SIMULATED (sim models)" in page
    # One script of ours and one inert JSON block; no model text can close either.
    assert len(re.findall(r"<script>", page)) == 1
    assert len(re.findall(r'<script type="application/json"', page)) == 1
    data_block = page.split('id="ov-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data_block
    assert "\\u003cscript>alert('pwned')\\u003c/script>" in data_block
    data = browser_json(page)
    texts = ["\n".join(data["lines"][i] for i in t[5]) for c in data["cards"] for t in c.get("turns", [])]
    assert any("<script>alert('pwned')</script>" in t for t in texts)  # kept verbatim, escaped by the page
    assert any("<v_passage>" in t for t in texts)
    for name in ("f-task", "f-protocol", "f-judge", "f-outcome", "f-q", "f-count"):
        assert f'id="{name}"' in page
    # The CI method is named in the tables' headers and in the page.
    assert CI_HEADER in page and CI_DIFF_HEADER in page and html.escape(CI_METHOD) in page
    assert "data:image/png;base64," in page


def test_browser_cards_one_per_transcript_and_qa_grouped_by_item(report):
    data = browser_json(report.html_path.read_text(encoding="utf-8"))
    j = report.judgments
    qa = j[j.agent.isna() & ~j.protocol.str.startswith("open_")]
    other = j[~j.index.isin(qa.index)]
    kinds = [c["k"] for c in data["cards"]]
    assert kinds.count("q") == qa[["task", "item_id"]].drop_duplicates().shape[0]
    assert kinds.count("t") == other.transcript_id.nunique()
    assert sum(len(c["v"]) for c in data["cards"]) == len(j)
    outcomes = {v[6] for c in data["cards"] for v in c["v"]}
    assert {"correct", "wrong", "invalid", "error"} <= outcomes


def test_render_text_marks_only_our_tags():
    out = render_text('a <v_passage>x < y</v_passage> <u_passage>"z"</u_passage> '
                      "<v_passage>open <img src=x onerror=alert(1)>")
    assert '<mark class="vp"' in out and "x &lt; y" in out
    assert '<mark class="up"' in out and "&quot;z&quot;" in out
    assert "<img" not in out and "&lt;v_passage&gt;open" in out  # unclosed tag stays text


def fits(text: str, lines: int = 50, width: int = 100) -> None:
    rows = text.splitlines()
    assert len(rows) <= lines, f"{len(rows)} lines"
    assert max(len(r) for r in rows) <= width, max(rows, key=len)
    assert "DataFrame" not in text and "NaN" not in text and "nan" not in text.split()


def test_summary_fits_a_screen_with_headline_failures_and_elo(report):
    text = format_summary(report)
    fits(text)
    assert text.startswith("*** SIMULATED (sim models)")
    assert text.index("FAILURES") < text.index("Headline") < text.index("Judge accuracy by task group")
    assert "95% Wilson CI over items" in text and "Debater Elo" in text and "report.html" in text
    assert "sim/a vs sim/b" not in text  # cross-play rows stay out of the accuracy table
    assert format_tables(report) == text


def test_summary_of_a_big_grid_still_fits(tmp_path):
    judges = ("gemma-7b", "openai/gpt-3.5-turbo-0125", "google/gemini-1.0-pro", "google/gemini-1.5-pro")
    j = judgments_frame(n_items=5, judges=judges, simulated=False)
    mm = j[j.task == "mmlu"].assign(task="mmmu", group="multimodal")
    j = pd.concat([j, mm], ignore_index=True)
    j.loc[j.index[::7], "error"] = "google/gemini-1.0-pro: rate_limit HTTP 429: slow down " + "x" * 200
    j.loc[j.index[::7], "verdict_status"] = "error"
    tables = compute_tables(j, n_resamples=50, elo_bootstrap=0, judges=judges)
    text = summary_text(j, tables, judges=judges, notes=["cache is read-only"] * 5 + ["other"],
                        footer=["Full report: oversight report runs/x"])
    fits(text)
    assert "FAILURES" in text and "Headline" in text and "gemma-7b" in text
    assert "rate_limit" in text


def test_notes_are_collapsed_with_a_count():
    assert collapse_notes(["a", "b", "a", "a"]) == ["note (×3): a", "note: b"]


def test_tournament_only_run_prints_no_pandas_repr(tmp_path):
    t = tournament_frame({"sim/a": -100.0, "sim/b": 100.0}, n_games=60, n_selfplay_items=5)
    text = summary_text(t, compute_tables(t, n_resamples=20, elo_bootstrap=5))
    fits(text)
    assert "Debater Elo" in text
    bare = summary_text(t, {"summary": summary_table(t)})
    assert "Elo tournament" in bare


def test_html_module_does_not_import_report():
    import ast

    import oversight.score.html as h

    tree = ast.parse(Path(h.__file__).read_text())
    names = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert "oversight.score.report" not in names


def test_real_run_is_not_labelled_and_several_runs_combine(tmp_path):
    rows = []
    for k in (1, 2):
        d = tmp_path / f"r{k}"
        d.mkdir()
        j = judgments_frame(n_items=3, judges=("openai/gpt-4o-mini",), seed=k, simulated=False)
        j = j.assign(agent=j.agent.map(lambda a: None if a is None else "anthropic/claude"),
                     agent_b=j.agent_b.map(lambda a: None if a is None else "anthropic/claude"),
                     run_id=f"r{k}")
        j.to_parquet(d / "judgments.parquet")
        rows.append(len(j))
    res = build_report([tmp_path / "r1", tmp_path / "r2"], n_resamples=50, elo_bootstrap=0,
                       write_plots=False)
    assert res.out_dir == tmp_path / "r1" / "combined-report"
    assert len(res.judgments) == sum(rows)
    assert not res.simulated
    page = res.html_path.read_text()
    assert "SIMULATED" not in page and "SIMULATED" not in format_tables(res)
    assert len(browser_json(page)["cards"]) > 0  # cards exist even without turns.parquet
    assert len(res.elo) == 0 and "elo" not in res.files


def test_missing_run_dir_is_a_readable_error(tmp_path):
    (tmp_path / "quick" / "20240101").mkdir(parents=True)
    judgments_frame(n_items=1).to_parquet(tmp_path / "quick" / "20240101" / "judgments.parquet")
    with pytest.raises(OversightError, match="20240101"):
        build_report(tmp_path / "quick")
    with pytest.raises(OversightError, match="not a directory"):
        build_report(tmp_path / "nowhere")


def test_empty_and_minimal_runs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    judgments_frame(n_items=1).iloc[:0].to_parquet(empty / "judgments.parquet")
    res = build_report(empty, n_resamples=10, elo_bootstrap=0)
    assert res.html_path.exists() and len(res.summary) == 0
    assert "0 judged instances" in format_tables(res)
    fits(format_tables(res))
    minimal = tmp_path / "minimal"
    minimal.mkdir()
    pd.DataFrame({"task": ["t", "t"], "group": ["closed"] * 2, "item_id": ["1", "2"],
                  "protocol": ["qa"] * 2, "judge": ["J"] * 2, "is_correct": [True, False],
                  "verdict_status": ["ok", "ok"]}).to_parquet(minimal / "judgments.parquet")
    res = build_report(minimal, n_resamples=10, elo_bootstrap=0)
    assert res.summary.accuracy.iloc[0] == 0.5
