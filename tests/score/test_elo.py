import numpy as np
import pandas as pd
import pytest
from score_synth import tournament_frame

from oversight.score import debate_games, elo_slope_table, elo_table, fit_elo

TRUE = {"p1": -250.0, "p2": -100.0, "p3": 0.0, "p4": 120.0, "p5": 230.0}


def simulate(n_games=4000, scale=400.0, seed=0, ratings=TRUE):
    rng = np.random.default_rng(seed)
    players = list(ratings)
    rows = []
    for _ in range(n_games):
        a, b = rng.choice(players, 2, replace=False)
        p = 1 / (1 + 10 ** ((ratings[b] - ratings[a]) / scale))
        rows.append((a, b, a if rng.random() < p else b))
    return pd.DataFrame(rows, columns=["player_a", "player_b", "winner"])


def mm_bradley_terry(games, iters=10_000):
    """Hunter's (2004) MM iteration for Bradley–Terry strengths: independent of BFGS."""
    players = sorted(set(games.player_a) | set(games.player_b))
    k = {p: i for i, p in enumerate(players)}
    n = np.zeros((len(players), len(players)))
    wins = np.zeros(len(players))
    for a, b, w in games.itertuples(index=False):
        n[k[a], k[b]] += 1
        n[k[b], k[a]] += 1
        wins[k[w]] += 1
    pi = np.ones(len(players))
    for _ in range(iters):
        denom = (n / (pi[:, None] + pi[None, :])).sum(axis=1)
        new = wins / denom
        new /= np.exp(np.log(new).mean())
        if np.max(np.abs(new - pi)) < 1e-14:
            break
        pi = new
    return dict(zip(players, np.log10(pi), strict=True))  # log10 strengths, mean 0


def test_recovers_true_ratings_within_cis():
    fit = fit_elo(simulate(n_games=2000, seed=1), bootstrap=300, seed=0).set_index("player")
    for player, true in TRUE.items():
        assert fit.loc[player, "ci_low"] <= true <= fit.loc[player, "ci_high"], player
    assert fit["elo"].mean() == pytest.approx(0, abs=1e-6)
    assert list(fit.index) == ["p5", "p4", "p3", "p2", "p1"]  # best first
    assert fit["n_games"].sum() == 2 * 2000


def test_rating_cis_cover_at_about_the_nominal_rate():
    hits = []
    for seed in range(10):
        fit = fit_elo(simulate(n_games=1000, seed=seed), bootstrap=100, seed=seed)
        true = fit["player"].map(TRUE)
        hits += list((fit["ci_low"] <= true) & (true <= fit["ci_high"]))
    # 50 intervals at a nominal 95%: far fewer hits would mean CIs that are too narrow.
    assert np.mean(hits) >= 0.84


@pytest.mark.parametrize("scale", [400, 500])
def test_matches_independent_max_likelihood_fit(scale):
    games = simulate(n_games=1500, seed=3)
    mine = fit_elo(games, scale=scale, bootstrap=0).set_index("player")["elo"]
    log10_strength = mm_bradley_terry(games)
    for player, s in log10_strength.items():
        # E = scale * log10(strength): the same model on the Elo scale.
        assert mine[player] == pytest.approx(scale * s, abs=1e-3)
    assert mine.isna().sum() == 0


def test_anchor_draws_and_bad_winner():
    games = simulate(n_games=800, seed=1)
    free = fit_elo(games, bootstrap=0).set_index("player")["elo"]
    anchored = fit_elo(games, bootstrap=20, anchor="p3").set_index("player")
    assert anchored.loc["p3", "elo"] == pytest.approx(0, abs=1e-9)
    assert anchored.loc["p3", "ci_low"] == pytest.approx(0, abs=1e-9)
    diff = (anchored["elo"] - free).to_numpy()
    assert np.allclose(diff, diff[0], atol=1e-4)
    draws = pd.DataFrame({"player_a": ["x", "y"] * 5, "player_b": ["y", "x"] * 5,
                          "winner": [None] * 10})
    assert np.allclose(fit_elo(draws, bootstrap=0)["elo"], 0, atol=1e-6)
    bad = pd.DataFrame({"player_a": ["x"], "player_b": ["y"], "winner": ["z"]})
    with pytest.raises(ValueError, match="neither"):
        fit_elo(bad)


def test_bootstrap_is_seeded():
    games = simulate(n_games=300, seed=2)
    a = fit_elo(games, bootstrap=50, seed=4)
    b = fit_elo(games, bootstrap=50, seed=4)
    c = fit_elo(games, bootstrap=50, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["ci_low"], c["ci_low"])


def debate(agent, agent_b, correct_answer, judge_answer, status="ok"):
    return {"task": "t", "group": "closed", "item_id": "i", "protocol": "debate",
            "judge": "J", "agent": agent, "agent_b": agent_b, "order": correct_answer - 1,
            "correct_answer": correct_answer, "judge_answer": judge_answer,
            "is_correct": judge_answer == correct_answer, "verdict_status": status,
            "rounds": 1, "turn_style": "simultaneous"}


def test_debate_games_winner_and_sides():
    j = pd.DataFrame([
        debate("A", "B", 1, 1),  # Alice (A) argued the correct answer and won
        debate("A", "B", 2, 1),  # Alice argued the incorrect answer and won
        debate("B", "A", 1, 2),  # Bob (A) argued incorrect and won
        debate("A", "B", 1, None, status="invalid"),  # dropped
        {**debate("A", "B", 1, 1), "protocol": "consultancy"},  # not a debate
    ])
    g = debate_games(j)
    assert list(g.winner) == ["A", "A", "A"]
    assert list(g.player_a) == ["A", "A", "B"]
    s = debate_games(j, split_sides=True)
    assert list(s.player_a) == ["A|correct", "A|incorrect", "B|correct"]
    assert list(s.player_b) == ["B|incorrect", "B|correct", "A|incorrect"]
    assert list(s.winner) == ["A|correct", "A|incorrect", "A|incorrect"]


def test_elo_table_kinds_and_selfplay_accuracy():
    elos = {"w": -200.0, "m": 0.0, "s": 200.0}
    j = tournament_frame(elos, n_games=400, n_selfplay_items=20, seed=1)
    # Main-experiment debates (3 rounds, self-play only) are not a tournament.
    main = j[j.agent == j.agent_b].assign(rounds=3)
    t = elo_table(pd.concat([j, main]), bootstrap=30)
    assert set(t.kind) == {"aggregate", "correct", "incorrect"}
    assert set(t.rounds) == {1}
    agg = t[t.kind == "aggregate"].set_index("player")
    assert list(agg.sort_values("elo").index) == ["w", "m", "s"]
    sp = j[(j.agent == "m") & (j.agent_b == "m")]
    by_item = (sp.is_correct & (sp.verdict_status == "ok")).groupby(sp.item_id).mean()
    assert agg.loc["m", "selfplay_accuracy"] == pytest.approx(by_item.mean())
    assert agg.loc["m", "selfplay_n_items"] == 20
    split = t[t.kind != "aggregate"]
    assert split.selfplay_accuracy.isna().all() and len(split) == 6


def test_slope_ci_covers_truth():
    elos = {"a": -300.0, "b": -150.0, "c": 0.0, "d": 150.0, "e": 300.0}
    covered, slopes = [], []
    for seed in range(10):
        j = tournament_frame(elos, n_games=600, n_selfplay_items=150, seed=seed,
                             base_acc=0.7, slope_per_100=0.05)
        s = elo_slope_table(j, bootstrap=80, seed=seed).iloc[0]
        assert s.n_players == 5
        assert s.ci_low < s.slope_per_100 < s.ci_high
        assert s.ci_low > 0  # a clear positive relation is detected
        covered.append(s.ci_low <= 0.05 <= s.ci_high)
        slopes.append(s.slope_per_100)
    assert np.mean(covered) >= 0.7
    assert np.mean(slopes) == pytest.approx(0.05, abs=0.006)


def test_no_tournament_no_rows():
    j = pd.DataFrame([debate("A", "A", 1, 1), debate("A", "A", 2, 1)])
    assert len(elo_table(j)) == 0
    assert len(elo_slope_table(j)) == 0


def test_split_ratings_come_from_cross_play_only():
    """Self-play debates are no games for either fit: with them the split ratings rested
    mostly on a config's debates against itself."""
    elos = {"w": -200.0, "m": 0.0, "s": 200.0}
    j = tournament_frame(elos, n_games=300, n_selfplay_items=60, seed=2)
    cross = j[j.agent != j.agent_b]
    with_sp = elo_table(j, bootstrap=0).set_index(["kind", "player"])
    without = elo_table(cross, bootstrap=0).set_index(["kind", "player"])
    for kind in ("aggregate", "correct", "incorrect"):
        for p in elos:
            assert with_sp.loc[(kind, p), "elo"] == pytest.approx(without.loc[(kind, p), "elo"], abs=1e-6)
            assert with_sp.loc[(kind, p), "n_games"] == without.loc[(kind, p), "n_games"]
    split_games = with_sp.xs("correct")["n_games"].sum() + with_sp.xs("incorrect")["n_games"].sum()
    assert split_games == 2 * len(cross)
    assert len(debate_games(j, split_sides=True)) == len(cross)


def test_elo_per_task_group_beside_the_pooled_fit():
    """A debater that wins on extractive tasks and loses on closed ones: the pooled fit
    averages it out, the group fits show both."""
    ext = tournament_frame({"a": 200.0, "b": -200.0}, n_games=400, n_selfplay_items=10, seed=1)
    closed = tournament_frame({"a": -200.0, "b": 200.0}, n_games=400, n_selfplay_items=10, seed=2)
    closed = closed.assign(task="mmlu", group="closed", item_id="c" + closed.item_id)
    j = pd.concat([ext, closed], ignore_index=True)
    pooled = elo_table(j, bootstrap=0)
    assert set(pooled.group) == {"all"}
    t = elo_table(j, bootstrap=20, by_group=True)
    assert set(t.group) == {"all", "extractive", "closed"}
    agg = t[t.kind == "aggregate"].set_index(["group", "player"])["elo"]
    assert agg[("extractive", "a")] > 100 and agg[("closed", "a")] < -100
    assert abs(agg[("all", "a")]) < 60
    assert agg[("all", "a")] == pytest.approx(pooled.set_index(["kind", "player"]).loc[("aggregate", "a"), "elo"])
    slopes = elo_slope_table(j, bootstrap=10, by_group=True)
    assert set(slopes.group) == {"all", "extractive", "closed"}


def test_every_judge_of_a_tournament_is_fitted_separately():
    a = tournament_frame({"x": 150.0, "y": -150.0}, n_games=300, n_selfplay_items=5, judge="J1", seed=3)
    b = tournament_frame({"x": -150.0, "y": 150.0}, n_games=300, n_selfplay_items=5, judge="J2", seed=4)
    t = elo_table(pd.concat([a, b], ignore_index=True), bootstrap=0)
    agg = t[t.kind == "aggregate"].set_index(["judge", "player"])["elo"]
    assert agg[("J1", "x")] > 50 and agg[("J2", "x")] < -50
    assert (t.groupby("judge").n_games.sum() == 2 * 2 * 300).all()  # 2 players a game, aggregate + split
