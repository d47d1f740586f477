"""Task cards that name a Hugging Face dataset (`hf:` instead of `path:`), with datasets saved
to disk in the test by `save_to_disk` and read back with `load_from_disk` (no Hub here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

import oversight
from oversight.errors import OversightError
from oversight.task.card import load_card
from tests.ecosystem.helpers import cli

datasets = pytest.importorskip("datasets")

# google/boolq's Hugging Face columns: question, answer (bool), passage.
ROWS = {
    "question": ["is the sky blue", "do fish fly", "is water wet", "are cats mammals"],
    "answer": [True, False, True, True],
    "passage": ["The sky looks blue by day.", "Most fish swim; a few glide.", "Water wets things.",
                "Cats are mammals."],
}


def boolq_card(folder: Path, hf: dict[str, object], name: str = "hfboolq", loader: str = "boolq") -> Path:
    path = folder / "tasks" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"name": name, "group": "extractive", "loader": loader, "hf": hf}))
    return path


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A DatasetDict with two splits, saved beside where the card will be."""
    ds = datasets.DatasetDict({"validation": datasets.Dataset.from_dict(ROWS),
                               "train": datasets.Dataset.from_dict({k: v[:2] for k, v in ROWS.items()})})
    ds.save_to_disk(str(tmp_path / "tasks" / "boolq_hf"))
    return tmp_path


def test_a_card_reads_a_saved_dataset_split(saved: Path) -> None:
    card = boolq_card(saved, {"path": "boolq_hf", "split": "validation"})  # relative: beside the card
    items = oversight.load_items(str(card))
    assert [i.question for i in items] == ["Is the sky blue?", "Do fish fly?", "Is water wet?", "Are cats mammals?"]
    assert [i.answers[i.correct] for i in items] == ["True", "False", "True", "True"]
    assert items[0].article == "The sky looks blue by day."
    first = load_card(str(card)).data_path()
    copy = first.stat().st_mtime_ns
    assert load_card(str(card)).data_path() == first and first.stat().st_mtime_ns == copy  # written once
    train = boolq_card(saved, {"path": "boolq_hf", "split": "train"}, name="hfboolq_train")
    assert len(oversight.load_items(str(train))) == 2


def test_a_run_through_the_cli_records_the_dataset_in_its_identity(saved: Path) -> None:
    boolq_card(saved, {"path": "boolq_hf", "split": "validation"})
    (saved / "spec.yaml").write_text(yaml.safe_dump({
        "name": "hf", "tasks": ["hfboolq"], "limit": 4, "protocols": ["qa", "qa_with_article"],
        "judges": ["sim/weak"]}))
    p = cli(["run", "spec.yaml", "--out", "out"], saved)
    assert p.returncode == 0, p.stderr
    res = oversight.load(saved / "out")
    assert set(res.items["question"]) == {"Is the sky blue?", "Do fish fly?", "Is water wet?", "Are cats mammals?"}
    import json

    manifest = json.loads((saved / "out" / "manifest.json").read_text())
    assert manifest["tasks"]["hfboolq"]["card"]["hf"] == {"path": "boolq_hf", "split": "validation", "name": None,
                                                          "revision": None}


def test_a_single_dataset_needs_no_split(tmp_path: Path) -> None:
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "plain"))
    card = boolq_card(tmp_path, {"path": str(tmp_path / "plain")})
    assert len(oversight.load_items(str(card))) == 4


def test_bad_hf_cards_say_what_to_fix(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_split = boolq_card(saved, {"path": "boolq_hf"}, name="nosplit")
    with pytest.raises(OversightError, match="has the splits train, validation; set hf.split"):
        oversight.load_items(str(no_split))
    wrong = boolq_card(saved, {"path": "boolq_hf", "split": "test"}, name="wrongsplit")
    with pytest.raises(OversightError, match=r"not 'test'"):
        oversight.load_items(str(wrong))
    quality = boolq_card(saved, {"path": "boolq_hf"}, name="hfquality", loader="quality")
    with pytest.raises(OversightError, match="the quality loader reads its upstream file format"):
        load_card(str(quality))
    both = saved / "tasks" / "both.yaml"
    both.write_text(yaml.safe_dump({"name": "both", "group": "closed", "loader": "generic", "path": "x.jsonl",
                                    "hf": {"path": "boolq_hf"}}))
    with pytest.raises(OversightError, match="either 'path'.*or 'hf'"):
        load_card(str(both))
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if the extra were not installed
    card = boolq_card(saved, {"path": "boolq_hf", "split": "validation"}, name="nodatasets")
    with pytest.raises(OversightError, match=r"pip install 'oversight\[hf\]'"):
        oversight.load_items(str(card))
