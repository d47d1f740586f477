"""How report.html reads to a researcher, rendered in headless Chromium: significance
shading, interval methods, few-item marks, code answers, the Elo run's headline."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from oversight.score.report import build_report
from tests.score.test_report_browser import CHROMIUM, cards, dump_dom

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def synth_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from score_synth import write_run

    run = write_run(tmp_path_factory.mktemp("reading") / "run", n_items=30, with_tournament=False)
    return build_report([run], run / "report", n_resamples=2000, elo_bootstrap=0, write_plots=False).out_dir


def _rows(table_html: str) -> list[str]:
    return re.findall(r"<tr(?: class=\"([^\"]*)\")?>(.*?)</tr>", table_html, re.S)  # type: ignore[return-value]


def test_rows_with_p_below_005_are_shaded_in_the_headline_and_pairwise_tables(synth_report: Path,
                                                                               tmp_path: Path) -> None:
    headline = pd.read_parquet(synth_report / "headline.parquet")
    comparisons = pd.read_parquet(synth_report / "comparisons.parquet")
    assert headline["significant"].any() and not headline["significant"].all()
    dom = dump_dom(synth_report / "report.html", tmp_path)
    section = dom.split('id="headline"', 1)[1].split("<h2", 1)[0]
    assert "Rows with p &lt; 0.05 are shaded" in section
    tables = re.findall(r'<table class="tbl">.*?</table>', section, re.S)
    assert len(tables) == 3  # headline, pairwise by group, pairwise by task
    expected = [int(headline["significant"].sum()),
                int(comparisons.loc[comparisons["level"].eq("group"), "significant"].sum()),
                int(comparisons.loc[comparisons["level"].eq("task"), "significant"].sum())]
    for table, n_sig in zip(tables, expected, strict=True):
        rows = _rows(table.split("<tbody>", 1)[1])
        shaded = [cells for cls, cells in rows if "sig" in cls.split()]
        assert len(shaded) == n_sig > 0
        # each shaded row's p-value is below 0.05, each other row's is not
        for cls, cells in rows:
            p = re.findall(r"<td>([^<]*)</td>", cells)[-1]
            assert (p == "&lt;0.001" or float(p) < 0.05) == ("sig" in cls.split()), cells
    assert "tr.sig td{background" in dom


def test_small_cells_are_marked_and_intervals_agree_with_their_tests(tmp_path: Path) -> None:
    from score_synth import write_run

    from oversight.score.frame import CI_DIFF_METHOD

    run = write_run(tmp_path / "run", n_items=4, with_tournament=False)
    out = build_report([run], run / "report", n_resamples=500, elo_bootstrap=0, write_plots=False).out_dir
    headline = pd.read_parquet(out / "headline.parquet")
    summary = pd.read_parquet(out / "summary.parquet")
    # 4 items: no test can reach p < 0.05, so no interval excludes 0
    assert (headline["ci_low"] <= 0).all() and (headline["ci_high"] >= 0).all()
    assert (summary["ci_high"] > summary["ci_low"]).all()  # never a zero-width interval
    dom = dump_dom(out / "report.html", tmp_path / "profile")
    assert html_escape(CI_DIFF_METHOD) in dom and "Wilson" in dom
    accuracy = dom.split('id="accuracy"', 1)[1].split("<h2", 1)[0]
    few = re.findall(r'<td class="few" title="fewer than 10 items[^"]*">(\d+) †</td>', accuracy)
    group_rows = summary[summary["level"].eq("group") & ~summary["cross_play"]]
    assert sorted(map(int, few)) == sorted(summary.loc[~summary["cross_play"], "n_items"].astype(int).tolist())
    assert len(few) >= len(group_rows) > 0
    assert "† marks a cell with fewer than 10 items" in accuracy


def html_escape(text: str) -> str:
    import html

    return html.escape(text)


def test_code_answers_are_shown_as_code_keeping_their_lines(sim_run_dir: Path, tmp_path: Path) -> None:
    import html

    import oversight

    page = build_report([sim_run_dir], tmp_path / "report", n_resamples=100, elo_bootstrap=0,
                        write_plots=False).html_path
    items = oversight.load(sim_run_dir).items
    programs = items[items["task"].eq("gsm8kqa")]
    assert len(programs) and programs["answer_0"].str.strip().str.contains("\n").all()
    dom = dump_dom(page, tmp_path / "profile", task="gsm8kqa", protocol="")
    shown = [html.unescape(c) for c in re.findall(r'<code class="answer">(.*?)</code>', dom, re.S)]
    for program in [*programs["answer_0"], *programs["answer_1"]]:
        assert program.strip("\n") in shown  # every line and indent as written
    # one-line answers stay inline text
    quality = dump_dom(page, tmp_path / "profile", task="quality", protocol="")
    assert cards(quality) and not any('<code class="answer">' in c for c in cards(quality))


@pytest.fixture(scope="module")
def sim_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import oversight

    spec = {"name": "code", "tasks": ["gsm8kqa", "quality"], "limit": 2, "agent": "sim/strong",
            "judges": ["sim/weak"], "protocols": ["qa", "debate"], "debate": {"rounds": 1}}
    return oversight.run(spec, out=tmp_path_factory.mktemp("code") / "run").run_dir
