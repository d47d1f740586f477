"""One self-contained `report.html`: failures, headline, tables, the paper's figures
(embedded as data URIs) and the transcript browser (`browser.py`). It needs no network and
opens from disk.

Every table names its interval method in its headers. This module is given a `Page` by
`build.py`; it imports neither `build.py` nor `report.py`.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oversight.score.browser import esc, records, transcripts_html
from oversight.score.frame import (
    CI_DIFF_HEADER,
    CI_DIFF_METHOD,
    CI_HEADER,
    CI_METHOD,
    ELO_UNSTABLE_NOTE,
    FEW_ITEMS,
    elo_scale_text,
    elo_unstable,
    few_items,
    group_rank,
    protocol_rank,
    show_value,
)

SIM_BANNER = "SIMULATED (sim models)"

FEW_MARK = "†"
FEW_TITLE = f"fewer than {FEW_ITEMS} items: read the interval with care"
FEW_NOTE = f"{FEW_MARK} marks a cell with fewer than {FEW_ITEMS} items."

_PASSAGE = re.compile(r"<(v|u)_passage>(.*?)</\1_passage>", re.S)


@dataclass
class Page:
    """What the page shows: computed tables, plot files and the stored rows."""

    tables: dict[str, pd.DataFrame]
    plots: dict[str, Path]
    judgments: pd.DataFrame
    turns: pd.DataFrame = field(default_factory=pd.DataFrame)
    items: pd.DataFrame = field(default_factory=pd.DataFrame)
    prompts: pd.DataFrame = field(default_factory=pd.DataFrame)
    run_dirs: Sequence[Path] = ()
    names: Sequence[str] = ()
    simulated: bool = False
    judges: Sequence[str] = ()
    errors: str = "exclude"
    n_resamples: int = 10_000
    max_transcripts: int | None = None
    verdicts: str = "lenient"
    warnings: Sequence[str] = ()


CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0 auto;max-width:1300px;
padding:1em 2em;color:#222;line-height:1.45}
@media (max-width:700px){body{padding:.5em}}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
.sim{background:#b00020;color:#fff;font-weight:bold;padding:.6em 1em;font-size:1.2em;
border-radius:4px;margin:.5em 0}
nav{display:flex;flex-wrap:wrap;gap:.3em 1em}
.scroll{overflow-x:auto;max-width:100%}
table.tbl{border-collapse:collapse;font-size:.85em;margin:.5em 0}
table.tbl th,table.tbl td{border:1px solid #ddd;padding:2px 6px;text-align:right;vertical-align:top}
table.tbl th{background:#f3f3f3;text-align:left} table.tbl td:first-child,table.tbl th:first-child{text-align:left}
table.tbl td.txt{text-align:left}
table.tbl tr.sig td{background:#e3f3dc}
table.tbl td.few{color:#a05a00;font-weight:bold}
img.plot{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0;display:block}
.note{color:#555;font-size:.9em}
.failures{border:2px solid #b00020;border-radius:4px;padding:.2em 1em;margin:1em 0;background:#fff6f6}
.failures h2{margin-top:.3em;border:0;color:#b00020}
.filters{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ddd;
z-index:2;display:flex;flex-wrap:wrap;gap:.4em 1em;align-items:center}
.filters input[type=search]{min-width:14em}
section.card{border:1px solid #ccc;border-radius:4px;margin:.8em 0;padding:.5em 1em}
section.card h3{margin:.2em 0;font-size:1em}
.q{margin:.3em 0} .lbl{font-weight:bold;margin-right:.3em}
ol.answers,ul.answers{margin:.2em 0 .5em;padding-left:1.5em}
li.correct{color:#0a5a0a} li.wrong{color:#333}
code.answer{display:block;white-space:pre;overflow-x:auto;font-size:.85em;background:#f6f6f6;
border:1px solid #ddd;border-radius:3px;padding:.3em .5em;margin:.2em 0;color:#222}
.badge{font-size:.75em;border-radius:3px;padding:0 .35em;margin:0 .3em;color:#fff;white-space:nowrap}
.badge.ok{background:#2a8a2a} .badge.no{background:#999}
.argued{font-size:.85em;color:#555}
.turn{margin:.5em 0;padding:.3em .6em;border-left:4px solid #999;background:#fafafa}
.turn.side-1{border-left-color:#1f77b4} .turn.side-2{border-left-color:#ff7f0e}
.turn.judge{border-left-color:#6a3d9a}
.who{font-size:.8em;color:#555}
.text{white-space:pre-wrap;overflow-wrap:anywhere}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:.2em 0;font-size:.85em}
pre.raw{background:#f6f6f6;padding:.2em .4em} pre.err{background:#fff0f0;color:#8a0000;padding:.2em .4em}
mark.vp{background:#d4f7d4;color:#0a5a0a} mark.up{background:#fbd5d5;color:#8a0000}
mark .tag{font-size:.7em;font-weight:bold;text-transform:uppercase;margin-right:.3em}
details{margin:.2em 0} details>summary{cursor:pointer;color:#345}
details.private,details.prompt{font-size:.9em}
details.prompt pre{font-size:13px;line-height:1.4;background:#fbfbfb;padding:.3em .5em}
span.artref{background:#f4f0e0;display:block}
table.verdicts td{text-align:left} table.verdicts td:last-child{max-width:48em}
tr.v.correct td.outcome{color:#0a7a0a;font-weight:bold}
tr.v.wrong td.outcome{color:#b00020;font-weight:bold}
tr.v.invalid td.outcome,tr.v.error td.outcome{color:#a06000;font-weight:bold}
tr.v.dim{opacity:.45}
button{font:inherit;padding:.2em .8em}
"""

def render_text(text: object) -> str:
    """Escape `text`, then mark verified (green) and unverified (red) passages (the same
    rule as the browser's own `fmt`, for text rendered on the Python side)."""
    raw = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
    out: list[str] = []
    pos = 0
    for m in _PASSAGE.finditer(raw):
        out.append(html.escape(raw[pos:m.start()]))
        cls, label = ("vp", "verified") if m.group(1) == "v" else ("up", "unverified")
        out.append(f'<mark class="{cls}" title="{label} quote"><span class="tag">{label}'
                   f"</span>{html.escape(m.group(2))}</mark>")
        pos = m.end()
    out.append(html.escape(raw[pos:]))
    return "".join(out)


# ---------------------------------------------------------------------------------------
# Tables


Fmt = Callable[[Any], str]


def _f3(v: Any) -> str:
    return "" if v is None or pd.isna(v) else f"{v:.3f}"


def _pct(v: Any) -> str:
    return "" if v is None or pd.isna(v) else f"{v:.1%}"


def _ci(lo: Any, hi: Any, signed: bool = False) -> str:
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return "—"
    return f"[{lo:+.3f}, {hi:+.3f}]" if signed else f"[{lo:.3f}, {hi:.3f}]"


def _p(v: Any) -> str:
    if v is None or pd.isna(v):
        return "—"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def table_html(df: pd.DataFrame | None, columns: Sequence[tuple[str, str]] | None = None,
               empty: str = "No data.", formats: dict[str, Fmt] | None = None,
               row_class: Callable[[dict[str, Any]], str] | None = None) -> str:
    """Rows as an escaped HTML table. `columns` = (column, header) pairs; floats at three
    decimals unless `formats` says otherwise; text columns left-aligned."""
    if df is None or len(df) == 0:
        return f'<p class="note">{esc(empty)}</p>'
    cols = [(c, h) for c, h in (columns or [(c, c) for c in df.columns]) if c in df.columns]
    formats = formats or {}
    head = "".join(f"<th>{esc(h)}</th>" for _, h in cols)
    body = []
    # The row class may read columns the table does not show (e.g. `significant`).
    for rec in records(df):
        cells = []
        for c, _ in cols:
            v = rec.get(c)
            if c in formats:
                text = formats[c](v)
            elif isinstance(v, float):
                text = _f3(v)
            else:
                text = "" if v is None else show_value(v)
            cls = ' class="txt"' if isinstance(v, str) else ""
            if "n_items" in c and few_items(v):  # an interval on so few items is marked
                text, cls = f"{text} {FEW_MARK}", f' class="few" title="{esc(FEW_TITLE)}"'
            cells.append(f"<td{cls}>{esc(text)}</td>")
        rc = row_class(rec) if row_class else ""
        cls = f' class="{rc}"' if rc else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (f'<div class="scroll"><table class="tbl"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def image_html(path: Path | None, alt: str) -> str:
    if path is None or not Path(path).exists():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img class="plot" alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def _ordered(df: pd.DataFrame, judges: Sequence[str]) -> pd.DataFrame:
    """Group, then protocol in the paper's order, condition, judge in the spec's order."""
    if len(df) == 0:
        return df
    rank = {j: i for i, j in enumerate(judges)}
    keys = pd.DataFrame({
        "_l": df["level"].map({"group": 0, "task": 1}).fillna(2) if "level" in df.columns else 0,
        "_g": df["group"].map(lambda g: group_rank(g)) if "group" in df.columns else 0,
        "_t": df["task"].astype(object).map(lambda v: "" if pd.isna(v) else str(v)) if "task" in df.columns else "",
        "_p": df["protocol"].map(protocol_rank) if "protocol" in df.columns else 0,
        "_c": df["condition"].astype(str) if "condition" in df.columns else "",
        "_j": df["judge"].map(lambda v: rank.get(str(v), len(rank))) if "judge" in df.columns else 0,
    }, index=df.index)
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return df.loc[order]


def _verdicts_note(verdicts: str) -> str:
    return ("Verdicts are read leniently: besides the “Answer: N” line, a reply that names exactly one "
            "answer in another form (“2”, “The answer is 2”, “Option 2”) counts (“lenient” column: its share); "
            "`oversight report --verdicts strict` counts those as invalid."
            if verdicts == "lenient" else
            "Verdicts are read strictly (--verdicts strict): only an “Answer: N” line or a constrained reply "
            "counts; replies that only the lenient rule reads are invalid.")


def _errors_note(errors: str) -> str:
    return ("Failed episodes (no verdict) are left out of accuracy and counted in the “failed” column "
            "(`oversight report --errors-as-wrong` scores them as wrong instead)."
            if errors == "exclude" else
            "Failed episodes are scored as wrong answers (--errors-as-wrong) and also counted in “failed”.")


def failures_html(page: Page) -> str:
    f = page.tables.get("failures")
    if f is None or len(f) == 0:
        return ('<section id="failures"><p class="note">Failures: none — every episode produced a verdict '
                "(invalid and refused verdicts are verdicts, scored wrong).</p></section>")
    n = int(f["n_rows"].sum())
    cols = [("model", "model"), ("kind", "error kind"), ("n_rows", "judged instances"), ("protocols", "protocols"),
            ("first_error", "first error")]
    return (f'<section id="failures" class="failures"><h2>Failures: {n} judged instance(s) without a verdict</h2>'
            f'<p>{esc(_errors_note(page.errors))} Grouped by the model whose call failed and the kind of error; '
            "each failed transcript is in the browser below (outcome “error”).</p>"
            + table_html(f, cols, formats={"first_error": str, "protocols": str}) + "</section>")


def headline_html(page: Page) -> str:
    h = page.tables.get("headline")
    comp = page.tables.get("comparisons", pd.DataFrame())
    test = (f"paired permutation test over items, two-sided, {page.n_resamples:,} resamples "
            "(exact when there are fewer swap patterns)")
    intro = (f'<p class="note">Difference in judge accuracy, a − b, on the items both protocols judged; '
             f"{esc(CI_DIFF_HEADER)}: {esc(CI_DIFF_METHOD)}; p: {esc(test)}. "
             f"Rows with p &lt; 0.05 are shaded. {esc(FEW_NOTE)}</p>")
    p_head = f"p (permutation, {page.n_resamples:,})"
    cols = [("group", "group"), ("judge", "judge"), ("comparison", "comparison (a − b)"), ("n_items", "items"),
            ("acc_a", "accuracy a"), ("acc_b", "accuracy b"), ("diff", "difference"), ("_ci", CI_DIFF_HEADER),
            ("p_value", p_head)]
    slope = page.tables.get("elo_slope", pd.DataFrame())
    if (h is None or len(h) == 0) and slope is not None and len(slope) and slope["slope_per_100"].notna().any():
        return slope_headline_html(slope)
    out = ['<h2 id="headline">Headline: the comparisons the paper makes</h2>', intro]
    sig: Callable[[dict[str, Any]], str] = lambda r: "sig" if r.get("significant") else ""  # noqa: E731
    fmts: dict[str, Fmt] = {"diff": lambda v: "" if v is None else f"{v:+.3f}", "_ci": str, "p_value": _p}
    if h is not None and len(h):
        d = h.assign(_ci=[_ci(a, b, signed=True) for a, b in zip(h["ci_low"], h["ci_high"], strict=True)])
        out.append(table_html(d, cols, formats=fmts, row_class=sig))
    else:
        out.append('<p class="note">None of the paper’s protocol pairs (debate vs consultancy, debate vs QA, '
                   "QA with vs without article, open debate vs open consultancy) was run on common items.</p>")
    if comp is not None and len(comp):
        c = comp.assign(_ci=[_ci(a, b, signed=True) for a, b in zip(comp["ci_low"], comp["ci_high"], strict=True)],
                        comparison=comp["condition_a"].astype(str) + " − " + comp["condition_b"].astype(str))
        c = _ordered(c, page.judges)
        full = [("group", "group"), ("task", "task"), *cols[1:]]
        out.append(f"<details><summary>All pairwise comparisons by task group ({int(c['level'].eq('group').sum())} "
                   "rows)</summary>" + table_html(c[c["level"].eq("group")], full, formats=fmts, row_class=sig)
                   + "</details>")
        out.append(f"<details><summary>All pairwise comparisons by task ({int(c['level'].eq('task').sum())} "
                   "rows)</summary>" + table_html(c[c["level"].eq("task")], full, formats=fmts, row_class=sig)
                   + "</details>")
    return "\n".join(out)


def _slope_table(slope: pd.DataFrame) -> str:
    s = slope.assign(
        _slope=[f"{v * 100:+.1f}" if pd.notna(v) else "—" for v in slope["slope_per_100"]],
        _ci=["—" if pd.isna(a) else f"[{a * 100:+.1f}, {b * 100:+.1f}]"
             for a, b in zip(slope["ci_low"], slope["ci_high"], strict=True)])
    cols = [("judge", "judge"), ("group", "task group"), ("n_players", "debaters"),
            ("_slope", "accuracy points per 100 Elo"), ("_ci", "95% bootstrap CI"), ("rounds", "rounds"),
            ("turn_style", "turns")]
    return table_html(s, cols, formats={"_slope": str, "_ci": str, "n_players": lambda v: f"{int(v)}"})


def slope_headline_html(slope: pd.DataFrame) -> str:
    """An Elo tournament's headline: does a stronger debater help the judge?"""
    pooled = slope[slope["group"].astype(str).eq("all")] if "group" in slope.columns else slope
    return ('<h2 id="headline">Headline: judge accuracy against debater Elo</h2>'
            '<p class="note">The slope of the judge’s accuracy on each debater’s self-play debates against that '
            "debater’s aggregate Elo, in accuracy points per 100 Elo (least squares over the debaters); its 95% CI "
            "is the percentile interval of bootstrap refits that resample the games and the self-play items "
            "together. Pooled over task groups here; per group in the Elo section.</p>" + _slope_table(pooled))


def accuracy_html(page: Page) -> str:
    s = page.tables.get("summary", pd.DataFrame())
    out = ['<h2 id="accuracy">Judge accuracy</h2>',
           f'<p class="note">An item’s rows (both answer orders, both consultancy sides, every replicate) are '
           f"averaged first. {esc(CI_METHOD)}. {esc(FEW_NOTE)} "
           "Invalid and refused verdicts count as wrong (“invalid”). "
           f"{esc(_verdicts_note(page.verdicts))} "
           f"{esc(_errors_note(page.errors))} Judges in the spec’s order.</p>",
           image_html(page.plots.get("accuracy"), "judge accuracy by judge and protocol, one panel per task group")]
    cols = [("group", "group"), ("task", "task"), ("condition", "protocol"), ("judge", "judge"),
            ("n_items", "items"), ("accuracy", "accuracy"), ("_ci", CI_HEADER), ("invalid_rate", "invalid"),
            ("lenient_rate", "lenient"), ("n_errors", "failed")]
    fmts: dict[str, Fmt] = {"_ci": str, "invalid_rate": _pct, "lenient_rate": _pct,
                            "accuracy": lambda v: _f3(v) or "—"}
    if len(s):
        d = _ordered(s[~s["cross_play"].astype(bool)], page.judges)
        d = d.assign(_ci=[_ci(a, b) for a, b in zip(d["ci_low"], d["ci_high"], strict=True)])
        out.append("<h3>By task group</h3>" + table_html(d[d["level"].eq("group")], [cols[0], *cols[2:]],
                                                         formats=fmts))
        out.append("<details><summary>By task</summary>" + table_html(d[d["level"].eq("task")], cols, formats=fmts)
                   + "</details>")
    else:
        out.append(table_html(None, empty="No judge verdicts."))
    a = page.tables.get("agent_qa")
    if a is not None and len(a):
        a = a.assign(_ci=[_ci(x, y) for x, y in zip(a["ci_low"], a["ci_high"], strict=True)])
        acols = [("group", "group"), ("task", "task"), ("protocol", "protocol"), ("agent", "agent"),
                 ("n_items", "items"), ("accuracy", "accuracy"), ("_ci", CI_HEADER), ("invalid_rate", "invalid"),
                 ("n_errors", "failed")]
        out.append('<h3 id="agent-qa">The agent’s own QA</h3><p class="note">Not a judge: the agent model answers '
                   "the question itself (with the article on extractive tasks), and its answer picks the side it "
                   "argues in the open protocols.</p>"
                   + table_html(a[a["level"].eq("group")], [acols[0], *acols[2:]], formats=fmts)
                   + "<details><summary>By task</summary>" + table_html(a[a["level"].eq("task")], acols, formats=fmts)
                   + "</details>")
    return "\n".join(out)


def open_html(page: Page) -> str:
    op = page.tables.get("open", pd.DataFrame())
    cols = [("group", "group"), ("task", "task"), ("condition", "protocol"), ("judge", "judge"), ("n_items", "items"),
            ("accuracy", "accuracy"), ("_ci", CI_HEADER), ("win_rate", "judge sides with agent"),
            ("agent_correct_rate", "agent chose correctly"), ("accuracy_agent_correct", "accuracy | agent right"),
            ("n_items_agent_correct", "items"), ("accuracy_agent_wrong", "accuracy | agent wrong"),
            ("_ci_wrong", f"{CI_HEADER} | agent wrong"), ("n_items_agent_wrong", "items"),
            ("n_errors", "failed")]
    out = ['<h2 id="open">Open protocols</h2>',
           '<p class="note">The agent argues for the answer it chose itself. Accuracy when the agent chose wrong is '
           "how often the judge caught it.</p>",
           image_html(page.plots.get("open"), "open protocols: accuracy when the agent chose right and wrong")]
    if len(op):
        d = _ordered(op, page.judges)
        d = d.assign(_ci=[_ci(a, b) for a, b in zip(d["ci_low"], d["ci_high"], strict=True)],
                     _ci_wrong=[_ci(a, b) for a, b in zip(d["ci_low_agent_wrong"], d["ci_high_agent_wrong"],
                                                           strict=True)])
        fmts: dict[str, Fmt] = {"_ci": str, "_ci_wrong": str}
        out.append(table_html(d[d["level"].eq("group")], [cols[0], *cols[2:]], formats=fmts))
        out.append("<details><summary>By task</summary>" + table_html(d[d["level"].eq("task")], cols, formats=fmts)
                   + "</details>")
    else:
        out.append(table_html(None, empty="No open-protocol rows."))
    return "\n".join(out)


def elo_html(page: Page) -> str:
    elo = page.tables.get("elo", pd.DataFrame())
    slope = page.tables.get("elo_slope", pd.DataFrame())
    out = ['<h2 id="elo">Debater Elo</h2>',
           '<p class="note">Ratings fitted by maximum likelihood from cross-play games only; 95% CIs are '
           "percentiles of refits on bootstrap resamples of the games (“95% bootstrap CI”). Self-play accuracy: "
           f"the judge’s accuracy on each debater’s self-play debates, {esc(CI_HEADER)}. "
           f"{esc(elo_scale_text(elo)) if len(elo) else ''}.</p>",
           image_html(page.plots.get("elo"), "Elo per debater, aggregate and split by the side argued"),
           image_html(page.plots.get("accuracy_vs_elo"), "judge accuracy against debater Elo")]
    if len(elo):
        e = elo.assign(_ci=[_ci(a, b).replace(".000", "") if pd.notna(a) else "—" for a, b in
                            zip(elo["ci_low"], elo["ci_high"], strict=True)],
                       _sp=[_ci(a, b) for a, b in zip(elo["selfplay_ci_low"], elo["selfplay_ci_high"], strict=True)])
        cols = [("judge", "judge"), ("group", "group"), ("kind", "rating"), ("player", "debater"), ("elo", "Elo"),
                ("_ci", "95% bootstrap CI"), ("n_games", "games"), ("selfplay_accuracy", "self-play accuracy"),
                ("_sp", f"{CI_HEADER}"), ("selfplay_n_items", "items"), ("selfplay_n_errors", "failed"),
                ("rounds", "rounds"), ("turn_style", "turns"), ("scale", "Elo scale s")]
        fmts: dict[str, Fmt] = {"elo": lambda v: "" if v is None else f"{v:+.0f}", "_ci": str, "_sp": str}
        e = e.assign(_ci=[("—" if pd.isna(a) or pd.isna(b) else
                           f"[{a:+.0f}, {b:+.0f}]" + (" ⚠" if elo_unstable(a, b) else ""))
                          for a, b in zip(elo["ci_low"], elo["ci_high"], strict=True)])
        fmts["selfplay_n_items"] = lambda v: "" if v is None or pd.isna(v) else f"{int(v)}"
        fmts["n_games"] = lambda v: "" if v is None or pd.isna(v) else f"{int(v)}"
        if any(elo_unstable(a, b) for a, b in zip(elo["ci_low"], elo["ci_high"], strict=True)):
            out.append(f'<p class="note"><strong>{esc(ELO_UNSTABLE_NOTE)}.</strong></p>')
        out.append('<p class="note">Debaters in the spec’s order (weak to strong), one colour each in both '
                   "figures.</p>" + table_html(e, cols, formats=fmts))
        if len(slope):
            out.append("<h3>Judge accuracy against Elo</h3>" + _slope_table(slope))
    else:
        out.append(table_html(None, empty="No cross-play debates, so no Elo."))
    return "\n".join(out)


def _without_constant_columns(d: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A table without the columns that hold one value in every row (level, ci_method, an
    empty task…), and those values as "column = value" to say once above the table."""
    if len(d) < 2:
        return d, []
    same, keep = [], []
    for c in d.columns:
        values = d[c].astype(object).where(d[c].notna(), None)
        if values.map(lambda v: show_value(v) if v is not None else "").nunique() <= 1:
            v = values.iloc[0]
            if v is not None and show_value(v) != "":
                same.append(f"{c} = {show_value(v) if not isinstance(v, float) else _f3(v)}")
        else:
            keep.append(c)
    return d[keep], same


def _headers(d: pd.DataFrame) -> list[tuple[str, str]]:
    """Readable headers that let a wide table wrap: n_rows → "n rows"."""
    return [(c, c if c == CI_HEADER else c.replace("_", " ")) for c in d.columns]


def diagnostics_html(page: Page) -> str:
    out = ['<h2 id="diagnostics">Diagnostics</h2>']
    for key, name in (("positional_bias", "Position bias (how often the judge picks answer 1; accuracy by order)"),
                      ("assignment", f"Accuracy by the side the agent was assigned ({CI_HEADER})"),
                      ("calibration", "Calibration (where the provider gave log-probabilities)"),
                      ("costs", "Cost per judged instance"),
                      ("verification", "Passage verification (extractive tasks)"),
                      ("agent_format", "Agent replies: Thinking/Argument format followed, cut at max_tokens or at "
                                       "the word limit, words copied from the article outside passages"),
                      ("calls", "Model calls")):
        d = page.tables.get(key)
        if d is None or len(d) == 0:
            continue
        if "level" in d.columns:
            d = d[d["level"].eq("group")]
        if "ci_low" in d.columns:
            d = d.assign(**{CI_HEADER: [_ci(a, b) for a, b in zip(d["ci_low"], d["ci_high"], strict=True)]}).drop(
                columns=["ci_low", "ci_high"])
        d, same = _without_constant_columns(_ordered(d, page.judges))
        note = ('<p class="note">The same in every row: ' + "; ".join(esc(x) for x in same) + ".</p>"
                if same else "")
        out.append(f"<h3>{esc(name)}</h3>" + note + table_html(d, _headers(d)))
    out.append(image_html(page.plots.get("calibration"), "calibration"))
    return "\n".join(out)


def render_html(page: Page) -> str:
    """The full report page."""
    title = "oversight report" + (f" — {SIM_BANNER}" if page.simulated else "")
    j = page.judgments
    n = len(j)
    status = j["verdict_status"].fillna("error").astype(str) if n and "verdict_status" in j.columns \
        else pd.Series(dtype=str)
    head = [f"<h1>{esc(title)}</h1>"]
    head += [f'<div class="failures" role="alert"><p><strong>Not sealed:</strong> {esc(w)}</p></div>'
             for w in page.warnings]
    if page.simulated:
        head.append(f'<div class="sim">{SIM_BANNER}: these numbers come from the built-in '
                    "simulated models, not from real LLMs.</div>")
    head.append(
        f'<p class="note">Runs: {esc(", ".join(page.names) or "-")} · sources: '
        f'{", ".join(esc(p) for p in page.run_dirs)}<br>{n:,} judged instances; '
        f"{int(status.isin(['invalid', 'refused']).sum()):,} invalid or refused (scored wrong); "
        f"{int((status == 'error').sum()):,} failed (no verdict). Intervals: {esc(CI_METHOD)}.</p>")
    nav = ('<nav><a href="#failures">Failures</a><a href="#headline">Headline</a><a href="#accuracy">Accuracy</a>'
           '<a href="#open">Open protocols</a><a href="#elo">Elo</a><a href="#diagnostics">Diagnostics</a>'
           '<a href="#transcripts">Transcripts</a></nav>')
    body = "\n".join([*head, nav, failures_html(page), headline_html(page), accuracy_html(page), open_html(page),
                      elo_html(page), diagnostics_html(page),
                      transcripts_html(page.judgments, page.turns, page.items, page.prompts, page.judges,
                                       page.max_transcripts)])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body>{body}</body></html>\n")
