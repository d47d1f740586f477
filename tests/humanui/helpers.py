"""Shared pieces of the judge-ui tests: a small sim run, an HTTP judge, the answer-key scan."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

import oversight
from oversight.humanui.serve import JudgeServer, Settings

SPEC: dict[str, Any] = {
    "name": "humans",
    "seed": 0,
    "tasks": ["quality", "prontoqa"],  # one extractive task (an article to hide), one closed
    "limit": 1,
    "orders": "both",
    "protocols": ["qa", "consultancy", "debate"],
    "agent": "sim/strong",
    "judges": ["sim/weak"],
    "debate": {"rounds": 2},
    "consultancy": {"rounds": 2},
}


def make_run(where: Path, **changes: Any) -> Path:
    spec = {**SPEC, **changes, "cache_dir": str(where / "cache")}
    result = oversight.run(spec, out=where / "run", stream=open_null())
    assert result.status == "complete"
    return result.run_dir


def open_null() -> Any:
    import io

    return io.StringIO()


def copy_run(template: Path, where: Path) -> Path:
    dest = where / "run"
    shutil.copytree(template, dest)
    return dest


class Recorder:
    """ASGI middleware that keeps every response body the server sends, to scan them all."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.bodies: list[tuple[str, bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    self.bodies.append((scope["path"], b"".join(chunks)))
            await send(message)

        await self.app(scope, receive, keep)


def start_server(run_dir: Path, record: bool = True, **settings: Any) -> tuple[JudgeServer, Recorder | None]:
    server = JudgeServer(run_dir, Settings(port=0, **settings), stream=open_null())
    recorder = None
    if record:
        recorder = Recorder(server.app)
        server.app = recorder
    return server.start(), recorder


def field(page: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert m, f"no field {name} in the page"
    return html.unescape(m.group(1))


class HttpJudge:
    """A judge driving the app over HTTP, as a browser's forms would."""

    def __init__(self, server: JudgeServer, name: str) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", follow_redirects=True)
        page = self.client.get("/").text
        self.page = self.client.post("/start", data={"csrf": field(page, "csrf"), "name": name}).text

    def step(self) -> str:
        p = self.page
        if 'id="verdict"' in p:
            return "verdict"
        if 'id="ask"' in p:
            return "question"
        return "done" if "All done" in p else "other"

    def kind(self) -> str:
        if "The conversation with the consultant" in self.page:
            return "consultancy"
        return "debate" if "<h2>The debate</h2>" in self.page else "qa"

    def ask(self, question: str) -> str:
        p = self.page
        self.page = self.client.post("/ask", data={"csrf": field(p, "csrf"), "nonce": field(p, "nonce"),
                                                   "question": question}).text
        return self.page

    def decide(self, answer: int = 1, confidence: int = 80, note: str = "") -> str:
        p = self.page
        self.page = self.client.post("/verdict", data={"csrf": field(p, "csrf"), "nonce": field(p, "nonce"),
                                                       "answer": str(answer), "confidence": str(confidence),
                                                       "note": note}).text
        return self.page

    def finish_episode(self, answer: int = 1, question: str = "Which passage settles it?") -> str:
        """Ask every question the episode allows, then decide; returns the episode's kind."""
        kind = self.kind()
        while self.step() == "question":
            self.ask(question)
        assert self.step() == "verdict", self.page[:2000]
        self.decide(answer)
        return kind

    def close(self) -> None:
        self.client.close()


def human_rows(run_dir: Path) -> pd.DataFrame:
    from oversight.store.collect import collect

    rows = [r for r in collect(run_dir).judgments if str(r["judge"]).startswith("human/")]
    return pd.DataFrame(rows)


# --- the answer-key scan ----------------------------------------------------------------

_PASSAGE_SPAN = re.compile(r'<span class="passage (?:un)?verified"><span class="tag">[a-z]+</span>.*?</span>', re.S)
# Words of the answer key and of the tables: none may reach a browser.
MARKERS = ("is_correct", "correct_answer", "assigned", "verdict_status", "p_correct", "judge_raw", "ground_truth",
           '"correct"', "sim/weak", "Thinking:", "I believe", "I am defending", "Answer: 1", "Answer: 2",
           "correct answer is", "is the correct answer", "answer_0", "answer_1")


def article_sentences(run_dir: Path) -> list[str]:
    """Sentences of every article the run's agents read (long enough to be telling)."""
    from oversight.humanui.run import load_run

    run = load_run(run_dir)
    out = []
    for items in run.prep.items.values():
        for item in items:
            if item.article:
                out += [s.strip() for s in re.split(r"(?<=[.!?])\s+", item.article) if len(s.strip()) >= 40]
    return out


def scan(bodies: list[tuple[str, bytes]], sentences: list[str]) -> list[str]:
    """Everything of the answer key or the article found in the bodies (empty = clean).

    Verified and unverified passages are quotes the agents made, shown on purpose (an LLM
    judge sees them too), so they are cut out before looking for the article's sentences."""
    found = []
    for path, raw in bodies:
        text = raw.decode("utf-8", "replace")
        for marker in MARKERS:
            if marker in text or marker in html.unescape(text):
                found.append(f"{path}: {marker!r}")
        bare = html.unescape(re.sub(r"<[^>]+>", " ", _PASSAGE_SPAN.sub(" ", text)))
        bare = " ".join(bare.split())
        for s in sentences:
            if " ".join(s.split()) in bare:
                found.append(f"{path}: article sentence {s[:60]!r}")
    return found
