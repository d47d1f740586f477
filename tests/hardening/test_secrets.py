"""Class 3 of issue 21: one scrubber for every value the harness knows to be secret, wherever
it would appear: a key a server echoes in a 200 reply, credentials inside a base_url, and
secret-looking lines of a file named by mistake in an error message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from oversight.testing import FakeOpenAI
from tests.hardening.helpers import cli, write_spec

KEY = "sk-CANARY-echoed-5f0c2b7e9a1d4c3b"


def leaked_files(where: Path, secret: str) -> list[str]:
    found = []
    for f in where.rglob("*"):
        if not f.is_file():
            continue
        text = f.read_bytes().decode("latin-1")
        if f.suffix == ".parquet":
            text += pd.read_parquet(f).astype(str).to_csv()
        if secret in text:
            found.append(str(f))
    return found


def test_a_key_echoed_in_a_200_reply_is_stored_nowhere(tmp_path: Path, _isolated_cache: Path) -> None:
    def echo(body: dict[str, Any]) -> str:
        return f"Answer: 1. By the way, you sent me {KEY} and {KEY[3:]}."

    env = {"OVERSIGHT_TEST_ECHO_KEY": KEY, "OVERSIGHT_CACHE_DIR": str(_isolated_cache)}
    with FakeOpenAI(reply=echo) as server:
        judge = {"name": "echo", "provider": "openai", "model": "m", "base_url": server.base_url,
                 "api_key_env": "OVERSIGHT_TEST_ECHO_KEY", "max_retries": 0}
        spec = write_spec(tmp_path / "s.yaml", judges=[judge])
        ran = cli("run", str(spec), "--out", str(tmp_path / "run"), env=env)
        assert ran.returncode == 0, ran.stderr
        sent = list(server.headers)
    with FakeOpenAI(reply=echo, port=server.port) as server:  # same address: served from the cache
        again = cli("run", str(spec), "--out", str(tmp_path / "again"), env=env)
        assert server.requests == []
    assert any(KEY in str(h) for h in sent)  # the key really went out
    reported = cli("report", str(tmp_path / "run"), "--resamples", "20", env=env)
    exported = cli("export", "inspect", str(tmp_path / "run"), env=env)
    assert ran.returncode == again.returncode == reported.returncode == 0, reported.stderr
    for done in (ran, again, reported, exported):
        assert KEY not in done.stdout + done.stderr
    assert leaked_files(tmp_path, KEY) == []
    assert leaked_files(_isolated_cache, KEY) == []
    raw = pd.read_parquet(tmp_path / "run" / "judgments.parquet")["judge_raw"]
    assert raw.str.contains("[REDACTED]", regex=False).all()
    assert pd.read_parquet(tmp_path / "run" / "judgments.parquet")["verdict_status"].eq("ok").all()


def test_credentials_in_a_base_url_reach_no_file_and_no_listing(tmp_path: Path) -> None:
    user_key, query_key = "s3cr3t-userinfo-key-77", "AIzaQueryKeyCanary0123456789"
    url = f"https://alice:{user_key}@gateway.example/v1?key={query_key}&region=eu"
    judges = tmp_path / "inc" / "judges"
    judges.mkdir(parents=True)
    (judges / "gw.yaml").write_text(yaml.safe_dump({"provider": "sim", "model": "weak", "base_url": url}))
    inline = {"name": "gw-inline", "provider": "sim", "model": "weak", "base_url": url}
    spec = write_spec(tmp_path / "s.yaml", judges=["gw", inline])
    listed = cli("--include", str(tmp_path / "inc"), "list", "judges")
    ran = cli("--include", str(tmp_path / "inc"), "run", str(spec), "--out", str(tmp_path / "run"))
    assert listed.returncode == 0 and ran.returncode == 0, (listed.stderr, ran.stderr)
    assert "gateway.example" in listed.stdout and "[REDACTED]" in listed.stdout
    manifest = (tmp_path / "run" / "manifest.json").read_text()
    assert "gateway.example" in manifest and "region=eu" in manifest
    for secret in (user_key, query_key):
        assert secret not in listed.stdout + ran.stdout + ran.stderr
        assert leaked_files(tmp_path / "run", secret) == []
    # The run can be resumed from its own (scrubbed) spec: same identity.
    resumed = cli("--include", str(tmp_path / "inc"), "run", str(tmp_path / "run" / "spec.yaml"), "--resume",
                  "--out", str(tmp_path / "run"))
    assert resumed.returncode == 0, resumed.stderr


def test_an_error_quoting_a_dotenv_file_hides_its_secrets(tmp_path: Path) -> None:
    inc = tmp_path / "inc"
    (inc / "tasks").mkdir(parents=True)
    (inc / "data").mkdir()
    (inc / "data" / "oops.csv").write_text(
        "OPENAI_API_KEY=sk-live-0123456789abcdefghij\nDB_PASSWORD=hunter2hunter2\nGH=ghp_0123456789abcdefghij0123456789abcd\n"
    )
    (inc / "tasks" / "oops.yaml").write_text(yaml.safe_dump({
        "name": "oops", "group": "closed", "loader": "generic", "path": "../data/oops.csv",
        "fields": {"id": "id", "question": "q", "answers": "opts", "correct": "label"}}))
    done = cli("--include", str(inc), "validate", str(write_spec(tmp_path / "s.yaml", tasks=["oops"])))
    assert done.returncode == 2 and "oops.csv" in done.stderr, done.stderr
    for secret in ("sk-live-0123456789abcdefghij", "hunter2hunter2", "ghp_0123456789abcdefghij0123456789abcd"):
        assert secret not in done.stderr
