"""How report.html reads to a researcher, rendered in headless Chromium: significance
shading, interval methods, few-item marks, code answers, the Elo run's headline."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from oversight.score.report import build_report
from tests.humanui.test_browser import browser  # noqa: F401 (the Selenium Chromium fixture)
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


ELO_SPEC = {"name": "elo", "tasks": ["boolq", "prontoqa"], "limit": 3, "judges": [], "protocols": [],
            "tournament": {"debaters": [{"model": "sim/weak"}, {"model": "sim/strong"}, {"model": "sim/medium"}],
                           "pairings": 12, "judge": "sim/strong", "rounds": 1}}


@pytest.fixture(scope="module")
def elo_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    import yaml

    where = tmp_path_factory.mktemp("elo")
    (where / "elo.yaml").write_text(yaml.safe_dump(ELO_SPEC))
    run = subprocess.run([sys.executable, "-m", "oversight", "run", "elo.yaml", "--out", "run"], cwd=where,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    rep = subprocess.run([sys.executable, "-m", "oversight", "report", "run"], cwd=where, capture_output=True,
                         text=True, timeout=600)
    assert rep.returncode == 0, rep.stderr
    return where / "run", rep


def test_the_elo_runs_headline_order_items_flags_and_progress(elo_report: tuple[Path, Any], tmp_path: Path) -> None:
    from oversight.score.frame import elo_unstable

    run, rep = elo_report
    # progress while the bootstrap runs, on stderr
    assert "Elo: fitting ratings and" in rep.stderr and "Elo bootstrap: done" in rep.stderr
    slope = pd.read_parquet(run / "elo_slope.parquet")
    pooled = slope[slope["group"].eq("all")].iloc[0]
    # the slope is the headline, in the terminal...
    out = rep.stdout
    assert out.index("Headline (Elo tournament)") < out.index("Debater Elo")
    assert f"judge sim/strong: {pooled.slope_per_100 * 100:+.1f} points per 100 Elo" in out
    # ...debaters in the spec's order (not by name, not by rating)...
    elo = pd.read_parquet(run / "elo.parquet")
    block = out.split("Debater Elo", 1)[1]
    assert [block.index(f"    {d} ") for d in ("sim/weak", "sim/strong", "sim/medium")] == sorted(
        block.index(f"    {d} ") for d in ("sim/weak", "sim/strong", "sim/medium"))
    agg = elo[elo["kind"].eq("aggregate") & elo["group"].eq("all")]
    assert list(agg["player"]) == ["sim/weak", "sim/strong", "sim/medium"]
    # ...and absurd intervals flagged
    unstable = [elo_unstable(a, b) for a, b in zip(elo["ci_low"], elo["ci_high"], strict=True)]
    pooled_unstable = any(u for u, g in zip(unstable, elo["group"], strict=True) if g == "all")
    assert ("⚠ interval wider than" in out) == pooled_unstable
    # ...and in the HTML
    dom = dump_dom(run / "report.html", tmp_path)
    head = dom.split('id="headline"', 1)[1].split("<h2", 1)[0]
    assert "judge accuracy against debater Elo" in head and f"{pooled.slope_per_100 * 100:+.1f}" in head
    section = dom.split('id="elo"', 1)[1].split('id="diagnostics"', 1)[0]
    table = re.search(r'<table class="tbl">.*?</table>', section, re.S).group(0)  # type: ignore[union-attr]
    header = re.findall(r"<th>(.*?)</th>", table)
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])]
    items = [r[header.index("items")] for r in rows if r[header.index("items")]]
    assert items and all(re.fullmatch(r"\d+( †)?", i) for i in items), items  # whole numbers, not 3.000
    assert [r[header.index("debater")] for r in rows if r[header.index("rating")] == "aggregate"][:3] == [
        "sim/weak", "sim/strong", "sim/medium"]
    assert ("⚠" in section) == any(unstable)


def test_the_exact_prompt_pane_shows_the_text_sent_at_a_readable_size(sim_run_dir: Path, tmp_path: Path,
                                                                      browser: Any) -> None:  # noqa: F811
    import oversight

    page = build_report([sim_run_dir], tmp_path / "report", n_resamples=100, elo_bootstrap=0,
                        write_plots=False).html_path
    res = oversight.load(sim_run_dir)
    row = res.judgments[(res.judgments.protocol == "debate") & (res.judgments.task == "quality")].iloc[0]
    sent = res.judge_prompt(row)
    assert "<v_passage>" in sent or "<u_passage>" in sent
    browser.get(page.resolve().as_uri() + "#task=quality&protocol=debate")
    box = browser.find_element("css selector", "section.card table.verdicts details.prompt")
    box.find_element("css selector", "summary").click()
    pre = box.find_element("css selector", "pre")
    shown = pre.get_attribute("innerHTML")
    assert "<mark" not in shown and ("&lt;v_passage&gt;" in shown or "&lt;u_passage&gt;" in shown)
    text = pre.get_attribute("textContent")
    for line in sent.splitlines():
        if line.strip() and not line.startswith("["):
            assert line in text or len(line) > 2000, line  # the article is stored once and put back
    size = float(browser.execute_script("return parseFloat(getComputedStyle(arguments[0]).fontSize)", pre))
    assert size >= 12


def test_diagnostics_tables_repeat_no_constant_column_and_fit_the_page(synth_report: Path, browser: Any  # noqa: F811
                                                                      ) -> None:
    browser.get((synth_report / "report.html").resolve().as_uri())
    section = browser.find_element("id", "diagnostics").find_element("xpath", "..")
    tables = [t for t in section.find_elements("css selector", "table.tbl")
              if t.find_elements("xpath", "preceding::h2[1][@id='diagnostics']")]
    assert len(tables) >= 4
    for t in tables:
        header = [th.text for th in t.find_elements("css selector", "thead th")]
        rows = [[td.text for td in tr.find_elements("css selector", "td")] for tr in t.find_elements("css selector",
                                                                                                     "tbody tr")]
        assert "ci_method" not in header and "ci method" not in header and "level" not in header
        if len(rows) > 1:
            for i, h in enumerate(header):
                assert len({r[i] for r in rows}) > 1, f"column {h} repeats one value in every row"
        fits = browser.execute_script("return arguments[0].scrollWidth <= document.body.clientWidth", t)
        assert fits, header
