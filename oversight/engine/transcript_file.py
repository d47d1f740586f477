"""Transcript files made elsewhere, read into one shape (`oversight import`).

Two formats:

- `oversight-transcripts/1`, this project's own (README, "Importing transcripts"): JSON
  Lines, one transcript a line: its item (question, the two answers as shown, which is
  correct, the article or its hash), its turns (speaker, side, round, visible text) and
  any verdicts already given on it.
- `khan2024`: the human-judge dataset published with Khan et al. 2024 ("Debating with more
  persuasive LLMs leads to more truthful answers", github.com/ucl-dark/llm_debate,
  data/llm_debate_dataset.zip): a CSV, one judgement a row, whose `transcript` column holds
  the debate or consultancy as JSON (question, answers {correct, incorrect}, swap, rounds of
  {correct, incorrect, judge} texts); `correct` says whether the judge chose the correct
  answer and `confidence_correct` the judge's confidence in it (percent).

Every problem is an error naming the file, the line and the field, never a skipped row.
A UTF-8 byte-order mark and CRLF line ends are read as if absent.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from oversight.errors import OversightError, clip
from oversight.protocol.consultancy import Consultancy
from oversight.protocol.debate import Debate

# The two protocols a transcript file can hold (the names are the protocols' own; Khan et
# al.'s `debate_method` column uses the same two words).
DEBATE, CONSULTANCY = Debate.name, Consultancy.name
SPEAKERS = {DEBATE: {"Alice", "Bob"}, CONSULTANCY: {"Consultant"}}

FORMAT = "oversight-transcripts/1"
MAX_TEXT = 200_000  # characters in one turn or verdict
MAX_ARTICLE = 5_000_000
MAX_TURNS = 1_000
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ItemIn(_Strict):
    id: Name
    question: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    answers: Annotated[list[Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]],
                       Field(min_length=2, max_length=2)]
    correct: Literal[1, 2]  # which of `answers`, as listed, is correct
    article: Annotated[str, Field(max_length=MAX_ARTICLE)] | None = None
    article_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None


class TurnIn(_Strict):
    speaker: Literal["Alice", "Bob", "Consultant", "Judge"]
    side: Literal[1, 2] | None = None  # the answer position the speaker argues; none for the judge
    round: Annotated[int, Field(ge=1, le=100)]
    text: Text

    @model_validator(mode="after")
    def _side(self) -> TurnIn:
        if self.speaker != "Judge" and self.side is None:
            raise ValueError(f"a {self.speaker} turn needs its side (1 or 2: the answer it argues)")
        return self


class VerdictIn(_Strict):
    judge: Name
    answer: Literal[1, 2] | None
    status: Literal["ok", "invalid", "refused"] = "ok"
    p_correct: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    raw: Text = ""

    @model_validator(mode="after")
    def _answer(self) -> VerdictIn:
        if (self.status == "ok") != (self.answer is not None):
            raise ValueError("a verdict with status ok needs an answer (1 or 2); any other status has answer null")
        return self


class TranscriptIn(_Strict):
    format: Literal["oversight-transcripts/1"]
    id: Name
    protocol: str  # the debate or consultancy protocol's name (checked below)
    agent: Name = "imported"
    item: ItemIn
    turns: Annotated[list[TurnIn], Field(min_length=1, max_length=MAX_TURNS)]
    verdicts: list[VerdictIn] = []

    @model_validator(mode="after")
    def _speakers(self) -> TranscriptIn:
        if self.protocol not in SPEAKERS:
            raise ValueError(f"protocol must be {' or '.join(SPEAKERS)}, not {clip(self.protocol, 40)!r}")
        agents = {t.speaker for t in self.turns if t.speaker != "Judge"}
        allowed = SPEAKERS[self.protocol]
        if not agents <= allowed:
            raise ValueError(f"a {self.protocol} has speakers {', '.join(sorted(allowed))} and Judge, not "
                             f"{', '.join(sorted(agents - allowed))}")
        if self.protocol == DEBATE:
            for t in self.turns:
                if t.speaker in ("Alice", "Bob") and t.side != (1 if t.speaker == "Alice" else 2):
                    raise ValueError(f"in a debate Alice argues answer 1 and Bob answer 2; a {t.speaker} turn "
                                     f"has side {t.side}")
        elif len({t.side for t in self.turns if t.speaker == "Consultant"}) > 1:
            raise ValueError("the consultant argues one side throughout; its turns name two")
        rounds = [t.round for t in self.turns]
        if rounds != sorted(rounds):
            raise ValueError("turns are listed in round order")
        return self


@dataclass
class Imported:
    """One transcript, in the shape the importer writes."""

    line: int
    transcript: TranscriptIn
    extra: dict[str, Any] = field(default_factory=dict)  # the source format's own fields, kept


def _error(path: Path, line: int, what: str) -> OversightError:
    return OversightError(f"{path}, line {line}: {what}")


def _describe(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        loc = ".".join(str(x) for x in e["loc"]) or "(the record)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        elif e["type"] == "missing":
            msg = "missing"
        got = "" if e["type"] in ("missing", "extra_forbidden") else f" (got {clip(repr(e.get('input')), 60)})"
        parts.append(f"field '{loc}': {msg}{got}")
    more = f"; and {len(exc.errors()) - 3} more" if len(exc.errors()) > 3 else ""
    return "; ".join(parts) + more


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise OversightError(f"oversight import: {path} does not exist.") from None
    except UnicodeDecodeError as exc:
        raise OversightError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8.") from None
    return text.splitlines()


def read_oversight(path: Path) -> list[Imported]:
    out: list[Imported] = []
    ids: dict[str, int] = {}
    for n, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _error(path, n, f"not a JSON object ({exc.msg} at column {exc.colno}); each line holds one "
                                  f"transcript in the {FORMAT} format (README, 'Importing transcripts').") from None
        if not isinstance(data, dict):
            raise _error(path, n, f"a JSON {type(data).__name__}, not an object; each line holds one transcript.")
        if data.get("format") != FORMAT:
            raise _error(path, n, f"field 'format' is {clip(repr(data.get('format')), 60)}; this reader knows "
                                  f"\"{FORMAT}\" (write it on every line).")
        try:
            t = TranscriptIn.model_validate(data)
        except ValidationError as exc:
            raise _error(path, n, _describe(exc) + ". The format is described in the README, 'Importing "
                                                   "transcripts'.") from None
        if t.id in ids:
            raise _error(path, n, f"field 'id': transcript '{t.id}' is already on line {ids[t.id]}; ids are unique.")
        ids[t.id] = n
        out.append(Imported(n, t))
    if not out:
        raise OversightError(f"{path}: holds no transcripts (an empty file).")
    return out


KHAN_REQUIRED = ("debate_id", "judge_id", "debate_method", "correct", "transcript")


def read_khan2024(path: Path) -> list[Imported]:
    """Khan et al. 2024's human-judge CSV: one judgement a row, the transcript as JSON."""
    lines = _lines(path)
    csv.field_size_limit(MAX_ARTICLE * 2)
    reader = csv.DictReader(lines)
    missing = [c for c in KHAN_REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise _error(path, 1, f"the header lacks column(s) {', '.join(missing)}; a khan2024 file is the CSV of "
                              f"ucl-dark/llm_debate's data/llm_debate_dataset.zip, with columns "
                              f"{', '.join(KHAN_REQUIRED)}, ...")
    out: list[Imported] = []
    ids: dict[str, int] = {}
    for row in reader:
        n = reader.line_num
        if None in row:
            raise _error(path, n, "more values than the header has columns.")
        did = (row["debate_id"] or "").strip()
        if not did:
            raise _error(path, n, "column 'debate_id' is empty.")
        rid = f"{did}/judge-{row['judge_id']}"
        if rid in ids:
            raise _error(path, n, f"debate '{did}' judged by '{row['judge_id']}' is already on line {ids[rid]}.")
        ids[rid] = n
        out.append(Imported(n, _khan_row(path, n, rid, row), {"debate_id": did, "judge_id": row["judge_id"],
                                                             "debater_config": row.get("debater_config")}))
    if not out:
        raise OversightError(f"{path}: holds no judgements (a header only).")
    return out


def _khan_row(path: Path, n: int, rid: str, row: dict[str, str]) -> TranscriptIn:
    method = row["debate_method"].strip()
    if method not in (DEBATE, CONSULTANCY):
        raise _error(path, n, f"column 'debate_method' is '{clip(method, 40)}'; debate and consultancy rows "
                              f"are read (a baseline has no transcript to judge).")
    try:
        t = json.loads(row["transcript"])
    except json.JSONDecodeError as exc:
        raise _error(path, n, f"column 'transcript' is not JSON ({exc.msg}).") from None
    if not isinstance(t, dict):
        raise _error(path, n, "column 'transcript' is not a JSON object.")
    for key, kind in (("question", str), ("answers", dict), ("swap", bool), ("rounds", list)):
        if not isinstance(t.get(key), kind):
            what = "missing" if key not in t else f"not a {kind.__name__}"
            raise _error(path, n, f"field 'transcript.{key}' is {what}.")
    answers = t["answers"]
    if not all(isinstance(answers.get(k), str) and answers[k] for k in ("correct", "incorrect")):
        raise _error(path, n, "field 'transcript.answers' needs the texts 'correct' and 'incorrect'.")
    correct_pos = 2 if t["swap"] else 1  # swap false: the correct answer is listed first (A)
    shown = [answers["correct"], answers["incorrect"]]
    if correct_pos == 2:
        shown.reverse()
    side_of = {"correct": correct_pos, "incorrect": 3 - correct_pos}
    turns: list[dict[str, Any]] = []
    for r, rnd in enumerate(t["rounds"], 1):
        if not isinstance(rnd, dict):
            raise _error(path, n, f"field 'transcript.rounds[{r - 1}]' is not an object.")
        # Within a round the judge's message comes first, then answer A's debater, then B's
        # (the order their judge prompts list a round in).
        if isinstance(rnd.get("judge"), str) and rnd["judge"].strip():
            turns.append({"speaker": "Judge", "side": None, "round": r, "text": rnd["judge"]})
        spoken: list[dict[str, Any]] = []
        for who in ("correct", "incorrect"):
            text = rnd.get(who)
            if text is None:
                continue
            if not isinstance(text, str):
                raise _error(path, n, f"field 'transcript.rounds[{r - 1}].{who}' is not text.")
            side = side_of[who]
            speaker = "Consultant" if method == CONSULTANCY else ("Alice" if side == 1 else "Bob")
            spoken.append({"speaker": speaker, "side": side, "round": r, "text": text})
        turns.extend(sorted(spoken, key=lambda x: x["side"]))
    chose_correct = _bool(path, n, "correct", row["correct"])
    p = row.get("confidence_correct", "")
    p_correct = None
    if p not in ("", None):
        try:
            p_correct = float(p) / 100.0
        except ValueError:
            raise _error(path, n, f"column 'confidence_correct' is '{clip(p, 40)}', not a number (percent).") from None
        if not 0 <= p_correct <= 1:
            raise _error(path, n, f"column 'confidence_correct' is {p}; a percent is 0 to 100.")
    verdict = {"judge": f"human:{row['judge_id']}", "answer": correct_pos if chose_correct else 3 - correct_pos,
               "p_correct": p_correct, "raw": row.get("explanation") or ""}
    data = {
        "format": FORMAT, "id": rid, "protocol": method,
        "agent": (row.get("debater_config") or "").strip() or "imported",
        "item": {"id": str(row.get("question_set_id") or t.get("question_set_id") or t.get("index") or rid)
                 + "/" + _short_hash(t["question"]),
                 "question": t["question"], "answers": shown, "correct": correct_pos,
                 "article": t.get("story") or None},
        "turns": turns, "verdicts": [verdict],
    }
    try:
        return TranscriptIn.model_validate(data)
    except ValidationError as exc:
        raise _error(path, n, _describe(exc).replace("field '", "field 'transcript.") + ".") from None


def _short_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def _bool(path: Path, n: int, col: str, value: str) -> bool:
    v = (value or "").strip().lower()
    if v in ("true", "1", "1.0"):
        return True
    if v in ("false", "0", "0.0"):
        return False
    raise _error(path, n, f"column '{col}' is '{clip(value, 40)}'; expected True or False.")


def detect(path: Path) -> str:
    head = _lines(path)[:1]
    first = head[0].lstrip() if head else ""
    return "oversight" if first.startswith("{") else "khan2024"


def read_transcripts(path: str | Path, fmt: str | None = None) -> tuple[str, list[Imported]]:
    p = Path(path)
    if p.is_dir():
        raise OversightError(f"oversight import: {p} is a folder; give the transcript file.")
    fmt = fmt or detect(p)
    return fmt, (read_oversight(p) if fmt == "oversight" else read_khan2024(p))
