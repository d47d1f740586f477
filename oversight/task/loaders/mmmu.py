"""`mmmu`: MMMU in the Hugging Face Parquet shape (`MMMU/MMMU`, one config per subject).

`path` is a Parquet file or a directory searched recursively for *.parquet. Columns used:
`id`, `question` (with `<image n>` placeholders), `options` (the text of a Python list,
parsed with `ast.literal_eval`, never `eval`), `answer` (an option letter), `explanation`,
`question_type`, `image_1` … `image_7` (structs `{bytes, path}` or null), `subfield`,
`topic_difficulty`, `img_type`.

Only multiple-choice questions are used; open questions are skipped and counted. By
default only questions with a non-empty explanation are kept (the paper's 2,035). Images
go to `Item.images` in slot order (image_1 first) with the MIME type read from the bytes;
meta["image_slots"] lists the slot numbers, so `<image n>` in the text (question or
options) can be matched to a part. Binarisation: the correct option plus one other option
picked by `rng_for(seed, task, item_id)` (meta["wrong_letter"]).
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

from oversight.config import Strict
from oversight.errors import OversightError, excerpt
from oversight.model.types import ImagePart
from oversight.task.card import LoadResult, TaskCard, register_loader
from oversight.task.item import Item
from oversight.task.loaders.common import (
    Collector,
    Rec,
    binary_from_options,
    index_in_range,
    options,
    read_parquet,
    rng_for,
    sniff_mime,
)

SLOTS = range(1, 8)
_PLACEHOLDER = re.compile(r"<image (\d+)>")


class MmmuOptions(Strict):
    require_explanation: bool = True  # the paper keeps only questions with an explanation
    subjects: list[str] | None = None  # keep these subjects (from ids "<split>_<Subject>_<n>")


def _subject(item_id: str) -> str:
    parts = item_id.split("_")
    return "_".join(parts[1:-1]) if len(parts) >= 3 else ""


def _image(rec: Rec, slot: int, base: Path) -> ImagePart | str | None:
    """The slot's image, None when the slot is empty, or a skip reason."""
    value = rec.data.get(f"image_{slot}")
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        data: bytes | None = bytes(value)
    elif isinstance(value, dict):
        data = value.get("bytes")
        if not data and value.get("path"):
            p = base / str(value["path"])
            data = p.read_bytes() if p.is_file() else None
    else:
        raise rec.fail(f"field 'image_{slot}' should be an image struct {{bytes, path}}")
    if not data:
        return f"image_{slot} has no bytes"
    mime = sniff_mime(bytes(data))
    if mime is None:
        return "unrecognised image format"
    return ImagePart(data=bytes(data), mime=mime)


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    found = sorted(path.rglob("*.parquet"))
    if not found:
        raise OversightError(f"{path}: no .parquet files found for MMMU.")
    return found


@register_loader("mmmu")
def load_mmmu(card: TaskCard, path: Path, seed: int) -> LoadResult:
    opts = options(card, MmmuOptions)
    out = Collector()
    for file in _files(path):
        for row in read_parquet(file):
            item_id = row.text("id")
            rec = Rec(row.data, row.path, f"{row.where} (id {item_id})")
            if rec.text("question_type", "multiple-choice") != "multiple-choice":
                out.skip("not multiple-choice")
                continue
            raw = rec.text("options")
            try:
                choices = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                out.skip("unparseable options")
                continue
            if not isinstance(choices, list | tuple) or not choices:
                out.skip("not multiple-choice")
                continue
            if opts.subjects is not None and _subject(item_id) not in opts.subjects:
                out.skip("filter: subject")
                continue
            explanation = rec.text("explanation", "").strip()
            if opts.require_explanation and not explanation:
                out.skip("filter: no explanation")
                continue
            letter = rec.text("answer").strip().upper()
            letters = string.ascii_uppercase[: len(choices)]
            if len(letter) != 1 or not letter.isalpha():
                raise rec.fail(f"field 'answer' should be an option letter, got {excerpt(letter)}")
            answer = index_in_range(rec, "answer", ord(letter) - ord("A"), len(choices), 0)
            picked = binary_from_options([str(c) for c in choices], answer, rng_for(seed, card.name, item_id))
            if isinstance(picked, str):
                out.skip(picked)
                continue
            pair, wrong = picked
            parts: list[ImagePart] = []
            slots: list[int] = []
            problem = None
            for slot in SLOTS:
                img = _image(rec, slot, file.parent)
                if isinstance(img, str):
                    problem = img
                    break
                if img is not None:
                    parts.append(img)
                    slots.append(slot)
            text = rec.text("question") + " " + " ".join(pair)
            wanted = {int(n) for n in _PLACEHOLDER.findall(text)}
            if problem is None and not wanted <= set(slots):
                problem = "placeholder without image"
            if problem is not None:
                out.skip(problem)
                continue
            out.add(
                Item(
                    task=card.name,
                    item_id=item_id,
                    question=rec.text("question").strip(),
                    answers=pair,
                    correct=0,
                    group=card.group,
                    images=tuple(parts),
                    meta={
                        "image_slots": slots,
                        "correct_letter": letters[answer],
                        "wrong_letter": letters[wrong],
                        "wrong_source": "seeded random option",
                        "explanation": explanation,
                        "subject": _subject(item_id),
                        "subfield": rec.text("subfield", ""),
                        "topic_difficulty": rec.text("topic_difficulty", ""),
                    },
                )
            )
    return out.result
