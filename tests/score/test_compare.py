import numpy as np
import pandas as pd
import pytest
from scipy import stats

from oversight.score import comparisons_table, headline_table, paired_permutation
from oversight.score.compare import headline_pairs


def frame(n_items=25, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_items):
        for protocol, p in (("qa", 0.55), ("debate", 0.75)):
            for order in (0, 1):
                ok = rng.random() > 0.05
                rows.append({"task": "quality", "group": "extractive", "item_id": str(i),
                             "protocol": protocol, "judge": "J",
                             "agent": None if protocol == "qa" else "S",
                             "agent_b": None if protocol == "qa" else "S", "order": order,
                             "is_correct": bool(rng.random() < p) if ok else False,
                             "verdict_status": "ok" if ok else "invalid"})
    # Items judged only under debate must not enter the paired test.
    for i in range(n_items, n_items + 3):
        rows.append({"task": "quality", "group": "extractive", "item_id": str(i),
                     "protocol": "debate", "judge": "J", "agent": "S", "agent_b": "S",
                     "order": 0, "is_correct": True, "verdict_status": "ok"})
    # A cross-play tournament game is not a protocol arm.
    rows.append({"task": "quality", "group": "extractive", "item_id": "0",
                 "protocol": "debate", "judge": "J", "agent": "S", "agent_b": "W",
                 "order": 0, "is_correct": True, "verdict_status": "ok"})
    return pd.DataFrame(rows)


def by_hand(j, protocol, n_items):
    sel = j[(j.protocol == protocol) & (j.agent_b.isna() | (j.agent_b == j.agent))]
    sel = sel[sel.item_id.astype(int) < n_items]
    correct = sel.is_correct & (sel.verdict_status == "ok")
    # The table pairs items in sorted (task, item_id) order, item ids compared as text.
    return correct.groupby(sel.item_id.astype(str)).mean().sort_index().to_numpy()


def test_p_value_equals_direct_scipy_call():
    j = frame()
    table = comparisons_table(j, n_resamples=999, seed=7)
    assert len(table) == 2  # task and group level, one pair each
    row = table[table.level == "task"].iloc[0]
    assert (row.protocol_a, row.protocol_b) == ("debate", "qa")
    a, b = by_hand(j, "debate", 25), by_hand(j, "qa", 25)
    direct = stats.permutation_test(
        (a, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
        permutation_type="samples", n_resamples=999, random_state=7, vectorized=True)
    assert row.p_value == pytest.approx(direct.pvalue, abs=1e-12)
    assert row.n_items == 25
    d = a - b
    assert row["diff"] == pytest.approx(d.mean())
    assert row.acc_a == pytest.approx(a.mean()) and row.acc_b == pytest.approx(b.mean())
    # The interval inverts the same test: scipy, with the same draws, does not reject a
    # shift just inside either end and rejects one just outside.
    def p_shift(delta):
        return stats.permutation_test(
            (a - delta, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
            permutation_type="samples", n_resamples=999, random_state=7, vectorized=True).pvalue
    assert row.ci_low < row["diff"] < row.ci_high
    for end, out in ((row.ci_low, -1e-6), (row.ci_high, 1e-6)):
        assert p_shift(end - out) >= 0.05 and p_shift(end + out) < 0.05
    assert row.significant == (row.p_value < 0.05)
    g = table[table.level == "group"].iloc[0]
    assert g.p_value == row.p_value and pd.isna(g.task)


def test_default_resamples_and_exact_small_case():
    a = np.array([1.0, 1.0, 0.5, 1.0, 0.0])
    b = np.array([0.0, 0.5, 0.5, 0.0, 0.0])
    res = paired_permutation(a, b)  # 2**5 < 10,000: scipy enumerates every swap
    diffs = a - b
    signs = np.array(np.meshgrid(*[[1, -1]] * 5)).reshape(5, -1).T
    null = np.abs((signs * diffs).mean(axis=1))
    exact = np.mean(null >= abs(diffs.mean()) - 1e-12)
    assert res["p_value"] == pytest.approx(exact)


def test_no_common_items_gives_no_row_and_empty_input():
    j = frame(5)
    j = j[~((j.protocol == "qa") & (j.item_id.astype(int) < 5))]
    j = pd.concat([j, pd.DataFrame([{"task": "quality", "group": "extractive",
                                     "item_id": "99", "protocol": "qa", "judge": "J",
                                     "order": 0, "is_correct": True,
                                     "verdict_status": "ok"}])])
    assert len(comparisons_table(j, n_resamples=99)) == 0
    assert len(comparisons_table(pd.DataFrame(columns=["protocol"]))) == 0


def test_numpy_test_equals_scipy_draw_for_draw():
    # The report computes the test without scipy; it must be scipy's test exactly.
    rng = np.random.default_rng(3)
    f = lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis)  # noqa: E731
    for _ in range(40):
        n = int(rng.integers(2, 30))
        a, b = rng.integers(0, 3, n) / 2, rng.integers(0, 3, n) / 2
        resamples, seed = int(rng.choice([99, 999, 4096, 10_000])), int(rng.integers(0, 2**31))
        direct = stats.permutation_test((a, b), f, permutation_type="samples", vectorized=True,
                                        n_resamples=resamples, random_state=seed)
        assert paired_permutation(a, b, resamples, seed)["p_value"] == direct.pvalue


def test_one_item_has_no_test_and_big_seeds_work():
    one = paired_permutation(np.array([1.0]), np.array([0.0]))
    assert one["diff"] == 1.0 and np.isnan(one["p_value"]) and np.isnan(one["ci_low"])
    a, b = np.ones(40), np.zeros(40)
    assert paired_permutation(a, b, 999, seed=2**40)["p_value"] == pytest.approx(2 / 1000)


def test_headline_keeps_the_papers_pairs_in_order_with_judges_in_spec_order():
    rows = []
    for judge in ("weak", "strong"):
        for i in range(6):
            for protocol, ok in (("qa", i % 2 == 0), ("qa_with_article", True), ("consultancy", i % 3 == 0),
                                 ("debate", i != 1), ("open_consultancy", i % 2 == 0), ("open_debate", True)):
                agent = None if protocol.startswith("qa") else "S"
                rows.append({"task": "quality", "group": "extractive", "item_id": str(i), "protocol": protocol,
                             "judge": judge, "agent": agent, "agent_b": agent, "is_correct": ok,
                             "verdict_status": "ok"})
    j = pd.DataFrame(rows)
    head = headline_table(comparisons_table(j, n_resamples=99), judges=["weak", "strong"])
    assert list(head.judge) == ["weak"] * 4 + ["strong"] * 4
    assert list(head.comparison[:4]) == ["debate − consultancy", "debate − qa", "qa_with_article − qa",
                                         "open_debate − open_consultancy"]
    fast = comparisons_table(j, n_resamples=99, pairs=headline_pairs(), levels=("group",))
    assert len(fast) == 8
    full = comparisons_table(j, n_resamples=99)
    assert len(full) > len(fast) * 2
    merged = fast.merge(full, on=["level", "judge", "condition_a", "condition_b"], suffixes=("", "_full"))
    assert (merged.p_value == merged.p_value_full).all()  # the run's headline = the report's


def test_failed_episodes_and_agent_qa_stay_out_of_comparisons():
    j = frame(6)
    j.loc[j.index[:4], "verdict_status"] = "error"
    agent = j[j.protocol == "qa"].assign(judge="S", qa_role="agent")
    both = pd.concat([j, agent], ignore_index=True)
    table = comparisons_table(both, n_resamples=99)
    assert set(table.judge) == {"J"}
    kept = comparisons_table(j, n_resamples=99, errors="wrong")
    assert (table.acc_b != kept.acc_b).any() or (table.n_items != kept.n_items).any()


def test_the_interval_agrees_with_its_p_value_and_behaves_at_small_n():
    rng = np.random.default_rng(3)
    for case in range(300):
        n = int(rng.integers(2, 40))
        a = rng.integers(0, 3, n) / 2  # item scores 0, 0.5, 1 (two orders)
        b = np.clip(a - rng.integers(-1, 3, n) / 2 * rng.random(), 0, 1).round(1)
        res = paired_permutation(a, b, n_resamples=500, seed=case)
        inside = res["ci_low"] <= 0 <= res["ci_high"]
        assert inside == (res["p_value"] >= 0.05), (a, b, res)
        assert -1 <= res["ci_low"] <= res["diff"] <= res["ci_high"] <= 1
    # 4 items: no swap pattern can give p < 0.05 (the smallest is 2/16), so no shift is
    # rejected: the interval is the whole range, not a confident [+0.13, +0.62]
    res = paired_permutation(np.array([1.0, 1.0, 0.5, 1.0]), np.array([0.5, 0.5, 0.5, 0.5]))
    assert res["p_value"] == pytest.approx(0.25) and (res["ci_low"], res["ci_high"]) == (-1.0, 1.0)
