"""judge-ui over HTTP: units and order, verdict rows, interactive episodes through the run's
models, durability and resume, two judges, the run lock, and the safety checks."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml

import oversight
from oversight.cli import main
from oversight.errors import OversightError
from oversight.humanui.guard import is_loopback
from oversight.humanui.run import load_run
from oversight.humanui.serve import JudgeServer, Settings
from oversight.store.collect import collect
from oversight.store.tables import JUDGMENT_COLUMNS
from tests.humanui.helpers import (
    HttpJudge,
    article_sentences,
    field,
    human_rows,
    make_run,
    open_null,
    scan,
    start_server,
)


def test_units_cover_qa_debate_and_consultancy_never_qa_with_article(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, protocols=["qa", "qa_with_article", "consultancy", "debate", "open_consultancy"])
    run = load_run(run_dir)
    kinds = [u.kind for u in run.units]
    # 2 items x 2 orders: qa 4, debate 4 (one per shared transcript), consultancy 8 (both assigned sides)
    assert (kinds.count("qa"), kinds.count("debate"), kinds.count("consultancy")) == (4, 4, 8)
    assert {u.variant for u in run.units} == {"qa", "consultancy", "debate"}
    assert all(u.interactive == (u.kind == "consultancy") for u in run.units)
    # Debate units are the journaled transcripts, judged as they are.
    assert {u.ep.transcript_key for u in run.units if u.kind == "debate"} == set(run.transcripts)


def test_each_judge_has_a_seeded_order_of_their_own(run_dir: Path) -> None:
    run = load_run(run_dir)
    a1, a2, b = (run.queue("human/a", views="all"), run.queue("human/a", views="all"),
                 run.queue("human/b", views="all"))
    assert [u.key for u in a1] == [u.key for u in a2]
    assert sorted(u.key for u in a1) == sorted(u.key for u in b) and [u.key for u in a1] != [u.key for u in b]
    once = run.queue("human/a")  # the default: one view of each item
    assert len(once) == 2 and len({(u.ep.task, u.ep.item.item_id) for u in once}) == 2
    assert [u.kind for u in run.queue("human/a", variants=["qa"], limit=3, views="all")] == ["qa"] * 3


def test_a_verdict_is_a_judgments_row_journaled_at_once(run_dir: Path) -> None:
    server, _ = start_server(run_dir)
    try:
        judge = HttpJudge(server, "Ann")
        kind = judge.kind()
        while judge.step() == "question":
            judge.ask("What do you know?")
        judge.decide(answer=2, confidence=70, note="a <b>hunch</b>")
        # In the journal before the server stops: nothing waits for a seal.
        rows = human_rows(run_dir)
        assert len(rows) == 1
        row = rows.iloc[0]
        assert row["judge"] == "human/ann" and row["protocol"] == kind and row["verdict_status"] == "ok"
        assert row["judge_answer"] == 2 and bool(row["is_correct"]) == (row["correct_answer"] == 2)
        assert row["p_correct"] == pytest.approx(0.7 if row["correct_answer"] == 2 else 0.3)
        assert "Note: a <b>hunch</b>" in row["judge_raw"]
        assert set(row.index) == set(JUDGMENT_COLUMNS)  # the same columns as every LLM judge's row
        llm = next(r for r in collect(run_dir).judgments if r["judge"] == "sim/weak" and r["variant"] == row["variant"])
        for col in ("variant", "judge_mode", "word_limit", "passage_match", "interactive", "prompt_set", "rounds"):
            assert row[col] == llm[col] or (row[col] is None and llm[col] is None), col
        judge.close()
    finally:
        server.stop()
    res = oversight.load(run_dir)  # sealed when the server stopped
    human = res.judgments[res.judgments["judge"] == "human/ann"]
    assert len(human) == 1
    assert "Question:" in res.judge_prompt(human.iloc[0])  # what the person was shown, kept


def _judge_until(judge: HttpJudge, kind: str, limit: int = 40) -> None:
    """Decide episodes (answer 1) until the current one is of `kind`."""
    for _ in range(limit):
        if judge.kind() == kind:
            return
        judge.finish_episode()
    raise AssertionError(f"no {kind} episode in the queue")


def test_interactive_consultancy_goes_through_the_runs_model_and_cache(run_dir: Path) -> None:
    server, recorder = start_server(run_dir)
    try:
        judge = HttpJudge(server, "cara")
        _judge_until(judge, "consultancy")
        assert judge.step() == "question"
        assert len(re.findall(r"Consultant \(round", judge.page)) == 1
        page = judge.ask("Why <script>alert(1)</script> trust <v_passage>this</v_passage>?")
        assert len(re.findall(r"Consultant \(round", page)) == 2
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
        assert judge.step() == "verdict"  # 2 rounds: one question
        judge.decide(1, 95)
        judge.close()
    finally:
        server.stop()
    rec = next(r for r in collect(run_dir).judgments if r["judge"] == "human/cara" and r["protocol"] == "consultancy")
    ep = rec["episode_id"]
    res = oversight.load(run_dir)
    turns = res.turns[res.turns["transcript_id"] == ep].sort_values("turn")
    assert list(turns["role"]) == ["consultant", "judge_question", "consultant", "judge"]
    question = turns.iloc[1]["visible"]
    assert "passage" not in question  # a person cannot forge a verified quote
    calls = res.calls[res.calls["episode_id"] == ep]
    assert list(calls["model"]) == ["sim/strong", "sim/strong"]
    # The opening is the very call the run made (no question shapes it): a cache hit.
    assert bool(calls.iloc[0]["cache_hit"]) and not bool(calls.iloc[1]["cache_hit"])
    prompt = res.prompt(calls.iloc[1]["prompt_id"])
    assert "trust this?" in prompt  # the consultant answered the person's question


def test_interactive_debate_asks_between_rounds(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, protocols=["debate"], tasks=["prontoqa"], debate={"rounds": 3, "interactive": True})
    run = load_run(run_dir)
    assert all(u.interactive for u in run.units) and len(run.units) == 2
    server, _ = start_server(run_dir)
    try:
        judge = HttpJudge(server, "dee")
        asked = 0
        while judge.step() == "question":
            judge.ask(f"Question {asked + 1}?")
            asked += 1
        assert asked == 2 and len(re.findall(r"Alice \(round", judge.page)) == 3
        judge.decide(2, 60)
    finally:
        server.stop()
    row = human_rows(run_dir).iloc[0]
    assert row["interactive"] and row["transcript_id"] == row["episode_id"]
    res = oversight.load(run_dir)
    roles = res.turns[res.turns["transcript_id"] == row["transcript_id"]].sort_values("turn")["role"].tolist()
    assert roles == ["debater", "debater", "judge_question", "debater", "debater", "judge_question", "debater",
                     "debater", "judge"]


def test_a_repeated_form_acts_once(run_dir: Path) -> None:
    server, _ = start_server(run_dir, views="all")
    try:
        judge = HttpJudge(server, "eve")
        _judge_until(judge, "qa")
        page = judge.page
        form = {"csrf": field(page, "csrf"), "nonce": field(page, "nonce"), "answer": "1", "confidence": "90"}
        before = len(human_rows(run_dir))
        for _ in range(3):  # a double click, then the back button
            judge.client.post("/verdict", data=form)
        assert len(human_rows(run_dir)) == before + 1
    finally:
        server.stop()


def test_two_judges_at_once_and_the_run_lock(run_dir: Path) -> None:
    server, _ = start_server(run_dir, views="all")
    try:
        a, b = HttpJudge(server, "fay"), HttpJudge(server, "gus")
        for _ in range(3):
            a.finish_episode(1)
            b.finish_episode(2)
        # One writer per run directory: a resumed run cannot write the journal meanwhile.
        with pytest.raises(OversightError, match="in use"):
            oversight.run(run_dir / "spec.yaml", out=run_dir, resume=True, stream=open_null())
        with pytest.raises(OversightError, match="in use"):
            JudgeServer(run_dir, Settings(port=0), stream=open_null())
    finally:
        server.stop()
    rows = human_rows(run_dir)
    assert rows["judge"].value_counts().to_dict() == {"human/fay": 3, "human/gus": 3}
    assert set(rows.loc[rows["judge"] == "human/gus", "judge_answer"]) == {2}
    # Once the server is gone the run can be resumed, and the human rows stay in its tables.
    again = oversight.run(run_dir / "spec.yaml", out=run_dir, resume=True, stream=open_null())
    assert again.status == "complete" and again.judgments["judge"].str.startswith("human/").sum() == 6


def test_a_judge_resumes_where_they_stopped_after_a_restart(run_dir: Path) -> None:
    server, _ = start_server(run_dir, views="all")
    try:
        judge = HttpJudge(server, "hal")
        judge.finish_episode()
        _judge_until(judge, "consultancy")
        judge.ask("Draft question?")  # an episode half done when the server goes away
        assert judge.step() == "verdict"
        progress = re.search(r"episode (\d+) of (\d+)", judge.page)
        assert progress
        half_done = judge.page
    finally:
        server.stop()
    server, _ = start_server(run_dir, views="all")
    try:
        again = HttpJudge(server, "Hal")  # names are not case-sensitive
        assert re.search(r"episode (\d+) of (\d+)", again.page).group(0) == progress.group(0)  # type: ignore[union-attr]
        assert again.step() == "verdict" and "Draft question?" in again.page
        transcript = lambda p: p[p.index('<section id="transcript">'):p.index("</section>")]  # noqa: E731
        assert transcript(again.page) == transcript(half_done)  # restored, not generated again
    finally:
        server.stop()


def test_killing_the_server_loses_no_verdict(run_dir: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "oversight", "judge-ui", str(run_dir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            m = re.search(r"Open (http://\S+)", line)
            if m:
                url = m.group(1)
                break
        assert url, "no URL in the banner"
        client = httpx.Client(base_url=url, follow_redirects=True)
        page = client.get("/").text
        page = client.post("/start", data={"csrf": field(page, "csrf"), "name": "ivy"}).text
        while 'id="ask"' in page:
            page = client.post("/ask", data={"csrf": field(page, "csrf"), "nonce": field(page, "nonce"),
                                             "question": "Why?"}).text
        client.post("/verdict", data={"csrf": field(page, "csrf"), "nonce": field(page, "nonce"), "answer": "1",
                                      "confidence": "55"})
        client.close()
    finally:
        proc.kill()  # SIGKILL: no shutdown, no seal
        proc.wait()
    assert len(human_rows(run_dir)) == 1  # the journal has it
    res = oversight.load(run_dir)
    assert not res.judgments["judge"].str.startswith("human/").any()  # not sealed yet
    assert main(["judge-ui", str(run_dir), "--seal"]) == 0
    assert oversight.load(run_dir).judgments["judge"].eq("human/ivy").sum() == 1


# --- safety ---------------------------------------------------------------------------


def test_only_loopback_host_headers_and_same_origin_posts(run_dir: Path) -> None:
    server, _ = start_server(run_dir)
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(base + "/", headers={"Host": "evil.example"}).status_code == 421
        r = httpx.get(base + "/")
        assert r.status_code == 200
        for header in ("content-security-policy", "x-frame-options", "x-content-type-options"):
            assert header in r.headers
        assert "script-src 'self'" in r.headers["content-security-policy"]
        csrf = field(r.text, "csrf")
        foreign = httpx.post(base + "/start", data={"csrf": csrf, "name": "x"}, cookies=r.cookies,
                             headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        forged = httpx.post(base + "/start", data={"csrf": "guess", "name": "x"}, cookies=r.cookies)
        assert forged.status_code == 303 and forged.headers["location"] == "/"
        bad = httpx.post(base + "/start", data={"csrf": csrf, "name": "<img src=x>"}, cookies=r.cookies)
        assert bad.status_code == 400 and "<img src=x>" not in bad.text
        big = httpx.post(base + "/start", content=b"x" * 70_000,
                         headers={"content-type": "application/x-www-form-urlencoded"})
        assert big.status_code == 413
        judge = HttpJudge(server, "jo")
        stolen = {"csrf": "not-the-session-token", "nonce": field(judge.page, "nonce"), "answer": "1",
                  "confidence": "90"}
        assert judge.client.post("/verdict", data=stolen).status_code == 403
        assert human_rows(run_dir).empty
    finally:
        server.stop()


def test_beyond_loopback_a_token_is_required(run_dir: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    server, _ = start_server(run_dir, host="0.0.0.0")
    try:
        token = server.settings.token
        assert token and f"?token={token}" in server.banner()
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(base + "/").status_code == 403
        assert httpx.get(base + "/?token=wrong").status_code == 403
        client = httpx.Client(base_url=base)
        r = client.get(f"/?token={token}")
        assert r.status_code == 303 and r.headers["location"] == "/"  # the token leaves the address bar
        assert client.get("/").status_code == 200  # the cookie carries it from now on
        client.close()
    finally:
        server.stop()


def test_no_page_shows_the_answer_key_or_the_article(run_dir: Path) -> None:
    server, recorder = start_server(run_dir, views="all")
    assert recorder is not None
    try:
        judge = HttpJudge(server, "kim")
        kinds = set()
        while judge.step() != "done":
            kinds.add(judge.finish_episode(answer=2))
        assert kinds == {"qa", "debate", "consultancy"}
    finally:
        server.stop()
    sentences = article_sentences(run_dir)
    assert sentences  # the extractive item has an article to hide
    bodies = recorder.bodies
    assert len(bodies) > 30
    assert scan(bodies, sentences) == []
    # The scan does find what it looks for (it is not vacuous).
    assert scan([("/x", sentences[0].encode())], sentences) and scan([("/x", b"is_correct")], [])


def test_a_changed_experiment_is_refused(run_dir: Path) -> None:
    spec = yaml.safe_load((run_dir / "spec.yaml").read_text())
    spec["judge"]["mode"] = "cot"
    (run_dir / "spec.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(OversightError, match="no longer resolves to the same experiment"):
        load_run(run_dir)


def test_by_default_each_person_sees_an_item_once_and_views_rotate_over_people(tmp_path: Path) -> None:
    """Issue 22, item 4: one view per person per item; over the people taking part every
    view of an item (protocol x order x consultancy side) is judged once."""
    run_dir = make_run(tmp_path, limit=2)
    run = load_run(run_dir)
    views = {}
    for u in run.units:
        views.setdefault((u.ep.task, u.ep.item.item_id), set()).add(u.key)
    m = len(next(iter(views.values())))
    assert m == 8 and all(len(v) == m for v in views.values())  # qa 2 + debate 2 + consultancy 4
    server, _ = start_server(run_dir)
    try:
        people = [HttpJudge(server, f"p{k}") for k in range(m)]
        for person in people:
            while person.step() != "done":
                person.finish_episode(1)
            person.close()
    finally:
        server.stop()
    rows = human_rows(run_dir)
    per_person_item = rows.groupby(["judge", "task", "item_id"]).size()
    assert (per_person_item == 1).all() and len(per_person_item) == m * len(views)
    # Every view of every item judged by exactly one of the m people: balanced over protocols and orders.
    seen = rows.groupby(["task", "item_id", "variant", "order", rows["assigned"].fillna("-")]).size()
    assert (seen == 1).all() and len(seen) == m * len(views)
    # The old behaviour is an explicit option: every view of every item for one person.
    server, _ = start_server(run_dir, views="all")
    try:
        judge = HttpJudge(server, "p0")
        page = judge.client.get("/episode").text
        assert f"episode {len(views) + 1} of {m * len(views)}" in page  # its two judged views count as done
        judge.close()
    finally:
        server.stop()
