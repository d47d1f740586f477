"""The transcript browser of `report.html`, rendered in headless Chromium (Debian `chromium`).

Chromium loads the page from disk with a filter state in the URL fragment
(`report.html#task=boolq&outcome=wrong`), runs its script and dumps the resulting DOM
(`--dump-dom`); the tests read the rendered cards and the match count from it. No
screenshots are taken. Skipped when no Chromium is installed (CI installs it).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

import oversight
from oversight.score.report import build_report

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")


def dump_dom(page: Path, profile: Path, **state: str) -> str:
    fragment = "&".join(f"{k}={quote(v, safe='')}" for k, v in state.items())
    url = page.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    p = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, text=True, timeout=180)
    assert p.returncode == 0 and "<html" in p.stdout, p.stderr[-2000:]
    return p.stdout


def count(dom: str) -> int:
    m = re.search(r'id="f-count"[^>]*data-count="(\d+)"', dom) or re.search(r'data-count="(\d+)"[^>]*id="f-count"', dom)
    assert m, "the page did not run its script"
    return int(m.group(1))


def cards(dom: str) -> list[str]:
    """The rendered cards (the list's contents, not the script that renders them)."""
    listing = dom.split('<div id="ov-list">', 1)[1].split('<button id="ov-more"', 1)[0]
    return re.findall(r'<section class="card".*?</section>', listing, re.S)


def browser_json(page: Path) -> dict:
    m = re.search(r'<script type="application/json" id="ov-data">(.*?)</script>', page.read_text(), re.S)
    assert m
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def sim_page(sim_run: Path) -> Path:
    return build_report([sim_run], sim_run / "browser", n_resamples=100, elo_bootstrap=0, write_plots=False).html_path


@pytest.fixture(scope="module")
def failure_page(failure_run: Path) -> Path:
    return build_report([failure_run], failure_run / "browser", n_resamples=100, elo_bootstrap=0,
                        write_plots=False).html_path


def test_a_known_items_question_and_answers_are_visible_in_its_card(sim_page: Path, sim_run: Path,
                                                                  tmp_path: Path) -> None:
    res = oversight.load(sim_run)
    debate = res.judgments[(res.judgments.protocol == "debate") & (res.judgments.task == "quality")].iloc[0]
    item = res.item(debate)
    words = " ".join(str(item.question).split()[:6])
    dom = dump_dom(sim_page, tmp_path, task="quality", q=words)
    shown = cards(dom)
    assert shown, "no card for the item"
    card = next(c for c in shown if html.escape(str(debate.transcript_id)) in c)
    right, wrong = (item.answer_0, item.answer_1) if item.correct == 0 else (item.answer_1, item.answer_0)
    assert html.escape(str(item.question), quote=False) in card
    correct_li = re.search(r'<li class="correct">(.*?)</li>', card, re.S)
    wrong_li = re.search(r'<li class="wrong">(.*?)</li>', card, re.S)
    assert correct_li and html.escape(str(right), quote=False) in correct_li.group(1)
    assert wrong_li and html.escape(str(wrong), quote=False) in wrong_li.group(1)
    # who argued which side, every turn with its passages marked, the verdicts with raw replies
    assert "argued by Alice" in card and "argued by Bob" in card
    assert 'class="turn side-1"' in card and 'class="turn side-2"' in card
    assert '<mark class="vp"' in card or '<mark class="up"' in card
    assert 'class="v ' in card and "Answer:" in card
    # the article and each participant's prompt are there, collapsed until opened
    assert '<details class="article"' in card and "the prompt Alice received" in card
    assert "the prompt the judge received" in card


def test_every_filter_changes_the_count(sim_page: Path, tmp_path: Path) -> None:
    data = browser_json(sim_page)
    default = count(dump_dom(sim_page, tmp_path))
    assert default == sum(c["k"] == "t" for c in data["cards"])  # opens on debates and consultancies
    everything = count(dump_dom(sim_page, tmp_path, protocol=""))
    assert everything == len(data["cards"]) > default
    for state in ({"task": "gsm8kqa"}, {"protocol": "qa"}, {"protocol": "open_debate"}, {"judge": "sim/weak"},
                  {"outcome": "wrong"}, {"q": "unverified"}, {"q": "no such text anywhere"}):
        n = count(dump_dom(sim_page, tmp_path, **state))
        assert n != default, state
    qa = dump_dom(sim_page, tmp_path, protocol="qa", task="quality")
    assert all('data-kind="q"' in c for c in cards(qa))
    assert "agent’s own QA" in qa  # the agent's QA verdicts sit with the judges', labelled


def test_failed_refused_and_invalid_verdicts_are_shown(failure_page: Path, tmp_path: Path) -> None:
    data = browser_json(failure_page)
    failed = sum(any(v[6] == "error" for v in c["v"]) for c in data["cards"])
    dom = dump_dom(failure_page, tmp_path, protocol="", outcome="error")
    assert count(dom) == failed > 0
    assert "scripted 500" in dom or "scripted 400" in dom
    assert all("error" in c for c in cards(dom))
    invalid = dump_dom(failure_page, tmp_path, protocol="", outcome="invalid", judge="flaky")
    assert count(invalid) > 0 and "(refused)" in invalid
    assert count(dump_dom(failure_page, tmp_path, protocol="", judge="flaky")) != count(
        dump_dom(failure_page, tmp_path, protocol=""))


def test_model_text_is_inert(tmp_path: Path) -> None:
    from score_synth import write_run

    run = write_run(tmp_path / "r", n_items=2, with_tournament=False)
    page = build_report([run], n_resamples=20, elo_bootstrap=0, write_plots=False).html_path
    dom = dump_dom(page, tmp_path / "profile", protocol="", q="pwned")
    assert count(dom) >= 1
    assert "&lt;script&gt;alert('pwned')&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in dom
    assert "<b>bold</b>" not in dom
