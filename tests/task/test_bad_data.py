"""Task data that used to be accepted silently (a NaN question read as "nan", an extractive
task without articles) or refused for no reason (JSON Lines with a byte-order mark)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from oversight.engine.prepare import prepare
from oversight.engine.spec import RunSpec
from oversight.errors import OversightError
from oversight.task.card import LOADERS, LoadResult, TaskCard
from oversight.task.item import Item
from oversight.task.loaders.common import is_null
from oversight.task.loaders.generic import load_generic

from .util import jsonl

FIELDS = {"id": "id", "question": "q", "answers": "opts", "correct": "label"}
ROW = {"id": "a", "q": "Is it?", "opts": ["yes", "no"], "label": 0}

Card = Callable[..., TaskCard]
Write = Callable[[str, str | bytes], Path]


def test_is_null_covers_pandas_missing_values() -> None:
    assert is_null(None) and is_null(float("nan")) and is_null(math.nan)
    assert not is_null(0) and not is_null("") and not is_null("nan")


@pytest.mark.parametrize("name", ["d.jsonl", "d.json"])
def test_utf8_bom_accepted_in_json_as_in_csv(card: Card, write: Write, name: str) -> None:
    body = jsonl([ROW]) if name.endswith(".jsonl") else f"[{jsonl([ROW]).strip()}]"
    path = write(name, b"\xef\xbb\xbf" + body.encode())
    items = load_generic(card("t", "generic", fields=FIELDS), path, 0).items
    assert [i.question for i in items] == ["Is it?"]


def test_nan_question_is_an_error_not_the_text_nan(card: Card, write: Write) -> None:
    path = write("d.jsonl", jsonl([ROW, {**ROW, "id": "b", "q": math.nan}]))
    with pytest.raises(OversightError, match=r"d\.jsonl: line 2: field 'q' is NaN"):
        load_generic(card("t", "generic", fields=FIELDS), path, 0)


def test_missing_question_in_parquet_is_an_error(card: Card, tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pd.DataFrame({"id": ["a", "b"], "q": ["Fine?", None], "opts": [["y", "n"]] * 2,
                  "label": [0, 1]}).to_parquet(path)
    with pytest.raises(OversightError, match=r"d\.parquet: row 2: missing field 'q' \(empty or null"):
        load_generic(card("t", "generic", fields=FIELDS), path, 0)


def test_nan_or_null_answer_is_an_error(card: Card, write: Write) -> None:
    path = write("d.jsonl", jsonl([ROW]).replace('"no"', "NaN"))
    with pytest.raises(OversightError, match=r"line 1: field 'opts': answer 2 is empty"):
        load_generic(card("t", "generic", fields=FIELDS), path, 0)


def test_nan_in_a_csv_column_list_of_answers(card: Card, write: Write) -> None:
    path = write("d.csv", "id,q,A,B,label\na,Is it?,yes,,0\n")
    # An empty CSV cell is text, not NaN: the record is skipped as having no distinct wrong answer.
    res = load_generic(card("t", "generic", fields={**FIELDS, "answers": "A, B"}), path, 0)
    assert res.items == [] and res.skipped == {"no distinct wrong answer": 1}


def test_question_must_be_text(card: Card, write: Write) -> None:
    path = write("d.jsonl", jsonl([{**ROW, "q": {"text": "x"}}]))
    with pytest.raises(OversightError, match="field 'q' should be text, got dict"):
        load_generic(card("t", "generic", fields=FIELDS), path, 0)


def test_extractive_generic_card_needs_an_article(card: Card, write: Write) -> None:
    path = write("d.jsonl", jsonl([ROW]))
    with pytest.raises(OversightError, match="group is extractive, but 'fields' maps no article"):
        load_generic(card("t", "generic", group="extractive", fields=FIELDS), path, 0)
    path = write("e.jsonl", jsonl([{**ROW, "text": "  "}, {**ROW, "id": "b", "text": "A passage."}]))
    res = load_generic(card("t", "generic", group="extractive", fields={**FIELDS, "article": "text"}), path, 0)
    assert [i.item_id for i in res.items] == ["b"] and res.skipped == {"empty article": 1}


def test_bad_utf8_is_blamed_on_its_own_line(card: Card, write: Write) -> None:
    good = jsonl([{**ROW, "id": f"r{i}"} for i in range(499)]).encode()
    path = write("d.jsonl", good + b'{"id": "x", "q": "caf\xe9"}\n')
    with pytest.raises(OversightError, match=r"d\.jsonl: line 500: not valid UTF-8"):
        load_generic(card("t", "generic", fields=FIELDS), path, 0)


def test_huge_numbers_in_json_are_errors(card: Card, write: Write) -> None:
    path = write("d.jsonl", jsonl([ROW]).replace('"label": 0', '"label": ' + "9" * 5000))
    with pytest.raises(OversightError, match=r"d\.jsonl: line 1: unreadable JSON value"):
        load_generic(card("t", "generic", fields=FIELDS), path, 0)


def test_long_values_are_quoted_as_excerpts(card: Card, write: Write) -> None:
    path = write("d.jsonl", jsonl([{**ROW, "label": "x" * 100_000}]))
    with pytest.raises(OversightError) as exc:
        load_generic(card("t", "generic", fields=FIELDS), path, 0)
    assert "'label'" in str(exc.value) and len(str(exc.value)) < 400


@pytest.fixture
def bare_extractive_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A task whose (non-generic) loader yields extractive items without an article."""

    def load(card: TaskCard, path: Path, seed: int) -> LoadResult:
        return LoadResult([Item(card.name, "i1", "Q?", ("a", "b"), 0, "extractive")])

    monkeypatch.setitem(LOADERS, "bare_extractive", load)
    (tmp_path / "data.jsonl").write_text("{}\n")
    card = tmp_path / "bare.yaml"
    card.write_text("name: bare\ngroup: extractive\nloader: bare_extractive\npath: data.jsonl\n")
    yield card


@pytest.mark.parametrize("protocols", [["qa_with_article"], ["consultancy"], ["open_debate"]])
def test_article_readers_refuse_extractive_items_without_article(bare_extractive_task: Path,
                                                                 protocols: list[str]) -> None:
    spec = RunSpec(name="t", tasks=[str(bare_extractive_task)], protocols=protocols, judges=["sim/weak"],
                   agent="sim/strong")
    with pytest.raises(OversightError, match=r"task 'bare' is extractive, but 1 of its 1 items have no article"):
        prepare(spec, "spec.yaml")


def test_plain_qa_needs_no_article(bare_extractive_task: Path) -> None:
    spec = RunSpec(name="t", tasks=[str(bare_extractive_task)], protocols=["qa"], judges=["sim/weak"])
    assert len(prepare(spec, "spec.yaml").plan.episodes) == 2


def _spec(**kw: Any) -> RunSpec:
    base: dict[str, Any] = {"name": "t", "tasks": ["boolq"], "limit": 2, "protocols": ["qa"], "judges": ["sim/weak"]}
    base.update(kw)
    return RunSpec(**base)


def test_a_task_named_twice_by_name_and_path_is_an_error() -> None:
    from oversight import catalogue

    path = catalogue.find("tasks", "boolq")
    assert path is not None
    with pytest.raises(OversightError, match="'boolq' again"):
        prepare(_spec(tasks=["boolq", str(path)]), "spec.yaml")


def test_tournament_lists_must_agree() -> None:
    tournament = {"debaters": [{"model": "sim/weak"}, {"model": "sim/strong"}], "judge": "sim/weak"}
    with pytest.raises(OversightError, match="'protocols' lists qa but 'judges' is empty"):
        prepare(_spec(judges=[], tournament=tournament), "spec.yaml")
    with pytest.raises(OversightError, match="'judges' are listed but 'protocols' is empty"):
        prepare(_spec(protocols=[], tournament=tournament), "spec.yaml")
