"""A run directory as Inspect eval logs, so that `inspect view` opens it.

`export_inspect(run_dir, out=None)` writes one log per task × protocol variant × judge
(and one for the agent's own QA answers, where open protocols used them), built with
`inspect_ai`'s own log classes and written with `inspect_ai.log.write_eval_log`:

- a sample per judged instance (id `ITEM/order0`, plus the assigned side for consultancy;
  epoch = replicate + 1), whose `input` is the exact prompt its judge was sent (from
  prompts.parquet) and whose `messages` add the judge's reply; `choices` are the two
  answers in the order shown, `target` the correct one's number ("1" or "2");
- the score `oversight` per sample: "C" when the judge chose the correct answer, "I"
  otherwise (an invalid verdict counts as wrong, as in oversight's scoring); an episode
  that failed (verdict_status `error`) carries the error and no score;
- the transcript as model events: every agent turn and judge question, with its prompt as
  input and its private thinking as reasoning content beside the visible text, then the
  judge's verdict call;
- the log's metrics: accuracy and its standard error over scored samples (per sample;
  `oversight report` averages an item's orders and replicates first).

Images are shown as placeholders: a run stores each image's hash, not its bytes.
Needs `inspect_ai` (`pip install 'oversight[inspect]'`).
"""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from oversight.errors import OversightError
from oversight.store.safe_io import write_with
from oversight.store.tables import Results, load

SCORER = "oversight"
STATUS = {"complete": "success", "interrupted": "cancelled", "budget_exhausted": "cancelled", "stopped": "error"}


def _inspect() -> Any:
    try:
        import inspect_ai.log as log
    except ImportError:
        raise OversightError(
            "`oversight export inspect` writes Inspect eval logs with the inspect_ai package, which is not "
            "installed; install it with `pip install 'oversight[inspect]'`."
        ) from None
    return log


def _value(v: Any) -> Any:
    """A pandas cell as plain Python (missing → None)."""
    if v is None or (not isinstance(v, str | list | dict) and pd.isna(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def _messages(blob: str | None, fallback: str) -> list[Any]:
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

    if not blob:
        return [ChatMessageUser(content=fallback)]
    kinds = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}
    out = []
    for m in json.loads(blob):
        text = "\n".join(p["text"] if "text" in p else f"[image {p['image_sha256'][:12]}… ({p.get('mime', '')})]"
                         for p in m["parts"])
        out.append(kinds.get(m["role"], ChatMessageUser)(content=text))
    return out


def _reply(model: str, visible: str, private: str | None) -> Any:
    from inspect_ai.model import ChatCompletionChoice, ChatMessageAssistant, ContentReasoning, ContentText, ModelOutput

    content: list[Any] = [ContentReasoning(reasoning=private)] if private else []
    content.append(ContentText(text=visible))
    message = ChatMessageAssistant(content=content, model=model)
    return message, ModelOutput(model=model, choices=[ChatCompletionChoice(message=message, stop_reason="stop")])


class _Writer:
    def __init__(self, res: Results, manifest: dict[str, Any]) -> None:
        self.res = res
        self.manifest = manifest
        self.prompts = dict(zip(res.prompts["prompt_id"], res.prompts["messages"], strict=False)) if len(
            res.prompts) else {}
        self.items = {(r.task, r.item_id): r for r in res.items.itertuples()}
        # Plain records grouped once: per-sample DataFrame access would dominate the export's time.
        self.by_transcript: dict[str, list[dict[str, Any]]] = {}
        if len(res.turns):
            for t in res.turns.sort_values(["transcript_id", "turn"]).to_dict("records"):
                self.by_transcript.setdefault(t["transcript_id"], []).append({k: _value(v) for k, v in t.items()})

    def model_name(self, label: str) -> str:
        card = self.manifest.get("models", {}).get(label)
        return f"{card['provider']}/{card['model']}" if card else str(label)

    def choices(self, row: Any) -> tuple[list[str], str]:
        item = self.items.get((row["task"], row["item_id"]))
        order = _value(row["order"])
        if item is None or order is None:
            return [], row["item_id"]
        correct = int(item.correct)
        right, wrong = (item.answer_0, item.answer_1) if correct == 0 else (item.answer_1, item.answer_0)
        shown = [right, wrong] if order == 0 else [wrong, right]
        return [str(a) for a in shown], str(item.question)

    def events(self, row: Any, verdict_input: list[Any]) -> list[Any]:
        from inspect_ai.event import ModelEvent
        from inspect_ai.model import GenerateConfig

        out = []
        tid = _value(row["transcript_id"])
        for t in self.by_transcript.get(tid, []) if tid else []:
            if t["role"] == "judge" or t["judge"] not in (None, row["judge"]):
                continue  # verdicts are added from the judgment; other judges' turns are theirs
            if t["replicate"] not in (None, _value(row["replicate"])):
                continue
            model = self.model_name(row["judge"] if t["role"] == "judge_question" else (t["agent"] or ""))
            _, output = _reply(model, str(t["visible"] or ""), t["private"])
            prompt = _messages(self.prompts.get(t["prompt_id"]), "")
            out.append(ModelEvent(model=model, role=str(t["role"]), input=prompt, tools=[], tool_choice="none",
                                  config=GenerateConfig(), output=output))
        if _value(row["judge_raw"]) is not None:
            model = self.model_name(row["judge"])
            _, output = _reply(model, str(row["judge_raw"]), None)
            out.append(ModelEvent(model=model, role="judge", input=verdict_input, tools=[], tool_choice="none",
                                  config=GenerateConfig(), output=output))
        return out

    def sample(self, row: Any, seen: set[tuple[str, int]]) -> Any:
        from inspect_ai.log import EvalSample
        from inspect_ai.model import ModelOutput, ModelUsage
        from inspect_ai.scorer import Score

        choices, question = self.choices(row)
        pid = _value(row["judge_prompt_id"])
        prompt = _messages(self.prompts.get(pid) if pid else None, question)
        raw = _value(row["judge_raw"])
        model = self.model_name(row["judge"])
        messages = list(prompt)
        output = ModelOutput(model=model)
        if raw is not None:
            reply, output = _reply(model, str(raw), None)
            messages.append(reply)
        status = _value(row["verdict_status"])
        score = None
        if status != "error":
            answer = _value(row["judge_answer"])
            score = {SCORER: Score(
                value="C" if bool(_value(row["is_correct"])) else "I",
                answer=None if answer is None else str(answer),
                explanation=f"verdict {status}" + ("" if raw is None else f": {raw}"),
            )}
        sid = f"{row['item_id']}/order{_value(row['order'])}"
        if _value(row["assigned"]) is not None:
            sid += f"/{row['assigned']}"
        epoch = int(_value(row["replicate"]) or 0) + 1
        if (sid, epoch) in seen:  # never two samples with one id: fall back to the episode's own id
            sid = f"{sid}/{row['episode_id']}"
        seen.add((sid, epoch))
        keep = ("task", "group", "item_id", "protocol", "variant", "judge", "agent", "agent_b", "order", "assigned",
                "agent_choice", "verdict_status", "p_correct", "rounds", "turn_style", "best_of", "judge_mode",
                "word_limit", "transcript_id", "episode_id", "episode_cost_usd", "qa_role", "simulated")
        metadata = {k: _value(row[k]) for k in keep if k in row}
        error = None
        if status == "error":
            from inspect_ai.log import EvalError

            text = str(_value(row["error"]) or "episode failed")
            error = EvalError(message=text, traceback=text, traceback_ansi=text)
        usage = {model: ModelUsage(input_tokens=int(_value(row["judge_input_tokens"]) or 0),
                                   output_tokens=int(_value(row["judge_output_tokens"]) or 0),
                                   total_tokens=int(_value(row["judge_input_tokens"]) or 0)
                                   + int(_value(row["judge_output_tokens"]) or 0))}
        return EvalSample(id=sid, epoch=epoch, input=prompt, choices=choices or None,
                          target=str(_value(row["correct_answer"]) or ""), messages=messages, output=output,
                          scores=score, metadata=metadata, events=self.events(row, prompt), error=error,
                          model_usage=usage)

    def log(self, key: tuple[str, str, str, str], rows: pd.DataFrame) -> Any:
        from inspect_ai.log import (
            EvalConfig,
            EvalDataset,
            EvalLog,
            EvalMetric,
            EvalResults,
            EvalScore,
            EvalSpec,
            EvalStats,
        )
        from inspect_ai.model import ModelUsage

        task, variant, judge, qa_role = key
        seen: set[tuple[str, int]] = set()
        samples = [self.sample(r, seen) for _, r in rows.iterrows()]
        scored = [s.scores[SCORER].value == "C" for s in samples if s.scores]
        n = len(scored)
        acc = sum(scored) / n if n else float("nan")
        stderr = math.sqrt(acc * (1 - acc) / (n - 1)) if n > 1 else float("nan")
        m = self.manifest
        run_id = str(m.get("run_id") or self.res.run_dir.name)
        name = f"{task}/{variant}" + ("/agent_qa" if qa_role == "agent" else "")
        first = rows.iloc[0]
        spec = EvalSpec(
            created=m.get("started") or pd.Timestamp.now(tz="UTC").isoformat(),
            run_id=run_id,
            eval_id=f"{run_id}/{name}/{judge}",
            task=name,
            # Each log its own identity: `inspect view` keeps one log per task_id and hides the
            # others as retries, so logs of one task x protocol by other judges need their own.
            task_id=f"{run_id}/{name}/{judge}",
            dataset=EvalDataset(name=task, samples=len(samples)),
            model=self.model_name(judge),
            config=EvalConfig(),
            metadata={"oversight_run_dir": str(self.res.run_dir), "judge": judge, "protocol": first["protocol"],
                      "variant": variant, "agent": _value(first["agent"]), "simulated": bool(m.get("simulated")),
                      "oversight_version": m.get("oversight_version"), "seed": m.get("seed")},
        )
        results = EvalResults(
            total_samples=len(samples), completed_samples=n,
            scores=[EvalScore(name=SCORER, scorer=SCORER, scored_samples=n, unscored_samples=len(samples) - n,
                              metrics={"accuracy": EvalMetric(name="accuracy", value=acc),
                                       "stderr": EvalMetric(name="stderr", value=stderr)})],
        )
        tokens_in = int(pd.to_numeric(rows["judge_input_tokens"]).fillna(0).sum())
        tokens_out = int(pd.to_numeric(rows["judge_output_tokens"]).fillna(0).sum())
        stats = EvalStats(started_at=m.get("started") or "", completed_at=m.get("ended") or "",
                          model_usage={self.model_name(judge): ModelUsage(
                              input_tokens=tokens_in, output_tokens=tokens_out, total_tokens=tokens_in + tokens_out)})
        return EvalLog(status=STATUS.get(str(m.get("status")), "started"), eval=spec, results=results, stats=stats,
                       samples=samples)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80]


def export_inspect(run_dir: str | Path, out: str | Path | None = None) -> list[Path]:
    """Write the run's Inspect eval logs into `out` (default RUN_DIR/inspect); the paths written."""
    log = _inspect()
    res = load(run_dir)
    try:
        manifest = json.loads((res.run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    target = Path(out) if out is not None else res.run_dir / "inspect"
    # Inside the run directory (the default), no folder on the way may be a link planted there.
    root = target if out is not None else res.run_dir
    j = res.judgments.copy()
    if j.empty:
        raise OversightError(f"{res.run_dir}: judgments.parquet has no rows; there is nothing to export.")
    j["variant"] = j["variant"].fillna(j["protocol"])
    j["qa_role"] = j["qa_role"].fillna("")
    writer = _Writer(res, manifest)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for key, rows in j.groupby(["task", "variant", "judge", "qa_role"], sort=True):
        task, variant, judge, qa_role = (str(k) for k in key)
        path = target / f"{_slug(task)}_{_slug(variant)}_{_slug(judge)}{'_agent-qa' if qa_role else ''}.eval"
        eval_log = writer.log((task, variant, judge, qa_role), rows)
        write_with(path, functools.partial(log.write_eval_log, eval_log), root=root)
        written.append(path)
    return written
