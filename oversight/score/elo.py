"""Elo ratings of debaters from judged cross-play debates (docs/METHOD.md, "Statistics").

Model: player i beats player j with probability 1 / (1 + 10 ** ((E_j - E_i) / scale)),
a Bradley–Terry model on a base-10 log scale. Ratings maximise the likelihood of the
observed games (BFGS on the negative log-likelihood with its analytic gradient). The
likelihood only sees rating *differences*, so ratings are pinned by making them average 0
over the players (or, with `anchor=`, by putting that player at 0). 95% CIs are
percentiles of ratings refitted on games resampled with replacement.

From debate judgments:
- `debate_games` turns each judged cross-play debate into a game: Alice (`agent`) defends
  answer 1, Bob (`agent_b`) answer 2, and the judge's answer names the winner. With
  `split_sides=True` a player is `model|correct` or `model|incorrect` by the side it
  argued, so the gap between the two is the advantage of arguing for the truth.
  Self-play debates are never games. A config cannot beat itself; split by side, a
  self-play debate would pit a config's correct half against its own incorrect half, so
  the split ratings would rest on other games than the aggregate ones (mostly self-play in
  a tournament with self-play). Khan et al.'s ratings.py rates cross-play only, as here.
- `elo_table` fits aggregate and split ratings per tournament (debate rows sharing a
  judge, round count and turn style that include at least one cross-play game), so every
  judge of a tournament gets ratings of its own, and adds the judge's accuracy on each
  debater's self-play debates. `by_group=True` adds fits per task group (extractive,
  closed, …) beside the pooled one (`group` = "all").
- `elo_slope_table` fits judge accuracy (self-play) against aggregate Elo by least squares
  and bootstraps the slope, resampling games and self-play items together.

A debater config is identified by its `agent` label: a tournament that mixes, say,
best-of-1 and best-of-4 versions of one model needs distinct labels for them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from oversight.protocol import registry
from oversight.score.frame import check_errors_mode, is_cross_play, mean_ci, normalize_judgments, scored_rows

LN10 = float(np.log(10.0))

POOLED = "all"  # the `group` of fits over every task group together
TOURNAMENT = "tournament"  # the variant of tournament rows (engine/tournament.py)

ELO_COLUMNS = [
    "judge", "rounds", "turn_style", "group", "kind", "player", "elo", "ci_low", "ci_high", "n_games",
    "score", "selfplay_accuracy", "selfplay_ci_low", "selfplay_ci_high", "selfplay_n_items",
    "selfplay_n_errors", "scale",
]  # fmt: skip
SLOPE_COLUMNS = [
    "judge", "rounds", "turn_style", "group", "n_players", "slope_per_100", "ci_low", "ci_high",
    "intercept", "scale",
]  # fmt: skip

DEFAULT_SCALE = 400.0  # the usual Elo scale; the paper's text gives 500 (a spec/report setting)


@dataclass
class _Games:
    """Games collapsed to distinct (a, b, score) outcomes with counts, for fast refits."""

    players: list[str]
    ia: np.ndarray
    ib: np.ndarray
    s: np.ndarray
    w: np.ndarray

    @classmethod
    def from_frame(cls, games: pd.DataFrame) -> _Games:
        for col in ("player_a", "player_b", "winner"):
            if col not in games.columns:
                raise ValueError(f"games need columns player_a, player_b, winner; missing {col!r}")
        a = games["player_a"].astype(str).to_numpy()
        b = games["player_b"].astype(str).to_numpy()
        winner = games["winner"].astype(object)
        s = np.full(len(games), 0.5)  # a null winner is a draw
        known = winner.notna().to_numpy()
        w_str = winner.astype(str).to_numpy()
        s[known & (w_str == a)] = 1.0
        s[known & (w_str == b) & (w_str != a)] = 0.0
        bad = known & (w_str != a) & (w_str != b)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"winner {w_str[i]!r} is neither {a[i]!r} nor {b[i]!r}")
        players = sorted(set(a) | set(b))
        index = {p: k for k, p in enumerate(players)}
        ia = np.array([index[p] for p in a], dtype=int)
        ib = np.array([index[p] for p in b], dtype=int)
        # A player's game against itself says nothing about ratings.
        keep = ia != ib
        if not keep.any():
            empty = np.zeros(0)
            return cls(players, empty.astype(int), empty.astype(int), empty, empty)
        triples = np.stack([ia[keep], ib[keep], s[keep]], axis=1)
        uniq, counts = np.unique(triples, axis=0, return_counts=True)
        return cls(players, uniq[:, 0].astype(int), uniq[:, 1].astype(int), uniq[:, 2],
                   counts.astype(float))


def _fit_theta(g: _Games, w: np.ndarray, l2: float = 0.0, start: np.ndarray | None = None
               ) -> np.ndarray:
    """Max-likelihood strengths in natural log-odds units, mean 0 over players with games.

    Players without a game under weights `w` get NaN: nothing identifies them. `start`
    (full-length strengths) warm-starts the optimiser, which bootstrap refits benefit from.
    """
    n = len(g.players)
    theta = np.full(n, np.nan)
    used = w > 0
    present = np.unique(np.concatenate([g.ia[used], g.ib[used]]))
    if len(present) == 0:
        return theta
    if len(present) == 1:
        theta[present] = 0.0
        return theta
    local = np.full(n, -1)
    local[present] = np.arange(len(present))
    ia, ib, s, ww = local[g.ia[used]], local[g.ib[used]], g.s[used], w[used]
    m = len(present)

    def expand(z: np.ndarray) -> np.ndarray:
        # The last strength is minus the sum of the others: the mean-0 constraint.
        return np.append(z, -z.sum())

    def nll(z: np.ndarray) -> tuple[float, np.ndarray]:
        t = expand(z)
        d = t[ia] - t[ib]
        loss = float(np.sum(ww * (s * np.logaddexp(0.0, -d) + (1 - s) * np.logaddexp(0.0, d))))
        p = 0.5 * (1.0 + np.tanh(0.5 * d))  # a numerically safe sigmoid
        r = ww * (p - s)
        grad: np.ndarray = np.bincount(ia, weights=r, minlength=m) - np.bincount(
            ib, weights=r, minlength=m)
        if l2:
            loss += l2 * float(t @ t)
            grad = grad + 2 * l2 * t
        return loss, grad[:-1] - grad[-1]

    x0 = np.zeros(m - 1)
    if start is not None and np.isfinite(start[present]).all():
        init = start[present] - start[present].mean()
        x0 = init[:-1]
    res = minimize(nll, x0, jac=True, method="BFGS", options={"gtol": 1e-9})
    theta[present] = expand(res.x)
    return theta


def fit_elo(
    games: pd.DataFrame,
    scale: float = 400,
    bootstrap: int = 500,
    seed: int = 0,
    *,
    anchor: str | None = None,
    l2: float = 0.0,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Maximum-likelihood Elo ratings with bootstrap 95% CIs (`progress(1)` after each refit).

    `games` has columns player_a, player_b, winner (one of the two names; a null winner is
    a draw, scored 1/2 each). Ratings average 0, or `anchor` is fixed at 0. `l2` adds a
    ridge penalty l2·Σθ² on strengths in natural units (0 = pure maximum likelihood; a
    small value keeps ratings finite when a player won or lost every game). Returns
    player, elo, ci_low, ci_high, n_games, score (mean points per game), best first.

    The games must connect all players (a round robin does): ratings in separate
    components of the game graph have no common scale.
    """
    g = _Games.from_frame(games)
    k = scale / LN10
    if anchor is not None and anchor not in g.players:
        raise ValueError(f"anchor {anchor!r} is not a player")

    def to_elo(theta: np.ndarray) -> np.ndarray:
        if anchor is None:
            return theta * k
        return (theta - theta[g.players.index(anchor)]) * k

    theta = _fit_theta(g, g.w, l2)
    elo = to_elo(theta)
    ci_low = np.full(len(g.players), np.nan)
    ci_high = np.full(len(g.players), np.nan)
    total = int(g.w.sum())
    if bootstrap > 0 and total > 0:
        rng = np.random.default_rng(seed)
        # Resampling games with replacement = multinomial counts over distinct outcomes.
        probs = g.w / total
        fits = []
        for _ in range(bootstrap):
            fits.append(to_elo(_fit_theta(g, rng.multinomial(total, probs).astype(float), l2, theta)))
            if progress is not None:
                progress(1)
        draws = np.array(fits)
        with warnings.catch_warnings():
            # A player absent from every resample has an all-NaN column: its CI stays NaN.
            warnings.simplefilter("ignore", RuntimeWarning)
            ci_low, ci_high = np.nanpercentile(draws, [2.5, 97.5], axis=0)
    n_games = np.bincount(g.ia, weights=g.w, minlength=len(g.players)) + np.bincount(
        g.ib, weights=g.w, minlength=len(g.players))
    points = np.bincount(g.ia, weights=g.w * g.s, minlength=len(g.players)) + np.bincount(
        g.ib, weights=g.w * (1 - g.s), minlength=len(g.players))
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(n_games > 0, points / n_games, np.nan)
    out = pd.DataFrame({
        "player": g.players, "elo": elo, "ci_low": ci_low, "ci_high": ci_high,
        "n_games": n_games.astype(int), "score": score,
    })
    return out.sort_values(["elo", "player"], ascending=[False, True]).reset_index(drop=True)


def debate_games(judgments: pd.DataFrame, split_sides: bool = False) -> pd.DataFrame:
    """Judged cross-play debates as games: Alice = `agent` (answer 1) vs Bob = `agent_b`
    (answer 2).

    The winner is Alice if the judge answered 1, else Bob. Self-play debates are dropped
    (see the module docstring), and so are invalid, refused and failed verdicts: they say
    nothing about the debaters. With `split_sides`, players are named `model|correct` /
    `model|incorrect` after the side each argued.
    """
    j = normalize_judgments(judgments)
    answer = pd.to_numeric(j["judge_answer"], errors="coerce")
    keep = (
        j["protocol"].astype(str).isin(registry.game_protocols())
        & is_cross_play(j)
        & j["verdict_status"].eq("ok")
        & answer.isin([1, 2])
    )
    j, answer = j[keep], answer[keep]
    a = j["agent"].astype(str)
    b = j["agent_b"].astype(str)
    if split_sides:
        alice_right = pd.to_numeric(j["correct_answer"], errors="coerce").eq(1)
        a = a + alice_right.map({True: "|correct", False: "|incorrect"})
        b = b + alice_right.map({True: "|incorrect", False: "|correct"})
    games = pd.DataFrame({
        "player_a": a.to_numpy(), "player_b": b.to_numpy(),
        "winner": np.where(answer.eq(1).to_numpy(), a.to_numpy(), b.to_numpy()),
    })
    for col in ("judge", "task", "group", "item_id", "order", "rounds", "turn_style"):
        games[col] = j[col].to_numpy()
    return games


def tournaments(judgments: pd.DataFrame) -> list[tuple[tuple[object, ...], pd.DataFrame]]:
    """Debate rows grouped by (judge, rounds, turn_style), keeping groups with cross-play;
    where rows of `variant: tournament` exist, only those."""
    j = normalize_judgments(judgments)
    deb = j[j["protocol"].astype(str).isin(registry.game_protocols()) & j["agent"].notna() & j["agent_b"].notna()]
    tournament = deb["variant"].astype(object).eq(TOURNAMENT)
    if tournament.any():
        # The tournament's own rows only: the main grid's self-play debates (same judge,
        # perhaps the same debater name) are another experiment.
        deb = deb[tournament]
    out = []
    for key, rows in deb.groupby(["judge", "rounds", "turn_style"], dropna=False, sort=True):
        if is_cross_play(rows).any():
            out.append((tuple(key), rows))
    return out


def selfplay_scores(debates: pd.DataFrame, errors: str = "exclude") -> pd.DataFrame:
    """Judge item scores on each debater's self-play debates: player, item_key, score.

    Failed episodes follow the rule of every accuracy in the report (frame.scored_rows):
    left out by default, scored as wrong with `errors="wrong"`."""
    j = scored_rows(normalize_judgments(debates), check_errors_mode(errors))
    sp = j[j["agent"].astype(object).eq(j["agent_b"].astype(object)) & j["agent"].notna()]
    if len(sp) == 0:
        return pd.DataFrame(columns=["player", "item_key", "score"])
    sp = sp.assign(player=sp["agent"].astype(str),
                   item_key=sp["task"].astype(str) + "\x1f" + sp["item_id"].astype(str))
    return (sp.groupby(["player", "item_key"], sort=True)["correct"].mean()
            .rename("score").reset_index())


def _scopes(rows: pd.DataFrame, by_group: bool) -> list[tuple[str, pd.DataFrame]]:
    """The pooled rows, then (with `by_group`) each task group's rows that hold cross-play."""
    scopes = [(POOLED, rows)]
    if by_group:
        groups = rows["group"].astype(object)
        for group in sorted(groups.dropna().astype(str).unique()):
            part = rows[groups.eq(group)]
            if is_cross_play(part).any():
                scopes.append((group, part))
    return scopes


def _selfplay_errors(rows: pd.DataFrame) -> dict[str, int]:
    """Failed self-play episodes per debater (shown beside its self-play accuracy)."""
    j = normalize_judgments(rows)
    sp = j[j["agent"].astype(object).eq(j["agent_b"].astype(object)) & j["agent"].notna()]
    failed = sp[sp["verdict_status"].eq("error")]
    return {str(k): int(v) for k, v in failed.groupby(failed["agent"].astype(str)).size().items()}


def _elo_block(rows: pd.DataFrame, scale: float, bootstrap: int, seed: int, errors: str = "exclude",
               progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Aggregate and split ratings of one tournament's rows, with self-play accuracy."""
    agg = fit_elo(debate_games(rows), scale=scale, bootstrap=bootstrap, seed=seed, progress=progress)
    agg["kind"] = "aggregate"
    split = fit_elo(debate_games(rows, split_sides=True), scale=scale, bootstrap=bootstrap, seed=seed,
                    progress=progress)
    names = split["player"].str.rsplit("|", n=1)
    split["kind"] = names.str[1]
    split["player"] = names.str[0]
    block = pd.concat([agg, split], ignore_index=True)
    acc = []
    failed = _selfplay_errors(rows)
    for player, scores in selfplay_scores(rows, errors).groupby("player"):
        m, lo, hi = mean_ci(scores["score"].to_numpy())
        acc.append({"player": player, "kind": "aggregate", "selfplay_accuracy": m,
                    "selfplay_ci_low": lo, "selfplay_ci_high": hi, "selfplay_n_items": len(scores),
                    "selfplay_n_errors": failed.get(str(player), 0)})
    if acc:
        block = block.merge(pd.DataFrame(acc), on=["player", "kind"], how="left")
    return block


def elo_table(
    judgments: pd.DataFrame, scale: float = DEFAULT_SCALE, bootstrap: int = 500, seed: int = 0,
    by_group: bool = False, errors: str = "exclude", progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Aggregate and side-split Elo per tournament (one per judge), with self-play judge
    accuracy.

    `kind` is 'aggregate', 'correct' or 'incorrect' (the split ratings share one fit of
    cross-play games only, so correct − incorrect is the advantage of arguing for the
    truth); `player` is the model label. Self-play columns are filled on aggregate rows.
    `group` is "all" for the pooled fit; `by_group=True` adds one fit per task group.
    Failed self-play episodes are left out of the self-play accuracy (and counted in
    `selfplay_n_errors`) unless `errors="wrong"`, as in the summary; `scale` is the Elo scale
    s the ratings are in.
    """
    parts = []
    for (judge, rounds, turn_style), rows in tournaments(judgments):
        for group, scoped in _scopes(rows, by_group):
            block = _elo_block(scoped, scale, bootstrap, seed, errors, progress)
            block["judge"], block["rounds"], block["turn_style"] = judge, rounds, turn_style
            block["group"], block["scale"] = group, float(scale)
            parts.append(block)
    if not parts:
        return pd.DataFrame(columns=ELO_COLUMNS)
    out = pd.concat(parts, ignore_index=True).reindex(columns=ELO_COLUMNS)
    return out.reset_index(drop=True)


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return (np.nan, np.nan)
    slope, intercept = np.polyfit(x[ok], y[ok], 1)
    return float(slope), float(intercept)


def accuracy_elo_slope(
    games: pd.DataFrame,
    scores: pd.DataFrame,
    scale: float = 400,
    bootstrap: int = 500,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Least-squares slope of judge accuracy on Elo, per 100 Elo points, with bootstrap CI.

    `games` as for `fit_elo`; `scores` has player, item_key, score (self-play item
    scores). Each bootstrap replicate refits Elo on resampled games and re-averages
    resampled items per player, so the CI carries the noise of both axes.
    """
    g = _Games.from_frame(games)
    k = scale / LN10
    by_player = {p: s["score"].to_numpy(dtype=float) for p, s in scores.groupby("player")}
    players = [p for p in g.players if p in by_player]
    pos = [g.players.index(p) for p in players]
    acc = np.array([by_player[p].mean() for p in players])
    theta = _fit_theta(g, g.w)
    elo = theta[pos] * k
    slope, intercept = _slope(elo, acc)
    lo = hi = np.nan
    total = int(g.w.sum())
    if bootstrap > 0 and total > 0 and len(players) >= 2:
        rng = np.random.default_rng(seed)
        probs = g.w / total
        draws = np.empty(bootstrap)
        for r in range(bootstrap):
            e = _fit_theta(g, rng.multinomial(total, probs).astype(float), start=theta)[pos] * k
            a = np.array([rng.choice(by_player[p], size=len(by_player[p])).mean()
                          for p in players])
            draws[r] = _slope(e, a)[0]
            if progress is not None:
                progress(1)
        if np.isfinite(draws).any():
            lo, hi = np.nanpercentile(draws, [2.5, 97.5])
    return {"n_players": len(players), "slope_per_100": slope * 100,
            "ci_low": float(lo) * 100, "ci_high": float(hi) * 100, "intercept": intercept}


def elo_slope_table(
    judgments: pd.DataFrame, scale: float = DEFAULT_SCALE, bootstrap: int = 500, seed: int = 0,
    by_group: bool = False, errors: str = "exclude", progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Judge accuracy (self-play) vs aggregate Elo: slope per 100 Elo and CI per tournament
    (and, with `by_group`, per task group as well as pooled). Failed episodes as in
    `elo_table`."""
    rows = []
    for (judge, rounds, turn_style), block in tournaments(judgments):
        for group, scoped in _scopes(block, by_group):
            scores = selfplay_scores(scoped, errors)
            if scores["player"].nunique() < 2:
                continue
            res = accuracy_elo_slope(debate_games(scoped), scores, scale=scale,
                                     bootstrap=bootstrap, seed=seed, progress=progress)
            rows.append({"judge": judge, "rounds": rounds, "turn_style": turn_style, "group": group,
                         **res, "scale": float(scale)})
    return pd.DataFrame(rows, columns=SLOPE_COLUMNS)
