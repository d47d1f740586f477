"""Building the report of one or more run directories: read the stored tables, compute
every score table, write them as parquet beside the PNG plots and `report.html`.

`build_report` reads `judgments.parquet` (required), `turns.parquet`, `calls.parquet`,
`items.parquet` and `prompts.parquet` (optional) from each run directory and concatenates
them. Output directory: `out_dir` if given; else the run directory itself for one run, or
`<first run dir>/combined-report` for several (so a combined report never overwrites a
single run's own report).

The page itself is `html.py`'s, the terminal summary `report.py`'s (which re-exports the
names here); neither of those two imports the other. Scipy (Elo fits) and matplotlib
(plots) are imported only when a full report is built.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from oversight.errors import OversightError, clip
from oversight.score import diagnostics
from oversight.score.accuracy import agent_qa_table, summary_table
from oversight.score.compare import comparisons_table, headline_table
from oversight.score.frame import apply_reading, check_errors_mode, check_reading, check_table, judge_order
from oversight.score.html import Page, render_html
from oversight.score.open import open_table
from oversight.store.safe_io import write_file, write_with

# Table name → parquet file written for it (only when the table has rows, except those in
# ALWAYS_WRITTEN, which downstream code can rely on).
TABLE_FILES = {
    "summary": "summary.parquet",
    "headline": "headline.parquet",
    "comparisons": "comparisons.parquet",
    "agent_qa": "agent_qa.parquet",
    "open": "open.parquet",
    "failures": "failures.parquet",
    "elo": "elo.parquet",
    "elo_slope": "elo_slope.parquet",
    "positional_bias": "diag_positional_bias.parquet",
    "assignment": "diag_assignment.parquet",
    "calibration": "diag_calibration.parquet",
    "reliability": "diag_reliability.parquet",
    "costs": "diag_costs.parquet",
    "verification": "diag_verification.parquet",
    "agent_format": "diag_agent_format.parquet",
    "calls": "diag_calls.parquet",
}
ALWAYS_WRITTEN = ("summary", "headline", "comparisons")



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
    items: pd.DataFrame = field(default_factory=pd.DataFrame)
    prompts: pd.DataFrame = field(default_factory=pd.DataFrame)
    judges: list[str] = field(default_factory=list)  # the spec's order: weak to strong
    names: list[str] = field(default_factory=list)  # "spec name / run id" per run
    debaters: list[str] = field(default_factory=list)  # the tournaments' debaters, spec order
    warnings: list[str] = field(default_factory=list)  # said in the terminal and atop report.html
    errors: str = "exclude"
    n_resamples: int = 10_000
    seed: int = 0
    verdicts: str = "lenient"  # how verdicts were read (score/frame.py READINGS)

    @property
    def summary(self) -> pd.DataFrame:
        return self.tables.get("summary", pd.DataFrame())

    @property
    def comparisons(self) -> pd.DataFrame:
        return self.tables.get("comparisons", pd.DataFrame())

    @property
    def headline(self) -> pd.DataFrame:
        return self.tables.get("headline", pd.DataFrame())

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
                          max_transcripts: int | None, errors: str = "exclude") -> None:
    """Bounds on the report's numeric settings, checked before anything is read."""
    problems = []
    if not 1 <= n_resamples <= MAX_RESAMPLES:
        problems.append(f"n_resamples (--resamples) must be 1 … {MAX_RESAMPLES:,}, got {n_resamples:,} "
                        f"(the permutation tests need resamples; default 10,000)")
    if not 0 <= elo_bootstrap <= MAX_BOOTSTRAP:
        problems.append(f"elo_bootstrap (--elo-bootstrap) must be 0 … {MAX_BOOTSTRAP:,}, got {elo_bootstrap:,}")
    if not 0 <= seed < 2**63:
        problems.append(f"seed (--seed) must be 0 … 2^63 − 1, got {seed:,}")
    if not elo_scale > 0 or elo_scale == float("inf"):
        problems.append(f"elo_scale must be a positive number, got {elo_scale}")
    if max_transcripts is not None and max_transcripts < 0:
        problems.append(f"max_transcripts (--max-transcripts) must be 0 or more, got {max_transcripts:,}")
    if errors not in ("exclude", "wrong"):
        problems.append(f"errors must be 'exclude' or 'wrong' (--errors-as-wrong), got {errors!r}")
    if problems:
        raise OversightError("Report settings: " + "; ".join(problems) + ".")


@dataclass
class RunData:
    """The stored tables of one or more run directories, concatenated."""

    judgments: pd.DataFrame
    turns: pd.DataFrame
    calls: pd.DataFrame
    items: pd.DataFrame
    prompts: pd.DataFrame
    judges: list[str]  # the specs' judge order
    names: list[str]
    elo_scales: dict[str, float] = field(default_factory=dict)  # run name -> its spec's tournament.elo_scale
    debaters: list[str] = field(default_factory=list)  # the tournaments' debaters, in spec order


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """`manifest.json` of a run directory, or {} when it is missing or unreadable (a report
    needs only the tables; the manifest adds the spec's judge order and the run's name)."""
    try:
        data = json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _model_label(ref: object) -> str | None:
    if isinstance(ref, str):
        return ref
    if isinstance(ref, dict):
        if ref.get("name"):
            return str(ref["name"])
        if ref.get("provider") and ref.get("model"):
            return f"{ref['provider']}/{ref['model']}"
    return None


def spec_judges(manifest: dict[str, Any]) -> list[str]:
    """The judges in the order the spec lists them (the paper's: weak to strong), then the
    tournament's, then any other judge the manifest names."""
    spec = (manifest.get("identity") or {}).get("spec") or {}
    refs: list[object] = list(spec.get("judges") or [])
    t = spec.get("tournament") or {}
    if isinstance(t, dict):
        refs += [t.get("judge")] if t.get("judge") else list(t.get("judges") or [])
    refs += list((manifest.get("roles") or {}).get("judge") or [])
    return list(dict.fromkeys(x for x in (_model_label(r) for r in refs) if x))


def spec_elo_scale(manifest: dict[str, Any]) -> float | None:
    """The Elo scale the run's spec sets (`tournament.elo_scale`), or None."""
    spec = (manifest.get("identity") or {}).get("spec") or {}
    t = spec.get("tournament") if isinstance(spec, dict) else None
    value = t.get("elo_scale") if isinstance(t, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def resolve_elo_scale(given: float | None, data: RunData) -> float:
    """The report's Elo scale: `given` (--elo-scale), else the runs' specs' own, else 400.
    Runs whose specs set different scales need --elo-scale: one table has one scale."""
    from oversight.score.elo import DEFAULT_SCALE

    if given is not None:
        return float(given)
    scales = set(data.elo_scales.values())
    if len(scales) > 1:
        listing = "; ".join(f"{name}: {s:g}" for name, s in data.elo_scales.items())
        raise OversightError(
            f"The runs' specs set different Elo scales (tournament.elo_scale: {listing}); ratings on two "
            f"scales cannot share a table. Pass the scale to report them on with --elo-scale S."
        )
    return scales.pop() if scales else DEFAULT_SCALE


def spec_debaters(manifest: dict[str, Any]) -> list[str]:
    """The tournament's debaters as the spec lists them (the paper's: weak to strong),
    named as the engine names them (a model label, `+boN` for best-of-N, or `name:`)."""
    spec = (manifest.get("identity") or {}).get("spec") or {}
    t = spec.get("tournament") or {}
    out = []
    for d in (t.get("debaters") or []) if isinstance(t, dict) else []:
        if not isinstance(d, dict):
            continue
        label = _model_label(d.get("model"))
        best_of = int(d.get("best_of") or 1)
        name = d.get("name") or (label if best_of == 1 or label is None else f"{label}+bo{best_of}")
        if name:
            out.append(str(name))
    return out


def order_debaters(elo: pd.DataFrame, debaters: Sequence[str]) -> pd.DataFrame:
    """Each tournament's rows with its debaters in the spec's order (then any others by
    rating): tables and figures list them weak to strong as the spec does, not by name."""
    if elo is None or len(elo) == 0 or "player" not in elo.columns:
        return elo
    rank = {d: i for i, d in enumerate(debaters)}
    blocks = [c for c in ("judge", "rounds", "turn_style", "group") if c in elo.columns]
    keys = pd.DataFrame({
        "_b": elo.groupby(blocks, dropna=False, sort=False).ngroup() if blocks else 0,
        "_k": elo["kind"].map({"aggregate": 0, "correct": 1, "incorrect": 2}).fillna(3) if "kind" in elo else 0,
        "_p": elo["player"].map(lambda p: rank.get(str(p), len(rank))),
        "_e": -pd.to_numeric(elo["elo"], errors="coerce").fillna(0.0),
    }, index=elo.index)
    return elo.loc[keys.sort_values(list(keys.columns), kind="stable").index].reset_index(drop=True)


class BootstrapProgress:
    """Progress of the Elo bootstrap refits on a stream, at most one line every few seconds."""

    def __init__(self, stream: TextIO, total: int, every_s: float = 3.0) -> None:
        self.stream, self.total, self.every_s = stream, total, every_s
        self.done = 0
        self.start = self.last = time.monotonic()
        print(f"Elo: fitting ratings and {total:,} bootstrap refits at most (--elo-bootstrap sets how many per fit)…",
              file=stream, flush=True)

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            print(f"Elo bootstrap: {self.done:,} of up to {self.total:,} refits ({now - self.start:.0f} s)",
                  file=self.stream, flush=True)

    def finish(self) -> None:
        print(f"Elo bootstrap: done, {self.done:,} refits in {time.monotonic() - self.start:.1f} s", file=self.stream,
              flush=True)


def load_run_data(run_dirs: Sequence[Path | str]) -> RunData:
    """Every stored table of the given run directories, concatenated.

    A path to a `judgments.parquet` file is accepted for its directory. A directory
    without one raises an `OversightError` that lists run directories found below it.
    Turns, calls and items get the run's `run_id` so that several runs stay apart.
    """
    frames: dict[str, list[pd.DataFrame]] = {k: [] for k in ("judgments", "turns", "calls", "items", "prompts")}
    judges: list[str] = []
    names: list[str] = []
    scales: dict[str, float] = {}
    debaters: list[str] = []
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
        j = read_table(jp, "judgments")
        manifest = read_manifest(d)
        run_id = None
        if "run_id" in j.columns and j["run_id"].notna().any():
            run_id = str(j["run_id"].dropna().iloc[0])
        run_id = run_id or str(manifest.get("run_id") or d.name)
        if "run_id" not in j.columns:
            j = j.assign(run_id=run_id)
        frames["judgments"].append(j)
        for name in ("turns", "calls", "items", "prompts"):
            frame = _read_optional(d / f"{name}.parquet", name)
            if frame is not None:
                if name != "prompts":
                    frame = frame.assign(run_id=run_id)
                frames[name].append(frame)
        judges += spec_judges(manifest)
        debaters += spec_debaters(manifest)
        names.append(f"{manifest['name']} / {run_id}" if manifest.get("name") else run_id)
        if (scale := spec_elo_scale(manifest)) is not None:
            scales[names[-1]] = scale

    def cat(fs: list[pd.DataFrame]) -> pd.DataFrame:
        fs = [f for f in fs if len(f.columns)]
        return pd.concat(fs, ignore_index=True) if fs else pd.DataFrame()

    prompts = cat(frames["prompts"])
    if len(prompts) and "prompt_id" in prompts.columns:
        prompts = prompts.drop_duplicates("prompt_id", ignore_index=True)
    return RunData(cat(frames["judgments"]), cat(frames["turns"]), cat(frames["calls"]), cat(frames["items"]),
                   prompts, list(dict.fromkeys(judges)), names, scales, list(dict.fromkeys(debaters)))


def load_frames(run_dirs: Sequence[Path | str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Concatenated judgments, turns and calls of the given run directories."""
    data = load_run_data(run_dirs)
    return data.judgments, data.turns, data.calls


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
    errors: str = "exclude",
    judges: Sequence[str] = (),
    debaters: Sequence[str] = (),
    progress: TextIO | None = None,
) -> dict[str, pd.DataFrame]:
    """All report tables as DataFrames, keyed as in `TABLE_FILES`; writes nothing.

    `errors="exclude"` (default) leaves failed episodes out of every accuracy and counts
    them beside it; `"wrong"` scores them as wrong answers. `judges` orders the headline,
    `debaters` the Elo tables; `progress` (a stream) reports the Elo bootstrap as it runs.
    """
    from oversight.score.elo import _scopes, elo_slope_table, elo_table, tournaments  # scipy: full report only

    check_errors_mode(errors)
    comparisons = comparisons_table(judgments, n_resamples=n_resamples, seed=seed, errors=errors)
    fits = sum(len(_scopes(rows, True)) for _, rows in tournaments(judgments)) if elo_bootstrap else 0
    bar = BootstrapProgress(progress, 3 * fits * elo_bootstrap) if progress is not None and fits else None
    elo = order_debaters(elo_table(judgments, scale=elo_scale, bootstrap=elo_bootstrap, seed=seed, by_group=True,
                                   errors=errors, progress=bar), debaters)
    slope = elo_slope_table(judgments, scale=elo_scale, bootstrap=elo_bootstrap, by_group=True, seed=seed,
                            errors=errors, progress=bar)
    if bar is not None:
        bar.finish()
    return {
        "summary": summary_table(judgments, errors=errors),
        "headline": headline_table(comparisons, judge_order(judgments, judges)),
        "comparisons": comparisons,
        "agent_qa": agent_qa_table(judgments, errors=errors),
        "open": open_table(judgments, errors=errors),
        "failures": diagnostics.failures_table(judgments),
        "elo": elo,
        "elo_slope": slope,
        "positional_bias": diagnostics.positional_bias(judgments, errors=errors),
        "assignment": diagnostics.accuracy_by_assignment(judgments, errors=errors),
        "calibration": diagnostics.calibration(judgments, errors=errors),
        "reliability": diagnostics.reliability(judgments, errors=errors),
        "costs": diagnostics.cost_table(judgments, turns),
        "verification": diagnostics.verification_rates(
            turns if turns is not None else pd.DataFrame(), judgments),
        "agent_format": diagnostics.agent_format(turns),
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
    elo_scale: float | None = None,
    write_plots: bool = True,
    write_html: bool = True,
    max_transcripts: int | None = None,
    errors: str = "exclude",
    verdicts: str = "lenient",
    progress: TextIO | None = None,
) -> ReportResult:
    """Load run directories, compute every table, write parquet, PNG plots and report.html.

    `seed` drives the permutation tests and bootstraps, so a report is reproducible;
    `n_resamples` (permutation tests) and `elo_bootstrap` trade precision for time.
    `max_transcripts` caps the transcript browser (None = all). `errors="wrong"` scores
    failed episodes as wrong answers instead of leaving them out. `elo_scale` (s in
    1 / (1 + 10^(ΔE/s))): None takes the runs' `tournament.elo_scale`, else 400.
    `verdicts="strict"` counts verdicts that only the lenient rule could read as invalid
    (score/frame.py).
    """
    check_reading(verdicts)
    dirs = [Path(run_dirs)] if isinstance(run_dirs, str | Path) else [Path(d) for d in run_dirs]
    if not dirs:
        raise OversightError("No run directory given: pass at least one runs/NAME/<run_id>/.")
    check_report_settings(seed, n_resamples, elo_bootstrap, 400 if elo_scale is None else elo_scale,
                          max_transcripts, errors)
    data = load_run_data(dirs)
    data.judgments = apply_reading(data.judgments, verdicts)
    elo_scale = resolve_elo_scale(elo_scale, data)
    if out_dir is not None:
        out = Path(out_dir)
    else:
        first = dirs[0].parent if dirs[0].is_file() else dirs[0]
        out = first if len(dirs) == 1 else first / "combined-report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(out, out_dir is not None, exc) from None
    judges = judge_order(data.judgments, data.judges) if len(data.judgments) else data.judges
    tables = compute_tables(data.judgments, data.turns, data.calls, seed=seed, n_resamples=n_resamples,
                            elo_bootstrap=elo_bootstrap, elo_scale=elo_scale, errors=errors, judges=judges,
                            debaters=data.debaters, progress=progress)
    result = ReportResult(run_dirs=dirs, out_dir=out, warnings=in_use_warnings(dirs), judgments=data.judgments,
                          turns=data.turns,
                          calls=data.calls, simulated=is_simulated(data.judgments), tables=tables,
                          items=data.items, prompts=data.prompts, judges=judges, names=data.names,
                          errors=errors, n_resamples=n_resamples, seed=seed, verdicts=verdicts,
                          debaters=data.debaters)
    try:
        _write_outputs(result, out, write_plots, write_html, max_transcripts)
    except OSError as exc:  # a read-only folder or a full disk, half-way through
        raise _write_error(out, out_dir is not None, exc) from None
    return result


def calibration_label(reliability: pd.DataFrame, simulated: bool) -> tuple[bool, str]:
    """Whether the calibration figure is SIMULATED, and a note: its points are the judges'
    stated confidence, so people's verdicts (human/…) are real data even when the
    arguments they read came from sim models."""
    judges = {str(j) for j in reliability["judge"].dropna()} if len(reliability) else set()
    if not judges or not all(j.startswith("human/") for j in judges):
        return simulated, ""
    return False, "people's verdicts (judge-ui)" + ("; the arguments they read are from sim models" if simulated
                                                   else "")


def in_use_warnings(dirs: Sequence[Path]) -> list[str]:
    """A run another process still holds (judge-ui taking verdicts, a run being resumed) has
    records its tables do not have yet: the report says so instead of looking complete."""
    from oversight.store.lock import holder

    out = []
    for d in dirs:
        d = d.parent if d.is_file() else d
        pid = holder(d)
        if pid is not None:
            out.append(f"{d} is in use by another oversight process (PID {pid}), such as `oversight judge-ui` or a "
                       "run being resumed: verdicts it has taken are not sealed into judgments.parquet yet, so human "
                       "verdicts given there are missing from this report. Stop it (judge-ui seals them when it "
                       "stops) and report again.")
    return out


def _write_outputs(result: ReportResult, out: Path, write_plots: bool, write_html: bool,
                   max_transcripts: int | None) -> None:
    for name, fname in TABLE_FILES.items():
        table = result.tables[name]
        if len(table) or name in ALWAYS_WRITTEN:
            path = out / fname
            safe = _parquet_safe(table)
            write_with(path, functools.partial(safe.to_parquet, index=False), root=out)
            result.files[name] = path

    if write_plots:
        from oversight.score import plots  # matplotlib: only when plots are drawn

        t, sim, judges = result.tables, result.simulated, result.judges
        drawn = {
            "accuracy": plots.plot_accuracy(t["summary"], out / "accuracy.png", sim, judges=judges),
            "open": plots.plot_open(t["open"], out / "open_protocols.png", sim, judges=judges),
            "elo": plots.plot_elo(t["elo"], out / "elo.png", sim),
            "accuracy_vs_elo": plots.plot_accuracy_vs_elo(t["elo"], t["elo_slope"], out / "accuracy_vs_elo.png",
                                                          sim),
            "calibration": plots.plot_calibration(t["reliability"], out / "calibration.png",
                                                  *calibration_label(t["reliability"], sim)),
        }
        result.plots = {k: v for k, v in drawn.items() if v is not None}
        result.files.update({f"plot_{k}": v for k, v in result.plots.items()})

    if write_html:
        page = Page(
            tables=result.tables, plots=result.plots, judgments=result.judgments, turns=result.turns,
            items=result.items, prompts=result.prompts, run_dirs=result.run_dirs, names=result.names,
            simulated=result.simulated, judges=result.judges, errors=result.errors,
            n_resamples=result.n_resamples, max_transcripts=max_transcripts, verdicts=result.verdicts,
            warnings=result.warnings,
        )
        result.html_path = out / "report.html"
        write_file(result.html_path, render_html(page), root=out)
        result.files["html"] = result.html_path


def _write_error(out: Path, given: bool, exc: OSError) -> OversightError:
    where = f"{out} (report --out)" if given else str(out)
    failed = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(out) else ""
    return OversightError(
        f"Cannot write the report to {where}{failed}: {exc.strerror or clip(str(exc))}. "
        f"Choose a folder that can be created and written with --out, or free some space."
    )
