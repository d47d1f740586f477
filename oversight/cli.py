"""The `oversight` command: a thin layer over the Python API.

Every user-fixable problem ends in a one-paragraph message and exit status 2, never a
traceback; `--debug` (or OVERSIGHT_DEBUG=1) shows the traceback for a bug report.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from oversight import catalogue
from oversight.errors import OversightError, clip


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oversight", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--include", action="append", default=[], metavar="PATH",
                   help="extra folder holding protocols/, tasks/ or judges/ (repeatable)")
    p.add_argument("--debug", action="store_true", help="show the traceback of any error (also OVERSIGHT_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run an experiment spec")
    r.add_argument("spec")
    r.add_argument("--out", help="write results exactly to this directory")
    r.add_argument("--resume", action="store_true", help="finish an interrupted run, repeating no finished call")
    r.add_argument("--dry-run", action="store_true", help="print the plan and estimated cost; call nothing")
    r.add_argument("--keep-errors", action="store_true",
                   help="with --resume: keep episodes that ended in error instead of running them again")
    r.add_argument("--cache", choices=["on", "off", "read", "write"], default="on",
                   help="response cache for this run: on (default), off, read (never write), write (never read)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a spec key, e.g. --set limit=4 --set debate.rounds=2")
    r.add_argument("--batch", action="store_true",
                   help="send calls through the providers' batch APIs (about half price, results within 24 h)")
    r.add_argument("--detach", action="store_true",
                   help="with --batch: exit once the first wave is submitted; --resume collects it")
    r.add_argument("--batch-fallback", choices=["retry", "online"], default="retry",
                   help="a request that fails inside a batch is retried in the next wave (default) or online")
    r.add_argument("--batch-poll", type=float, default=None, metavar="SECONDS",
                   help="how often to poll a submitted batch (default: the card's batch_poll_s, 30)")

    v = sub.add_parser("validate", help="check a spec, its model cards, tasks and keys")
    v.add_argument("spec")
    v.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")

    rep = sub.add_parser("report", help="tables, plots and report.html for one or more runs")
    rep.add_argument("run_dirs", nargs="+")
    rep.add_argument("--out", help="where to write the report (default: the first run directory)")
    rep.add_argument("--resamples", type=int, default=10_000, help="permutation-test resamples (default 10,000)")
    rep.add_argument("--seed", type=int, default=0, help="seed for permutation tests and bootstraps")
    rep.add_argument("--max-transcripts", type=int, default=None, help="cap the transcripts in report.html")
    rep.add_argument("--errors-as-wrong", action="store_true",
                     help="score failed episodes as wrong answers (default: leave them out and count them)")

    ls = sub.add_parser("list", help="list tasks, protocols or models")
    ls.add_argument("what", choices=["tasks", "protocols", "models"])

    b = sub.add_parser("build-task", help="build a task file that needs a model (gsm8kqa, codeqa)")
    b.add_argument("task", choices=["gsm8kqa", "codeqa"])
    b.add_argument("--from", dest="source", required=True, help="the upstream file (GSM8K JSONL, HumanEval.jsonl.gz)")
    b.add_argument("--model", required=True, help="model reference (card name or provider/model)")
    b.add_argument("--samples", type=int, default=32)
    b.add_argument("--out", required=True)
    b.add_argument("--limit", type=int, default=None, help="only the first N problems")
    b.add_argument(
        "--unsafe-sandbox",
        action="store_true",
        help="if bubblewrap is unavailable, run model-written programs under the weak in-process guard (escapable)",
    )
    bt = sub.add_parser("batch", help="provider batches of a run made with --batch")
    bt.add_argument("action", choices=["status"], help="status: the journaled batches and their provider state")
    bt.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, runs/NAME/<run_id>")
    for command in sub.choices.values():
        # Accepted after the command too; SUPPRESS keeps a top-level --debug from being reset.
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def cmd_run(args: argparse.Namespace) -> int:
    from oversight.engine.prepare import prepare
    from oversight.engine.spec import load_spec

    if args.dry_run:
        from oversight.engine.estimate import estimate

        spec = load_spec(args.spec, args.overrides)
        prep = prepare(spec, args.spec, check_keys=False)
        est = estimate(prep)
        print_plan(prep, est)
        if args.batch:
            from oversight.engine.batch_plan import print_batch_plan

            print_batch_plan(prep, est)
        return 0
    from oversight.engine.runner import run

    result = run(args.spec, out=args.out, resume=args.resume, overrides=args.overrides,
                 cache=args.cache, keep_errors=args.keep_errors, batch=args.batch, detach=args.detach,
                 batch_fallback=args.batch_fallback, batch_poll_s=args.batch_poll)
    if result.status == "interrupted":
        return result.exit_code  # the runner has printed what was kept and how to resume
    # The same summary `oversight report` prints, from the judgments alone: pandas and numpy
    # only (no scipy for Elo, no matplotlib for plots; those are `oversight report`'s).
    from oversight.score.report import run_summary

    exe = oversight_command()
    run_dir = shlex.quote(str(result.run_dir))
    status = "" if result.status == "complete" else f" (status: {result.status})"
    print(run_summary(result.run_dir, result.judgments, notes=result.notes,
                      results=f"Results in {result.run_dir}{status}.",
                      report_command=f"{exe} report {run_dir}"))
    resume = f"{exe} run {shlex.quote(str(args.spec))} --resume --out {run_dir}"
    if result.fatal:
        print(f"error: {result.fatal} Resume with: {resume}", file=sys.stderr)
    t = result.totals
    errors, planned = t.get("episode_errors", 0), t.get("episodes_planned") or 0
    if errors:
        unrun = planned - errors - t.get("episodes_done", 0)
        rest = f", {unrun} not started" if unrun > 0 else ""
        print(f"error: {errors} of {planned} episodes ended in error{rest} (the `error` column of "
              f"judgments.parquet says why); `{resume}` runs them again.", file=sys.stderr)
    return result.exit_code


def print_plan(prep, est) -> None:  # type: ignore[no-untyped-def]
    spec = prep.spec
    print(f"Plan for '{spec.name}' (seed {spec.seed}, orders: {spec.orders})")
    for task, items in prep.items.items():
        skipped = sum(prep.skipped.get(task, {}).values())
        print(f"  task {task}: {len(items)} items" + (f" ({skipped} records skipped)" if skipped else ""))
    for note in prep.plan.notes:
        print(f"  note: {note}")
    print("Episodes (judged instances):")
    for proto, n in sorted(est.episodes.items()):
        print(f"  {proto:<18} {n:>8,}")
    print(f"  {'total':<18} {sum(est.episodes.values()):>8,}")
    print("Estimated model calls and tokens; input counts the part the providers' prompt caches serve;")
    print(f"{'dollars with prompt caching, then without':>120}")
    for label, t in sorted(est.models.items()):
        print("  " + _tally_line(label, t, prep.cards[label]))
    print(f"  {'total':<24} {est.calls:>9,} calls {est.tokens:>13,} tokens {'':>33} "
          f"{_usd(est.cost_usd)} {_usd(est.uncached_cost_usd)}")
    if est.projected is not None:
        p = est.projected
        print(f"Projected at {spec.limit} items per task (some task files hold fewer, e.g. bundled samples):")
        for label, t in sorted(est.projected_models.items()):
            print("  " + _tally_line(label, t, prep.cards[label]))
        print(f"  {est.projected_episodes:,} episodes, {p.calls:,} calls, "
              f"{p.input_tokens + p.output_tokens:,} tokens, ${est.projected_cost_usd:,.2f} with prompt caching, "
              f"${est.projected_uncached_cost_usd:,.2f} without")
    print("Nothing was called (dry run). Derived open protocols add no calls; tokens are estimates.")


def _usd(x: float) -> str:
    return f"{'$' + format(x, ',.2f'):>11}"


def _tally_line(label: str, t, card) -> str:  # type: ignore[no-untyped-def]
    """One model's estimated calls, tokens and dollars with and without prompt caching."""
    return (f"{label:<24} {t.calls:>9,} calls {t.input_tokens:>13,} in {t.cached_input_tokens:>13,} cached "
            f"{t.output_tokens:>12,} out {_usd(t.cost(card))} {_usd(t.cost(card, caching=False))}")


def cmd_validate(args: argparse.Namespace) -> int:
    from oversight.engine.prepare import prepare
    from oversight.engine.spec import load_spec

    spec = load_spec(args.spec, args.overrides)
    prep = prepare(spec, args.spec)
    print(f"{args.spec}: OK — {len(prep.plan.episodes):,} episodes over {len(prep.items)} task(s), "
          f"{len(prep.cards)} model(s): {', '.join(prep.cards)}.")
    return 0


def oversight_command() -> str:
    """This program as a user can type it again: `oversight` when that name on PATH is this
    program, else the full path of the executable that is running (a virtual environment
    that was never activated), else `python -m oversight`."""
    argv0 = sys.argv[0] if sys.argv else ""
    found = shutil.which("oversight")
    if argv0 and Path(argv0).name in ("oversight", "oversight.exe") and Path(argv0).exists():
        if found and Path(found).resolve() == Path(argv0).resolve():
            return "oversight"
        return shlex.quote(str(Path(argv0).absolute()))
    return f"{shlex.quote(sys.executable)} -m oversight"


def cmd_report(args: argparse.Namespace) -> int:
    from oversight.score.report import build_report, format_summary

    dirs = [Path(d) for d in args.run_dirs]
    for d in dirs:
        if not d.is_dir():
            raise OversightError(f"Run directory not found: {d}.")
    result = build_report(dirs, Path(args.out) if args.out else None, seed=args.seed,
                          n_resamples=args.resamples, max_transcripts=args.max_transcripts,
                          errors="wrong" if args.errors_as_wrong else "exclude")
    print(format_summary(result))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    if args.what == "tasks":
        from oversight.task.card import load_card

        for name in catalogue.names("tasks"):
            try:
                tcard = load_card(name)
                print(f"{name:<18} {tcard.group:<11} {_first_sentence(tcard.description)}")
            except OversightError as exc:
                print(f"{name:<18} (invalid card: {exc})")
    elif args.what == "protocols":
        from oversight.engine.plan import PROTOCOLS

        descriptions = _protocol_descriptions()
        for name in PROTOCOLS:
            print(f"{name:<18} {descriptions.get(name, '')}")
    else:
        from oversight.model.card import SIM_PRESETS, resolve_model

        for name in catalogue.names("judges"):
            try:
                card = resolve_model(name)
                print(f"{name:<24} {card.provider}/{card.model}" + (f" @ {card.base_url}" if card.base_url else ""))
            except OversightError as exc:
                print(f"{name:<24} (invalid card: {exc})")
        for preset in SIM_PRESETS:
            print(f"{'sim/' + preset:<24} built-in simulated model (offline)")
        print("Any provider/model also works directly: openai/..., anthropic/..., google/..., sim/...")
    return 0


def _first_sentence(text: str, width: int = 90) -> str:
    """The description's opening, cut at a word boundary to fit one terminal line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width].rsplit(" ", 1)[0] + " …"


def _protocol_descriptions() -> dict[str, str]:
    from oversight.config import read_yaml

    out: dict[str, str] = {}
    for folder in catalogue.folders("protocols"):
        for f in folder.glob("*.yaml"):
            try:
                data = read_yaml(f) or {}
            except OversightError:
                continue  # a broken preset is reported when a spec uses it; a listing goes on
            if isinstance(data, dict) and data.get("description"):
                out.setdefault(f.stem, _first_sentence(str(data["description"])))
    return out


def cmd_build_task(args: argparse.Namespace) -> int:
    from oversight.task.build_cli import build_task

    build_task(args.task, args.source, args.model, args.samples, args.out, args.limit, args.unsafe_sandbox)
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from oversight.engine.batch_status import batch_status

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise OversightError(f"No run directory at {run_dir}.")
    batch_status(run_dir, sys.stdout)
    return 0


COMMANDS = {
    "batch": cmd_batch,
    "run": cmd_run,
    "validate": cmd_validate,
    "report": cmd_report,
    "list": cmd_list,
    "build-task": cmd_build_task,
}


def _within(a: str, b: str) -> bool:
    """Whether path `a` is `b`, inside it, or one of the folders that would hold it."""
    pa, pb = Path(os.path.abspath(a)), Path(os.path.abspath(os.path.expanduser(b)))
    return pa == pb or pb in pa.parents or pa in pb.parents


def _path_sources(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The user-given paths an OSError may come from, each with the option that gave it."""
    sources = []
    if getattr(args, "out", None):
        sources.append((f"{'report ' if args.command == 'report' else ''}--out", str(args.out)))
    if args.command in ("run", "validate"):
        try:
            from oversight.engine.spec import load_spec

            cache_dir = load_spec(args.spec, args.overrides).cache_dir
        except Exception:  # only a hint for the message; a spec that fails here fails elsewhere
            cache_dir = None
        if cache_dir:
            sources.append((f"cache_dir in {args.spec}", cache_dir))
    if os.environ.get("OVERSIGHT_CACHE_DIR"):
        sources.append(("$OVERSIGHT_CACHE_DIR", os.environ["OVERSIGHT_CACHE_DIR"]))
    return sources


def _os_error_message(exc: OSError, args: argparse.Namespace) -> str:
    path = exc.filename if isinstance(exc.filename, str) else None
    reason = exc.strerror or clip(str(exc), 200)
    if path is None:
        return f"{reason}."
    blame = next((f" (from {label} {clip(given)})" for label, given in _path_sources(args) if _within(path, given)),
                 "")
    return (f"cannot use {clip(path, 200)}{blame}: {reason}. Choose a location that can be created and "
            f"written, or free some space.")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    debug = getattr(args, "debug", False) or os.environ.get("OVERSIGHT_DEBUG", "") not in ("", "0")
    try:
        for inc in args.include:
            catalogue.include(inc)
        return COMMANDS[args.command](args)
    except OversightError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `oversight list tasks | head`: the reader left; not an error worth a traceback.
        sys.stderr.close()
        return 0
    except OSError as exc:
        # A folder that cannot be created, a read-only or full disk: the user's to fix.
        if debug:
            raise
        print(f"error: {_os_error_message(exc, args)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if debug:
            raise
        print(f"error: internal error (a bug in oversight): {type(exc).__name__}: {clip(str(exc), 200)}. "
              f"Re-run with --debug (or OVERSIGHT_DEBUG=1) to see the traceback, and please report it.",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
