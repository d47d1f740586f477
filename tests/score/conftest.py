from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The synthetic-data helpers live beside the tests; make them importable as a module.
sys.path.insert(0, str(Path(__file__).parent))

SIM_SPEC = {"name": "r", "tasks": ["quality", "gsm8kqa"], "limit": 3, "agent": "sim/strong",
            "judges": ["sim/weak", "sim/medium"], "debate": {"rounds": 2, "best_of": 2},
            "protocols": ["qa", "qa_with_article", "consultancy", "debate", "open_consultancy", "open_debate"]}


@pytest.fixture(scope="session")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real sim run of every protocol (two tasks, two judges, best-of-2 debates)."""
    import oversight

    return oversight.run(SIM_SPEC, out=tmp_path_factory.mktemp("sim") / "run").run_dir


@pytest.fixture(scope="session")
def failure_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real run whose judge (a loopback OpenAI server) fails some episodes for good (400,
    422, 500, 503), refuses ("I cannot decide.") and gives invalid answers ("1 or 2"), next
    to a sim judge; with consultancy, debate and open debate on the sim agent."""
    import oversight
    from oversight.testing import FakeOpenAI, Fault

    replies = itertools.cycle(["Answer: 1", "I cannot decide.", "Answer: 2", "Answer: 1 or 2"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FAKE_KEY", "sk-test")
        faults = [Fault(400), Fault(422), Fault(500), Fault(500), Fault(500), Fault(503)]
        with FakeOpenAI(reply=lambda body: next(replies), faults=faults) as server:
            judge = {"name": "flaky", "provider": "openai", "model": "m", "base_url": server.base_url,
                     "api_key_env": "FAKE_KEY", "max_retries": 0}
            spec = {"name": "f", "tasks": ["boolq", "prontoqa"], "limit": 4, "agent": "sim/strong",
                    "protocols": ["qa", "qa_with_article", "consultancy", "debate", "open_debate"],
                    "judges": [judge, "sim/weak"], "concurrency": 1, "debate": {"rounds": 1},
                    "consultancy": {"rounds": 1}}
            run = oversight.run(spec, out=tmp_path_factory.mktemp("fail") / "run")
    yield run.run_dir
