"""`oversight report RUN_DIR...`: every table, plot and the HTML page from stored rows.

`build_report` reads `judgments.parquet` (required), `turns.parquet` and `calls.parquet`
(optional) from one or more run directories, concatenates them, computes the tables of
this package, and writes them as parquet beside the plots and `report.html`.
`format_tables` renders the headline tables as plain text for the terminal.

Output directory: `out_dir` if given; else the run directory itself for one run, or
`<first run dir>/combined-report` for several (so a combined report never overwrites a
single run's own report).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from oversight.errors import OversightError, clip
from oversight.score import diagnostics, plots
from oversight.score.accuracy import summary_table
from oversight.score.compare import comparisons_table
from oversight.score.elo import elo_slope_table, elo_table
from oversight.score.frame import check_table, normalize_judgments
from oversight.score.html import SIM_BANNER, render_html
from oversight.score.open import open_table

# Table name → parquet file written for it (only when the table has rows, except the
# first two, which are always written so downstream code can rely on them).
TABLE_FILES = {
    "summary": "summary.parquet",
    "comparisons": "comparisons.parquet",
    "open": "open.parquet",
    "elo": "elo.parquet",
    "elo_slope": "elo_slope.parquet",
    "positional_bias": "diag_positional_bias.parquet",
    "assignment": "diag_assignment.parquet",
    "calibration": "diag_calibration.parquet",
    "reliability": "diag_reliability.parquet",
    "costs": "diag_costs.parquet",
    "verification": "diag_verification.parquet",
    "calls": "diag_calls.parquet",
}
ALWAYS_WRITTEN = ("summary", "comparisons")

# The comparisons the paper's findings are about, as (protocol_a, protocol_b).
KEY_PAIRS = {
    ("qa_with_article", "qa"),
    ("debate", "qa"),
    ("debate", "qa_with_article"),
    ("debate", "consultancy"),
    ("open_debate", "open_consultancy"),
}


@dataclass
class ReportResult:
    """Everything `build_report` computed and where it wrote it."""

    run_dirs: list[Path]
    out_dir: Path
    judgments: pd.DataFrame
    turns: pd.DataFrame
    calls: pd.DataFrame
    simulated: bool
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    plots: dict[str, Path] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    html_path: Path | None = None

    @property
    def summary(self) -> pd.DataFrame:
        return self.tables.get("summary", pd.DataFrame())

    @property
    def comparisons(self) -> pd.DataFrame:
        return self.tables.get("comparisons", pd.DataFrame())

    @property
    def open(self) -> pd.DataFrame:
        return self.tables.get("open", pd.DataFrame())

    @property
    def elo(self) -> pd.DataFrame:
        return self.tables.get("elo", pd.DataFrame())


MAX_RESAMPLES = 1_000_000
MAX_BOOTSTRAP = 100_000


def read_table(path: Path, table: str) -> pd.DataFrame:
    """One stored table, checked; a corrupt, truncated or foreign file is an OversightError."""
    import pyarrow as pa

    try:
        df = pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        journal = path.parent / "journal.jsonl"
        hint = (f" The run's journal is intact: `oversight run SPEC --resume --out {path.parent}` seals the "
                f"tables again." if journal.exists() else "")
        raise OversightError(
            f"{path}: not a readable Parquet file, perhaps truncated or corrupt ({clip(str(exc), 160)}).{hint}"
        ) from None
    check_table(df, table, str(path))
    return df


def _read_optional(path: Path, table: str) -> pd.DataFrame | None:
    return read_table(path, table) if path.exists() else None


def check_report_settings(seed: int, n_resamples: int, elo_bootstrap: int, elo_scale: float,
                          max_transcripts: int | None) -> None:
    """Bounds on the report's numeric settings, checked before anything is read."""
    problems = []
    if not 1 <= n_resamples <= MAX_RESAMPLES:
        problems.append(f"n_resamples (--resamples) must be 1 … {MAX_RESAMPLES:,}, got {n_resamples:,} "
                        f"(the permutation tests need resamples; default 10,000)")
    if not 0 <= elo_bootstrap <= MAX_BOOTSTRAP:
        problems.append(f"elo_bootstrap must be 0 … {MAX_BOOTSTRAP:,}, got {elo_bootstrap:,}")
    if not 0 <= seed < 2**63:
        problems.append(f"seed (--seed) must be 0 … 2^63 − 1, got {seed:,}")
    if not elo_scale > 0 or elo_scale == float("inf"):
        problems.append(f"elo_scale must be a positive number, got {elo_scale}")
    if max_transcripts is not None and max_transcripts < 0:
        problems.append(f"max_transcripts (--max-transcripts) must be 0 or more, got {max_transcripts:,}")
    if problems:
        raise OversightError("Report settings: " + "; ".join(problems) + ".")


def load_frames(run_dirs: Sequence[Path | str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Concatenated judgments, turns and calls of the given run directories.

    A path to a `judgments.parquet` file is accepted for its directory. A directory
    without one raises an `OversightError` that lists run directories found below it.
    """
    js: list[pd.DataFrame] = []
    ts: list[pd.DataFrame] = []
    cs: list[pd.DataFrame] = []
    for raw in run_dirs:
        d = Path(raw)
        if d.is_file() and d.name == "judgments.parquet":
            d = d.parent
        jp = d / "judgments.parquet"
        if not jp.exists():
            below = sorted(p.parent for p in d.glob("*/judgments.parquet")) if d.is_dir() else []
            hint = (" Run directories below it: " + ", ".join(str(p) for p in below[-5:]) + "."
                    if below else "")
            what = "is not a directory" if not d.is_dir() else "has no judgments.parquet"
            raise OversightError(
                f"Cannot report on '{d}': it {what}. Pass a run directory "
                f"(runs/NAME/<run_id>/) written by `oversight run`.{hint}")
        js.append(read_table(jp, "judgments"))
        for name, acc in (("turns.parquet", ts), ("calls.parquet", cs)):
            frame = _read_optional(d / name, name.removesuffix(".parquet"))
            if frame is not None:
                acc.append(frame)

    def cat(frames: list[pd.DataFrame]) -> pd.DataFrame:
        frames = [f for f in frames if len(f.columns)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    return cat(js), cat(ts), cat(cs)


def is_simulated(judgments: pd.DataFrame) -> bool:
    """True if any row came from the built-in sim models (flag, or a `sim/` model label)."""
    if len(judgments) == 0:
        return False
    if "simulated" in judgments.columns and judgments["simulated"].fillna(False).astype(bool).any():
        return True
    for col in ("judge", "agent", "agent_b"):
        if col in judgments.columns and \
                judgments[col].dropna().astype(str).str.startswith("sim/").any():
            return True
    return False


def compute_tables(
    judgments: pd.DataFrame,
    turns: pd.DataFrame | None = None,
    calls: pd.DataFrame | None = None,
    *,
    seed: int = 0,
    n_resamples: int = 10_000,
    elo_bootstrap: int = 500,
    elo_scale: float = 400,
) -> dict[str, pd.DataFrame]:
    """All report tables as DataFrames, keyed as in `TABLE_FILES`; writes nothing."""
    return {
        "summary": summary_table(judgments),
        "comparisons": comparisons_table(judgments, n_resamples=n_resamples, seed=seed),
        "open": open_table(judgments),
        "elo": elo_table(judgments, scale=elo_scale, bootstrap=elo_bootstrap, seed=seed),
        "elo_slope": elo_slope_table(judgments, scale=elo_scale, bootstrap=elo_bootstrap,
                                     seed=seed),
        "positional_bias": diagnostics.positional_bias(judgments),
        "assignment": diagnostics.accuracy_by_assignment(judgments),
        "calibration": diagnostics.calibration(judgments),
        "reliability": diagnostics.reliability(judgments),
        "costs": diagnostics.cost_table(judgments, turns),
        "verification": diagnostics.verification_rates(
            turns if turns is not None else pd.DataFrame(), judgments),
        "calls": diagnostics.calls_summary(calls),
    }


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    # Columns mixing numbers and strings (e.g. a config value) would make pyarrow refuse.
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object:
            kinds = {type(v) for v in out[col].dropna()}
            if len(kinds) > 1 and not kinds <= {int, float, bool}:
                out[col] = out[col].map(lambda v: None if pd.isna(v) else str(v))
    return out


def build_report(
    run_dirs: Sequence[Path | str] | Path | str,
    out_dir: Path | str | None = None,
    *,
    seed: int = 0,
    n_resamples: int = 10_000,
    elo_bootstrap: int = 500,
    elo_scale: float = 400,
    write_plots: bool = True,
    write_html: bool = True,
    max_transcripts: int | None = None,
) -> ReportResult:
    """Load run directories, compute every table, write parquet, PNG plots and report.html.

    `seed` drives the permutation tests and bootstraps, so a report is reproducible;
    `n_resamples` (permutation tests) and `elo_bootstrap` trade precision for time.
    `max_transcripts` caps the transcript browser (None = all).
    """
    dirs = [Path(run_dirs)] if isinstance(run_dirs, str | Path) else [Path(d) for d in run_dirs]
    if not dirs:
        raise OversightError("No run directory given: pass at least one runs/NAME/<run_id>/.")
    check_report_settings(seed, n_resamples, elo_bootstrap, elo_scale, max_transcripts)
    judgments, turns, calls = load_frames(dirs)
    if out_dir is not None:
        out = Path(out_dir)
    else:
        first = dirs[0].parent if dirs[0].is_file() else dirs[0]
        out = first if len(dirs) == 1 else first / "combined-report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(out, out_dir is not None, exc) from None
    simulated = is_simulated(judgments)
    tables = compute_tables(judgments, turns, calls, seed=seed, n_resamples=n_resamples,
                            elo_bootstrap=elo_bootstrap, elo_scale=elo_scale)
    result = ReportResult(run_dirs=dirs, out_dir=out, judgments=judgments, turns=turns,
                          calls=calls, simulated=simulated, tables=tables)
    try:
        _write_outputs(result, out, write_plots, write_html, max_transcripts)
    except OSError as exc:  # a read-only folder or a full disk, half-way through
        raise _write_error(out, out_dir is not None, exc) from None
    return result


def _write_outputs(result: ReportResult, out: Path, write_plots: bool, write_html: bool,
                   max_transcripts: int | None) -> None:
    for name, fname in TABLE_FILES.items():
        table = result.tables[name]
        if len(table) or name in ALWAYS_WRITTEN:
            path = out / fname
            _parquet_safe(table).to_parquet(path, index=False)
            result.files[name] = path

    if write_plots:
        drawn = {
            "accuracy": plots.plot_accuracy(result.tables["summary"], out / "accuracy.png", result.simulated),
            "open": plots.plot_open(result.tables["open"], out / "open_protocols.png", result.simulated),
            "elo": plots.plot_elo(result.tables["elo"], out / "elo.png", result.simulated),
            "accuracy_vs_elo": plots.plot_accuracy_vs_elo(
                result.tables["elo"], result.tables["elo_slope"], out / "accuracy_vs_elo.png", result.simulated),
            "calibration": plots.plot_calibration(result.tables["reliability"], out / "calibration.png",
                                                  result.simulated),
        }
        result.plots = {k: v for k, v in drawn.items() if v is not None}
        result.files.update({f"plot_{k}": v for k, v in result.plots.items()})

    if write_html:
        page = render_html(result, max_transcripts=max_transcripts)
        result.html_path = out / "report.html"
        result.html_path.write_text(page, encoding="utf-8")
        result.files["html"] = result.html_path


def _write_error(out: Path, given: bool, exc: OSError) -> OversightError:
    where = f"{out} (report --out)" if given else str(out)
    failed = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(out) else ""
    return OversightError(
        f"Cannot write the report to {where}{failed}: {exc.strerror or clip(str(exc))}. "
        f"Choose a folder that can be created and written with --out, or free some space."
    )


def _ci(lo: Any, hi: Any) -> str:
    return f"[{lo:.3f}, {hi:.3f}]" if pd.notna(lo) and pd.notna(hi) else ""


def _text_table(df: pd.DataFrame) -> str:
    return df.to_string(index=False, na_rep="", float_format=lambda x: f"{x:.3f}")


def format_tables(result: ReportResult, task_level: bool = False) -> str:
    """The headline tables as plain text: accuracy with 95% CI and invalid rate per group
    (and per task with `task_level`), significant protocol differences, open protocols,
    Elo, and the files written."""
    lines: list[str] = []
    if result.simulated:
        lines += [f"*** {SIM_BANNER} ***", ""]
    j = normalize_judgments(result.judgments)
    n = len(j)
    status = j["verdict_status"].astype(str)
    lines.append(f"{n} judged instances from {len(result.run_dirs)} run(s); "
                 f"{(status != 'ok').mean() if n else 0:.1%} not ok (counted wrong), "
                 f"{(status == 'error').mean() if n else 0:.1%} failed.")
    s = result.summary
    if len(s):
        d = s.copy()
        d["95% CI"] = [_ci(a, b) for a, b in zip(d["ci_low"], d["ci_high"], strict=True)]
        d["invalid"] = d["invalid_rate"].map(lambda v: f"{v:.1%}")
        n_cross = int(d["cross_play"].sum())
        d = d[~d["cross_play"]]
        cols = ["group", "condition", "judge", "n_items", "accuracy", "95% CI", "invalid"]
        lines += ["", "Judge accuracy by task group (items' orders averaged; 95% CI over items)",
                  _text_table(d[d["level"].eq("group")][cols])]
        if n_cross:
            lines.append("(cross-play tournament debates are summarised by Elo below)")
        if task_level:
            lines += ["", "Judge accuracy by task",
                      _text_table(d[d["level"].eq("task")][["task", *cols[1:]]])]
    c = result.comparisons
    if len(c):
        pairs = c[["protocol_a", "protocol_b"]].apply(tuple, axis=1)
        g = c[c["level"].eq("group") & pairs.isin(KEY_PAIRS)].copy()
        g["95% CI"] = [_ci(a, b) for a, b in zip(g["ci_low"], g["ci_high"], strict=True)]
        g["sig"] = g["significant"].map({True: "*", False: ""})
        lines += ["", "Key protocol comparisons by group (diff = a − b; paired permutation "
                  "test; * p < 0.05; all pairs in comparisons.parquet)",
                  _text_table(g[["group", "judge", "condition_a", "condition_b", "n_items",
                                 "diff", "95% CI", "p_value", "sig"]])]
    o = result.open
    if len(o):
        g = o[o["level"].eq("group")]
        lines += ["", "Open protocols by group (win rate = judge sides with the agent's choice)",
                  _text_table(g[["group", "condition", "judge", "n_items", "win_rate",
                                 "agent_correct_rate", "accuracy_agent_correct",
                                 "accuracy_agent_wrong"]])]
    e = result.elo
    if len(e):
        lines += ["", "Debater Elo (95% bootstrap CI)",
                  _text_table(e[["judge", "kind", "player", "elo", "ci_low", "ci_high",
                                 "n_games", "selfplay_accuracy"]])]
    sl = result.tables.get("elo_slope")
    if sl is not None and len(sl):
        lines += ["", "Judge accuracy vs Elo (slope per 100 Elo, 95% CI)", _text_table(sl)]
    if result.files:
        lines += ["", "Written:"] + [f"  {p}" for p in result.files.values()]
    if result.simulated:
        lines += ["", f"*** {SIM_BANNER} ***"]
    return "\n".join(lines)
