"""Context windows through the CLI: prompts that cannot fit are found before any call, in
`validate`, the dry run and the run, and handled by the card's `context_overflow`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from oversight.model.card import ModelCard
from oversight.model.local_server import context_window, server_context_window
from oversight.testing import FakeOpenAI

LONG = " ".join(f"Sentence {i} of the long story says the lamp was lit at dusk." for i in range(300))


def _project(tmp: Path, server_url: str, **card: Any) -> Path:
    (tmp / "judges").mkdir()
    (tmp / "judges" / "small.yaml").write_text(yaml.safe_dump(
        {"provider": "openai", "model": "m", "base_url": server_url, "max_tokens": 50, "context_window": 1200,
         "max_retries": 0, **card}))
    (tmp / "tasks").mkdir()
    rows = [{"id": "short-1", "question": "Who lit the lamp?", "options": ["Ada", "Ben"], "label": 0,
             "passage": "Ada lit the lamp every evening."},
            {"id": "long-1", "question": "When was the lamp lit?", "options": ["At dusk", "At dawn"], "label": 0,
             "passage": LONG},
            {"id": "short-2", "question": "What did Ada light?", "options": ["A lamp", "A fire"], "label": 0,
             "passage": "Ada lit the lamp every evening, and never a fire."}]
    (tmp / "tasks" / "story.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp / "tasks" / "story.yaml").write_text(yaml.safe_dump(
        {"name": "story", "group": "extractive", "loader": "generic", "path": "story.jsonl",
         "fields": {"id": "id", "question": "question", "answers": "options", "correct": "label",
                    "article": "passage"}, "correct_base": 0, "description": "test", "citation": "test",
         "license": "test", "source": "test"}))
    (tmp / "spec.yaml").write_text(yaml.safe_dump(
        {"name": "cw", "tasks": ["story"], "limit": 3, "orders": "random", "protocols": ["qa_with_article"],
         "judges": ["small"]}))
    return tmp


def _cli(proj: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oversight", *args], cwd=proj, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("command", [["validate", "spec.yaml"], ["run", "spec.yaml", "--dry-run"],
                                     ["run", "spec.yaml", "--out", "out"]])
def test_a_prompt_that_cannot_fit_stops_everything_before_any_call(tmp_path: Path, command: list[str]) -> None:
    with FakeOpenAI() as srv:
        proj = _project(tmp_path, srv.base_url)
        r = _cli(proj, *command)
        assert r.returncode == 2, r.stderr
        assert "item 'long-1' needs about" in r.stderr and "context window is 1,200" in r.stderr
        assert "Traceback" not in r.stderr
        assert srv.requests == []


def test_skip_leaves_the_item_out_and_counts_it(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        proj = _project(tmp_path, srv.base_url, context_overflow="skip")
        r = _cli(proj, "run", "spec.yaml", "--out", "out")
        assert r.returncode == 0, r.stderr
        j = pd.read_parquet(proj / "out" / "judgments.parquet")
        assert sorted(j["item_id"]) == ["short-1", "short-2"]
        manifest = json.loads((proj / "out" / "manifest.json").read_text())
        assert manifest["tasks"]["story"]["skipped"]["context_window"] == 1
        assert len(srv.requests) == 2


def test_truncate_cuts_the_article_so_the_prompt_fits(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        proj = _project(tmp_path, srv.base_url, context_overflow="truncate")
        r = _cli(proj, "run", "spec.yaml", "--out", "out")
        assert r.returncode == 0, r.stderr
        items = pd.read_parquet(proj / "out" / "items.parquet").set_index("item_id")
        meta = json.loads(items.loc["long-1", "meta"])
        assert meta["article_truncated_from_chars"] == len(LONG)
        assert items.loc["long-1", "article_chars"] < len(LONG)
        sent = next(b for b in srv.requests if "long story" in json.dumps(b))
        text = "".join(m["content"] for m in sent["messages"])
        assert "cut to fit the context window" in text
        assert len(text) / 3 + 50 <= 1200  # the check's own estimate: it fits now
        assert "short-1" in set(items.index) and "Ada lit the lamp every evening." in json.dumps(srv.requests)


class _Props(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        body = {"/props": {"default_generation_settings": {"n_ctx": 3072}},
                "/v1/models": {"data": [{"id": "m", "max_model_len": 16384}]}}.get(self.path)
        raw = json.dumps(body).encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


def test_the_window_comes_from_the_server_where_it_says_so() -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Props)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
        assert server_context_window(ModelCard(provider="llama_cpp", model="m", base_url=url)) == 3072
        assert server_context_window(ModelCard(provider="vllm", model="m", base_url=url)) == 16384
        # The card wins over the server; a server that is not there says nothing.
        assert context_window(ModelCard(provider="vllm", model="m", base_url=url, context_window=999)) == 999
        assert server_context_window(ModelCard(provider="vllm", model="m", base_url="http://127.0.0.1:9/v1")) is None
    finally:
        srv.shutdown()
