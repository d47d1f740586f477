"""End to end in headless Chromium (Debian's `chromium` and `chromium-driver`, driven by
Selenium): a scripted judge completes a QA, a debate and an interactive consultancy
episode; every response the browser received is scanned for the answer key and the
article; the sealed run then shows the `human/…` rows in `oversight report`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from oversight.cli import main
from tests.humanui.helpers import article_sentences, human_rows, scan, start_server

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (apt-get install chromium-driver)")

WAIT_S = 60  # an upper bound for a page to arrive, never a measurement


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never try to download a driver
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}",
                "--window-size=1100,1400"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _submit_and_wait(driver, button_id: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    button = driver.find_element(By.ID, button_id)
    button.click()
    # While the next page replaces this one, chromedriver can answer a look at the old
    # button with a generic "Node ... does not belong to the document" instead of "stale
    # element": that too means the page is going, so keep waiting for staleness.
    WebDriverWait(driver, WAIT_S, ignored_exceptions=(WebDriverException,)).until(ec.staleness_of(button))


def _kind(source: str) -> str:
    if "The conversation with the consultant" in source:
        return "consultancy"
    return "debate" if "<h2>The debate</h2>" in source else "qa"


def test_a_person_judges_qa_debate_and_consultancy_in_chromium(
    browser, run_dir: Path, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    server, recorder = start_server(run_dir, views="all")
    assert recorder is not None
    done: dict[str, int] = {}
    questions = 0
    pages = []
    try:
        browser.get(f"http://127.0.0.1:{server.port}/")
        browser.find_element(By.ID, "name").send_keys("Lena")
        _submit_and_wait(browser, "start")
        for _ in range(16):  # the whole queue at most; stops once each kind is done
            WebDriverWait(browser, WAIT_S).until(
                ec.presence_of_element_located((By.CSS_SELECTOR, "form#verdict, form#ask")))
            pages.append(browser.page_source)
            kind = _kind(browser.page_source)
            if browser.find_elements(By.ID, "ask"):
                box = browser.find_element(By.ID, "question")
                box.send_keys("Which verified passage supports your answer, and what does it leave out?")
                _submit_and_wait(browser, "ask-button")
                questions += 1
                continue
            # The verdict: answer 2 on odd episodes, 1 on even; confidence starts unset (no anchor).
            n = sum(done.values())
            browser.find_element(By.ID, f"answer-{1 + n % 2}").click()
            levels = browser.find_elements(By.CSS_SELECTOR, "input[name=confidence]")
            assert len(levels) == 6 and not any(x.is_selected() for x in levels)
            expected = (60, 70, 80, 90, 100)[n % 5]
            browser.find_element(By.ID, f"confidence-{expected}").click()
            browser.find_element(By.ID, "note").send_keys(f"episode {n + 1}: <i>not markup</i>")
            _submit_and_wait(browser, "submit-verdict")
            done[kind] = done.get(kind, 0) + 1
            if {"qa", "debate", "consultancy"} <= set(done):
                break
        blocked = [e for e in browser.get_log("browser") if "Content Security Policy" in e.get("message", "")]
    finally:
        server.stop()  # seals the tables
    assert {"qa", "debate", "consultancy"} <= set(done), done
    assert questions >= 1  # the consultancy was interactive
    assert blocked == []  # no part of the app is refused by its own policy

    # Nothing of the answer key, another judge's verdict or the article reached the browser.
    sentences = article_sentences(run_dir)
    assert scan(recorder.bodies, sentences) == []
    assert scan([("dom", p.encode()) for p in pages], sentences) == []

    rows = human_rows(run_dir)
    assert len(rows) == sum(done.values()) and set(rows["judge"]) == {"human/lena"}
    assert sorted(round(p * 100) for p in rows["p_correct"].where(rows["judge_answer"] == rows["correct_answer"],
                                                                  1 - rows["p_correct"])) == \
        sorted((60, 70, 80, 90, 100)[n % 5] for n in range(len(rows)))
    assert rows["judge_raw"].str.contains("<i>not markup</i>", regex=False).all()

    capsys.readouterr()
    assert main(["report", str(run_dir), "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "human/lena" in out
