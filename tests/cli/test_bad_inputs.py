"""Bad input of every kind through the real `oversight` executable: each case must end with
exit status 2, one paragraph on stderr that names the file and the field (or option), and
no traceback.

The cases run as subprocesses, all started together by one module fixture (a few at a
time) so that the whole table costs about as much as its slowest few commands; each case
then gets its own test id. Commands are `validate`, `run --dry-run` or `report`, which
never call a model. The work folder is a temporary copy-free catalogue: its tasks/ and
judges/ folders are added with `--include`, and the bundled tasks are found through the
project root.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-test-0123456789abcdefSECRET"  # pasted where a variable name belongs; never echoed

BASE_SPEC: dict[str, Any] = {"name": "t", "tasks": ["boolq"], "limit": 2, "protocols": ["qa"], "judges": ["sim/weak"]}


def spec(**changes: Any) -> str:
    """The base spec as YAML with keys changed (a value of ... deletes the key)."""
    data = dict(BASE_SPEC)
    for k, v in changes.items():
        if v is ...:
            data.pop(k, None)
        else:
            data[k] = v
    return yaml.safe_dump(data, sort_keys=False)


def with_judge(**card: Any) -> str:
    return spec(judges=[{"provider": "sim", "model": "weak", **card}])


def task_card(name: str, data: str, group: str = "closed", **extra: Any) -> str:
    card = {"name": name, "group": group, "loader": "generic", "path": f"../data/{data}",
            "fields": {"id": "id", "question": "q", "answers": "opts", "correct": "label"}}
    card.update(extra)
    return yaml.safe_dump(card, sort_keys=False)


GOOD_ROW = '{"id": "a", "q": "Is it?", "opts": ["yes", "no"], "label": 0}\n'
BOMB = "\n".join(
    [f"l0: &l0 [{', '.join(['lol'] * 9)}]"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
) + "\n"


@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]  # after `oversight --include WORK`; "{w}" is the work folder
    expect: tuple[str, ...]  # every one must appear in stderr: the file, field or option
    files: dict[str, str | bytes] = field(default_factory=dict)  # relative to the work folder
    env: dict[str, str] = field(default_factory=dict)
    usage: bool = False  # an argparse error: "usage: …" then "…: error: …"


def validate(name: str, text: str | bytes, *expect: str, files: dict[str, str | bytes] | None = None,
             names_spec: bool = True) -> Case:
    """`oversight validate` of specs/NAME.yaml; the message names the spec unless another
    file (a card, a data file) is the one at fault."""
    path = f"specs/{name}.yaml"
    named = (path,) if names_spec else ()
    return Case(name, ["validate", "{w}/" + path], (*named, *expect), {path: text, **(files or {})})


def dry_run(name: str, sets: list[str], *expect: str) -> Case:
    path = f"specs/{name}.yaml"
    args = ["run", "{w}/" + path, "--dry-run"] + [a for s in sets for a in ("--set", s)]
    return Case(name, args, expect, {path: spec()})


def task(name: str, card: str | bytes, data: str | bytes | None, *expect: str,
         protocols: tuple[str, ...] = ("qa",), data_name: str | None = None) -> Case:
    """A spec that uses task `name`, whose card is tasks/NAME.yaml and data data/NAME.jsonl."""
    files: dict[str, str | bytes] = {f"tasks/{name}.yaml": card}
    if data is not None:
        files[f"data/{data_name or name + '.jsonl'}"] = data
    return validate(name, spec(tasks=[name], protocols=list(protocols)), *expect, files=files, names_spec=False)


def card_file(name: str, text: str | bytes, *expect: str) -> Case:
    """A spec whose judge is the card judges/NAME.yaml; the message names the card."""
    card = f"judges/{name}.yaml"
    return validate(name, spec(judges=[name]), card, *expect, files={card: text}, names_spec=False)


def report(name: str, args: list[str], *expect: str, files: dict[str, str | bytes] | None = None) -> Case:
    return Case(name, ["report", *args], expect, dict(files or {}))


CASES: list[Case] = [
    # --- the spec file itself --------------------------------------------------------------
    Case("spec-missing", ["validate", "{w}/specs/none.yaml"], ("specs/none.yaml", "not found")),
    Case("spec-is-a-folder", ["validate", "{w}/specs"], ("specs", "directory")),
    validate("spec-not-utf8", b"name: t\xff\ntasks: [boolq]\n", "line 1", "UTF-8"),
    validate("spec-malformed-yaml", "name: t\ntasks: [boolq\njudges: x\n", "malformed YAML", "line"),
    validate("spec-a-list", "- name: t\n", "mapping"),
    validate("spec-empty", "", "mapping"),
    validate("spec-duplicate-key", "name: t\nlimit: 2\ntasks: [boolq]\nlimit: 3\n", "line 4",
             "duplicate key 'limit'", "first at line 2"),
    validate("spec-duplicate-nested-key", spec(debate={"rounds": 2}).replace(
        "  rounds: 2\n", "  rounds: 2\n  rounds: 3\n"), "duplicate key 'rounds'"),
    validate("spec-alias-bomb", spec() + BOMB, "aliases"),
    validate("spec-recursive-alias", spec() + "x: &x [1, *x]\n", "recursive alias"),
    validate("spec-deep-nesting", spec() + "x: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    validate("spec-huge-integer", spec() + "seed: " + "9" * 5000 + "\n", "4,300 digits"),
    validate("spec-unknown-key", spec(judgs=["sim/weak"]), "'judgs'", "did you mean 'judges'"),
    validate("spec-unknown-nested-key", spec(debate={"rouns": 2}), "debate.rouns", "did you mean 'rounds'"),
    # --- spec fields -----------------------------------------------------------------------
    validate("name-parent-dirs", spec(name="../.."), "'name'", "plain name"),
    validate("name-absolute", spec(name="/tmp/elsewhere"), "'name'", "plain name"),
    validate("name-with-slash", spec(name="a/b"), "'name'", "plain name"),
    validate("name-empty", spec(name=""), "'name'", "plain name"),
    validate("seed-negative", spec(seed=-1), "'seed'", "greater than or equal to 0"),
    validate("seed-text", spec(seed="abc"), "'seed'", "integer"),
    validate("limit-zero", spec(limit=0), "'limit'", "greater than or equal to 1"),
    validate("limit-huge", spec(limit=10**9), "'limit'", "less than or equal to 10000000"),
    validate("orders-unknown", spec(orders="sometimes"), "'orders'", "'both' or 'random'"),
    validate("tasks-empty", spec(tasks=[]), "'tasks'", "at least 1 item"),
    validate("tasks-not-a-list", spec(tasks="boolq"), "'tasks'", "list"),
    validate("tasks-repeated", spec(tasks=["boolq", "boolq"]), "'tasks'", "more than once"),
    validate("task-unknown", spec(tasks=["boolk"]), "Unknown task 'boolk'", "boolq"),
    validate("protocols-empty", spec(protocols=[]), "'protocols' is empty"),
    validate("protocols-repeated", spec(protocols=["qa", "qa"]), "'protocols'", "more than once"),
    validate("protocol-unknown", spec(protocols=["debait"]), "Unknown protocol 'debait'", "debate"),
    validate("protocol-needs-agent", spec(protocols=["debate"]), "agent"),
    validate("judges-empty", spec(judges=[]), "'judges' is empty"),
    validate("judges-repeated", spec(judges=["sim/weak", "sim/weak"]), "judges", "sim/weak", "more than once"),
    validate("judge-unknown-card", spec(judges=["no-such-card"]), "Unknown model 'no-such-card'"),
    validate("judge-unknown-provider", spec(judges=["opena/gpt-4o"]), "Unknown provider 'opena'", "openai"),
    validate("judge-unknown-sim", spec(judges=["sim/huge"]), "sim/huge", "sim/weak"),
    validate("judge-a-number", spec(judges=[7]), "judges.0", "text or a mapping"),
    validate("debate-rounds-zero", spec(debate={"rounds": 0}), "debate.rounds", "greater than or equal to 1"),
    validate("debate-rounds-huge", spec(debate={"rounds": 10**9}), "debate.rounds", "less than or equal to 20"),
    validate("debate-best-of-huge", spec(debate={"best_of": 100}), "debate.best_of", "less than or equal to 26"),
    validate("debate-turns-unknown", spec(debate={"turns": "together"}), "debate.turns", "'simultaneous'"),
    validate("consultancy-rounds-huge", spec(consultancy={"rounds": 1000}), "consultancy.rounds", "20"),
    validate("judge-mode-unknown", spec(judge={"mode": "vote"}), "judge.mode", "'answer', 'cot' or 'fewshot'"),
    validate("judge-shots-huge", spec(judge={"mode": "fewshot", "shots": 1000}), "judge.shots", "64"),
    validate("word-limit-tiny", spec(agents={"word_limit": 5}), "agents.word_limit", "10"),
    validate("budget-negative", spec(budget_usd=-5), "budget_usd", "greater than 0"),
    validate("budget-nan", spec() + "budget_usd: .nan\n", "budget_usd", "finite"),
    validate("concurrency-huge", spec(concurrency=10**9), "concurrency", "10000"),
    validate("cache-dir-empty", spec(cache_dir=" "), "cache_dir", "empty"),
    validate("tournament-one-debater", spec(tournament={"debaters": [{"model": "sim/weak"}], "judge": "sim/weak"}),
             "tournament.debaters", "at least 2"),
    validate("tournament-pairings-huge", spec(protocols=[], judges=[], tournament={
        "debaters": [{"model": "sim/weak"}, {"model": "sim/strong"}], "judge": "sim/weak", "pairings": 10**9}),
        "tournament.pairings", "1000000"),
    validate("tournament-judges-without-protocols", spec(protocols=[], tournament={
        "debaters": [{"model": "sim/weak"}, {"model": "sim/strong"}], "judge": "sim/weak"}),
        "'protocols' is empty"),
    # --- --set overrides -------------------------------------------------------------------
    dry_run("set-rounds-huge", ["protocols=[debate]", "agent=sim/strong", "debate.rounds=1000000000"],
            "debate.rounds", "--set", "less than or equal to 20"),
    dry_run("set-without-equals", ["limit"], "--set", "key=value"),
    dry_run("set-empty-key", ["debate.=2"], "--set debate.", "empty key"),
    dry_run("set-into-a-scalar", ["limit.x=2"], "--set limit.x", "not a mapping"),
    dry_run("set-duplicate-key", ["judge={mode: cot, mode: answer}"], "--set judge", "duplicate key 'mode'"),
    # --- model cards (inline and files) ----------------------------------------------------
    validate("card-rpm-fraction", with_judge(rpm=0.5), "'rpm'", "greater than or equal to 1"),
    validate("card-tpm-zero", with_judge(tpm=0), "'tpm'", "greater than or equal to 1"),
    validate("card-price-negative", with_judge(price={"input_per_mtok": -1}), "price.input_per_mtok",
             "greater than or equal to 0"),
    validate("card-price-nan", with_judge(price={"output_per_mtok": float("nan")}), "price.output_per_mtok",
             "finite"),
    validate("card-concurrency-huge", with_judge(max_concurrency=10**8), "'max_concurrency'", "4096"),
    validate("card-max-tokens-zero", with_judge(max_tokens=0), "'max_tokens'", "greater than or equal to 1"),
    validate("card-temperature-high", with_judge(temperature=7), "'temperature'", "less than or equal to 2"),
    validate("card-timeout-huge", with_judge(timeout_s=10**9), "'timeout_s'", "3600"),
    validate("card-retries-negative", with_judge(max_retries=-1), "'max_retries'", "greater than or equal to 0"),
    validate("card-base-url-no-scheme", with_judge(base_url="localhost:8000/v1"), "'base_url'", "http://"),
    validate("card-key-pasted-as-env", with_judge(api_key_env=SECRET), "'api_key_env'", "NAME of an environment"),
    card_file("card-file-unknown-key", "provider: openai\nmodel: m\nmax_concurency: 4\n", "max_concurency",
              "did you mean 'max_concurrency'"),
    card_file("card-file-duplicate-key", "provider: sim\nmodel: weak\nmodel: strong\n", "line 3",
              "duplicate key 'model'"),
    card_file("card-file-not-utf8", b"provider: sim\nmodel: weak # caf\xe9\n", "line 2", "UTF-8"),
    card_file("card-file-provider-unknown", "provider: opneai\nmodel: m\n", "'provider'", "'openai'"),
    card_file("card-file-model-empty", "provider: sim\nmodel: ''\n", "'model'"),
    Case("missing-api-key", ["validate", "{w}/specs/key.yaml"], ("OPENAI_API_KEY",),
         {"specs/key.yaml": spec(judges=["openai/gpt-4o-mini"])}),
    # --- task cards and data files ---------------------------------------------------------
    task("card-not-utf8", b"name: card-not-utf8\ngroup: closed\nloader: generic # \xe9\n", None,
         "tasks/card-not-utf8.yaml", "line 3", "UTF-8"),
    task("card-unknown-key", task_card("card-unknown-key", "x.jsonl", feilds={}), None,
         "tasks/card-unknown-key.yaml", "feilds", "did you mean 'fields'"),
    task("card-group-unknown", task_card("card-group-unknown", "x.jsonl", group="open"), None,
         "tasks/card-group-unknown.yaml", "'group'", "'extractive', 'closed' or 'multimodal'"),
    task("card-duplicate-key", task_card("card-duplicate-key", "x.jsonl") + "group: closed\n", None,
         "tasks/card-duplicate-key.yaml", "duplicate key 'group'"),
    task("card-loader-unknown", task_card("card-loader-unknown", "x.jsonl", loader="genric"), None,
         "tasks/card-loader-unknown.yaml", "Unknown loader 'genric'", "generic"),
    task("data-missing", task_card("data-missing", "nowhere.jsonl"), None, "tasks/data-missing.yaml",
         "nowhere.jsonl", "not found"),
    task("fields-missing", task_card("fields-missing", "fields-missing.jsonl", fields={"question": "q"}),
         GOOD_ROW, "tasks/fields-missing.yaml", "answers, correct"),
    task("correct-base-two", task_card("correct-base-two", "correct-base-two.jsonl", correct_base=2), GOOD_ROW,
         "tasks/correct-base-two.yaml", "'correct_base'", "0 or 1"),
    task("extractive-no-article", task_card("extractive-no-article", "extractive-no-article.jsonl",
                                            group="extractive"), GOOD_ROW,
         "tasks/extractive-no-article.yaml", "extractive", "article", protocols=("qa_with_article",)),
    task("jsonl-malformed", task_card("jsonl-malformed", "jsonl-malformed.jsonl"), GOOD_ROW + "{not json\n",
         "jsonl-malformed.jsonl", "line 2", "not valid JSON"),
    task("jsonl-not-object", task_card("jsonl-not-object", "jsonl-not-object.jsonl"), "[1, 2]\n",
         "jsonl-not-object.jsonl", "line 1", "JSON object"),
    task("jsonl-nan-question", task_card("jsonl-nan-question", "jsonl-nan-question.jsonl"),
         GOOD_ROW.replace('"Is it?"', "NaN"), "jsonl-nan-question.jsonl", "line 1", "'q'", "NaN"),
    task("jsonl-null-answer", task_card("jsonl-null-answer", "jsonl-null-answer.jsonl"),
         GOOD_ROW.replace('"no"', "null"), "jsonl-null-answer.jsonl", "'opts'", "answer 2"),
    task("jsonl-answers-not-list", task_card("jsonl-answers-not-list", "jsonl-answers-not-list.jsonl"),
         GOOD_ROW.replace('["yes", "no"]', "7"), "jsonl-answers-not-list.jsonl", "'opts'", "list"),
    task("jsonl-label-out-of-range", task_card("jsonl-label-out-of-range", "jsonl-label-out-of-range.jsonl"),
         GOOD_ROW.replace('"label": 0', '"label": 5'), "jsonl-label-out-of-range.jsonl", "'label'", "outside"),
    task("jsonl-question-a-list", task_card("jsonl-question-a-list", "jsonl-question-a-list.jsonl"),
         GOOD_ROW.replace('"Is it?"', '["a"]'), "jsonl-question-a-list.jsonl", "'q'", "text"),
    task("jsonl-missing-field", task_card("jsonl-missing-field", "jsonl-missing-field.jsonl"),
         '{"id": "a", "opts": ["y", "n"], "label": 0}\n', "jsonl-missing-field.jsonl", "missing field 'q'"),
    task("jsonl-huge-number", task_card("jsonl-huge-number", "jsonl-huge-number.jsonl"),
         GOOD_ROW.replace('"label": 0', '"label": ' + "1" * 5000), "jsonl-huge-number.jsonl", "line 1"),
    task("data-not-utf8", task_card("data-not-utf8", "data-not-utf8.jsonl"),
         GOOD_ROW.encode() + b'{"id": "b", "q": "caf\xe9"}\n', "data-not-utf8.jsonl", "line 2", "UTF-8"),
    task("data-no-usable-items", task_card("data-no-usable-items", "data-no-usable-items.jsonl"),
         GOOD_ROW.replace('"Is it?"', '"  "'), "data-no-usable-items", "no usable items", "empty question"),
    task("data-unknown-extension", task_card("data-unknown-extension", "data.xlsx"), "x",
         "data.xlsx", "file format", data_name="data.xlsx"),
    task("data-corrupt-parquet", task_card("data-corrupt-parquet", "bad.parquet"), b"PAR1 not really",
         "bad.parquet", "Parquet", data_name="bad.parquet"),
    task("data-corrupt-gzip", task_card("data-corrupt-gzip", "bad.jsonl.gz"), b"\x1f\x8b\x08garbage",
         "bad.jsonl.gz", "gzip", data_name="bad.jsonl.gz"),
    task("data-json-not-array", task_card("data-json-not-array", "scalar.json"), "42",
         "scalar.json", "JSON array", data_name="scalar.json"),
    # --- report ----------------------------------------------------------------------------
    report("report-dir-missing", ["{w}/runs/none"], "runs/none", "not found"),
    report("report-no-judgments", ["{w}/runs/empty-dir"], "runs/empty-dir", "judgments.parquet",
           files={"runs/empty-dir/notes.txt": "x"}),
    report("report-corrupt-parquet", ["{w}/runs/corrupt"], "runs/corrupt/judgments.parquet", "Parquet",
           files={"runs/corrupt/judgments.parquet": b"PAR1garbage"}),
    report("report-truncated-parquet", ["{w}/runs/truncated"], "runs/truncated/judgments.parquet", "truncated"),
    report("report-wrong-schema", ["{w}/runs/foreign"], "runs/foreign/judgments.parquet", "missing column",
           "protocol"),
    report("report-text-is-correct", ["{w}/runs/textual"], "runs/textual/judgments.parquet", "'is_correct'",
           "true/false"),
    report("report-corrupt-turns", ["{w}/runs/badturns"], "runs/badturns/turns.parquet", "Parquet"),
    report("report-foreign-calls", ["{w}/runs/badcalls"], "runs/badcalls/calls.parquet", "column(s) model"),
    report("report-resamples-zero", ["{w}/runs/good", "--resamples", "0"], "--resamples", "got 0"),
    report("report-resamples-negative", ["{w}/runs/good", "--resamples", "-5"], "--resamples", "got -5"),
    report("report-resamples-huge", ["{w}/runs/good", "--resamples", "1000000000"], "--resamples"),
    report("report-seed-negative", ["{w}/runs/good", "--seed", "-1"], "--seed", "got -1"),
    report("report-max-transcripts-negative", ["{w}/runs/good", "--max-transcripts", "-1"], "--max-transcripts"),
    report("report-out-under-a-file", ["{w}/runs/good", "--out", "{w}/afile/report"], "afile",
           "report --out", files={"afile": "x"}),
    Case("report-resamples-not-a-number", ["report", "{w}/runs/good", "--resamples", "many"], ("--resamples",),
         usage=True),
    # --- the command line ------------------------------------------------------------------
    Case("include-missing", ["--include", "{w}/nowhere", "validate", "{w}/specs/ok.yaml"],
         ("--include", "nowhere", "no such folder"), {"specs/ok.yaml": spec()}),
    Case("include-a-file", ["--include", "{w}/afile2", "validate", "{w}/specs/ok2.yaml"],
         ("--include", "afile2", "not a folder"), {"specs/ok2.yaml": spec(), "afile2": "x"}),
    Case("include-unrelated-folder", ["--include", "{w}/data", "validate", "{w}/specs/ok3.yaml"],
         ("--include", "data", "tasks/"), {"specs/ok3.yaml": spec()}),
    Case("run-out-under-a-file", ["run", "{w}/specs/ok4.yaml", "--out", "{w}/afile3/run"],
         ("afile3",), {"specs/ok4.yaml": spec(), "afile3": "x"}),
    Case("unknown-command", ["frobnicate"], ("frobnicate",), usage=True),
]


def _judgments(n: int = 4) -> pd.DataFrame:
    """A small, valid judgments table as `oversight run` writes it (two QA items, both orders)."""
    rows = []
    for i in range(n):
        order = i % 2
        rows.append({
            "run_id": "r", "task": "boolq", "group": "extractive", "item_id": str(i // 2), "protocol": "qa",
            "judge": "sim/weak", "agent": None, "agent_b": None, "order": order, "correct_answer": 1 + order,
            "judge_answer": 1, "is_correct": order == 0, "verdict_status": "ok", "p_correct": None,
            "assigned": None, "agent_choice": None, "rounds": None, "turn_style": None, "best_of": None,
            "transcript_id": None, "judge_input_tokens": 10, "judge_output_tokens": 2, "episode_cost_usd": 0.0,
        })
    return pd.DataFrame(rows)


def _write_run_dirs(w: Path) -> None:
    good = _judgments()
    for name in ("good", "badturns", "badcalls"):
        (w / "runs" / name).mkdir(parents=True)
        good.to_parquet(w / "runs" / name / "judgments.parquet", index=False)
    (w / "runs" / "badturns" / "turns.parquet").write_bytes(b"not parquet at all")
    pd.DataFrame({"x": [1]}).to_parquet(w / "runs" / "badcalls" / "calls.parquet")
    (w / "runs" / "truncated").mkdir()
    blob = (w / "runs" / "good" / "judgments.parquet").read_bytes()
    (w / "runs" / "truncated" / "judgments.parquet").write_bytes(blob[: len(blob) // 2])
    (w / "runs" / "foreign").mkdir()
    pd.DataFrame({"x": [1, 2]}).to_parquet(w / "runs" / "foreign" / "judgments.parquet")
    (w / "runs" / "textual").mkdir()
    good.assign(is_correct="yes").to_parquet(w / "runs" / "textual" / "judgments.parquet", index=False)


def _env(w: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "OVERSIGHT_DEBUG"}
    env["OVERSIGHT_CACHE_DIR"] = str(w / "cache")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    w = tmp_path_factory.mktemp("bad-inputs")
    for sub in ("tasks", "judges", "data", "specs"):
        (w / sub).mkdir()
    _write_run_dirs(w)
    for case in CASES:
        for rel, content in case.files.items():
            path = w / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")

    def launch(case: Case) -> subprocess.CompletedProcess[str]:
        args = [a.replace("{w}", str(w)) for a in case.args]
        return subprocess.run([sys.executable, "-m", "oversight", "--include", str(w), *args], cwd=ROOT,
                              capture_output=True, text=True, env=_env(w, case.env), timeout=300)

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        done = dict(zip([c.id for c in CASES], pool.map(launch, CASES), strict=True))
    return done


def test_there_are_at_least_sixty_distinct_cases() -> None:
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids) >= 60


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_paragraph_and_exit_2(case: Case,
                                             outcomes: dict[str, subprocess.CompletedProcess[str]]) -> None:
    proc = outcomes[case.id]
    err = proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout: {proc.stdout[-2000:]}\nstderr: {err[-3000:]}"
    assert "Traceback" not in err, err
    if case.usage:
        assert "error:" in err and err.startswith("usage:")
    else:
        message = err.strip()
        assert message.startswith("error: ") and "\n" not in message, err
        assert len(message) < 1500, f"{len(message)} characters: {message[:300]}…"
    assert SECRET not in err
    for needle in case.expect:
        assert needle in err, f"{needle!r} not in: {err}"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(spec(limit=0))
    runs: list[Callable[[], subprocess.CompletedProcess[str]]] = [
        lambda: subprocess.run([sys.executable, "-m", "oversight", "--debug", "validate", str(path)],
                               cwd=ROOT, capture_output=True, text=True, env=_env(tmp_path, {})),
        lambda: subprocess.run([sys.executable, "-m", "oversight", "validate", str(path), "--debug"],
                               cwd=ROOT, capture_output=True, text=True, env=_env(tmp_path, {})),
        lambda: subprocess.run([sys.executable, "-m", "oversight", "validate", str(path)], cwd=ROOT,
                               capture_output=True, text=True, env=_env(tmp_path, {"OVERSIGHT_DEBUG": "1"})),
    ]
    for run in runs:
        proc = run()
        assert proc.returncode != 0
        assert "Traceback" in proc.stderr and "OversightError" in proc.stderr and "'limit'" in proc.stderr


def test_os_errors_name_the_path_and_the_option_that_gave_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from oversight import cli

    out = tmp_path / "out"

    def denied(args: Any) -> int:
        raise PermissionError(13, "Permission denied", str(out / "journal.jsonl"))

    path = tmp_path / "s.yaml"
    path.write_text(spec())
    monkeypatch.setitem(cli.COMMANDS, "run", denied)
    assert cli.main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert "journal.jsonl" in err and "from --out" in err and "Permission denied" in err

    cache = tmp_path / "cache-here"
    path.write_text(spec(cache_dir=str(cache)))

    def full(args: Any) -> int:
        raise OSError(28, "No space left on device", str(cache / "ab" / "entry.json"))

    monkeypatch.setitem(cli.COMMANDS, "run", full)
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cache_dir in" in err and "No space left on device" in err


def test_a_bug_is_one_paragraph_with_exit_1_and_debug_shows_it(monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from oversight import cli

    def bug(args: Any) -> int:
        raise KeyError("sim/strong+bo4")

    monkeypatch.setitem(cli.COMMANDS, "list", bug)
    monkeypatch.delenv("OVERSIGHT_DEBUG", raising=False)
    assert cli.main(["list", "tasks"]) == 1
    err = capsys.readouterr().err
    assert "internal error" in err and "KeyError" in err and "--debug" in err and "\n" not in err.strip()
    with pytest.raises(KeyError):
        cli.main(["--debug", "list", "tasks"])
