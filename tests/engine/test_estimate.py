"""The dry run is exact in calls: every protocol and option is rehearsed with `--dry-run`
and then run for real (sim models, offline), and the planned calls, cache hits and calls
per role equal those in calls.parquet; tokens agree to within 10%."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import oversight
from oversight.cli import main
from oversight.engine.estimate import estimate
from oversight.engine.prepare import prepare
from oversight.engine.spec import spec_from_any

ROOT = Path(__file__).resolve().parents[2]
ALL = ["qa", "qa_with_article", "consultancy", "debate", "open_consultancy", "open_debate"]
TOURNAMENT = {
    "debaters": [{"model": "sim/weak"}, {"model": "sim/strong"}, {"model": "sim/strong", "best_of": 2}],
    "judges": ["sim/medium", "sim/strong"],
}

CASES: dict[str, dict[str, Any]] = {
    # best-of-N, several judges, every protocol, a tournament with two judges and its own settings
    "best_of_and_tournament": {
        "tasks": ["boolq", "prontoqa"], "limit": 2, "protocols": ALL,
        "debate": {"rounds": 2, "best_of": 3}, "consultancy": {"rounds": 2}, "tournament": TOURNAMENT,
    },
    # sequential interactive debates and a chain-of-thought judge, on an article task
    "sequential_interactive_cot": {
        "tasks": ["quality", "gsm8kqa"], "limit": 2, "protocols": ALL,
        "debate": {"rounds": 3, "turns": "sequential", "interactive": True, "best_of": 2},
        "judge": {"mode": "cot"},
    },
    # the issue's case (BoolQ, best-of-4) with a few-shot judge, one random order, and images
    "bo4_fewshot_random_order_images": {
        "tasks": ["boolq", "mmmu"], "limit": 2, "protocols": ALL, "orders": "random",
        "debate": {"rounds": 1, "best_of": 4}, "judge": {"mode": "fewshot", "shots": 2},
    },
}


def make_spec(case: dict[str, Any]) -> dict[str, Any]:
    return {"name": "dry", "agent": "sim/strong", "judges": ["sim/weak", "sim/medium"], **case}


def billed(calls: Any) -> int:
    fresh = calls[~calls.cache_hit.astype(bool)]
    return int(fresh.input_tokens.sum() + fresh.output_tokens.sum())


@pytest.mark.parametrize("name", sorted(CASES))
def test_dry_run_equals_the_real_run(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = make_spec(CASES[name])
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["run", str(path), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    est = estimate(prepare(spec_from_any(spec)))

    calls = oversight.load(oversight.run(spec, out=tmp_path / "run").run_dir).calls
    assert calls.error.isna().all()
    sent = int((~calls.cache_hit.astype(bool)).sum())
    assert f"{sent:,} requests {len(calls) - sent:>8,} from cache" in printed
    assert est.calls == len(calls)
    assert sum(t.cached for t in est.models.values()) == int(calls.cache_hit.sum())
    assert {r: t.calls for r, t in est.roles.items()} == calls.role.value_counts().to_dict()
    assert {m: t.calls for m, t in est.models.items()} == calls.model.value_counts().to_dict()
    for role in ("selector", "judge_question"):  # the calls the old formulae missed
        assert role in est.roles or name == "bo4_fewshot_random_order_images"
    assert est.tokens == pytest.approx(billed(calls), rel=0.10)


def test_the_issue_example_counts_best_of_n_candidates_and_selection(tmp_path: Path) -> None:
    """BoolQ, limit 2, best-of-4: the old estimate said 52 calls where the run made 124."""
    spec = make_spec({"tasks": ["boolq"], "limit": 2, "protocols": ALL, "debate": {"best_of": 4}})
    est = estimate(prepare(spec_from_any(spec)))
    made = len(oversight.load(oversight.run(spec, out=tmp_path / "run").run_dir).calls)
    per_transcript = 2 * 3 * (4 + 1)  # 2 debaters x 3 rounds x (4 candidates + 1 selection)
    assert est.roles["debater"].calls + est.roles["selector"].calls == 2 * 2 * per_transcript
    assert est.calls == made


def test_elo_spec_dry_run_uses_the_tournaments_own_settings(capsys: pytest.CaptureFixture[str]) -> None:
    """runs/elo.yaml names debaters like `sim/strong+bo4`; its dry run once crashed on them."""
    assert main(["run", str(ROOT / "runs" / "elo.yaml"), "--dry-run"]) == 0
    assert "calls" in capsys.readouterr().out
    # The spec's `debate:` block (3 rounds, best-of-4) must not change a tournament's calls.
    base = make_spec({"tasks": ["boolq"], "limit": 3, "protocols": [], "judges": [], "tournament": TOURNAMENT})
    other = {**base, "debate": {"rounds": 3, "best_of": 4, "interactive": True}}
    a, b = (estimate(prepare(spec_from_any(s))) for s in (base, other))
    assert a.calls == b.calls and a.tokens == b.tokens
    # 3 pairs, 1 item each, both orders, 2 judges; plus self-play of 3 debaters on the 3 items
    best_of = {"sim/weak": 1, "sim/strong": 1, "sim/strong+bo2": 3}
    pairs = [("sim/weak", "sim/strong"), ("sim/weak", "sim/strong+bo2"), ("sim/strong", "sim/strong+bo2")]
    debater_calls = 2 * (sum(best_of[x] + best_of[y] for x, y in pairs) + 3 * sum(2 * n for n in best_of.values()))
    assert a.roles["debater"].calls + a.roles["selector"].calls == debater_calls
    assert a.roles["judge"].calls == 2 * 2 * (3 + 9)


def test_other_models_get_stand_ins_with_the_same_calls() -> None:
    """A hosted model is never called: a stand-in replies at the word limit, and the calls
    are those of the same plan with sim models."""
    case = {"tasks": ["boolq"], "limit": 2, "protocols": ALL, "debate": {"best_of": 2}}
    sim = estimate(prepare(spec_from_any(make_spec(case)), check_keys=False))
    hosted_spec = {**make_spec(case), "agent": "gemini-pro", "judges": ["gpt-4o-mini", "sim/medium"]}
    hosted = estimate(prepare(spec_from_any(hosted_spec), check_keys=False))
    assert hosted.calls == sim.calls
    # Only a consultant's opening repeats across judges (2 items x 2 orders x 2 sides, for
    # the second judge): judges ask different questions. (The sim's questions do not depend
    # on the judge, so its later consultant turns repeat too.)
    assert sum(t.cached for t in hosted.models.values()) == 8
    assert hosted.cost_usd > 0 and hosted.exact_models == ["sim/medium"]
    agent_out = hosted.roles["debater"].output_tokens / hosted.roles["debater"].calls
    assert agent_out > 150  # thinking plus an argument at the 150-word limit


def test_projection_scales_the_grid_but_not_the_tournament() -> None:
    grid = make_spec({"tasks": ["boolq"], "limit": 20, "protocols": ["qa", "debate"]})  # the file holds 10
    alone = estimate(prepare(spec_from_any(grid)))
    assert alone.projected is not None and alone.projected.calls == 2 * alone.calls
    both = estimate(prepare(spec_from_any({**grid, "tournament": TOURNAMENT})))
    tournament_calls = both.calls - alone.calls
    assert both.projected is not None and both.projected.calls == 2 * alone.calls + tournament_calls
    only = estimate(prepare(spec_from_any({**grid, "judges": [], "protocols": [], "tournament": TOURNAMENT})))
    assert only.projected is None  # a tournament's size is fixed by its pairings


