"""Paired comparisons between protocols on the same items (docs/METHOD.md, "Statistics").

For every scope (task, and task group), judge and pair of conditions, the per-item scores
of the items both conditions judged are compared with a paired permutation test
(`permutation_type="samples"` in scipy's terms: each item's two scores are swapped at
random), statistic = mean difference, two-sided. The difference's 95% interval inverts
that same test (`_inverted_ci`), so it excludes 0 exactly when p < 0.05 (none from fewer
than two items).

The test is computed here with numpy, draw for draw as `scipy.stats.permutation_test`
with `random_state=seed` computes it (exact enumeration of all 2**n swaps when
`n_resamples >= 2**n`), so scoring never imports scipy: the end-of-run summary stays fast.
`tests/score/test_compare.py` checks the equality against scipy itself.

Orientation: `protocol_a` is the later protocol in the paper's order (qa, qa_with_article,
consultancy, debate, open_consultancy, open_debate), so `diff = acc_a - acc_b` reads as
"how much the more elaborate protocol adds", e.g. debate − qa.

`headline_table` keeps the comparisons the paper's findings are about (`headline_pairs()`:
what each registered protocol says it is compared with, `headline` in protocol/base.py).
Cross-play debates (two different debater models) are tournament games for Elo, not a
protocol arm, and are left out here, as are the agent's own QA rows; failed episodes are
left out unless `errors="wrong"`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from oversight.protocol import registry
from oversight.score.frame import (
    CI_DIFF_TAG,
    MIN_CI_ITEMS,
    check_errors_mode,
    condition_labels,
    group_rank,
    is_cross_play,
    judge_order,
    judge_rows,
    normalize_judgments,
    protocol_rank,
    scored_rows,
    with_levels,
)

COMPARISON_COLUMNS = [
    "level", "task", "group", "judge", "protocol_a", "protocol_b", "condition_a",
    "condition_b", "n_items", "acc_a", "acc_b", "diff", "ci_low", "ci_high", "ci_method",
    "p_value", "n_resamples", "significant",
]  # fmt: skip

def headline_pairs() -> tuple[tuple[str, str], ...]:
    """The comparisons the headline lists, as (protocol_a, protocol_b), in order."""
    return registry.headline_pairs()


HEADLINE_COLUMNS = ["group", "judge", "comparison", *COMPARISON_COLUMNS[4:]]

ALPHA = 0.05
_BATCH_CELLS = 2_000_000  # resamples × items drawn per batch (bounded memory)


def _rng(seed: int) -> np.random.RandomState:
    # scipy's `random_state=int` is a legacy RandomState; it takes 32-bit seeds only, so a
    # larger seed is given as its 32-bit words.
    if 0 <= seed < 2**32:
        return np.random.RandomState(seed)
    words = []
    s = int(seed)
    while s:
        words.append(s & 0xFFFFFFFF)
        s >>= 32
    return np.random.RandomState(words)


def _p_value(null: np.ndarray, observed: float, exact: bool) -> float:
    # As scipy: a relative tolerance for ties, +1 on both sides of a randomised p-value.
    adjustment = 0 if exact else 1
    gamma = abs(np.finfo(float).eps * 100 * observed)
    n = len(null)
    less = (np.count_nonzero(null <= observed + gamma) + adjustment) / (n + adjustment)
    greater = (np.count_nonzero(null >= observed - gamma) + adjustment) / (n + adjustment)
    return float(np.clip(min(less, greater) * 2, 0.0, 1.0))


def _null_draws(a: np.ndarray, b: np.ndarray, n_resamples: int, seed: int
                ) -> tuple[np.ndarray, np.ndarray, bool]:
    """The permutation null of mean(a) − mean(b), the mean sign of each swap pattern
    (+1 kept, −1 swapped: what a shift of the differences moves the null by), and whether
    the patterns were enumerated exactly."""
    n = len(a)
    if n < 63 and 2**n <= n_resamples:  # every swap pattern, once
        codes = np.arange(2**n, dtype=np.int64)[:, None]
        swap = ((codes >> np.arange(n, dtype=np.int64)) & 1).astype(bool)
        null = np.where(swap, b, a).mean(axis=-1) - np.where(swap, a, b).mean(axis=-1)
        return null, 1.0 - 2.0 * swap.mean(axis=-1), True
    rng = _rng(seed)
    parts, signs = [], []
    step = max(1, _BATCH_CELLS // max(n, 1))
    for start in range(0, n_resamples, step):
        k = min(step, n_resamples - start)
        x = rng.random_sample((k, n, 2))
        swap = x[..., 1] < x[..., 0]  # scipy argsorts each pair's two draws
        parts.append(np.where(swap, b, a).mean(axis=-1) - np.where(swap, a, b).mean(axis=-1))
        signs.append(1.0 - 2.0 * swap.mean(axis=-1))
    return np.concatenate(parts), np.concatenate(signs), False


def permutation_p_value(a: np.ndarray, b: np.ndarray, n_resamples: int = 10_000,
                        seed: int = 0) -> float:
    """Two-sided p-value of mean(a) − mean(b) under random swaps within pairs."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    null, _, exact = _null_draws(a, b, n_resamples, seed)
    return _p_value(null, float(np.mean(a) - np.mean(b)), exact)


def _inverted_ci(null: np.ndarray, sign: np.ndarray, observed: float, exact: bool, p0: float,
                 alpha: float = ALPHA) -> tuple[float, float]:
    """The shifts δ of the item differences that the same permutation test (the same swap
    patterns) does not reject at `alpha`, clipped to [−1, 1].

    Testing d − δ, each pattern's statistic is null − δ·sign and the observed one
    observed − δ; the p-value falls monotonically as δ moves away from the observed mean,
    so each end is found by bisection. The search starts from δ = 0 on the side its
    p-value `p0` puts it, so 0 lies inside the interval exactly when p0 ≥ alpha."""
    def p(delta: float) -> float:
        return _p_value(null - delta * sign, observed - delta, exact)

    def edge(inside: float, outside: float) -> float:
        if p(outside) >= alpha:
            return outside
        for _ in range(40):  # to ~1e-12 of the [−1, 1] range
            mid = (inside + outside) / 2
            inside, outside = (mid, outside) if p(mid) >= alpha else (inside, mid)
        return inside

    if p0 >= alpha:  # 0 is inside: search outwards from it (or from the estimate beyond it)
        low, high = edge(min(0.0, observed), -1.0), edge(max(0.0, observed), 1.0)
    elif observed > 0:  # 0 is rejected below the estimate
        low, high = edge(observed, 0.0), edge(observed, 1.0)
    else:
        low, high = edge(observed, -1.0), edge(observed, 0.0)
    return float(low), float(high)


def paired_permutation(
    a: np.ndarray, b: np.ndarray, n_resamples: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """Paired permutation test of mean(a) − mean(b) and the 95% interval that inverts it.

    `a[i]` and `b[i]` must be the same item's scores under the two conditions. Returns
    n_items, acc_a, acc_b, diff, ci_low, ci_high (within [-1, 1]) and a two-sided p_value.
    With few items all 2**n swaps are enumerated, so the p-value is exact. The interval is
    every shift of the differences the test does not reject (`_inverted_ci`), so it holds
    0 exactly when p ≥ 0.05; with so few items that no pattern can reach p < 0.05 it is the
    whole range [−1, +1]. With fewer than two items there is no test and no interval (NaN).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError("paired scores must have the same length")
    n = len(a)
    if n == 0:
        return {"n_items": 0, "acc_a": np.nan, "acc_b": np.nan, "diff": np.nan,
                "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
    diff = float(a.mean() - b.mean())
    if n < MIN_CI_ITEMS:
        return {"n_items": n, "acc_a": float(a.mean()), "acc_b": float(b.mean()), "diff": diff,
                "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
    null, sign, exact = _null_draws(a, b, n_resamples, seed)
    p = _p_value(null, diff, exact)
    low, high = _inverted_ci(null, sign, diff, exact, p)
    return {"n_items": n, "acc_a": float(a.mean()), "acc_b": float(b.mean()), "diff": diff,
            "ci_low": low, "ci_high": high, "p_value": p}


def comparisons_table(
    judgments: pd.DataFrame,
    n_resamples: int = 10_000,
    seed: int = 0,
    alpha: float = 0.05,
    errors: str = "exclude",
    pairs: Collection[tuple[str, str]] | None = None,
    levels: Sequence[str] = ("task", "group"),
) -> pd.DataFrame:
    """Every pair of conditions compared for each judge, at task and at group level.

    Each test draws from its own `RandomState(seed)`, so a row is reproducible on its own
    and equals a direct `scipy.stats.permutation_test(..., random_state=seed)` call on the
    same paired scores, taken in sorted (task, item_id) order with item ids compared as
    text. Pairs with no common item are omitted. `significant` is `p_value < alpha`.
    `pairs` keeps only those (protocol_a, protocol_b) pairs; `levels` picks the scopes.
    """
    check_errors_mode(errors)
    if len(judgments) == 0:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    j = scored_rows(judge_rows(normalize_judgments(judgments)), errors)
    # Cross-play games and the tournament's self-play debates are the Elo experiment's, not
    # a protocol of the grid.
    j = j[~is_cross_play(j) & ~j["variant"].astype(object).eq("tournament").to_numpy()]
    if pairs is not None:
        wanted = {p for pair in pairs for p in pair}
        j = j[j["protocol"].astype(str).isin(wanted)]
    if len(j) == 0:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    j = j.assign(condition=condition_labels(j))
    leveled = with_levels(j, levels)
    keys = ["level", "task", "group", "judge", "condition"]
    items = (
        leveled.groupby([*keys, "item_key"], dropna=False, sort=False)
        .agg(score=("correct", "mean"), protocol=("protocol", "first"))
        .reset_index()
    )
    rows = []
    # A group with one task repeats its task's tests exactly; the test is the slow part.
    cache: dict[tuple[bytes, bytes], dict[str, float]] = {}
    for scope, block in items.groupby(["level", "task", "group", "judge"], dropna=False,
                                      sort=False):
        level, task, group, judge = scope
        wide = block.pivot(index="item_key", columns="condition", values="score").sort_index()
        protocols = block.groupby("condition", sort=False)["protocol"].first()
        conds = sorted(wide.columns, key=lambda c: (protocol_rank(protocols[c]), str(c)))
        for earlier, later in combinations(conds, 2):
            if pairs is not None and (str(protocols[later]), str(protocols[earlier])) not in pairs:
                continue
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
                "condition_a": later, "condition_b": earlier, **res, "ci_method": CI_DIFF_TAG,
                "n_resamples": n_resamples,
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


def headline_table(comparisons: pd.DataFrame, judges: Sequence[str] = ()) -> pd.DataFrame:
    """The paper's comparisons at group level, per task group and judge: debate vs
    consultancy, debate vs QA, QA with vs without the article, open debate vs open
    consultancy (`headline_pairs()`), in that order; judges in the order given (the spec's,
    weak to strong), then any others. `comparison` reads "debate − consultancy"."""
    if comparisons is None or len(comparisons) == 0:
        return pd.DataFrame(columns=HEADLINE_COLUMNS)
    c = comparisons[comparisons["level"].eq("group")]
    rank = {pair: i for i, pair in enumerate(headline_pairs())}
    pair = list(zip(c["protocol_a"].astype(str), c["protocol_b"].astype(str), strict=True))
    c = c.assign(_pair=[rank.get(p, -1) for p in pair])
    c = c[c["_pair"] >= 0]
    if len(c) == 0:
        return pd.DataFrame(columns=HEADLINE_COLUMNS)
    order = {name: i for i, name in enumerate(judge_order(c, judges))}
    c = c.assign(
        comparison=c["condition_a"].astype(str) + " − " + c["condition_b"].astype(str),
        _g=c["group"].map(lambda g: group_rank(g)),
        _j=c["judge"].map(lambda v: order.get(str(v), len(order))),
    )
    c = c.sort_values(["_g", "_j", "_pair", "comparison"], kind="stable")
    return c[HEADLINE_COLUMNS].reset_index(drop=True)
