"""Scoring: pure functions of stored rows (judgments, turns, calls); no model is called.

The functions take DataFrames as read from a run directory's parquet files:

    >>> import pandas as pd
    >>> from oversight.score import summary_table, comparisons_table
    >>> j = pd.read_parquet("runs/quickstart/<run_id>/judgments.parquet")
    >>> summary_table(j).query("level == 'group'")
    >>> comparisons_table(j).query("significant")

Names are imported on first use, so `from oversight.score.report import run_summary` (the
end-of-run summary) loads neither scipy (Elo fits) nor matplotlib (plots).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oversight.score import plots
    from oversight.score.accuracy import agent_qa_table, item_scores, summarize_scores, summary_table
    from oversight.score.compare import comparisons_table, headline_table, paired_permutation
    from oversight.score.diagnostics import (
        accuracy_by_assignment,
        calibration,
        calls_summary,
        cost_table,
        failures_table,
        positional_bias,
        reliability,
        verification_rates,
    )
    from oversight.score.elo import (
        accuracy_elo_slope,
        debate_games,
        elo_slope_table,
        elo_table,
        fit_elo,
    )
    from oversight.score.frame import condition_labels, normalize_judgments
    from oversight.score.open import open_table
    from oversight.score.report import (
        ReportResult,
        build_report,
        compute_tables,
        format_summary,
        format_tables,
        run_summary,
    )

_WHERE = {
    "agent_qa_table": "accuracy", "item_scores": "accuracy", "summarize_scores": "accuracy",
    "summary_table": "accuracy",
    "comparisons_table": "compare", "headline_table": "compare", "paired_permutation": "compare",
    "accuracy_by_assignment": "diagnostics", "calibration": "diagnostics", "calls_summary": "diagnostics",
    "cost_table": "diagnostics", "failures_table": "diagnostics", "positional_bias": "diagnostics",
    "reliability": "diagnostics", "verification_rates": "diagnostics",
    "accuracy_elo_slope": "elo", "debate_games": "elo", "elo_slope_table": "elo", "elo_table": "elo",
    "fit_elo": "elo",
    "condition_labels": "frame", "normalize_judgments": "frame",
    "open_table": "open",
    "ReportResult": "build", "build_report": "build", "compute_tables": "build", "format_summary": "report",
    "format_tables": "report", "run_summary": "report",
}  # fmt: skip

__all__ = [
    "ReportResult",
    "accuracy_by_assignment",
    "accuracy_elo_slope",
    "agent_qa_table",
    "build_report",
    "calibration",
    "calls_summary",
    "comparisons_table",
    "compute_tables",
    "condition_labels",
    "cost_table",
    "debate_games",
    "elo_slope_table",
    "elo_table",
    "failures_table",
    "fit_elo",
    "format_summary",
    "format_tables",
    "headline_table",
    "item_scores",
    "normalize_judgments",
    "open_table",
    "paired_permutation",
    "plots",
    "positional_bias",
    "reliability",
    "run_summary",
    "summarize_scores",
    "summary_table",
    "verification_rates",
]


def __getattr__(name: str) -> Any:
    if name == "plots":
        return importlib.import_module("oversight.score.plots")
    if name in _WHERE:
        return getattr(importlib.import_module(f"oversight.score.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'oversight.score' has no attribute {name!r}")
