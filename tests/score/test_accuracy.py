import numpy as np
import pandas as pd
import pytest
from scipy import stats

from oversight.score import agent_qa_table, item_scores, summary_table


def rows(task, item, outcomes, protocol="qa", judge="J", group="extractive", **extra):
    """One row per (is_correct, status) pair in `outcomes`, orders alternating."""
    out = []
    for k, (correct, status) in enumerate(outcomes):
        order = k % 2
        ca = 1 if order == 0 else 2
        answer = None if status != "ok" else (ca if correct else 3 - ca)
        out.append({"task": task, "group": group, "item_id": item, "protocol": protocol,
                    "judge": judge, "agent": None, "agent_b": None, "order": order,
                    "correct_answer": ca, "judge_answer": answer,
                    "is_correct": None if status == "error" else bool(correct),
                    "verdict_status": status, **extra})
    return out


def only(table, **where):
    sel = table
    for k, v in where.items():
        sel = sel[sel[k].isna()] if v is None else sel[sel[k] == v]
    assert len(sel) == 1, sel
    return sel.iloc[0]


def test_orders_averaged_first_ci_and_invalid_rate():
    j = pd.DataFrame(
        rows("t", "a", [(True, "ok"), (False, "ok")])        # item score 0.5
        + rows("t", "b", [(True, "ok"), (True, "ok")])       # 1.0
        + rows("t", "c", [(False, "invalid"), (True, "ok")])  # 0.5, one invalid row
    )
    s = summary_table(j)
    r = only(s, level="task", task="t")
    # 2 of 3 items' worth of correctness: scipy's Wilson interval for 2 successes in 3
    wilson = stats.binomtest(2, 3).proportion_ci(0.95, method="wilson")
    assert r.accuracy == pytest.approx(2 / 3)
    assert r.ci_low == pytest.approx(wilson.low)
    assert r.ci_high == pytest.approx(wilson.high)
    assert r.n_items == 3 and r.n_rows == 6
    assert r.invalid_rate == pytest.approx(1 / 6)
    assert r.error_rate == 0


def test_item_average_differs_from_row_average():
    # Item a has 4 rows (consultancy: 2 sides x 2 orders), 3 right; item b 2 rows, none right.
    j = pd.DataFrame(
        rows("t", "a", [(True, "ok"), (True, "ok"), (True, "ok"), (False, "ok")],
             protocol="consultancy")
        + rows("t", "b", [(False, "ok"), (False, "ok")], protocol="consultancy"))
    r = only(summary_table(j), level="task")
    assert r.accuracy == pytest.approx((0.75 + 0.0) / 2)  # not the row mean 0.5
    assert r.n_rows == 6


def test_failed_episodes_are_left_out_and_counted_invalid_and_refused_count_wrong():
    j = pd.DataFrame(rows("t", "a", [(True, "error"), (True, "ok")])
                     + rows("t", "b", [(True, "refused"), (True, "ok")]))
    j.loc[2, "is_correct"] = True  # a refused verdict must never count as correct
    r = only(summary_table(j), level="task")
    assert r.accuracy == pytest.approx((1.0 + 0.5) / 2)  # a: its one verdict; b: refused is wrong
    assert r.n_errors == 1 and r.n_rows == 3 and r.errors == "exclude"
    assert r.invalid_rate == pytest.approx(1 / 3)
    assert r.error_rate == pytest.approx(1 / 4)
    wrong = only(summary_table(j, errors="wrong"), level="task")
    assert wrong.accuracy == pytest.approx(0.5) and wrong.n_errors == 1 and wrong.n_rows == 4
    with pytest.raises(ValueError, match="errors"):
        summary_table(j, errors="drop")


def test_a_cell_whose_episodes_all_failed_shows_failures_not_a_score():
    j = pd.DataFrame(rows("t", "a", [(True, "ok"), (True, "ok")], judge="good")
                     + rows("t", "a", [(True, "error"), (True, "error")], judge="dead")
                     + rows("t", "b", [(True, "error"), (True, "error")], judge="dead"))
    dead = only(summary_table(j), level="task", judge="dead")
    assert pd.isna(dead.accuracy) and dead.n_items == 0 and dead.n_errors == 4
    assert only(summary_table(j, errors="wrong"), level="task", judge="dead").accuracy == 0.0


def test_no_interval_from_fewer_than_two_items_and_clipping():
    j = pd.DataFrame(rows("t", "a", [(True, "ok"), (False, "ok")]))
    r = only(summary_table(j), level="task")
    assert r.accuracy == 0.5 and pd.isna(r.ci_low) and pd.isna(r.ci_high)
    assert r.ci_method == "wilson95_items"
    # two perfect items: not a zero-width [1, 1] but Wilson's [0.34, 1]
    j = pd.DataFrame(rows("t", "a", [(True, "ok")] * 2) + rows("t", "b", [(True, "ok")] * 2))
    r = only(summary_table(j), level="task")
    wilson = stats.binomtest(2, 2).proportion_ci(0.95, method="wilson")
    assert r.accuracy == 1.0 and r.ci_high == pytest.approx(1.0)
    assert r.ci_low == pytest.approx(wilson.low) and 0.3 < r.ci_low < 0.4


def test_the_agents_own_qa_is_its_own_table_not_a_judge():
    j = pd.DataFrame(rows("t", "a", [(True, "ok"), (False, "ok")], judge="J")
                     + rows("t", "b", [(True, "ok"), (True, "ok")], judge="J")
                     + rows("t", "a", [(True, "ok"), (True, "ok")], judge="S", qa_role="agent")
                     + rows("t", "b", [(False, "ok"), (True, "ok")], judge="S", qa_role="agent"))
    s = summary_table(j)
    assert set(s.judge) == {"J"}
    a = agent_qa_table(j)
    r = only(a, level="task")
    assert r.agent == "S" and r.accuracy == pytest.approx(0.75) and r.n_items == 2
    assert set(item_scores(j).judge) == {"J"}


def test_group_rows_pool_items_of_all_tasks_by_task_and_item():
    # Both tasks use item id "1": pooled they must remain two items.
    j = pd.DataFrame(rows("t1", "1", [(True, "ok"), (True, "ok")])
                     + rows("t2", "1", [(False, "ok"), (True, "ok")])
                     + rows("t2", "2", [(False, "ok"), (False, "ok")])
                     + rows("m", "1", [(True, "ok"), (True, "ok")], group="closed"))
    s = summary_table(j)
    g = only(s, level="group", group="extractive")
    assert pd.isna(g.task)
    assert g.n_items == 3 and g.n_rows == 6
    scores = np.array([1.0, 0.5, 0.0])
    assert g.accuracy == pytest.approx(scores.mean())
    z = stats.norm.ppf(0.975)  # Wilson's interval for p = 0.5 from n = 3 items, by its formula
    centre, half = (0.5 + z * z / 6) / (1 + z * z / 3), z / (1 + z * z / 3) * np.sqrt(0.25 / 3 + z * z / 36)
    assert g.ci_low == pytest.approx(centre - half) and g.ci_high == pytest.approx(centre + half)
    assert only(s, level="group", group="closed").n_items == 1
    assert set(s[s.level == "task"].task) == {"t1", "t2", "m"}
    # Group rows come first, in the paper's group order.
    assert list(s.level[:2]) == ["group", "group"]
    assert list(s.group[:2]) == ["extractive", "closed"]


def test_conditions_are_kept_apart():
    j = pd.DataFrame(rows("t", "a", [(True, "ok")] * 2, judge="J1")
                     + rows("t", "a", [(False, "ok")] * 2, judge="J2")
                     + rows("t", "a", [(False, "ok")] * 2, protocol="debate", judge="J1"))
    s = summary_table(j)
    t = s[s.level == "task"]
    assert len(t) == 3
    assert only(t, judge="J1", protocol="qa").accuracy == 1.0
    assert only(t, judge="J2", protocol="qa").accuracy == 0.0
    assert list(t.protocol) == ["qa", "qa", "debate"]  # paper order


def test_item_scores_helper_and_minimal_columns():
    j = pd.DataFrame({"task": ["t"] * 3, "group": ["closed"] * 3, "item_id": [1, 1, 2],
                      "protocol": ["qa"] * 3, "judge": ["J"] * 3,
                      "is_correct": [True, False, True], "verdict_status": ["ok"] * 3})
    sc = item_scores(j, by=["protocol", "judge"])
    assert list(sc.score) == [0.5, 1.0]
    assert list(sc.n_rows) == [2, 1]
    assert only(summary_table(j), level="task").accuracy == pytest.approx(0.75)


def test_empty_frame():
    s = summary_table(pd.DataFrame(columns=["task", "protocol"]))
    assert len(s) == 0 and "accuracy" in s.columns
