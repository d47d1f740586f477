"""`oversight report` on bad input: corrupt, truncated or foreign parquet files and
out-of-range settings end in an OversightError naming the file or setting, before any
scoring; good-but-unusual tables (0/1 is_correct, no turns) still report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from score_synth import judgments_frame, write_run

from oversight.errors import OversightError
from oversight.score.frame import check_table
from oversight.score.report import build_report, check_report_settings


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("runs") / "r1", n_items=2)


def test_foreign_judgments_table_names_the_missing_columns() -> None:
    with pytest.raises(OversightError, match=r"j\.parquet: not a judgments table.*task, item_id, protocol"):
        check_table(pd.DataFrame({"x": [1]}), "judgments", "j.parquet")


def test_outcome_column_is_required() -> None:
    frame = judgments_frame(n_items=1).drop(columns=["is_correct", "judge_answer"])
    with pytest.raises(OversightError, match=r"is_correct \(or judge_answer and correct_answer\)"):
        check_table(frame, "judgments", "j.parquet")


def test_wrongly_typed_columns_are_refused() -> None:
    frame = judgments_frame(n_items=1)
    with pytest.raises(OversightError, match="'is_correct' should hold true/false"):
        check_table(frame.assign(is_correct="yes"), "judgments", "j.parquet")
    with pytest.raises(OversightError, match="'order' should hold numbers"):
        check_table(frame.assign(order="first"), "judgments", "j.parquet")


def test_unusual_but_sound_tables_pass() -> None:
    frame = judgments_frame(n_items=1)
    check_table(frame.assign(is_correct=frame["is_correct"].astype(int)), "judgments", "j")
    check_table(frame.assign(p_correct=None), "judgments", "j")
    check_table(pd.DataFrame({"x": []}), "turns", "t")  # no rows: nothing to score from
    check_table(frame.iloc[:0], "judgments", "j")


@pytest.mark.parametrize(("kw", "needle"), [
    ({"n_resamples": 0}, "--resamples"),
    ({"n_resamples": -5}, "got -5"),
    ({"n_resamples": 10**9}, "--resamples"),
    ({"seed": -1}, "--seed"),
    ({"max_transcripts": -1}, "--max-transcripts"),
    ({"elo_bootstrap": -1}, "elo_bootstrap"),
    ({"elo_scale": 0}, "elo_scale"),
])
def test_settings_out_of_range(kw: dict[str, int], needle: str) -> None:
    settings = {"seed": 0, "n_resamples": 100, "elo_bootstrap": 0, "elo_scale": 400, "max_transcripts": None}
    settings.update(kw)
    with pytest.raises(OversightError, match="Report settings") as exc:
        check_report_settings(**settings)  # type: ignore[arg-type]
    assert needle in str(exc.value)


def test_settings_are_checked_before_reading(tmp_path: Path) -> None:
    with pytest.raises(OversightError, match="--resamples"):
        build_report(tmp_path / "does-not-matter", n_resamples=0)


def _copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in src.glob("*.parquet"):
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_truncated_judgments_with_a_journal_suggests_resealing(run_dir: Path, tmp_path: Path) -> None:
    d = _copy_run(run_dir, tmp_path / "cut")
    blob = (d / "judgments.parquet").read_bytes()
    (d / "judgments.parquet").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(OversightError, match=r"cut/judgments\.parquet: not a readable Parquet file") as exc:
        build_report(d, n_resamples=10, elo_bootstrap=0)
    assert "--resume" not in str(exc.value)  # no journal here to seal from
    (d / "journal.jsonl").write_text("")
    with pytest.raises(OversightError, match="--resume"):
        build_report(d, n_resamples=10, elo_bootstrap=0)


@pytest.mark.parametrize("name", ["turns.parquet", "calls.parquet"])
def test_corrupt_optional_tables_are_named(run_dir: Path, tmp_path: Path, name: str) -> None:
    d = _copy_run(run_dir, tmp_path / "bad")
    (d / name).write_bytes(b"\x00" * 64)
    with pytest.raises(OversightError, match=f"bad/{name}: not a readable Parquet file"):
        build_report(d, n_resamples=10, elo_bootstrap=0)


def test_unwritable_out_dir_is_an_error_naming_the_option(run_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(OversightError, match=r"afile/report \(report --out\)"):
        build_report(run_dir, blocker / "report", n_resamples=10, elo_bootstrap=0, write_plots=False)
