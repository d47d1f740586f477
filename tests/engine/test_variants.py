"""Protocol variants: a preset (protocols/NAME.yaml) is a base protocol plus options, a spec
lists variants by name, and every row says which variant and which settings produced it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import oversight
from oversight import catalogue
from oversight.score.accuracy import summary_table

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def include(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A folder of the user's own presets and templates, found first (like --include)."""
    folder = tmp_path / "inc"
    (folder / "protocols" / "templates").mkdir(parents=True)
    catalogue.include(folder)
    yield folder / "protocols"
    catalogue._extra.clear()


def test_an_ablation_grid_runs_in_one_run_with_each_variant_s_settings(tmp_path: Path) -> None:
    spec = {"name": "abl", "tasks": ["boolq", "quality"], "limit": 3, "agent": "sim/strong", "judges": ["sim/weak"],
            "protocols": ["debate", "debate_seq", "debate_bo4", "consultancy_cot", "qa", "qa_cot"],
            "debate": {"rounds": 2}}
    r = oversight.run(spec, out=tmp_path / "r")
    res = oversight.load(r.run_dir)
    j = res.judgments[res.judgments.qa_role.isna()]
    assert set(j.variant) == set(spec["protocols"])
    by = j.groupby("variant").first()
    assert by.loc["debate", "turn_style"] == "simultaneous" and by.loc["debate_seq", "turn_style"] == "sequential"
    assert by.loc["debate_bo4", "best_of"] == 4 and by.loc["debate", "best_of"] == 1
    assert (j[j.variant.str.startswith("debate")].rounds == 2).all()  # the spec's own block still applies
    assert by.loc["consultancy_cot", "judge_mode"] == "cot" and by.loc["qa", "judge_mode"] == "answer"
    # best-of-4 really sampled four candidates per debater turn
    t = res.turns
    bo4 = t[t.variant == "debate_bo4"]
    assert bo4.groupby(["transcript_id", "round", "speaker"]).size().max() == 4
    # the CoT variant's judges were sent a different instruction from the answer-only ones
    qa_prompt = res.judge_prompt(j[j.variant == "qa"].iloc[0])
    cot = j[(j.variant == "qa_cot") & (j.item_id == j[j.variant == "qa"].iloc[0].item_id)
            & (j.order == j[j.variant == "qa"].iloc[0].order)].iloc[0]
    assert res.judge_prompt(cot) != qa_prompt
    # the report keeps every variant apart
    table = summary_table(j)
    group_rows = table[(table.level == "group") & (table.group == "extractive")]
    assert set(group_rows.condition) >= {"debate", "debate_seq", "debate_bo4", "consultancy_cot", "qa", "qa_cot"}


def test_a_user_preset_found_with_include_is_applied_not_decorative(tmp_path: Path, include: Path) -> None:
    (include / "tiny_debate.yaml").write_text(yaml.safe_dump({
        "name": "tiny_debate", "description": "one round, best of two", "kind": "debate",
        "options": {"rounds": 1, "best_of": 2}}))
    spec = {"name": "t", "tasks": ["boolq"], "limit": 2, "agent": "sim/strong", "judges": ["sim/weak"],
            "protocols": ["tiny_debate"]}
    r = oversight.run(spec, out=tmp_path / "r")
    res = oversight.load(r.run_dir)
    assert (res.judgments.rounds == 1).all() and (res.judgments.best_of == 2).all()
    debater_turns = res.turns[res.turns.speaker.isin(["Alice", "Bob"])]
    assert set(debater_turns["round"]) == {1}
    assert debater_turns.groupby(["transcript_id", "speaker"]).size().eq(2).all()


def test_a_prompt_set_rewords_only_its_own_templates(tmp_path: Path, include: Path) -> None:
    original = (ROOT / "protocols" / "templates" / "judge_answer_only.txt").read_text()
    (include / "templates" / "terse").mkdir()
    (include / "templates" / "terse" / "judge_answer_only.txt").write_text("TERSE: reply with Answer: 1 or 2.\n")
    (include / "qa_terse.yaml").write_text(yaml.safe_dump({
        "name": "qa_terse", "description": "QA, terse instruction", "kind": "qa", "options": {"prompt_set": "terse"}}))
    spec = {"name": "t", "tasks": ["boolq"], "limit": 2, "judges": ["sim/weak"], "protocols": ["qa", "qa_terse"]}
    r = oversight.run(spec, out=tmp_path / "r")
    res = oversight.load(r.run_dir)
    j = res.judgments
    terse = res.judge_prompt(j[j.variant == "qa_terse"].iloc[0])
    plain = res.judge_prompt(j[j.variant == "qa"].iloc[0])
    assert "TERSE:" in terse and "TERSE:" not in plain and original.splitlines()[0] in plain
    assert (j[j.variant == "qa_terse"].prompt_set == "terse").all()
    import json

    identity = json.loads((r.run_dir / "manifest.json").read_text())["identity"]
    assert "terse/judge_answer_only" in identity["templates"]


def test_a_missing_prompt_set_or_an_unknown_option_is_a_clear_error(tmp_path: Path) -> None:
    inc = tmp_path / "inc" / "protocols"
    inc.mkdir(parents=True)
    (inc / "bad_opt.yaml").write_text("name: bad_opt\ndescription: x\nkind: debate\noptions: {rouns: 2}\n")
    (inc / "no_set.yaml").write_text("name: no_set\ndescription: x\nkind: qa\noptions: {prompt_set: nowhere}\n")
    for name, needle in (("bad_opt", "did you mean 'rounds'"), ("no_set", "prompt_set 'nowhere'")):
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(yaml.safe_dump({"name": "x", "tasks": ["boolq"], "judges": ["sim/weak"], "agent": "sim/strong",
                                        "protocols": [name]}))
        p = subprocess.run([sys.executable, "-m", "oversight", "--include", str(tmp_path / "inc"), "validate",
                            str(spec)], capture_output=True, text=True, cwd=ROOT)
        assert p.returncode == 2 and needle in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_reports_never_merge_rows_whose_settings_differ(tmp_path: Path) -> None:
    base = {"name": "m", "tasks": ["boolq"], "limit": 4, "judges": ["sim/medium"], "protocols": ["qa"]}
    a = oversight.run(base, out=tmp_path / "a")
    b = oversight.run({**base, "judge": {"mode": "cot"}}, out=tmp_path / "b")
    both = pd.concat([a.judgments, b.judgments], ignore_index=True)
    table = summary_table(both)
    rows = table[(table.level == "task") & (table.protocol == "qa")]
    assert len(rows) == 2
    assert set(rows.condition) == {"qa (judge_mode=answer)", "qa (judge_mode=cot)"}, set(rows.condition)


def test_list_protocols_shows_each_preset_s_settings() -> None:
    p = subprocess.run([sys.executable, "-m", "oversight", "list", "protocols"], capture_output=True, text=True,
                       cwd=ROOT)
    assert p.returncode == 0
    lines = {ln.split()[0]: ln for ln in p.stdout.splitlines()}
    assert "[debate: turns=sequential]" in lines["debate_seq"]
    assert "[consultancy: judge_mode=cot]" in lines["consultancy_cot"]
    assert {"qa", "qa_with_article", "consultancy", "debate", "open_consultancy", "open_debate"} <= set(lines)
