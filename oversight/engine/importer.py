"""`oversight import FILE --task NAME --out DIR`: transcripts made elsewhere as a run directory.

The directory is an ordinary run that `oversight report` scores and `oversight judge`
re-judges: spec.yaml (protocols debate and/or consultancy; the agent is a named
placeholder, never called), a generic task card and its items under `task/`, and a journal
sealed into the usual tables. Each debate transcript is one shared transcript (every judge
reads the same text, as in a run); each verdict the file holds is a judgments row
(`judge_prompt_id` is null: the prompt is not known). A consultancy's transcript holds its
judge's questions, so it is stored with that judge's verdict and a new judge cannot re-judge
it (`oversight judge` says so).

The items are those of the file: the answer listed first in a transcript is Alice's, so a
transcript whose first answer is the correct one has `order` 0.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import oversight
from oversight.dialogue.prompts import Templates
from oversight.dialogue.transcript import Turn
from oversight.engine.identity import identity_hash, run_identity
from oversight.engine.plan import digest
from oversight.engine.prepare import prepare
from oversight.engine.rejudge import shared_key
from oversight.engine.rundir import MANIFEST, holds_run, write_json
from oversight.engine.spec import RunSpec
from oversight.engine.transcript_file import CONSULTANCY, DEBATE, Imported, TranscriptIn, read_transcripts
from oversight.errors import OversightError
from oversight.store.journal import Journal
from oversight.store.safe_io import write_file

TASK_DIR = "task"


@dataclass
class ImportResult:
    run_dir: Path
    fmt: str
    transcripts: int
    verdicts: int
    items: int
    by_protocol: dict[str, int]

    def summary(self) -> str:
        protos = ", ".join(f"{n} {p}" for p, n in sorted(self.by_protocol.items()))
        return (f"Imported {self.transcripts} transcript(s) ({protos}) on {self.items} item(s), with "
                f"{self.verdicts} verdict(s), from a {self.fmt} file into {self.run_dir}.\n"
                f"Score the verdicts: oversight report {self.run_dir}\n"
                f"Judge the debates anew: oversight judge {self.run_dir} --judges MODEL")


def _items(path: Path, records: list[Imported]) -> dict[str, dict[str, Any]]:
    """The distinct items: the correct answer first (the generic loader keeps two answers'
    order), each item the same wherever it recurs."""
    items: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for rec in records:
        it = rec.transcript.item
        right, wrong = it.answers[it.correct - 1], it.answers[2 - it.correct]
        row = {"id": it.id, "question": it.question, "answers": [right, wrong], "correct": 0,
               "article": it.article, "article_sha256": it.article_sha256 or _sha(it.article)}
        if it.id in items and items[it.id] != row:
            raise OversightError(
                f"{path}, line {rec.line}: field 'item.id': item '{it.id}' is also on line {seen[it.id]} with a "
                f"different question, answers or article; one id names one item (give the other one its own id)."
            )
        items.setdefault(it.id, row)
        seen.setdefault(it.id, rec.line)
    return items


def _sha(text: str | None) -> str | None:
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None


def _rounds(records: list[Imported], protocol: str) -> int:
    counts = Counter(max(t.round for t in r.transcript.turns) for r in records if r.transcript.protocol == protocol)
    return counts.most_common(1)[0][0] if counts else 3


def import_transcripts(file: str | Path, task: str, out: str | Path, fmt: str | None = None) -> ImportResult:
    path = Path(file)
    run_dir = Path(out)
    if holds_run(run_dir):
        raise OversightError(f"oversight import: {run_dir} already holds a run; choose another --out directory.")
    fmt, records = read_transcripts(path, fmt)
    items = _items(path, records)
    protocols = sorted({r.transcript.protocol for r in records})
    agents = {r.transcript.agent for r in records}
    agent = agents.pop() if len(agents) == 1 else "imported"
    extractive = all(i["article"] for i in items.values())
    spec_data: dict[str, Any] = {
        "name": task, "seed": 0, "tasks": [f"{TASK_DIR}/{task}.yaml"], "limit": None, "orders": "both",
        "protocols": protocols,
        # A placeholder: the transcripts' agent is named, never called (`oversight judge` refuses
        # agent calls on an imported run); the address is the discard port, where nothing listens.
        "agent": {"name": agent, "provider": "openai", "model": agent, "base_url": "http://127.0.0.1:9/v1"},
        "judges": [], DEBATE: {"rounds": _rounds(records, DEBATE)},  # the spec's blocks bear the names
        CONSULTANCY: {"rounds": _rounds(records, CONSULTANCY)},
        "description": f"imported from {path.name} ({fmt})",
    }
    try:
        spec = RunSpec.model_validate(spec_data)
    except ValueError as exc:
        raise OversightError(f"oversight import: --task '{task}' cannot name a run ({exc}).") from None
    try:
        (run_dir / TASK_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OversightError(f"oversight import: cannot create {run_dir}: {exc.strerror or exc}.") from None
    # Through the one write path that never follows a link (store/safe_io.py).
    lines = "".join(json.dumps({k: v for k, v in row.items() if k != "article_sha256"}, ensure_ascii=False) + "\n"
                    for row in items.values())
    write_file(run_dir / TASK_DIR / f"{task}.jsonl", lines, root=run_dir)
    card = {"name": task, "group": "extractive" if extractive else "closed", "loader": "generic",
            "path": f"{task}.jsonl", "fields": {"id": "id", "question": "question", "answers": "answers",
                                               "correct": "correct", **({"article": "article"} if extractive else {})},
            "correct_base": 0, "description": f"items of transcripts imported from {path.name}"}
    write_file(run_dir / TASK_DIR / f"{task}.yaml", yaml.safe_dump(card, sort_keys=False), root=run_dir)
    write_file(run_dir / "spec.yaml", yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), root=run_dir)
    # Planning needs a judge; the placeholder agent stands in (nothing is planned or called).
    local = spec.model_copy(update={"tasks": [str(run_dir / TASK_DIR / f"{task}.yaml")], "judges": [spec.agent]})
    prep = prepare(local, f"oversight import {path}", check_keys=False)
    identity = run_identity(prep, Templates())
    salt = identity_hash(identity)
    run_id = run_dir.name
    by_id = {i.item_id: i for i in prep.items[task]}
    started = dt.datetime.now(dt.UTC).isoformat()
    journal = Journal(run_dir)
    verdicts = 0
    try:
        for rec in records:
            # Every transcript under the spec's one agent label, so `oversight judge` finds them;
            # each transcript's own agent is kept in its record's `extra`.
            verdicts += _journal_one(journal, rec, task, run_id, salt, spec, by_id[rec.transcript.item.id].group,
                                     agent)
    finally:
        journal.close()
    from oversight.engine.execute import item_row
    from oversight.engine.runner import seal_run

    rows = []
    for i in prep.items[task]:
        r = item_row(i)
        r["article_sha256"] = r["article_sha256"] or items[i.item_id]["article_sha256"]
        rows.append(r)
    _, _, collected = seal_run(run_dir, [prep.variants[n] for n in spec.protocols], rows)
    by_protocol: dict[str, int] = dict(Counter(str(r.transcript.protocol) for r in records))
    write_json(run_dir / MANIFEST, {
        "run_id": run_id, "name": task, "oversight_version": oversight.__version__, "status": "complete",
        "started": started, "ended": dt.datetime.now(dt.UTC).isoformat(), "simulated": False,
        "imported": {"file": str(path.resolve()), "format": fmt, "transcripts": len(records),
                     "verdicts": verdicts, "by_protocol": by_protocol},
        "models": {label: c.public_dict() for label, c in prep.cards.items()}, "roles": prep.roles,
        "identity_sha256": salt, "identity": identity,
        "plan": {"episodes": verdicts, "by_protocol": by_protocol, "notes": []},
        "totals": {"episodes_planned": verdicts, "episodes_done": verdicts, "episode_errors": 0, "calls": 0,
                   "cost_usd": 0.0},
    })
    return ImportResult(run_dir, fmt, len(records), verdicts, len(items), by_protocol)


def _journal_one(journal: Journal, rec: Imported, task: str, run_id: str, salt: str, spec: RunSpec, group: str,
                 agent: str) -> int:
    t: TranscriptIn = rec.transcript
    rec.extra.setdefault("agent", t.agent)
    order = 0 if t.item.correct == 1 else 1
    debate = t.protocol == DEBATE
    tid = digest("import", t.id, salt)
    rounds = max(x.round for x in t.turns)
    base = {"task": task, "item_id": t.item.id, "protocol": t.protocol, "replicate": 0, "variant": t.protocol}
    turns = [_turn_row(x, i, tid, base, agent, None if debate else _judge_of(t)) for i, x in enumerate(t.turns)]
    consultant_side = next((x.side for x in t.turns if x.speaker == "Consultant"), None)
    assigned = ("correct" if order == 0 else "incorrect") if debate else \
        ("correct" if consultant_side == t.item.correct else "incorrect")
    if debate:
        key = shared_key(DEBATE, DEBATE, task, t.item.id, 0, order, agent, agent, 1, rounds,
                         spec.debate.turns)
        journal.write({"type": "transcript", "transcript_id": tid, "source_id": t.id, "shared_key": list(key),
                       "extra": rec.extra, "turns": turns, "calls": []})
    for v in t.verdicts:
        eid = digest("import", t.id, v.judge, salt)
        episode_tid = tid if debate else eid
        correct = t.item.correct
        row = {
            "run_id": run_id, **base, "group": group, "judge": v.judge, "agent": agent,
            "agent_b": agent if debate else None, "order": order, "correct_answer": correct,
            "judge_answer": v.answer if v.status == "ok" else None,
            "is_correct": v.status == "ok" and v.answer == correct,
            "verdict_status": v.status, "p_correct": v.p_correct, "assigned": assigned, "agent_choice": None,
            "rounds": rounds, "turn_style": spec.debate.turns if debate else None, "best_of": 1 if debate else None,
            "transcript_id": episode_tid, "judge_input_tokens": 0, "judge_output_tokens": 0,
            "episode_cost_usd": 0.0, "episode_id": eid, "qa_role": None, "simulated": False, "error": None,
            "judge_raw": v.raw, "judge_prompt_id": None, "judge_mode": None, "shots": None, "word_limit": None,
            "passage_match": None, "interactive": False if debate else None, "prompt_set": None,
        }
        own = [] if debate else [{**r, "transcript_id": eid, "episode_id": eid, "judge": v.judge} for r in turns]
        final = Turn(round=rounds + 1, speaker="Judge", role="judge", side=None, visible=v.raw)
        own.append(_turn_dict(final, len(t.turns), episode_tid, base, v.judge, v.judge, eid))
        journal.write({"type": "episode", "episode_id": eid, "source_id": t.id, "extra": rec.extra, "row": row,
                       "turns": own, "calls": []})
    return len(t.verdicts)


def _judge_of(t: TranscriptIn) -> str | None:
    return t.verdicts[0].judge if len(t.verdicts) == 1 else None


def _turn_row(x: Any, index: int, tid: str, base: dict[str, Any], agent: str, judge: str | None) -> dict[str, Any]:
    speaker_agent = judge if x.speaker == "Judge" else agent
    role = {"Alice": "debater", "Bob": "debater", "Consultant": "consultant", "Judge": "judge_question"}[x.speaker]
    turn = Turn(round=x.round, speaker=x.speaker, role=role, side=x.side, visible=x.text)
    return _turn_dict(turn, index, tid, base, speaker_agent, judge, None)


def _turn_dict(turn: Turn, index: int, tid: str, base: dict[str, Any], agent: str | None, judge: str | None,
               episode_id: str | None) -> dict[str, Any]:
    return {**dataclasses.asdict(turn), "transcript_id": tid, "turn": index, **base, "agent": agent,
            "judge": judge, "episode_id": episode_id}
