"""oversight: compare scalable-oversight protocols (QA, consultancy, debate) with weak LLM
judges and strong LLM agents. The public API:

- `run(spec, out=None, resume=False) -> RunResult` (works in a script and in Jupyter)
- `await run_async(spec, out=None, resume=False) -> RunResult`
- `judge(run_dir, judges, mode=None, out=None, allow_agent_calls=False, resume=False) -> RunResult`:
  a finished run's stored transcripts judged by new judges (what `oversight judge` calls)
- `import_transcripts(file, task, out) -> ImportResult` (what `oversight import` calls)
- `load(run_dir) -> Results` with `.judgments`, `.turns`, `.calls` DataFrames
- `load_items(task, path=None, limit=None, seed=0) -> list[Item]`
- `fit_elo(games, scale=400, bootstrap=500, seed=0) -> DataFrame`
- the scoring functions of `oversight.score` (`summary_table`, `comparisons_table`, ...)
- `include(path)`: add a folder of your own tasks/, judges/, protocols/ or runs/ (like `--include`)
- `register_provider(name, api_class)`: a provider for this process (packages use the
  `oversight.providers` entry-point group)
- `register_protocol(protocol_class)`: a protocol for this process (packages use the
  `oversight.protocols` entry-point group; see oversight/protocol/base.py)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from oversight.catalogue import include
    from oversight.engine.importer import import_transcripts
    from oversight.engine.runner import RunResult, run, run_async
    from oversight.errors import OversightError
    from oversight.model.registry import register as register_provider
    from oversight.protocol.registry import register as register_protocol
    from oversight.score import (
        accuracy_by_assignment,
        agent_qa_table,
        build_report,
        calibration,
        comparisons_table,
        cost_table,
        elo_slope_table,
        elo_table,
        format_tables,
        item_scores,
        open_table,
        paired_permutation,
        positional_bias,
        summary_table,
    )
    from oversight.score.elo import fit_elo
    from oversight.store.tables import Results, load
    from oversight.task.card import load_items
    from oversight.task.item import Item

_SCORING = (
    "accuracy_by_assignment", "agent_qa_table", "build_report", "calibration", "comparisons_table", "cost_table",
    "elo_slope_table", "elo_table", "format_tables", "item_scores", "open_table", "paired_permutation",
    "positional_bias", "summary_table",
)  # fmt: skip

# name -> (module, attribute)
_LAZY: dict[str, tuple[str, str]] = {
    "run": ("oversight.engine.runner", "run"),
    "run_async": ("oversight.engine.runner", "run_async"),
    "judge": ("oversight.engine.rejudge", "judge"),
    "import_transcripts": ("oversight.engine.importer", "import_transcripts"),
    "RunResult": ("oversight.engine.runner", "RunResult"),
    "load": ("oversight.store.tables", "load"),
    "Results": ("oversight.store.tables", "Results"),
    "load_items": ("oversight.task.card", "load_items"),
    "Item": ("oversight.task.item", "Item"),
    "fit_elo": ("oversight.score.elo", "fit_elo"),
    "OversightError": ("oversight.errors", "OversightError"),
    "include": ("oversight.catalogue", "include"),
    "register_provider": ("oversight.model.registry", "register"),
    "register_protocol": ("oversight.protocol.registry", "register"),
    **{name: ("oversight.score", name) for name in _SCORING},
}

__all__ = [
    "Item",
    "OversightError",
    "Results",
    "RunResult",
    "accuracy_by_assignment",
    "agent_qa_table",
    "build_report",
    "calibration",
    "comparisons_table",
    "cost_table",
    "elo_slope_table",
    "elo_table",
    "fit_elo",
    "format_tables",
    "import_transcripts",
    "include",
    "item_scores",
    "judge",
    "load",
    "load_items",
    "open_table",
    "paired_permutation",
    "positional_bias",
    "register_protocol",
    "register_provider",
    "run",
    "run_async",
    "summary_table",
]  # the names of _LAZY (tests/ecosystem/test_notebook.py checks)


def __getattr__(name: str) -> Any:
    # Lazy, so `import oversight` stays fast for the CLI and light for analysis notebooks.
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'oversight' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The lazy names too, so tab completion and dir() in a notebook show the API.
    return sorted({*globals(), *_LAZY})


# `oversight.judge` is also the name of the subpackage oversight/judge/. Importing it here
# first, then binding the function, keeps `oversight.judge(...)` the function: a first
# import of the subpackage later (by the run's own code) would otherwise rebind the name to
# the module, and the lazy lookup above would never be asked.
from oversight import judge as _judge_package  # noqa: E402,F401


def judge(*args: Any, **kwargs: Any) -> Any:
    """A finished run's stored transcripts judged by new judges (oversight/engine/rejudge.py,
    what `oversight judge` calls); see `oversight.engine.rejudge.judge` for the arguments."""
    from oversight.engine.rejudge import judge as rejudge

    return rejudge(*args, **kwargs)
