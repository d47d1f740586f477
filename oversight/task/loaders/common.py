"""Shared pieces for loaders: reading upstream files, strict field access, seeded choices.

Every loader reports a bad file the same way: one paragraph naming the file, the record
(line, row or id) and the field. Records that are well-formed but cannot be binarised are
not errors; the loader counts them in `LoadResult.skipped` instead.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ConfigDict

from oversight.config import require_regular_file, validate
from oversight.errors import OversightError, clip, excerpt
from oversight.task.card import LoadResult, TaskCard
from oversight.task.item import Item

# Upstream files hold long fields (GPQA explanations, QuALITY-sized articles in CSV exports);
# the csv module's default 128 KiB cap would reject them.
csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))

_MISSING = object()


def is_null(value: Any) -> bool:
    """None, or a float NaN: how pandas and JSON exports write a missing value.

    A NaN must never reach an Item as the text "nan".
    """
    return value is None or (isinstance(value, float) and math.isnan(value))
OptionsT = TypeVar("OptionsT", bound=BaseModel)


class NoOptions(BaseModel):
    """For loaders without options: any key in the card's `options` is an error."""

    model_config = ConfigDict(extra="forbid")


def options(card: TaskCard, model: type[OptionsT]) -> OptionsT:
    """The card's `options`, validated (unknown keys rejected with the nearest valid one)."""
    where = f"Task card {card.card_path or card.name}, 'options'"
    return validate(model, dict(card.options), where)


def rng_for(seed: int, task: str, item_id: str) -> random.Random:
    """The one source of randomness for an item's binarisation: same inputs, same choice."""
    return random.Random(f"{seed}:{task}:{item_id}")


@dataclass(frozen=True)
class Rec:
    """One record of an upstream file, with enough context to blame it in an error."""

    data: Mapping[Any, Any]
    path: Path
    where: str  # "line 3", "row 12", "line 2, question 30029_F5N22U40_4"

    def fail(self, message: str) -> OversightError:
        return OversightError(f"{self.path}: {self.where}: {message}.")

    def has(self, key: str) -> bool:
        return not is_null(self.data.get(key))

    def get(self, key: str, default: Any = _MISSING) -> Any:
        value = self.data.get(key)
        if is_null(value):
            if default is not _MISSING:
                return default
            if value is not None:
                raise self.fail(f"field '{key}' is NaN (a missing value); give it a value")
            if key in self.data:
                raise self.fail(f"missing field '{key}' (empty or null in this record); give it a value")
            keys = [str(k) for k in self.data if k is not None]
            shown = ", ".join(keys[:12]) + (f", … ({len(keys)} in all)" if len(keys) > 12 else "")
            raise self.fail(f"missing field '{key}' (the record has: {clip(shown) or 'no fields'})")
        return value

    def text(self, key: str, default: Any = _MISSING) -> str:
        value = self.get(key, default)
        if not isinstance(value, str):
            if value is default:
                return value  # type: ignore[no-any-return]
            raise self.fail(f"field '{key}' should be text, got {type(value).__name__} {excerpt(value)}")
        return value

    def integer(self, key: str, default: Any = _MISSING) -> int:
        value = self.get(key, default)
        if value is default:
            return value  # type: ignore[no-any-return]
        if isinstance(value, bool):
            raise self.fail(f"field '{key}' should be an integer, got {excerpt(value)}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and is_integer_text(value):
            return int(value.strip())
        raise self.fail(f"field '{key}' should be an integer, got {excerpt(value)}")

    def listing(self, key: str) -> list[Any]:
        value = self.get(key)
        if isinstance(value, list | tuple):
            return list(value)
        if hasattr(value, "tolist"):  # numpy arrays from pandas-written parquet
            return list(value.tolist())
        raise self.fail(f"field '{key}' should be a list, got {type(value).__name__}")

    def child(self, data: Any, label: str) -> Rec:
        if not isinstance(data, Mapping):
            raise self.fail(f"{label} should be a JSON object, got {type(data).__name__}")
        return Rec(data, self.path, f"{self.where}, {label}")


def is_integer_text(text: str) -> bool:
    """Whether `text` is an integer int() reads: ASCII digits only ("²".isdigit() is true too)."""
    digits = text.strip().removeprefix("-")
    return digits.isascii() and digits.isdigit()


def index_in_range(rec: Rec, key: str, index: int, n: int, base: int) -> int:
    """A `base`-indexed label → 0-based index; out of range is a file error, not a skip."""
    if not base <= index < n + base:
        raise rec.fail(
            f"field '{key}' is {index}, outside {base}..{n + base - 1} for {n} options ({'1' if base else '0'}-indexed)"
        )
    return index - base


# ---------------------------------------------------------------------------------------
# Reading files


def _open_text(path: Path, encoding: str = "utf-8") -> IO[str]:
    require_regular_file(path)
    try:
        if path.name.endswith(".gz"):
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, newline="")
        return open(path, encoding=encoding, newline="")  # noqa: SIM115 - caller closes
    except OSError as exc:
        raise OversightError(f"Cannot read {path}: {exc.strerror or exc}.") from None


def _first_bad_utf8_line(path: Path) -> int | None:
    """The 1-based line holding the first byte that is not UTF-8.

    Text is decoded in chunks ahead of the line being parsed, so the line a reader had
    reached when decoding failed is not where the bad byte is; this scan finds it.
    """
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as f:
            for n, raw in enumerate(f, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    return n
    except (OSError, EOFError):
        return None
    return None


def _read_fail(path: Path, where: str, exc: Exception) -> OversightError:
    if isinstance(exc, UnicodeDecodeError):
        line = _first_bad_utf8_line(path)
        at = f"line {line}" if line else where
        return OversightError(f"{path}: {at}: not valid UTF-8 text ({exc.reason}); save the file as UTF-8.")
    if isinstance(exc, gzip.BadGzipFile | EOFError):
        return OversightError(f"{path}: not a complete gzip file ({exc}).")
    if isinstance(exc, OSError):
        return OversightError(f"Cannot read {path}: {exc.strerror or exc}.")
    return OversightError(f"{path}: {where}: {exc}.")


def read_jsonl(path: Path) -> Iterator[Rec]:
    """JSON Lines (optionally gzipped); blank lines are skipped, every other line an object.

    A UTF-8 byte-order mark at the start is allowed, as for CSV (Windows tools write one).
    """
    n = 0
    with _open_text(path, encoding="utf-8-sig") as f:
        try:
            for n, line in enumerate(f, start=1):  # noqa: B007 - n is used after the loop
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise OversightError(
                        f"{path}: line {n}: not valid JSON ({exc.msg} at column {exc.colno})."
                    ) from None
                except (ValueError, RecursionError) as exc:
                    # int() refuses numbers of more than 4,300 digits; deep nesting overflows.
                    raise OversightError(f"{path}: line {n}: unreadable JSON value ({clip(str(exc))}).") from None
                if not isinstance(obj, dict):
                    raise OversightError(f"{path}: line {n}: expected a JSON object.")
                yield Rec(obj, path, f"line {n}")
        except (UnicodeDecodeError, OSError, EOFError) as exc:
            raise _read_fail(path, f"line {n + 1}", exc) from None


def read_json(path: Path) -> Any:
    with _open_text(path, encoding="utf-8-sig") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as exc:
            raise OversightError(
                f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
            ) from None
        except (UnicodeDecodeError, OSError, EOFError) as exc:
            raise _read_fail(path, "reading", exc) from None
        except (ValueError, RecursionError) as exc:
            raise OversightError(f"{path}: unreadable JSON value ({clip(str(exc))}).") from None


def read_csv(path: Path, header: bool = True, delimiter: str = ",") -> Iterator[Rec]:
    """CSV rows as records keyed by the header (or by column position when there is none).

    `where` is the physical line on which the row ends, so it matches an editor's count.
    """
    with _open_text(path, encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            names: list[str] | None = None
            for row in reader:
                if names is None and header:
                    names = [c.strip() for c in row]
                    continue
                if not any(cell.strip() for cell in row):
                    continue
                if names is None:
                    data: dict[Any, Any] = dict(enumerate(row))
                else:
                    if len(row) != len(names):
                        # zip would drop the extras (or leave fields missing) and use a
                        # shifted row: an unquoted comma in a question moves every value after it.
                        raise OversightError(
                            f"{path}: line {reader.line_num}: {len(row)} values for {len(names)} columns "
                            f"({', '.join(names)}). A value holding the delimiter must be quoted "
                            f'("Is it, really?"); check that row.'
                        )
                    data = dict(zip(names, row, strict=True))
                yield Rec(data, path, f"line {reader.line_num}")
        except csv.Error as exc:
            raise OversightError(f"{path}: line {reader.line_num}: malformed CSV ({exc}).") from None
        except (UnicodeDecodeError, OSError, EOFError) as exc:
            raise _read_fail(path, f"line {reader.line_num + 1}", exc) from None


def read_parquet(path: Path, batch_rows: int = 256) -> Iterator[Rec]:
    """Parquet rows as plain Python values, read in batches so image columns stay bounded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except OSError as exc:
        raise OversightError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except (pa.ArrowException, ValueError) as exc:
        raise OversightError(f"{path}: not a readable Parquet file ({exc}).") from None
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=batch_rows):
            for data in batch.to_pylist():
                row += 1
                yield Rec(data, path, f"row {row}")
    except (pa.ArrowException, OSError) as exc:
        raise OversightError(f"{path}: row {row + 1}: unreadable Parquet data ({exc}).") from None


def file_kind(path: Path) -> str:
    """'jsonl' | 'json' | 'csv' | 'tsv' | 'parquet' from the name (a trailing .gz is ignored)."""
    name = path.name.lower().removesuffix(".gz")
    for suffix, kind in (
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "json"),
        (".csv", "csv"),
        (".tsv", "tsv"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
    ):
        if name.endswith(suffix):
            return kind
    raise OversightError(
        f"{path}: cannot tell the file format from its name; use .jsonl, .json, .csv, .tsv or .parquet."
    )


def read_table(path: Path) -> Iterator[Rec]:
    """Records of a JSONL / JSON-array / CSV / TSV / Parquet file, chosen by extension."""
    kind = file_kind(path)
    require_regular_file(path)
    if kind == "jsonl":
        yield from read_jsonl(path)
    elif kind == "json":
        data = read_json(path)
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise OversightError(f"{path}: expected a JSON array of objects.")
        for i, obj in enumerate(data, start=1):
            if not isinstance(obj, dict):
                raise OversightError(f"{path}: element {i}: expected a JSON object.")
            yield Rec(obj, path, f"element {i}")
    elif kind in ("csv", "tsv"):
        yield from read_csv(path, delimiter="," if kind == "csv" else "\t")
    else:
        yield from read_parquet(path)


# ---------------------------------------------------------------------------------------
# Building results


class Collector:
    """Accumulates items and skip counts; a repeated item id is skipped, not silently doubled."""

    def __init__(self) -> None:
        self.result = LoadResult(items=[])
        self._ids: set[str] = set()

    def skip(self, reason: str) -> None:
        self.result.skip(reason)

    def add(self, item: Item) -> None:
        if item.item_id in self._ids:
            self.skip("duplicate item id")
            return
        self._ids.add(item.item_id)
        self.result.items.append(item)


def clean(text: str) -> str:
    return text.strip()


def binary_from_options(options_: Sequence[str], correct: int, rng: random.Random) -> tuple[tuple[str, str], int] | str:
    """(correct answer, a seeded wrong one) and the wrong option's index, or a skip reason.

    Options are stripped; a wrong option whose text equals the correct one (or is empty) is
    never chosen, so the two answers always differ.
    """
    texts = [clean(str(o)) for o in options_]
    right = texts[correct]
    if not right:
        return "empty correct answer"
    wrong = [i for i, t in enumerate(texts) if i != correct and t and t != right]
    if not wrong:
        return "no distinct wrong answer"
    pick = rng.choice(wrong)
    return (right, texts[pick]), pick


def sniff_mime(data: bytes) -> str | None:
    """The image MIME type from magic bytes; None when it is not a format we recognise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"BM"):
        return "image/bmp"
    return None


def with_instruction(question: str, instruction: str) -> str:
    question = question.strip()
    return f"{question}\n\n{instruction.strip()}" if instruction.strip() else question
