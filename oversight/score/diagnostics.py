"""Checks beside accuracy: position bias, calibration, cost, quoting honesty, call health.

- `accuracy_by_assignment`: accuracy when the agent argued the correct vs the incorrect
  answer (consultancy's two halves).
- `positional_bias`: how often the judge picks the first-listed answer, and accuracy when
  the correct answer is listed first (order 0) vs second (order 1). An unbiased judge
  picks position 1 half the time in a balanced design.
- `calibration` / `reliability`: where the judge reported probabilities (`p_correct`, its
  probability on the correct answer), the Brier score mean((1 − p_correct)²) and the
  expected calibration error of the judge's confidence in the answer it gave (10 equal
  bins on [0, 1]).
- `cost_table`: judge tokens and episode cost per judged instance, per protocol and judge;
  agent tokens per transcript from turns.
- `verification_rates`: share of quoted passages that matched the article, per agent,
  over the transcript turns of extractive tasks (only turns that entered the transcript).
- `calls_summary`: model calls per model and role (tokens, cost, latency, cache hits).

The judge diagnostics leave out the agent's own QA rows and, unless `errors="wrong"`,
failed episodes, like the accuracy tables.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from oversight.protocol import registry
from oversight.score.accuracy import aggregate_items, sort_table
from oversight.score.frame import (
    CI_TAG,
    CONDITION,
    condition_labels,
    judge_rows,
    normalize_judgments,
    scored_rows,
    with_levels,
)


def _judged(judgments: pd.DataFrame, errors: str) -> pd.DataFrame:
    return scored_rows(judge_rows(normalize_judgments(judgments)), errors)


def positional_bias(judgments: pd.DataFrame, errors: str = "exclude") -> pd.DataFrame:
    """Per task/group × condition: p_first, mean_position, accuracy by order, n per order."""
    cols = ["level", "task", "group", "protocol", "condition", "judge", "n_ok", "p_first",
            "mean_position", "accuracy_order0", "accuracy_order1", "n_order0", "n_order1"]
    j = _judged(judgments, errors) if len(judgments) else judgments
    if len(j) == 0:
        return pd.DataFrame(columns=cols)
    j["condition"] = condition_labels(j)
    answer = pd.to_numeric(j["judge_answer"], errors="coerce")
    ok = j["verdict_status"].eq("ok") & answer.isin([1, 2])
    j["position"] = answer.where(ok)
    j["first"] = answer.eq(1).astype(float).where(ok)
    order = pd.to_numeric(j["order"], errors="coerce")
    j["correct0"] = j["correct"].astype(float).where(order.eq(0))
    j["correct1"] = j["correct"].astype(float).where(order.eq(1))
    leveled = with_levels(j)
    keys = ["level", "task", "group", *CONDITION, "condition"]
    out = (
        leveled.groupby(keys, dropna=False, sort=False)
        .agg(n_ok=("position", "count"), p_first=("first", "mean"),
             mean_position=("position", "mean"), accuracy_order0=("correct0", "mean"),
             accuracy_order1=("correct1", "mean"), n_order0=("correct0", "count"),
             n_order1=("correct1", "count"))
        .reset_index()
    )
    return sort_table(out)[cols].reset_index(drop=True)


def accuracy_by_assignment(judgments: pd.DataFrame, errors: str = "exclude") -> pd.DataFrame:
    """Judge accuracy split by the side the (first) agent was assigned.

    Most telling for consultancy: accuracy when the consultant argued the incorrect answer
    is how often the judge resisted it. Item-averaged with CIs, per task and group.
    """
    cols = ["level", "task", "group", "protocol", "condition", "judge", "assigned",
            "n_items", "accuracy", "ci_low", "ci_high", "ci_method"]
    if len(judgments) == 0 or judgments.get("assigned") is None:
        return pd.DataFrame(columns=cols)
    j = _judged(judgments, errors)
    j = j[j["assigned"].notna()]
    if len(j) == 0:
        return pd.DataFrame(columns=cols)
    j = j.assign(condition=condition_labels(j))
    keys = ["level", "task", "group", *CONDITION, "condition", "assigned"]
    out = aggregate_items(with_levels(j), keys).assign(ci_method=CI_TAG)
    return sort_table(out)[cols].reset_index(drop=True)


def _confidence(j: pd.DataFrame) -> pd.DataFrame:
    p = pd.to_numeric(j["p_correct"], errors="coerce")
    rows = j[p.notna() & j["verdict_status"].eq("ok")].copy()
    p = p[rows.index].clip(0.0, 1.0)
    correct = rows["correct"].to_numpy(dtype=bool)
    rows["p"] = p.to_numpy()
    # Confidence in the answer the judge actually gave.
    rows["confidence"] = np.where(correct, p.to_numpy(), 1.0 - p.to_numpy())
    rows["hit"] = correct.astype(float)
    return rows


def _ece(conf: np.ndarray, hit: np.ndarray, bins: int) -> float:
    if len(conf) == 0:
        return np.nan
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(idx):
        m = idx == b
        total += m.sum() / len(conf) * abs(conf[m].mean() - hit[m].mean())
    return float(total)


def calibration(judgments: pd.DataFrame, bins: int = 10, errors: str = "exclude") -> pd.DataFrame:
    """Brier score and ECE per group × condition where `p_correct` was recorded."""
    cols = ["level", "task", "group", "protocol", "condition", "judge", "n", "accuracy",
            "mean_confidence", "brier", "ece"]
    j = _judged(judgments, errors) if len(judgments) else judgments
    if len(j) == 0:
        return pd.DataFrame(columns=cols)
    j["condition"] = condition_labels(j)
    rows = _confidence(j)
    if len(rows) == 0:
        return pd.DataFrame(columns=cols)
    leveled = with_levels(rows, levels=("group",))
    out = []
    keys = ["level", "task", "group", *CONDITION, "condition"]
    for key, block in leveled.groupby(keys, dropna=False, sort=False):
        rec = dict(zip(keys, key, strict=True))
        conf = block["confidence"].to_numpy(dtype=float)
        hit = block["hit"].to_numpy(dtype=float)
        rec.update(n=len(block), accuracy=hit.mean(), mean_confidence=conf.mean(),
                   brier=float(np.mean((1.0 - block["p"].to_numpy(dtype=float)) ** 2)),
                   ece=_ece(conf, hit, bins))
        out.append(rec)
    return sort_table(pd.DataFrame(out))[cols].reset_index(drop=True)


def reliability(judgments: pd.DataFrame, bins: int = 10, errors: str = "exclude") -> pd.DataFrame:
    """Reliability-curve points per protocol × judge, pooled over tasks.

    One row per non-empty confidence bin: bin_low, bin_high, n, mean_confidence, accuracy.
    """
    cols = ["protocol", "judge", "bin_low", "bin_high", "n", "mean_confidence", "accuracy"]
    if len(judgments) == 0:
        return pd.DataFrame(columns=cols)
    rows = _confidence(_judged(judgments, errors))
    if len(rows) == 0:
        return pd.DataFrame(columns=cols)
    rows["bin"] = np.minimum((rows["confidence"] * bins).astype(int), bins - 1)
    out = (
        rows.groupby(["protocol", "judge", "bin"], dropna=False, sort=True)
        .agg(n=("hit", "size"), mean_confidence=("confidence", "mean"), accuracy=("hit", "mean"))
        .reset_index()
    )
    out["bin_low"] = out["bin"] / bins
    out["bin_high"] = (out["bin"] + 1) / bins
    return out[cols]


def cost_table(judgments: pd.DataFrame, turns: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per protocol × judge: mean judge tokens and episode cost per judged instance.

    With `turns`, also the mean agent tokens per transcript of that protocol (all turns,
    best-of-N candidates included, since they were paid for).
    """
    cols = ["protocol", "judge", "n_rows", "judge_input_tokens", "judge_output_tokens",
            "episode_cost_usd", "total_cost_usd", "agent_tokens_per_transcript"]
    if len(judgments) == 0:
        return pd.DataFrame(columns=cols)
    j = normalize_judgments(judgments)
    for c in ("judge_input_tokens", "judge_output_tokens", "episode_cost_usd"):
        j[c] = pd.to_numeric(j[c], errors="coerce")
        # Open protocols' rows are selected from their source rows and made no call (runs
        # sealed before this rule carried their source's cost): counting them again would
        # make the totals exceed what calls.parquet says was spent.
        j.loc[j["protocol"].astype(str).isin(registry.derived_protocols()), c] = 0
    out = (
        j.groupby(["protocol", "judge"], dropna=False, sort=False)
        .agg(n_rows=("protocol", "size"), judge_input_tokens=("judge_input_tokens", "mean"),
             judge_output_tokens=("judge_output_tokens", "mean"),
             episode_cost_usd=("episode_cost_usd", "mean"),
             total_cost_usd=("episode_cost_usd", "sum"))
        .reset_index()
    )
    out["agent_tokens_per_transcript"] = np.nan
    if turns is not None and len(turns) and "transcript_id" in turns.columns:
        t = turns.copy()
        tok = (pd.to_numeric(t.get("input_tokens"), errors="coerce").fillna(0)
               + pd.to_numeric(t.get("output_tokens"), errors="coerce").fillna(0))
        t["tokens"] = tok
        if "role" in t.columns:
            # Judge turns are counted in the judge columns already.
            t = t[~t["role"].astype(str).str.startswith("judge")]
        per = t.groupby("transcript_id")["tokens"].sum()
        proto = j.drop_duplicates("transcript_id").set_index("transcript_id")["protocol"]
        per = per[per.index.isin(proto.index)]
        mean_tok = per.groupby(proto.reindex(per.index).to_numpy()).mean()
        out["agent_tokens_per_transcript"] = out["protocol"].map(mean_tok)
    return sort_table(out)[cols].reset_index(drop=True)


def verification_rates(turns: pd.DataFrame, judgments: pd.DataFrame | None = None
                       ) -> pd.DataFrame:
    """Verified share of quoted passages per agent × protocol on extractive tasks.

    Extractive tasks are taken from `judgments` (task → group); without it, any turn that
    quoted at least once is counted. Only turns that entered the transcript (`chosen`).
    """
    cols = ["agent", "protocol", "n_turns", "turns_quoting", "n_verified", "n_unverified",
            "verified_rate"]
    if turns is None or len(turns) == 0:
        return pd.DataFrame(columns=cols)
    t = turns.copy()
    for c in ("n_verified", "n_unverified"):
        t[c] = pd.to_numeric(t.get(c), errors="coerce").fillna(0).astype(int)
    if "chosen" in t.columns:
        t = t[t["chosen"].map(lambda v: True if pd.isna(v) else bool(v))]
    if judgments is not None and len(judgments) and "group" in judgments.columns:
        groups = judgments.drop_duplicates("task").set_index("task")["group"]
        t = t[t["task"].map(groups).eq("extractive")]
    else:
        t = t[(t["n_verified"] + t["n_unverified"]) > 0]
    if "role" in t.columns:
        t = t[~t["role"].astype(str).str.startswith("judge")]
    if len(t) == 0:
        return pd.DataFrame(columns=cols)
    t["quoting"] = (t["n_verified"] + t["n_unverified"]) > 0
    out = (
        t.groupby(["agent", "protocol"], dropna=False, sort=True)
        .agg(n_turns=("quoting", "size"), turns_quoting=("quoting", "sum"),
             n_verified=("n_verified", "sum"), n_unverified=("n_unverified", "sum"))
        .reset_index()
    )
    quoted = out["n_verified"] + out["n_unverified"]
    out["verified_rate"] = np.where(quoted > 0, out["n_verified"] / quoted.where(quoted > 0, 1),
                                    np.nan)
    return out[cols]


def agent_format(turns: pd.DataFrame | None) -> pd.DataFrame:
    """How agents' replies came out, per agent model × protocol (oversight/protocol/agent.py):
    the share of turns with the Thinking/Argument split (`format_ok_rate`), cut at the token
    limit by the provider (`max_tokens_rate`) or to the word limit by the harness
    (`word_limit_rate`), and the mean words copied from the article outside passage tags
    (extractive tasks). Every candidate a model wrote counts, chosen or not; turns stored
    before these were recorded are left out."""
    cols = ["agent", "protocol", "n_turns", "format_ok_rate", "max_tokens_rate", "word_limit_rate",
            "mean_copied_words"]
    if turns is None or len(turns) == 0 or "format_ok" not in turns.columns:
        return pd.DataFrame(columns=cols)
    t = turns[turns["role"].isin(["debater", "consultant"]) & turns["format_ok"].notna()].copy()
    if len(t) == 0:
        return pd.DataFrame(columns=cols)
    t["_ok"] = t["format_ok"].astype(bool)
    t["_max"] = t["finish_reason"].astype(object).eq("max_tokens")
    t["_words"] = t["finish_reason"].astype(object).eq("word_limit")
    t["_copied"] = pd.to_numeric(t["copied_words"], errors="coerce")
    out = (
        t.groupby(["agent", "protocol"], dropna=False, sort=True)
        .agg(n_turns=("_ok", "size"), format_ok_rate=("_ok", "mean"), max_tokens_rate=("_max", "mean"),
             word_limit_rate=("_words", "mean"), mean_copied_words=("_copied", "mean"))
        .reset_index()
    )
    return out[cols]


def calls_summary(calls: pd.DataFrame | None) -> pd.DataFrame:
    """Per model × role: calls, tokens, cost, mean latency, cache-hit rate, retries, errors."""
    cols = ["model", "role", "n_calls", "input_tokens", "output_tokens", "cost_usd",
            "mean_latency_s", "cache_hit_rate", "retries", "errors"]
    if calls is None or len(calls) == 0:
        return pd.DataFrame(columns=cols)
    c = calls.copy()
    for col in ("input_tokens", "output_tokens", "cost_usd", "latency_s", "retries"):
        c[col] = pd.to_numeric(c.get(col), errors="coerce")
    c["cache"] = c.get("cache_hit", pd.Series(False, index=c.index)).fillna(False).astype(bool)
    err = c.get("error", pd.Series(None, index=c.index))
    c["failed"] = err.notna() & err.astype(str).ne("")
    if "role" not in c.columns:
        c["role"] = None
    out = (
        c.groupby(["model", "role"], dropna=False, sort=True)
        .agg(n_calls=("model", "size"), input_tokens=("input_tokens", "sum"),
             output_tokens=("output_tokens", "sum"), cost_usd=("cost_usd", "sum"),
             mean_latency_s=("latency_s", "mean"), cache_hit_rate=("cache", "mean"),
             retries=("retries", "sum"), errors=("failed", "sum"))
        .reset_index()
    )
    return out[cols]


# A failed episode's `error` text: "<model>: <kind>[ HTTP n]: <message>" for a model call
# that failed for good, "internal error: <Type>: <message>" for a harness bug.
_CALL_ERROR = re.compile(
    r"^(?P<model>.+?): (?P<kind>rate_limit|server|timeout|connection|malformed|bad_request|auth|not_found|other)\b")
_INTERNAL = re.compile(r"^internal error\b")

FAILURE_COLUMNS = ["model", "kind", "n_rows", "protocols", "first_error"]


def error_source(text: object, judge: object = None) -> tuple[str, str]:
    """(model, kind) of a failed episode's error text; unparseable text is blamed on the
    row's judge with kind 'other'."""
    s = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
    m = _CALL_ERROR.match(s)
    if m:
        return m.group("model"), m.group("kind")
    if _INTERNAL.match(s):
        return "oversight (harness)", "internal"
    who = "" if judge is None or (isinstance(judge, float) and np.isnan(judge)) else str(judge)
    return who or "-", "other" if s else "unknown"


def failures_table(judgments: pd.DataFrame) -> pd.DataFrame:
    """Failed episodes (`verdict_status == "error"`) grouped by the model that failed and
    the kind of error, most frequent first, with the protocols hit and the first error text.
    """
    if len(judgments) == 0 or "verdict_status" not in judgments.columns:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    j = judgments[judgments["verdict_status"].astype(object).eq("error").fillna(False).astype(bool)]
    if len(j) == 0:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    errors = j["error"] if "error" in j.columns else pd.Series(None, index=j.index)
    judges = j["judge"] if "judge" in j.columns else pd.Series(None, index=j.index)
    src = [error_source(e, g) for e, g in zip(errors.astype(object), judges.astype(object), strict=True)]
    f = pd.DataFrame({
        "model": [s[0] for s in src], "kind": [s[1] for s in src],
        "protocol": j["protocol"].astype(str).to_numpy(),
        "error": errors.astype(object).map(lambda v: "" if pd.isna(v) else str(v)).to_numpy(),
    })
    out = (
        f.groupby(["model", "kind"], sort=False)
        .agg(n_rows=("error", "size"),
             protocols=("protocol", lambda s: ", ".join(dict.fromkeys(s))),
             first_error=("error", "first"))
        .reset_index()
        .sort_values(["n_rows", "model", "kind"], ascending=[False, True, True], kind="stable")
    )
    return out[FAILURE_COLUMNS].reset_index(drop=True)
