"""The terminal summary that `oversight run` prints when it finishes and `oversight report`
prints before writing the full report: at most 50 lines of at most 100 columns, with the
failures, the paper's headline comparisons, accuracy per task group and judge, the agent's
own QA, Elo when there is a tournament, and where to find the rest.

`run_summary` needs the judgments alone and imports pandas and numpy only (no scipy, no
matplotlib), so it costs a fraction of a second after a run. Building the full report is
`oversight.score.build`; its names are re-exported here (`build_report`, `compute_tables`,
`ReportResult`, …) for the callers of the first API.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from oversight.score import diagnostics
from oversight.score.accuracy import agent_qa_table, summary_table
from oversight.score.build import (
    ALWAYS_WRITTEN,
    MAX_BOOTSTRAP,
    MAX_RESAMPLES,
    TABLE_FILES,
    ReportResult,
    RunData,
    build_report,
    check_report_settings,
    compute_tables,
    is_simulated,
    load_frames,
    load_run_data,
    read_manifest,
    read_table,
    spec_judges,
)
from oversight.score.compare import comparisons_table, headline_pairs, headline_table
from oversight.score.frame import (
    ELO_UNSTABLE_NOTE,
    FEW_ITEMS,
    apply_reading,
    elo_scale_text,
    elo_unstable,
    few_items,
    group_rank,
    is_agent_qa,
    judge_order,
    normalize_judgments,
)

SIM_BANNER = "SIMULATED (sim models)"
WIDTH = 100  # terminal summary: columns
FEW_MARK = "†"
FEW_NOTE = f"{FEW_MARK} fewer than {FEW_ITEMS} items"
MAX_LINES = 50  # terminal summary: lines
VERBATIM = "\x00"  # marks a summary line that is a command: never cut or wrapped, so it works as printed


# ---------------------------------------------------------------------------------------
# The terminal summary


def _num(v: Any, fmt: str = "{:.2f}") -> str:
    return "—" if v is None or pd.isna(v) else fmt.format(v)


def acc_cell(acc: Any, lo: Any, hi: Any, compact: bool = False) -> str:
    """'0.62 [0.46,0.78]' (compact: '62 [46,78]', in %); no interval from fewer than two
    items: '1.00 [—]'; no accuracy at all: '—'."""
    if acc is None or pd.isna(acc):
        return "—"
    if compact:
        ci = "—" if pd.isna(lo) or pd.isna(hi) else f"{lo * 100:.0f},{hi * 100:.0f}"
        return f"{acc * 100:.0f} [{ci}]"
    if lo is None or pd.isna(lo) or hi is None or pd.isna(hi):
        return f"{acc:.2f} [—]"
    return f"{acc:.2f} [{lo:.2f},{hi:.2f}]"


def _cut(text: str, width: int, keep_end: bool = False) -> str:
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1):] if keep_end else text[: width - 1] + "…"


def _grid(rows: list[list[str]], right: frozenset[int] = frozenset(), gap: int = 2) -> list[str]:
    """Rows of cells as aligned text lines (columns in `right` right-aligned)."""
    if not rows:
        return []
    table = [r for r in rows if len(r) > 1] or rows  # one-cell rows (group titles) stand alone
    widths = [max(len(r[i]) for r in table if i < len(r)) for i in range(max(len(r) for r in table))]
    out = []
    for r in rows:
        if len(r) == 1 and r is not table[0]:
            out.append(r[0])
            continue
        cells = [(c.rjust(widths[i]) if i in right else c.ljust(widths[i])) for i, c in enumerate(r)]
        out.append((" " * gap).join(cells).rstrip())
    return out


def _items_label(n: pd.Series) -> str:
    v = sorted({int(x) for x in n if pd.notna(x) and x > 0})
    if not v:
        return "no items scored"
    return f"{v[0]} items" if len(v) == 1 else f"{v[0]}–{v[-1]} items"


def _judge_chunks(judges: list[str], cell: int, label: int, width: int) -> list[list[str]]:
    per = max(1, (width - label) // (cell + 2))
    return [judges[i:i + per] for i in range(0, len(judges), per)] or [[]]


def accuracy_lines(summary: pd.DataFrame, judges: Sequence[str], errors: str, width: int = WIDTH,
                   compact: bool = False) -> list[str]:
    """Per task group: one row per condition, one column per judge (the spec's order);
    failed episodes counted beside each cell."""
    s = summary[summary["level"].eq("group") & ~summary["cross_play"].astype(bool)] if len(summary) else summary
    if len(s) == 0:
        return []
    order = judge_order(s, judges)
    cells: dict[tuple[str, str, str], str] = {}
    for r in s.itertuples(index=False):
        cell = acc_cell(r.accuracy, r.ci_low, r.ci_high, compact) + (FEW_MARK if few_items(r.n_items) else "")
        if r.n_errors:
            cell += f" {r.n_errors}err" if compact else f" ({r.n_errors} err)"
        cells[(str(r.group), str(r.condition), str(r.judge))] = cell
    groups = sorted(s["group"].astype(str).unique(), key=group_rank)
    cell_w = max(12, max(len(c) for c in cells.values()))
    # condition labels get whatever the judge columns leave (at least 20 columns)
    cut = max(20, width - 4 - len(order) * (cell_w + 2))
    label_w = 2 + min(cut, max(len(str(c)) for c in s["condition"].astype(str).unique()))
    how = "left out" if errors == "exclude" else "scored wrong"
    unit = "%, " if compact else ""
    lines = [f"Judge accuracy by task group ({unit}[95% Wilson CI over items]; {FEW_NOTE}; "
             f"err: failed episodes, {how})"]
    for chunk in _judge_chunks(order, cell_w, label_w, width):
        rows: list[list[str]] = [["", *[_cut(j, cell_w, keep_end=True) for j in chunk]]]
        for g in groups:
            gs = s[s["group"].astype(str).eq(g)]
            rows.append([f"{g} ({_items_label(gs['n_items'])})"])
            for cond in dict.fromkeys(gs["condition"].astype(str)):
                rows.append(["  " + _cut(cond, cut), *[cells.get((g, cond, j), "") for j in chunk]])
        lines += _grid(rows)
    return lines


def _p_text(p: Any, compact: bool) -> str:
    if p is None or pd.isna(p):
        return "p=—" if not compact else "—"
    star = "*" if p < 0.05 else ""
    if compact:
        return ("<.001" if p < 0.001 else f"{p:.3f}".removeprefix("0")) + star
    return f"p={p:.3f}{star}"


def headline_lines(headline: pd.DataFrame, judges: Sequence[str], n_resamples: int,
                   compact: bool = False) -> list[str]:
    """The paper's comparisons: rows = group × judge, columns = comparisons. Each cell is
    the difference and its p-value with its CI on the line below; compact: one line,
    '+22 [+8,+36] .012*' in percentage points."""
    if headline is None or len(headline) == 0:
        return []
    h = headline
    comps = list(dict.fromkeys(h["comparison"].astype(str)))
    order = judge_order(h, judges)
    head1, head2 = [""], [""]
    for c in comps:
        a, _, b = c.partition(" − ")
        head1.append(_cut(a + " −", 18))
        head2.append(_cut(b, 18))
    rows: list[list[str]] = [head1, head2]
    by = {(str(r.group), str(r.judge), str(r.comparison)): r for r in h.itertuples(index=False)}
    label = 20
    for g in sorted(h["group"].astype(str).unique(), key=group_rank):
        gh = h[h["group"].astype(str).eq(g)]
        rows.append([f"{g} ({_items_label(gh['n_items'])})"])
        for judge in [j for j in order if j in set(gh["judge"].astype(str))]:
            top, bottom = ["  " + judge], [""]
            for c in comps:
                r = by.get((g, judge, c))
                if r is None:
                    top.append("")
                    bottom.append("")
                elif compact:
                    ci = "—" if pd.isna(r.ci_low) else f"{r.ci_low * 100:+.0f},{r.ci_high * 100:+.0f}"
                    few = FEW_MARK if few_items(r.n_items) else ""
                    top.append(f"{_num(r.diff * 100, '{:+.0f}')}{few} [{ci}] {_p_text(r.p_value, True)}")
                else:
                    few = FEW_MARK if few_items(r.n_items) else ""
                    top.append(f"{_num(r.diff, '{:+.2f}')}{few} {_p_text(r.p_value, False)}")
                    bottom.append("[—]" if pd.isna(r.ci_low) else f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]")
            rows += [top] if compact else [top, bottom]
    # judge names get what the comparison columns leave
    cols = [max(len(r[i]) for r in rows if len(r) > i) for i in range(1, len(comps) + 1)]
    label = max(10, min(label, WIDTH - 2 - sum(c + 2 for c in cols)))
    for r in rows:
        if len(r) > 1 and r[0]:
            r[0] = "  " + _cut(r[0].strip(), label, keep_end=True)
    what = ("a − b in accuracy points [95% CI inverting the test] p" if compact else
            "accuracy a − b, p; below: [95% CI inverting the test: the shifts it does not reject]")
    return [f"Headline: the paper's comparisons: {what}; paired permutation test, {n_resamples:,} resamples; "
            f"* p < 0.05; {FEW_NOTE}", *_grid(rows)]


def agent_qa_lines(agent_qa: pd.DataFrame, compact: bool = False) -> list[str]:
    a = agent_qa[agent_qa["level"].eq("group")] if agent_qa is not None and len(agent_qa) else None
    if a is None or len(a) == 0:
        return []
    if compact:
        parts = [f"{r.group} {acc_cell(r.accuracy, r.ci_low, r.ci_high)}" for r in a.itertuples(index=False)]
        return [f"Agent's own QA ({', '.join(dict.fromkeys(a['agent'].astype(str)))}; picks the open protocols' "
                f"sides): " + " · ".join(parts)]
    rows = []
    for r in a.itertuples(index=False):
        err = f"  ({r.n_errors} err)" if r.n_errors else ""
        rows.append(["  " + str(r.group), str(r.agent), str(r.protocol), acc_cell(r.accuracy, r.ci_low, r.ci_high),
                     f"{r.n_items} items{err}"])
    return ["Agent's own QA accuracy (not a judge: its answer picks the open protocols' sides)", *_grid(rows)]


def failure_lines(failures: pd.DataFrame, errors: str, width: int = WIDTH, limit: int = 5) -> list[str]:
    if failures is None or len(failures) == 0:
        return []
    n = int(failures["n_rows"].sum())
    how = ("left out of accuracy and counted beside each cell as err; --errors-as-wrong scores them wrong"
           if errors == "exclude" else "scored as wrong answers (--errors-as-wrong)")
    rows = [["  model", "kind", "rows", "first error"]]
    for r in failures.head(limit).itertuples(index=False):
        rows.append(["  " + _cut(str(r.model), 24), str(r.kind), str(r.n_rows), " ".join(str(r.first_error).split())])
    lines = [f"FAILURES: {n} judged instance(s) have no verdict because an episode failed ({how})",
             *_grid(rows, right=frozenset({2}))]
    if len(failures) > limit:
        lines.append(f"  … {len(failures) - limit} more model/kind group(s) in report.html and failures.parquet")
    return lines


def _elo_cell(r: pd.Series) -> str:
    if pd.isna(r["elo"]):
        return "—"
    ci = "" if pd.isna(r["ci_low"]) or pd.isna(r["ci_high"]) else f" [{r['ci_low']:+.0f},{r['ci_high']:+.0f}]"
    return f"{r['elo']:+.0f}{ci}" + (" ⚠" if elo_unstable(r["ci_low"], r["ci_high"]) else "")


def slope_lines(slopes: pd.DataFrame) -> list[str]:
    """The Elo tournament's headline: how much judge accuracy rises per 100 Elo of the
    debaters, per judge (pooled over task groups)."""
    if slopes is None or len(slopes) == 0:
        return []
    s = slopes[slopes["group"].astype(str).eq("all")] if "group" in slopes.columns else slopes
    s = s[s["slope_per_100"].notna()]
    if len(s) == 0:
        return []
    lines = ["Headline (Elo tournament): judge accuracy on self-play debates against debater Elo, "
             "slope in accuracy points per 100 Elo [95% bootstrap CI]"]
    for r in s.itertuples(index=False):
        ci = "" if pd.isna(r.ci_low) else f" [{r.ci_low * 100:+.1f}, {r.ci_high * 100:+.1f}]"
        lines.append(f"  judge {r.judge}: {r.slope_per_100 * 100:+.1f} points per 100 Elo{ci} "
                     f"over {int(r.n_players)} debaters")
    return lines


def elo_lines(elo: pd.DataFrame, limit: int = 8) -> list[str]:
    if elo is None or len(elo) == 0 or elo["elo"].notna().sum() == 0:
        return []
    e = elo[elo["group"].astype(str).eq("all")] if "group" in elo.columns else elo
    lines = [f"Debater Elo from cross-play games ({elo_scale_text(elo)}; 95% bootstrap CI), by judge; "
             "debaters in the spec's order"]
    flagged = False
    for judge, block in e.groupby("judge", sort=False):
        agg = block[block["kind"].eq("aggregate")]  # the table's order: the spec's
        rows = [[f"  judge {judge}", "aggregate", "arguing correct", "arguing incorrect"]]
        for r in agg.head(limit).itertuples(index=False):
            cell = {}
            for kind in ("aggregate", "correct", "incorrect"):
                k = block[block["kind"].eq(kind) & block["player"].astype(str).eq(str(r.player))]
                cell[kind] = "—" if len(k) == 0 else _elo_cell(k.iloc[0])
            rows.append(["    " + _cut(str(r.player), 24), cell["aggregate"], cell["correct"], cell["incorrect"]])
            flagged |= any("⚠" in c for c in cell.values())
        lines += _grid(rows)
    return lines + ([f"  {ELO_UNSTABLE_NOTE}"] if flagged else [])


def collapse_notes(notes: Sequence[str]) -> list[str]:
    """Identical notes once each, with a count: 'note (×5): …'."""
    counts = Counter(notes)
    return [f"note{f' (×{n})' if n > 1 else ''}: {text}" for text, n in counts.items()]


def _wrap(lines: list[str], width: int) -> list[str]:
    out = []
    for line in lines:
        if len(line) <= width or line.startswith(VERBATIM):
            out.append(line)
        elif not line.startswith(" "):  # prose wraps; table rows (indented) are cut
            out += textwrap.wrap(line, width, subsequent_indent="  ")
        else:
            out.append(_cut(line, width))
    return out


def _trim(lines: list[str], keep: int, what: str) -> list[str]:
    """The first `keep` lines of a section and a pointer to the rest."""
    if keep >= len(lines):
        return lines
    keep = max(2, keep - 1)
    return lines[:keep] + [f"  … {len(lines) - keep} more line(s) in report.html and {what}"]


def summary_text(
    judgments: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    *,
    judges: Sequence[str] = (),
    simulated: bool = False,
    title: str = "",
    errors: str = "exclude",
    n_resamples: int = 10_000,
    footer: Sequence[str] = (),
    notes: Sequence[str] = (),
    width: int = WIDTH,
    max_lines: int = MAX_LINES,
    warnings: Sequence[str] = (),
) -> str:
    """The terminal summary: failures (if any), the headline comparisons, accuracy per task
    group and judge, the agent's own QA, Elo (when the tables have it), notes, and where
    to find the rest. At most `max_lines` lines of at most `width` columns: when the full
    form does not fit, the tables switch to a compact form (percentages, one line per
    judge), then the longest sections are cut with a pointer to the report."""
    j = normalize_judgments(judgments) if len(judgments) else judgments
    n = len(j)
    status = j["verdict_status"].astype(str) if n else pd.Series(dtype=str)
    agent = int(is_agent_qa(j).sum()) if n else 0
    n_err = int((status == "error").sum())
    n_inv = int(status.isin(["invalid", "refused"]).sum())
    n_len = int((status.eq("ok") & j["verdict_rule"].astype(object).eq("lenient")).sum()) \
        if n and "verdict_rule" in j.columns else 0
    top = [f"*** {SIM_BANNER}: numbers from the built-in simulated models, not real LLMs ***"] if simulated else []
    top.extend(warnings)  # before anything else, never cut: a partial run must not read as whole
    top.append(f"{title + ' · ' if title else ''}{n:,} judged instances"
               + (f" ({agent:,} the agent's own QA)" if agent else "")
               + f" · {n_inv:,} invalid or refused (scored wrong) · {n_err:,} failed"
               + (f" · {n_len:,} read by the lenient rule" if n_len else ""))
    humans = sorted({str(v) for v in j["judge"].dropna() if str(v).startswith("human/")}) if n else []
    if humans:  # people's verdicts (oversight judge-ui), scored like any judge
        top.append(f"Human judges: {', '.join(humans)} (people, via oversight judge-ui)")
    summary = tables.get("summary", pd.DataFrame())
    headline = tables.get("headline", pd.DataFrame())
    failures = tables.get("failures", pd.DataFrame())

    def sections(compact: bool) -> dict[str, list[str]]:
        out = {
            "failures": failure_lines(failures, errors, width, limit=3 if compact else 5),
            "headline": headline_lines(headline, judges, n_resamples, compact),
            "accuracy": accuracy_lines(summary, judges, errors, width, compact),
            "agent_qa": agent_qa_lines(tables.get("agent_qa", pd.DataFrame()), compact),
            "elo": elo_lines(tables.get("elo", pd.DataFrame())),
            "notes": collapse_notes(notes),
        }
        if compact:
            out["notes"] = [f"{len(notes)} note(s): see manifest.json"] if len(out["notes"]) > 1 else out["notes"]
            out["elo"] = ["Debater Elo: see report.html and elo.parquet"] if out["elo"] else []
        slope = slope_lines(tables.get("elo_slope", pd.DataFrame()))
        if n == 0:
            out["headline"] = ["No judged instances: nothing to score."]
        elif not out["headline"] and slope:
            out["headline"] = slope
        elif out["headline"] and slope:
            out["elo"] = [*slope, *out["elo"]]
        elif not out["headline"] and not out["elo"]:
            cross = bool((j["agent_b"].notna() & j["agent"].notna()
                          & (j["agent_b"].astype(object) != j["agent"].astype(object))).any())
            out["headline"] = [
                "Headline: an Elo tournament; `oversight report` fits the debaters' Elo ratings." if cross else
                "Headline: none of the paper's protocol pairs (debate vs consultancy, debate vs QA, QA with vs "
                "without article, open debate vs open consultancy) was run on common items."]
        return {k: _wrap(v, width) for k, v in out.items()}

    def assemble(parts: dict[str, list[str]]) -> list[str]:
        out = _wrap(list(top), width)
        for key in ("failures", "headline", "accuracy", "agent_qa", "elo", "notes"):
            if parts[key]:
                out += ["", *parts[key]]
        if footer:
            out += ["", *_wrap(list(footer), width)]
        return out

    parts = sections(compact=False)
    lines = assemble(parts)
    if len(lines) > max_lines:
        parts = sections(compact=True)
        lines = assemble(parts)
    # Still too long: cut the longer of the two big tables, a line at a time, then failures.
    while len(lines) > max_lines:
        over = len(lines) - max_lines
        key = max(("headline", "accuracy"), key=lambda k: len(parts[k]))
        if len(parts[key]) <= 4:
            key = "failures" if len(parts["failures"]) > 4 else key
            if len(parts[key]) <= 4:
                break
        what = {"headline": "headline.parquet", "accuracy": "summary.parquet"}.get(key, "failures.parquet")
        body = [x for x in parts[key] if not x.startswith("  … ")]
        parts[key] = _trim(body, max(4, len(parts[key]) - over - 1 if over > 1 else len(body) - 2), what)
        lines = assemble(parts)
    return "\n".join(line.replace(VERBATIM, "  ") for line in lines[:max_lines])


def partial_warnings(run_dirs: Sequence[Path]) -> list[str]:
    """One line for each run that is not complete (interrupted, stopped by its budget,
    killed while running): its numbers cover only the episodes that finished."""
    out = []
    for d in run_dirs:
        d = d.parent if d.is_file() else d
        try:
            manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = None
        if not isinstance(manifest, dict):
            out.append(f"PARTIAL? {d}: its manifest.json is missing or unreadable, so whether the run finished "
                       f"is unknown.")
            continue
        status = str(manifest.get("status", "unknown"))
        plan = manifest.get("plan")
        planned = plan.get("episodes") if isinstance(plan, dict) else None
        if status != "complete":
            of = f" of the {planned:,} planned" if isinstance(planned, int) and not isinstance(planned, bool) else ""
            out.append(f"PARTIAL RUN: {d} is not complete (status: {status}); these numbers cover only the "
                       f"episodes{of} that finished. `oversight run {d / 'spec.yaml'} --resume --out {d}` "
                       f"completes it.")
    return out


def format_summary(result: ReportResult, notes: Sequence[str] = ()) -> str:
    """The terminal summary of a built report, ending with where its files are."""
    title = "; ".join(result.names[:2]) + (f" (+{len(result.names) - 2} runs)" if len(result.names) > 2 else "")
    footer = []
    if result.html_path is not None:
        footer.append(f"Report: {result.html_path}  (every table, plot and transcript)")
    n_tables = sum(1 for k in result.files if k in TABLE_FILES)
    plots = ", ".join(p.name for p in result.plots.values())
    if n_tables:
        footer.append(f"Tables: {n_tables} parquet files in {result.out_dir}" + (f"; plots: {plots}" if plots else ""))
    return summary_text(result.judgments, result.tables, judges=result.judges, simulated=result.simulated,
                        title=title, errors=result.errors, n_resamples=result.n_resamples, footer=footer,
                        notes=notes, warnings=partial_warnings(result.run_dirs))


def format_tables(result: ReportResult, task_level: bool = False) -> str:
    """Kept for callers of the first API: the terminal summary (`format_summary`)."""
    return format_summary(result)


def run_summary(
    run_dir: Path | str,
    judgments: pd.DataFrame | None = None,
    *,
    notes: Sequence[str] = (),
    results: str = "",
    report_command: str = "oversight report RUN_DIR",
    seed: int = 0,
    n_resamples: int = 10_000,
    errors: str = "exclude",
    verdicts: str = "lenient",
) -> str:
    """The summary printed when `oversight run` finishes: the same as `oversight report`
    prints, from the judgments alone, without Elo fits, plots or the HTML page (no scipy,
    no matplotlib). The headline's tests use the report's seed and resamples, so their
    p-values equal the report's."""
    d = Path(run_dir)
    j = judgments if judgments is not None else read_table(d / "judgments.parquet", "judgments")
    j = apply_reading(j, verdicts)
    manifest = read_manifest(d)
    judges = judge_order(j, spec_judges(manifest)) if len(j) else []
    comparisons = comparisons_table(j, n_resamples=n_resamples, seed=seed, errors=errors,
                                    pairs=headline_pairs(), levels=("group",))
    tables = {
        "summary": summary_table(j, errors=errors, levels=("group",)),
        "headline": headline_table(comparisons, judges),
        "agent_qa": agent_qa_table(j, errors=errors, levels=("group",)),
        "failures": diagnostics.failures_table(j),
    }
    run_id = str(j["run_id"].dropna().iloc[0]) if "run_id" in j.columns and j["run_id"].notna().any() else d.name
    title = f"{manifest['name']} / {run_id}" if manifest.get("name") else run_id
    cross = "agent_b" in j.columns and bool(
        (j["agent_b"].notna() & j["agent"].notna() & (j["agent_b"].astype(object) != j["agent"].astype(object))).any())
    footer = [results] if results else []
    footer += ["Full report (" + ("Elo ratings, " if cross else "") + "task-level tables, every pairwise test, "
               "open-protocol splits, diagnostics, plots, transcripts):", f"{VERBATIM}{report_command}"]
    return summary_text(j, tables, judges=judges, simulated=is_simulated(j), title=title, errors=errors,
                        n_resamples=n_resamples, footer=footer, notes=notes)


__all__ = [
    "ALWAYS_WRITTEN",
    "MAX_BOOTSTRAP",
    "MAX_RESAMPLES",
    "TABLE_FILES",
    "ReportResult",
    "RunData",
    "build_report",
    "check_report_settings",
    "compute_tables",
    "format_summary",
    "format_tables",
    "load_frames",
    "load_run_data",
    "read_table",
    "run_summary",
    "summary_text",
]

