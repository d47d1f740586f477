"""PNG figures for the report, laid out as the paper's. Each function writes one file and
returns its path, or returns None when its table has nothing to draw.

- `plot_accuracy`: judge accuracy, one panel per task group, judges on x in the spec's
  order (weak to strong), one coloured bar per protocol, 95% CIs. Open protocols and the
  agent's own QA are not here (the summary table holds no agent rows).
- `plot_open`: the open protocols in their own figure: judge accuracy when the agent chose
  the correct answer and when it chose the wrong one, per judge.
- `plot_elo`: each debater's Elo, aggregate and split by the side argued, 95% CIs.
- `plot_accuracy_vs_elo`: judge accuracy on self-play debates against aggregate Elo.
- `plot_calibration`: reliability diagram where probabilities were recorded.

Every legend sits outside the axes (below them), so it never covers data. Figures are
built on `matplotlib.figure.Figure` directly rather than pyplot, so the report neither
needs a display nor changes the caller's global matplotlib backend; they are written at
110 dpi with text of at least 8 pt.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from oversight.protocol import registry
from oversight.score.frame import (
    FEW_ITEMS,
    elo_scale_value,
    few_items,
    group_rank,
    is_cross_play,
    judge_order,
    protocol_rank,
    show_value,
)
from oversight.store.safe_io import write_with

SIM_LABEL = "SIMULATED (sim models)"
FEW_LABEL = f"< {FEW_ITEMS} items (n on bar)"
DPI = 110

# One colour per protocol (its `colour`), the same in every figure; these for the rest.
EXTRA_COLOURS = ["#7b4fa0", "#3a9a5b", "#c0392b", "#16a5a5", "#b5651d", "#d35fb7", "#6b8e23", "#8c564b"]


def _title(text: str, simulated: bool) -> str:
    return f"{text} — {SIM_LABEL}" if simulated else text


def _groups(table: pd.DataFrame) -> list[str]:
    return sorted(table["group"].dropna().astype(str).unique(), key=group_rank)


def _yerr(df: pd.DataFrame, mid: str, lo: str, hi: str) -> np.ndarray:
    m = df[mid].to_numpy(dtype=float)
    low = np.nan_to_num(m - df[lo].to_numpy(dtype=float), nan=0.0)
    high = np.nan_to_num(df[hi].to_numpy(dtype=float) - m, nan=0.0)
    return np.vstack([np.maximum(low, 0), np.maximum(high, 0)])


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=DPI), root=path.parent)
    return path


def _colours(conditions: Sequence[str], protocols: dict[str, str]) -> dict[str, str]:
    """A colour per condition: its protocol's, or a distinct one for variants/configs."""
    out: dict[str, str] = {}
    used: set[str] = set()
    extra = iter(EXTRA_COLOURS * 4)
    for cond in conditions:
        base = registry.colour(cond)
        if base is None or base in used:
            base = registry.colour(protocols.get(cond, ""))
            if base is None or base in used:
                base = next(extra)
        out[cond] = base
        used.add(base)
    return out


def _legend(fig: Figure, handles: dict[str, Any], fontsize: float = 9, **kw: Any) -> None:
    """A legend below the axes (never over data), with as many columns as fit the width."""
    if not handles:
        return
    width_pt = fig.get_size_inches()[0] * 72
    longest = max(len(label) for label in handles)
    per = fontsize * 0.58 * longest + 3.2 * fontsize  # text + marker and spacing, in points
    ncol = max(1, min(len(handles), kw.pop("ncol", len(handles)), int(width_pt // per)))
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=ncol, fontsize=fontsize,
               frameon=False, **kw)


def _judge_ticks(ax: Axes, x: np.ndarray, judges: list[str]) -> None:
    longest = max((len(j) for j in judges), default=0)
    rotate = longest * len(judges) > 40
    ax.set_xticks(x, judges, rotation=25 if rotate else 0, ha="right" if rotate else "center", fontsize=9)


def _mark_few(ax: Axes, bars: Any, xs: np.ndarray, n_items: np.ndarray) -> bool:
    """A bar resting on fewer than FEW_ITEMS items is drawn pale and hatched, with its item
    count on it, so it does not read like one on many items. True if any bar was."""
    marked = False
    for bar, x, n in zip(bars, xs, n_items, strict=True):
        if not few_items(n if not np.isnan(n) else None):
            continue
        bar.set_alpha(0.45)
        bar.set_hatch("xx")
        ax.text(x, 0.02, f"n={int(n)}", ha="center", va="bottom", fontsize=8, rotation=90, color="#222")
        marked = True
    return marked


def _bar_panel_width(n_judges: int, n_bars: int) -> float:
    return max(3.4, 0.9 + n_judges * (0.3 * n_bars + 0.35))


def plot_accuracy(summary: pd.DataFrame, path: Path, simulated: bool = False,
                  judges: Sequence[str] = ()) -> Path | None:
    """Judge accuracy: a panel per task group, judges on x (the spec's order, weak to
    strong), a bar per protocol (colour), 95% CIs over items; open protocols excluded."""
    if summary is None or len(summary) == 0:
        return None
    s = summary[summary["level"].eq("group")]
    s = s[~is_cross_play(s)]
    s = s[~s["protocol"].astype(str).isin(registry.derived_protocols())]
    s = s[s["accuracy"].notna()]
    groups = _groups(s)
    if not groups:
        return None
    order = judge_order(s, judges)
    conds = sorted(s["condition"].astype(str).unique(), key=lambda c: (protocol_rank(c.split(" ")[0]), c))
    protocols = dict(zip(s["condition"].astype(str), s["protocol"].astype(str), strict=True))
    colours = _colours(conds, protocols)
    widths = []
    for g in groups:
        gs = s[s["group"].astype(str).eq(g)]
        widths.append(_bar_panel_width(gs["judge"].nunique(), gs["condition"].nunique()))
    fig = Figure(figsize=(max(6.5, sum(widths) + 0.8), 4.6), layout="constrained")
    axes = fig.subplots(1, len(groups), squeeze=False, sharey=True, width_ratios=widths)[0]
    handles: dict[str, Any] = {}
    few = False
    for ax, group in zip(axes, groups, strict=True):
        g = s[s["group"].astype(str).eq(group)]
        js = [j for j in order if j in set(g["judge"].astype(str))]
        cs = [c for c in conds if c in set(g["condition"].astype(str))]
        x = np.arange(len(js), dtype=float)
        width = 0.8 / max(len(cs), 1)
        for k, cond in enumerate(cs):
            d = g[g["condition"].astype(str).eq(cond)].set_index("judge").reindex(js)
            xs = x + (k - (len(cs) - 1) / 2) * width
            bars = ax.bar(xs, d["accuracy"].to_numpy(dtype=float), width * 0.95,
                          yerr=_yerr(d, "accuracy", "ci_low", "ci_high"), capsize=2,
                          color=colours[cond], edgecolor="white", linewidth=0.5,
                          error_kw={"elinewidth": 0.9, "ecolor": "#222"})
            handles.setdefault(cond, Patch(facecolor=colours[cond], edgecolor="white"))  # unaffected by pale bars
            few |= _mark_few(ax, bars, xs, d["n_items"].to_numpy(dtype=float))
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        _judge_ticks(ax, x, js)
        ax.set_ylim(0, 1.05)
        n = g["n_items"].dropna()
        items = f"{int(n.min())}" if len(n) and n.min() == n.max() else f"{int(n.min())}–{int(n.max())}"
        ax.set_title(f"{group} ({items} items)", fontsize=10)
        ax.set_xlabel("judge (weaker → stronger, as the spec lists them)", fontsize=8)
        ax.tick_params(axis="y", labelsize=9)
    axes[0].set_ylabel("judge accuracy (95% Wilson CI over items)", fontsize=9)
    if few:
        handles[FEW_LABEL] = Patch(facecolor="#999999", alpha=0.45, hatch="xx", edgecolor="white")
    _legend(fig, handles, ncol=6)
    fig.suptitle(_title("Judge accuracy by protocol", simulated), fontsize=11)
    return _save(fig, path)


def plot_open(open_df: pd.DataFrame, path: Path, simulated: bool = False,
              judges: Sequence[str] = ()) -> Path | None:
    """Open protocols: judge accuracy when the agent chose the correct answer (solid) and
    when it chose the wrong one (hatched), per judge, a panel per task group."""
    if open_df is None or len(open_df) == 0:
        return None
    o = open_df[open_df["level"].eq("group")]
    o = o[o["accuracy"].notna()]
    groups = _groups(o)
    if not groups:
        return None
    order = judge_order(o, judges)
    conds = sorted(o["condition"].astype(str).unique(), key=lambda c: (protocol_rank(c.split(" ")[0]), c))
    protocols = dict(zip(o["condition"].astype(str), o["protocol"].astype(str), strict=True))
    colours = _colours(conds, protocols)
    widths = [_bar_panel_width(o[o["group"].astype(str).eq(g)]["judge"].nunique(), 2 * len(conds)) for g in groups]
    fig = Figure(figsize=(max(6.5, sum(widths) + 0.8), 4.8), layout="constrained")
    axes = fig.subplots(1, len(groups), squeeze=False, sharey=True, width_ratios=widths)[0]
    handles: dict[str, Any] = {}
    series = [("agent_correct", "agent chose correctly", None, 1.0),
              ("agent_wrong", "agent chose wrongly", "///", 0.55)]
    for ax, group in zip(axes, groups, strict=True):
        g = o[o["group"].astype(str).eq(group)]
        js = [j for j in order if j in set(g["judge"].astype(str))]
        x = np.arange(len(js), dtype=float)
        n_bars = 2 * len(conds)
        width = 0.84 / max(n_bars, 1)
        k = 0
        for cond in conds:
            d = g[g["condition"].astype(str).eq(cond)].set_index("judge").reindex(js)
            for suffix, label, hatch, alpha in series:
                col = f"accuracy_{suffix}"
                bars = ax.bar(x + (k - (n_bars - 1) / 2) * width, d[col].to_numpy(dtype=float), width * 0.95,
                              yerr=_yerr(d, col, f"ci_low_{suffix}", f"ci_high_{suffix}"), capsize=2,
                              color=colours[cond], alpha=alpha, hatch=hatch, edgecolor="white", linewidth=0.5,
                              error_kw={"elinewidth": 0.9, "ecolor": "#222"})
                handles.setdefault(f"{cond}: {label}", bars)
                k += 1
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        # Few items have a wrong agent choice (often 0–3): say how many under each judge, so a
        # bar of height 0 reads as "never caught", not as missing.
        labels = []
        for judge in js:
            n = g[g["judge"].astype(str).eq(judge)]["n_items_agent_wrong"].dropna().astype(int)
            span = "?" if len(n) == 0 else (f"{n.min()}" if n.min() == n.max() else f"{n.min()}–{n.max()}")
            labels.append(f"{judge}\nagent wrong on {span} item{'s' if span != '1' else ''}")
        ax.set_xticks(x, labels, fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.set_title(group, fontsize=10)
        ax.set_xlabel("judge (weaker → stronger)", fontsize=8)
        ax.tick_params(axis="y", labelsize=9)
    axes[0].set_ylabel("judge accuracy (95% CI over items)", fontsize=9)
    _legend(fig, handles, ncol=2)
    fig.suptitle(_title("Open protocols: is the judge fooled when the agent chose wrongly?", simulated),
                 fontsize=11)
    return _save(fig, path)


def _tournament_keys(elo: pd.DataFrame) -> list[tuple[object, ...]]:
    keys = elo[["judge", "rounds", "turn_style"]].drop_duplicates()
    return [tuple(r) for r in keys.itertuples(index=False)]


def _select(df: pd.DataFrame, key: tuple[object, ...]) -> pd.DataFrame:
    mask = pd.Series(True, index=df.index)
    for col, val in zip(("judge", "rounds", "turn_style"), key, strict=True):
        mask &= df[col].isna() if pd.isna(val) else df[col].eq(val)  # type: ignore[call-overload]
    return df[mask]


def _pooled(elo: pd.DataFrame) -> pd.DataFrame:
    return elo[elo["group"].astype(str).eq("all")] if "group" in elo.columns else elo


def debater_colours(elo: pd.DataFrame) -> dict[str, str]:
    """One colour per debater, by its place in the spec's order (the Elo table's row
    order), so a debater has the same colour in every Elo figure."""
    players = list(dict.fromkeys(elo["player"].astype(str))) if len(elo) else []
    return {p: EXTRA_COLOURS[i % len(EXTRA_COLOURS)] for i, p in enumerate(players)}


def plot_elo(elo: pd.DataFrame, path: Path, simulated: bool = False) -> Path | None:
    """Elo per debater with 95% bootstrap CIs: aggregate, and arguing correct / incorrect."""
    if elo is None or len(elo) == 0 or elo["elo"].notna().sum() == 0:
        return None
    elo = _pooled(elo)
    keys = _tournament_keys(elo)
    n_players = max(len(_select(elo, k)["player"].unique()) for k in keys)
    fig = Figure(figsize=(7.5, 0.9 + (0.55 * n_players + 0.9) * len(keys)), layout="constrained")
    axes = fig.subplots(len(keys), 1, squeeze=False)[:, 0]
    # A colour per debater (the same in accuracy_vs_elo.png), a marker per rating kind.
    colours = debater_colours(elo)
    styles = {"aggregate": ("o", 0.0, "aggregate"),
              "correct": ("^", 0.22, "arguing the correct answer"),
              "incorrect": ("v", -0.22, "arguing the incorrect answer")}
    handles: dict[str, Any] = {}
    for ax, key in zip(axes, keys, strict=True):
        block = _select(elo, key)
        # the table's order is the spec's (weak to strong): drawn bottom to top
        players = list(dict.fromkeys(block["player"].astype(str)))
        y = {p: i for i, p in enumerate(players)}
        for kind, (marker, dy, label) in styles.items():
            for player in players:
                d = block[block["kind"].eq(kind) & block["player"].astype(str).eq(player)]
                if len(d) == 0:
                    continue
                h = ax.errorbar(d["elo"].to_numpy(dtype=float), np.array([y[player] + dy]),
                                xerr=_yerr(d, "elo", "ci_low", "ci_high"), fmt=marker, color=colours[player],
                                mfc=colours[player] if kind == "aggregate" else "white", capsize=3, ms=6, lw=1)
                handles.setdefault(label, h)
        ax.set_yticks(range(len(players)), players, fontsize=9)
        for tick, player in zip(ax.get_yticklabels(), players, strict=True):
            tick.set_color(colours[player])
        ax.set_ylim(-0.6, len(players) - 0.4)
        ax.axvline(0, color="grey", lw=0.8, ls=":")
        ax.set_xlabel(f"Elo, scale s = {elo_scale_value(block)} (95% bootstrap CI)", fontsize=9)
        ax.tick_params(axis="x", labelsize=9)
        judge, rounds, style = key
        ax.set_title(f"judge {judge} · {show_value(rounds)} round(s), {show_value(style)}", fontsize=10)
    _legend(fig, handles, ncol=3)
    fig.suptitle(_title("Debater Elo from cross-play debates", simulated), fontsize=11)
    return _save(fig, path)


def plot_accuracy_vs_elo(elo: pd.DataFrame, slopes: pd.DataFrame | None, path: Path,
                         simulated: bool = False) -> Path | None:
    """Judge accuracy on each debater's self-play debates against its aggregate Elo, one
    marker per debater (named in the legend below), with the fitted line and its slope."""
    if elo is None or len(elo) == 0:
        return None
    elo = _pooled(elo)
    agg = elo[elo["kind"].eq("aggregate") & elo["selfplay_accuracy"].notna() & elo["elo"].notna()]
    if len(agg) == 0:
        return None
    if slopes is not None and len(slopes):
        slopes = _pooled(slopes)
    keys = _tournament_keys(agg)
    colours = debater_colours(elo)
    markers = ["o", "s", "D", "^", "v", "P", "X", "h"]
    style = {p: (markers[i % len(markers)], colours[p]) for i, p in enumerate(colours)}
    fig = Figure(figsize=(max(6.0, 5.2 * len(keys)), 5.0), layout="constrained")
    axes = fig.subplots(1, len(keys), squeeze=False, sharey=True)[0]
    handles: dict[str, Any] = {}
    for ax, key in zip(axes, keys, strict=True):
        d = _select(agg, key)
        for _, r in d.iterrows():
            marker, colour = style[str(r["player"])]
            one = d[d["player"].eq(r["player"])]
            h = ax.errorbar(one["elo"].to_numpy(dtype=float), one["selfplay_accuracy"].to_numpy(dtype=float),
                            xerr=_yerr(one, "elo", "ci_low", "ci_high"),
                            yerr=_yerr(one, "selfplay_accuracy", "selfplay_ci_low", "selfplay_ci_high"),
                            fmt=marker, color=colour, capsize=3, ms=7, lw=1)
            handles.setdefault(str(r["player"]), h)
        title = f"judge {key[0]}"
        if slopes is not None and len(slopes):
            s = _select(slopes, key)
            if len(s) and pd.notna(s["slope_per_100"].iloc[0]):
                r = s.iloc[0]
                xs = np.linspace(d["elo"].min(), d["elo"].max(), 20)
                ax.plot(xs, r["intercept"] + r["slope_per_100"] / 100 * xs, "--", lw=1, color="grey")
                ci = "" if pd.isna(r["ci_low"]) else f" [{r['ci_low'] * 100:+.1f}, {r['ci_high'] * 100:+.1f}]"
                title += f"\nslope {r['slope_per_100'] * 100:+.1f} accuracy points per 100 Elo{ci}"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"aggregate Elo, scale s = {elo_scale_value(d)} (95% bootstrap CI)", fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.tick_params(labelsize=9)
    axes[0].set_ylabel("judge accuracy on self-play debates (95% CI)", fontsize=9)
    _legend(fig, handles, ncol=4, title="debater", title_fontsize=9)
    fig.suptitle(_title("Judge accuracy vs debater Elo", simulated), fontsize=11)
    return _save(fig, path)


def plot_calibration(rel: pd.DataFrame, path: Path, simulated: bool = False, note: str = "") -> Path | None:
    """Reliability diagram: judge accuracy against stated confidence, per protocol × judge;
    `note` says what the points are when it is not obvious (people's verdicts)."""
    if rel is None or len(rel) == 0:
        return None
    fig = Figure(figsize=(6.0, 5.6), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    handles: dict[str, Any] = {}
    for (protocol, judge), d in rel.groupby(["protocol", "judge"], sort=True):
        (line,) = ax.plot(d["mean_confidence"], d["accuracy"], "o-", ms=3)
        handles[f"{protocol} / {judge}"] = line
    ax.set_xlabel("confidence in the given answer", fontsize=9)
    ax.set_ylabel("accuracy", fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.tick_params(labelsize=9)
    _legend(fig, handles, fontsize=8, ncol=3)
    fig.suptitle(_title("Calibration" + (f" — {note}" if note else ""), simulated), fontsize=11)
    return _save(fig, path)
