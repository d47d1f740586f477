"""`mmlu`: MMLU (Hendrycks et al.) in the upstream CSV layout or the Hugging Face Parquet shape.

- Upstream: header-less CSVs with 6 columns `question, A, B, C, D, answer` (a letter A–D),
  one file per subject named `<subject>_<split>.csv`. `path` may be one such file or the
  directory holding them (`data/test/`); the subject comes from the file name.
- Hugging Face `cais/mmlu`: Parquet with `question, subject, choices` (list) and `answer`
  (0-based int). `path` may be a file or a directory searched recursively for *.parquet.

Item id = `<subject>/<n>` with n the 0-based position within the subject, so both shapes of
the same split give the same ids. Binarisation: the correct choice plus one other choice
picked by `rng_for(seed, task, item_id)` (meta["wrong_letter"]).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from oversight.config import Strict
from oversight.errors import OversightError, excerpt
from oversight.task.card import LoadResult, TaskCard, register_loader
from oversight.task.item import Item
from oversight.task.loaders.common import (
    Collector,
    Rec,
    binary_from_options,
    index_in_range,
    options,
    read_csv,
    read_parquet,
    rng_for,
)

LETTERS = "ABCD"
_CSV_COLUMNS = ("question", "A", "B", "C", "D", "answer")


class MmluOptions(Strict):
    split: str = "test"  # which <subject>_<split>.csv files a directory path reads
    subjects: list[str] | None = None  # keep only these subjects; null keeps all
    exclude_subjects: list[str] = ["business_ethics"]  # the paper leaves business ethics out


def _subject_from_name(path: Path) -> str:
    stem = path.stem
    for suffix in ("_test", "_val", "_dev", "_train"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def _csv_rows(path: Path) -> Iterator[tuple[str, Rec, list[str], int]]:
    subject = _subject_from_name(path)
    for rec in read_csv(path, header=False):
        named = {name: rec.data.get(i) for i, name in enumerate(_CSV_COLUMNS)}
        row = Rec(named, rec.path, rec.where)
        choices = [row.text(letter) for letter in LETTERS]
        letter = row.text("answer").strip().upper()
        if letter not in LETTERS:
            raise row.fail(f"field 'answer' (column 6) is {excerpt(letter)}, not one of A, B, C, D")
        yield subject, row, choices, LETTERS.index(letter)


def _parquet_rows(path: Path) -> Iterator[tuple[str, Rec, list[str], int]]:
    for row in read_parquet(path):
        choices = [str(c) for c in row.listing("choices")]
        answer = index_in_range(row, "answer", row.integer("answer"), len(choices), 0)
        yield row.text("subject"), row, choices, answer


def _files(path: Path, split: str) -> tuple[list[Path], bool]:
    """The data files and whether they are Parquet."""
    if path.is_file():
        return [path], path.suffix.lower() in (".parquet", ".pq")
    csvs = sorted(path.glob(f"*_{split}.csv"))
    if csvs:
        return csvs, False
    parquets = sorted(path.rglob("*.parquet"))
    if parquets:
        return parquets, True
    raise OversightError(f"{path}: no MMLU files found (expected <subject>_{split}.csv files or *.parquet).")


@register_loader("mmlu")
def load_mmlu(card: TaskCard, path: Path, seed: int) -> LoadResult:
    opts = options(card, MmluOptions)
    out = Collector()
    files, is_parquet = _files(path, opts.split)
    position: dict[str, int] = defaultdict(int)
    for file in files:
        rows = _parquet_rows(file) if is_parquet else _csv_rows(file)
        for subject, row, choices, answer in rows:
            item_id = f"{subject}/{position[subject]}"
            position[subject] += 1
            if subject in opts.exclude_subjects or (opts.subjects is not None and subject not in opts.subjects):
                out.skip(f"filter: subject {subject}")
                continue
            picked = binary_from_options(choices, answer, rng_for(seed, card.name, item_id))
            if isinstance(picked, str):
                out.skip(picked)
                continue
            pair, wrong = picked
            question = row.text("question").strip()
            if not question:
                out.skip("empty question")
                continue
            out.add(
                Item(
                    task=card.name,
                    item_id=item_id,
                    question=question,
                    answers=pair,
                    correct=0,
                    group=card.group,
                    meta={
                        "subject": subject,
                        "correct_letter": LETTERS[answer] if answer < 4 else str(answer),
                        "wrong_letter": LETTERS[wrong] if wrong < 4 else str(wrong),
                        "wrong_source": "seeded random choice",
                    },
                )
            )
    return out.result
