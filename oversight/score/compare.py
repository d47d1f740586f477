"""Paired comparisons between protocols on the same items (DESIGN §7, PAPER "Statistics").

For every scope (task, and task group), judge and pair of conditions, the per-item scores
of the items both conditions judged are compared with a paired permutation test
(`scipy.stats.permutation_test`, `permutation_type="samples"`: each item's two scores are
swapped at random), statistic = mean difference. The difference also gets a normal 95% CI
over the paired item differences.

Orientation: `protocol_a` is the later protocol in the paper's order (qa, qa_with_article,
consultancy, debate, open_consultancy, open_debate), so `diff = acc_a - acc_b` reads as
"how much the more elaborate protocol adds", e.g. debate − qa.

Cross-play debates (two different debater models) are tournament games for Elo, not a
protocol arm, and are left out here.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from oversight.score.frame import (
    condition_labels,
    group_rank,
    is_cross_play,
    mean_ci,
    normalize_judgments,
    protocol_rank,
    with_levels,
)

COMPARISON_COLUMNS = [
    "level", "task", "group", "judge", "protocol_a", "protocol_b", "condition_a",
    "condition_b", "n_items", "acc_a", "acc_b", "diff", "ci_low", "ci_high", "p_value",
    "significant",
]  # fmt: skip


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def paired_permutation(
    a: np.ndarray, b: np.ndarray, n_resamples: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """Paired permutation test of mean(a) − mean(b) plus a normal 95% CI of the difference.

    `a[i]` and `b[i]` must be the same item's scores under the two conditions. Returns
    n_items, acc_a, acc_b, diff, ci_low, ci_high (clipped to [-1, 1]) and a two-sided
    p_value. With few items scipy enumerates all 2**n sign swaps, so the p-value is exact.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError("paired scores must have the same length")
    n = len(a)
    if n == 0:
        return {"n_items": 0, "acc_a": np.nan, "acc_b": np.nan, "diff": np.nan,
                "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
    diff, ci_low, ci_high = mean_ci(a - b, lo=-1.0, hi=1.0)
    if n < 2:  # one pair has no sign swaps to compare against: no test, no interval
        return {"n_items": n, "acc_a": float(a.mean()), "acc_b": float(b.mean()), "diff": diff,
                "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
    res = stats.permutation_test(
        (a, b),
        _mean_diff,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        random_state=seed,
    )
    return {
        "n_items": n,
        "acc_a": float(a.mean()),
        "acc_b": float(b.mean()),
        "diff": diff,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "p_value": float(res.pvalue),
    }


def comparisons_table(
    judgments: pd.DataFrame,
    n_resamples: int = 10_000,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Every pair of conditions compared for each judge, at task and at group level.

    Each test uses `random_state=seed`, so a row is reproducible on its own and equals a
    direct `scipy.stats.permutation_test` call on the same paired scores, taken in sorted
    (task, item_id) order with item ids compared as text. Pairs with no
    common item are omitted. `significant` is `p_value < alpha`.
    """
    if len(judgments) == 0:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    j = normalize_judgments(judgments)
    j = j[~is_cross_play(j)]
    if len(j) == 0:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    j = j.assign(condition=condition_labels(j))
    leveled = with_levels(j)
    keys = ["level", "task", "group", "judge", "condition"]
    items = (
        leveled.groupby([*keys, "item_key"], dropna=False, sort=False)
        .agg(score=("correct", "mean"), protocol=("protocol", "first"))
        .reset_index()
    )
    rows = []
    # A group with one task repeats its task's tests exactly; scipy's test is the slow part.
    cache: dict[tuple[bytes, bytes], dict[str, float]] = {}
    for scope, block in items.groupby(["level", "task", "group", "judge"], dropna=False,
                                      sort=False):
        level, task, group, judge = scope
        wide = block.pivot(index="item_key", columns="condition", values="score").sort_index()
        protocols = block.groupby("condition", sort=False)["protocol"].first()
        conds = sorted(wide.columns, key=lambda c: (protocol_rank(protocols[c]), str(c)))
        for earlier, later in combinations(conds, 2):
            pair = wide[[later, earlier]].dropna()
            if len(pair) == 0:
                continue
            a = pair[later].to_numpy(dtype=float)
            b = pair[earlier].to_numpy(dtype=float)
            key = (a.tobytes(), b.tobytes())
            if key not in cache:
                cache[key] = paired_permutation(a, b, n_resamples=n_resamples, seed=seed)
            res = cache[key]
            rows.append({
                "level": level, "task": task, "group": group, "judge": judge,
                "protocol_a": protocols[later], "protocol_b": protocols[earlier],
                "condition_a": later, "condition_b": earlier, **res,
                "significant": bool(res["p_value"] < alpha),
            })
    out = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    if len(out):
        out["_lvl"] = out["level"].map({"group": 0, "task": 1})
        out["_g"] = out["group"].map(lambda g: group_rank(g)[0])
        out["_t"] = out["task"].astype(str)
        out["_j"] = out["judge"].astype(str)
        out["_pa"] = out["protocol_a"].map(protocol_rank)
        out["_pb"] = out["protocol_b"].map(protocol_rank)
        out["_gn"] = out["group"].astype(str)
        tmp = ["_lvl", "_g", "_gn", "_t", "_j", "_pa", "_pb"]
        out = out.sort_values(tmp, kind="stable").drop(columns=tmp).reset_index(drop=True)
    return out
