"""Shared column conventions for the scoring functions.

Every scoring function accepts a `judgments` DataFrame as written to `judgments.parquet`
(README, Results). `normalize_judgments` makes hand-built or partial frames safe to score: missing
optional columns appear as nulls, and a verdict that is not `ok` is never counted correct.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from oversight.protocol import registry

GROUP_ORDER = ("extractive", "closed", "multimodal")

JUDGMENT_COLUMNS = (
    "run_id", "task", "group", "item_id", "protocol", "judge", "agent", "agent_b", "order",
    "correct_answer", "judge_answer", "is_correct", "verdict_status", "p_correct", "assigned",
    "agent_choice", "rounds", "turn_style", "best_of", "transcript_id", "judge_input_tokens",
    "judge_output_tokens", "episode_cost_usd",
)  # fmt: skip

# What makes two rows the same experimental condition (apart from task/item/order).
# Debate settings are part of it so that, say, a 1-round tournament never pools with the
# 3-round main debates.
# Protocol variants (protocols/NAME.yaml) and every setting a variant can change are part of
# it too, so rows run under different settings are never merged, within a run or across the
# runs one report reads.
SETTINGS = ("judge_mode", "constrained", "shots", "word_limit", "passage_match", "interactive",
            "first_round_simultaneous", "qa_mode", "prompt_set")
CONDITION = ("protocol", "variant", "judge", "agent", "agent_b", "rounds", "turn_style", "best_of", "best_of_b",
             *SETTINGS)
CONFIG = ("agent", "agent_b", "rounds", "turn_style", "best_of", "best_of_b", *SETTINGS)
SCOPE = ("level", "task", "group")


# How verdicts are read for scoring (oversight/judge/parse.py records the rule on each row).
# `lenient` (default) counts every verdict the parser read; `strict` counts those read by the
# lenient rule as invalid, as if only the `Answer:` line (or a constrained reply) were read.
READINGS = ("lenient", "strict")


def check_reading(verdicts: str) -> None:
    if verdicts not in READINGS:
        from oversight.errors import OversightError

        raise OversightError(f"verdicts must be one of {', '.join(READINGS)} (--verdicts), got {verdicts!r}.")


def apply_reading(judgments: pd.DataFrame, verdicts: str) -> pd.DataFrame:
    """`judgments` as scored under `verdicts` (see READINGS): under `strict`, a row whose
    verdict only the lenient rule could read becomes `invalid` (no answer, not correct)."""
    check_reading(verdicts)
    if verdicts == "lenient" or "verdict_rule" not in judgments.columns or len(judgments) == 0:
        return judgments
    lenient = judgments["verdict_rule"].astype(object).eq("lenient").fillna(False).astype(bool)
    if not lenient.any():
        return judgments
    j = judgments.copy()
    j.loc[lenient, "verdict_status"] = "invalid"
    for col, value in (("judge_answer", None), ("is_correct", False), ("p_correct", None)):
        if col in j.columns:
            j.loc[lenient, col] = value
    return j


def normalize_judgments(judgments: pd.DataFrame) -> pd.DataFrame:
    """A copy of `judgments` with every documented column present and `correct` added.

    `correct` is the scoring outcome: True only for an `ok` verdict that picked the right
    answer, so invalid, refused and errored rows count as wrong.
    """
    j = judgments.copy()
    for col in (*JUDGMENT_COLUMNS, *CONDITION, "simulated", "error", "qa_role"):
        if col not in j.columns:
            j[col] = None
    if "verdict_status" in judgments.columns:
        j["verdict_status"] = j["verdict_status"].fillna("error").astype(str)
    else:
        j["verdict_status"] = "ok"
    ok = j["verdict_status"].eq("ok").to_numpy()
    raw = j["is_correct"]
    if raw.isna().all() and j["judge_answer"].notna().any():
        # Frames without is_correct can still be scored from the answers.
        raw = j["judge_answer"].eq(j["correct_answer"])
    is_correct = raw.map(lambda v: bool(v) if pd.notna(v) else False).to_numpy(dtype=bool)
    j["correct"] = ok & is_correct
    j["task"] = j["task"].astype(object)
    j["item_id"] = j["item_id"].map(lambda v: None if pd.isna(v) else str(v)).astype(object)
    return j


def condition_labels(judgments: pd.DataFrame) -> pd.Series:
    """A readable label per row: the protocol, plus whatever config varies within it.

    A protocol run in one configuration is labelled just `debate`; when several exist in
    the same data (e.g. a tournament beside the main runs) the varying fields are appended:
    `debate (agent=sim/strong, rounds=3)` for self-play, `debate (sim/a vs sim/b, rounds=1)`
    for cross-play.
    """
    j = judgments
    # A variant's own name (debate_seq) says more than its base protocol's.
    names = j["protocol"].astype(object)
    if "variant" in j.columns:
        names = j["variant"].astype(object).where(j["variant"].notna(), names)
    labels = pd.Series(names.astype(str).to_numpy(), index=j.index, dtype=object)
    cfg_cols = [c for c in CONFIG if c in j.columns]
    for protocol, rows in j.assign(_name=labels).groupby("_name", sort=False):
        configs = rows[cfg_cols].drop_duplicates()
        if len(configs) <= 1:
            continue
        varying = [c for c in cfg_cols if configs[c].nunique(dropna=False) > 1]
        for key, sub in rows.groupby(cfg_cols, dropna=False, sort=False):
            cfg = dict(zip(cfg_cols, key, strict=True))
            labels.loc[sub.index] = f"{protocol} ({_config_text(cfg, varying)})"
    return labels


def _config_text(cfg: dict[str, object], varying: list[str]) -> str:
    parts = []
    a, b = cfg.get("agent"), cfg.get("agent_b")
    if "agent" in varying or "agent_b" in varying:
        if pd.notna(a) and pd.notna(b) and a != b:  # type: ignore[call-overload]
            parts.append(f"{show_value(a)} vs {show_value(b)}")
        else:
            parts.append(f"agent={show_value(a)}")
    parts += [f"{c}={show_value(cfg[c])}" for c in varying if c not in ("agent", "agent_b")]
    return ", ".join(parts)


def show_value(value: object) -> str:
    """A config value as text: null as '-', whole floats without '.0'."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def with_levels(judgments: pd.DataFrame, levels: Sequence[str] = ("task", "group")) -> pd.DataFrame:
    """Stack the rows once per scoring level, adding `level` and `item_key`.

    Task rows keep their task; group rows have task = null, so grouping by
    (level, task, group) pools a group's tasks. `item_key` stays (task, item_id) in both,
    which keeps items of different tasks apart when pooled.
    """
    j = judgments.copy()
    # A string key is much faster to group by than a tuple column.
    j["item_key"] = j["task"].astype(str) + "\x1f" + j["item_id"].astype(str)
    parts = []
    for level in levels:
        part = j.copy()
        part["level"] = level
        if level == "group":
            part["task"] = None
        elif level != "task":
            raise ValueError(f"unknown level {level!r}; use 'task' or 'group'")
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["task"] = out["task"].astype(object)
    return out


def is_cross_play(judgments: pd.DataFrame) -> pd.Series:
    """Rows of a debate between two different debater models (tournament games)."""
    a = judgments["agent"].astype(object)
    b = judgments["agent_b"].astype(object)
    return pd.Series(b.notna().to_numpy() & a.notna().to_numpy() & (a != b).to_numpy(),
                     index=judgments.index)


def elo_scale_value(elo: pd.DataFrame) -> str:
    """The Elo scale(s) s an Elo table's ratings are on ("400" for a table without the column)."""
    scales = sorted({float(v) for v in elo["scale"].dropna()}) if "scale" in elo.columns else []
    return ", ".join(f"{v:g}" for v in scales) or "400"


def elo_scale_text(elo: pd.DataFrame) -> str:
    """The scale the ratings are on, as every Elo table states it."""
    return f"Elo scale s = {elo_scale_value(elo)}: P(i beats j) = 1/(1 + 10^((E_j − E_i)/s))"


def protocol_rank(protocol: object) -> int:
    """Its place in tables and figures: the protocol's `order` (unknown names last)."""
    return registry.rank(str(protocol))


def group_rank(group: object) -> tuple[int, str]:
    name = "" if group is None or (isinstance(group, float) and np.isnan(group)) else str(group)
    try:
        return (GROUP_ORDER.index(name), name)
    except ValueError:
        return (len(GROUP_ORDER), name)


Z95 = 1.959963984540054  # two-sided 95% normal quantile (scipy.stats.norm.ppf(0.975))

# How every interval is computed; named in each table header and in the report.
CI_METHOD = ("95% Wilson score interval of the accuracy with n = the number of items; no interval "
             "from fewer than 2 items")
CI_HEADER = "95% CI (Wilson, items)"
CI_TAG = "wilson95_items"  # the `ci_method` column of the stored tables
CI_DIFF_METHOD = ("95% interval inverting the paired permutation test: every shift of the item "
                  "differences the same test (same swap patterns) does not reject at 0.05, within "
                  "[−1, +1]; it holds 0 exactly when p ≥ 0.05")
CI_DIFF_HEADER = "95% CI (inverted permutation test)"
CI_DIFF_TAG = "permutation_inversion95_items"
MIN_CI_ITEMS = 2
# An Elo interval wider than this many points says the fit is not pinned down (too few
# games, or a debater that won or lost nearly every game): it is flagged, never shown bare.
ELO_UNSTABLE_WIDTH = 1000.0
ELO_UNSTABLE_NOTE = (f"⚠ interval wider than {ELO_UNSTABLE_WIDTH:,.0f} Elo: the rating is not pinned down "
                     "(too few games, or a debater that won or lost nearly all of them)")


def elo_unstable(low: object, high: object) -> bool:
    try:
        return float(high) - float(low) > ELO_UNSTABLE_WIDTH  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


# Cells resting on fewer items than this are marked ("few items") in tables and figures.
FEW_ITEMS = 10

# What happens to rows whose episode failed (`verdict_status == "error"`): left out of
# accuracy and counted beside it (default), or scored as wrong answers.
ERROR_MODES = ("exclude", "wrong")


def check_errors_mode(errors: str) -> str:
    if errors not in ERROR_MODES:
        raise ValueError(f"errors must be one of {ERROR_MODES}, got {errors!r}")
    return errors


def is_agent_qa(judgments: pd.DataFrame) -> pd.Series:
    """Rows of the agent's own QA (`qa_role == "agent"`): the answer that picks the open
    protocols' side, not a judge's verdict."""
    if "qa_role" not in judgments.columns:
        return pd.Series(False, index=judgments.index)
    return judgments["qa_role"].astype(object).eq("agent").fillna(False).astype(bool)


def judge_rows(judgments: pd.DataFrame) -> pd.DataFrame:
    """The rows a judge decided: everything but the agent's own QA."""
    return judgments[~is_agent_qa(judgments).to_numpy()]


def is_error(judgments: pd.DataFrame) -> pd.Series:
    return judgments["verdict_status"].astype(object).eq("error").fillna(False).astype(bool)


def scored_rows(judgments: pd.DataFrame, errors: str = "exclude") -> pd.DataFrame:
    """The rows accuracy is computed from: failed episodes are dropped unless
    `errors="wrong"` (they are already scored wrong by `normalize_judgments`)."""
    if check_errors_mode(errors) == "wrong" or len(judgments) == 0:
        return judgments
    return judgments[~is_error(judgments).to_numpy()]


def judge_order(judgments: pd.DataFrame, preferred: Sequence[str] = ()) -> list[str]:
    """Judges in the spec's order (`preferred`, e.g. manifest roles: weak to strong), then
    any others in order of first appearance."""
    seen = [str(v) for v in judgments["judge"].dropna().astype(str).unique()] \
        if "judge" in judgments.columns else []
    out = [p for p in dict.fromkeys(preferred) if p in seen]
    return out + [s for s in seen if s not in out]


def wilson_ci(mean: np.ndarray | float, n: np.ndarray | float, z: float = Z95
              ) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion `mean` from `n` units, elementwise; NaN where
    n < MIN_CI_ITEMS. Unlike mean ± z·sd/√n it never has zero width at 0 or 1 and stays
    inside [0, 1] without clipping."""
    p = np.asarray(mean, dtype=float)
    k = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = 1 + z * z / k
        centre = (p + z * z / (2 * k)) / denom
        half = z / denom * np.sqrt(np.maximum(p * (1 - p), 0.0) / k + z * z / (4 * k * k))
    ok = k >= MIN_CI_ITEMS
    return (np.where(ok, np.clip(centre - half, 0.0, 1.0), np.nan),
            np.where(ok, np.clip(centre + half, 0.0, 1.0), np.nan))


def mean_ci(values: np.ndarray, z: float = Z95) -> tuple[float, float, float]:
    """Mean of item scores in [0, 1] and its Wilson interval over items (`wilson_ci`)."""
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n == 0:
        return (np.nan, np.nan, np.nan)
    m = float(v.mean())
    lo, hi = wilson_ci(m, n, z)
    return (m, float(lo), float(hi))


def few_items(n_items: object) -> bool:
    """Whether a cell rests on so few items that its interval should be read with care."""
    try:
        return 0 < int(n_items) < FEW_ITEMS  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------
# Checking stored tables before scoring them

# Columns scoring cannot do without, per table. `judgments.parquet` also needs an outcome:
# `is_correct`, or `judge_answer` with `correct_answer`. turns/calls are checked only when
# they hold rows (a QA-only run has no turns).
REQUIRED_COLUMNS = {
    "judgments": ("task", "item_id", "protocol"),
    "turns": ("transcript_id", "task", "protocol", "agent", "n_verified", "n_unverified",
              "input_tokens", "output_tokens"),
    "calls": ("model",),
    "items": ("task", "item_id", "question", "answer_0", "answer_1", "correct"),
    "prompts": ("prompt_id", "messages"),
}
NUMERIC_COLUMNS = {
    "judgments": ("order", "correct_answer", "judge_answer", "p_correct", "agent_choice", "rounds",
                  "best_of", "judge_input_tokens", "judge_output_tokens", "episode_cost_usd"),
    "turns": ("round", "n_verified", "n_unverified", "input_tokens", "output_tokens", "cost_usd"),
    "calls": ("input_tokens", "output_tokens", "cost_usd", "latency_s", "retries"),
    "items": ("correct", "article_chars", "n_images"),
    "prompts": ("chars",),
}
BOOLEAN_COLUMNS = {"judgments": ("is_correct", "simulated"), "turns": ("truncated",), "calls": ("cache_hit",),
                   "items": (), "prompts": ()}


def _column_kind(series: pd.Series) -> str:
    """'numeric', 'boolean', 'null' (no values) or 'other', judged from the values present."""
    values = series.dropna()
    if len(values) == 0:
        return "null"
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "numeric"
    kinds = {type(v) for v in values}
    if kinds <= {bool, np.bool_}:
        return "boolean"
    if all(issubclass(k, int | float | np.integer | np.floating) and not issubclass(k, bool | np.bool_)
           for k in kinds):
        return "numeric"
    return "other"


def check_table(df: pd.DataFrame, table: str, source: str) -> None:
    """Raise an OversightError naming `source` if `df` is not a `table` as `oversight run`
    writes it: a required column missing, or a number/boolean column holding other values.

    Without this a wrong file fails deep inside scoring with a KeyError, or worse is scored:
    a text `is_correct` column would count every row correct.
    """
    from oversight.errors import OversightError, clip

    if table != "judgments" and len(df) == 0:
        return
    problems = []
    missing = [c for c in REQUIRED_COLUMNS[table] if c not in df.columns]
    if table == "judgments" and "is_correct" not in df.columns and not {
            "judge_answer", "correct_answer"} <= set(df.columns):
        missing.append("is_correct (or judge_answer and correct_answer)")
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    for col in NUMERIC_COLUMNS[table]:
        if col in df.columns and _column_kind(df[col]) not in ("numeric", "null"):
            problems.append(f"column '{col}' should hold numbers, got {df[col].dtype} values")
    for col in BOOLEAN_COLUMNS[table]:
        if col not in df.columns:
            continue
        kind = _column_kind(df[col])
        as_01 = kind == "numeric" and bool(df[col].dropna().isin([0, 1]).all())
        if kind not in ("boolean", "null") and not as_01:
            problems.append(f"column '{col}' should hold true/false, got {df[col].dtype} values")
    if problems:
        cols = clip(", ".join(map(str, df.columns)), 160)
        raise OversightError(
            f"{source}: not a {table} table written by `oversight run`: {'; '.join(problems)} "
            f"(its columns: {cols or 'none'})."
        )
