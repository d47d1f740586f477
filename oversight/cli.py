"""The `oversight` command: a thin layer over the Python API.

Every user-fixable problem ends in a one-paragraph message and exit status 2, never a
traceback; `--debug` (or OVERSIGHT_DEBUG=1) shows the traceback for a bug report.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from oversight import catalogue
from oversight.errors import OversightError, clip

if TYPE_CHECKING:
    from oversight.model.card import ModelCard

DESCRIPTION = """\
Compare scalable-oversight protocols (direct QA, consultancy, debate) with weak LLM judges
and strong LLM agents: run an experiment spec, score judge accuracy per protocol, and write
parquet tables, plots and an HTML report. The bundled specs, tasks, judges and protocols
work from any folder, by name; ./judges/, ./tasks/, ./protocols/ and ./runs/ add to them
and take precedence. Runs with no API key via the built-in simulated models (sim/...)."""

EXAMPLES = """\
examples:
  oversight run quickstart                    # the bundled offline demo; results in ./runs/quickstart/
  oversight run runs/my_spec.yaml --dry-run   # plan, calls, tokens and dollars; calls nothing
  oversight report runs/quickstart/<run_id>   # accuracy tables with CIs, plots, report.html"""

INCLUDE_HELP = "a folder holding your own protocols/, tasks/, judges/ or runs/ (repeatable; before or after a command)"


def _version() -> str:
    from oversight import __version__

    return f"oversight {__version__} (Python {sys.version.split()[0]})"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oversight", description=DESCRIPTION, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=_version(), help="print the version and exit")
    p.add_argument("--include", action="append", default=[], metavar="PATH", help=INCLUDE_HELP)
    p.add_argument("--debug", action="store_true", help="show the traceback of any error (also OVERSIGHT_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run an experiment spec")
    r.add_argument("spec", help="a spec file (runs/NAME.yaml) or the name of a bundled or local spec, e.g. quickstart")
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

    jd = sub.add_parser("judge", help="judge a finished run's stored transcripts with new judges or a new mode")
    jd.add_argument("run_dir", metavar="RUN_DIR", help="the source run directory, runs/NAME/<run_id>")
    jd.add_argument("--judges", nargs="+", required=True, metavar="NAME", help="the new judges (model references)")
    jd.add_argument("--mode", choices=["answer", "cot", "fewshot"], default=None,
                    help="judge mode for the new verdicts (default: the source run's)")
    jd.add_argument("--shots", type=int, default=None, help="with --mode fewshot: examples per prompt")
    jd.add_argument("--out", help="where the new rows go (default: beside the source, RUN_DIR.judged-<hash>)")
    jd.add_argument("--allow-agent-calls", action="store_true",
                    help="also run episodes whose transcript depends on the judge (consultancy, interactive "
                         "debate): new agent calls")
    jd.add_argument("--resume", action="store_true",
                    help="finish an interrupted re-judging, repeating no finished call")
    jd.add_argument("--dry-run", action="store_true", help="print the plan and estimated cost; call nothing")
    jd.add_argument("--budget", type=float, default=None, metavar="USD",
                    help="stop cleanly before spending more than this (default: the source spec's budget_usd)")
    jd.add_argument("--keep-errors", action="store_true", help="with --resume: keep episodes that ended in error")
    jd.add_argument("--cache", choices=["on", "off", "read", "write"], default="on", help="response cache, as for run")

    im = sub.add_parser("import", help="read transcripts made elsewhere into a run directory (for judge and report)")
    im.add_argument("file", metavar="FILE", help="a transcript file (JSONL; see README, 'Importing transcripts')")
    im.add_argument("--task", required=True, metavar="NAME", help="the task name the imported items get")
    im.add_argument("--out", required=True, help="the run directory to write")
    im.add_argument("--format", choices=["oversight", "khan2024"], default=None,
                    help="the file's format (default: detected from its first record)")

    v = sub.add_parser("validate", help="check a spec, its model cards, tasks and keys")
    v.add_argument("spec", help="a spec file or a spec name, as for `oversight run`")
    v.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a spec key, as for `oversight run`")

    rep = sub.add_parser("report", help="tables, plots and report.html for one or more runs")
    rep.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="a run directory, runs/NAME/<run_id>")
    rep.add_argument("--out", help="where to write the report (default: the first run directory)")
    rep.add_argument("--resamples", type=int, default=10_000, help="permutation-test resamples (default 10,000)")
    rep.add_argument("--seed", type=int, default=0, help="seed for permutation tests and bootstraps")
    rep.add_argument("--max-transcripts", type=int, default=None, help="cap the transcripts in report.html")
    rep.add_argument("--elo-scale", type=float, default=None, metavar="S",
                     help="Elo scale s in 1/(1+10^(ΔE/s)) (default: the spec's tournament.elo_scale, else 400; "
                          "the paper's text uses 500)")
    rep.add_argument("--elo-bootstrap", type=int, default=500, metavar="N",
                     help="bootstrap resamples for the Elo CIs (default 500, as in the paper)")
    rep.add_argument("--errors-as-wrong", action="store_true",
                     help="score failed episodes as wrong answers (default: leave them out and count them)")
    rep.add_argument("--verdicts", choices=["lenient", "strict"], default="lenient",
                     help="lenient (default): count every verdict the parser read; strict: verdicts only "
                          "the lenient rule read (a bare '2', 'The answer is 2') count as invalid")

    ls = sub.add_parser("list", help="list tasks, protocols, models (judges) or run specs, with where each is from")
    ls.add_argument("what", choices=["tasks", "protocols", "models", "judges", "runs"],
                    help="what to list; `judges` is the same as `models`")

    ex = sub.add_parser("export", help="write a run in another tool's format (Inspect eval logs)")
    ex.add_argument("format", choices=["inspect"], help="inspect: Inspect eval logs, for `inspect view`")
    ex.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, runs/NAME/<run_id>")
    ex.add_argument("--out", help="folder for the logs (default: RUN_DIR/inspect)")

    b = sub.add_parser("build-task", help="build a task file that needs a model (gsm8kqa, codeqa)")
    b.add_argument("task", choices=["gsm8kqa", "codeqa"], help="the task to build")
    b.add_argument("--from", dest="source", required=True, help="the upstream file (GSM8K JSONL, HumanEval.jsonl.gz)")
    b.add_argument("--model", required=True, help="model reference (card name or provider/model)")
    b.add_argument("--samples", type=int, default=32, help="programs sampled per problem (default 32)")
    b.add_argument("--out", required=True, help="the task file to write")
    b.add_argument("--limit", type=int, default=None, help="only the first N problems")
    b.add_argument(
        "--unsafe-sandbox",
        action="store_true",
        help="if bubblewrap is unavailable, run model-written programs under the weak in-process guard (escapable)",
    )
    ui = sub.add_parser("judge-ui", help="a local web app where people judge a run's episodes (human judges)")
    ui.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, runs/NAME/<run_id>")
    ui.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default 127.0.0.1; any other needs the access token)")
    ui.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    ui.add_argument("--token", help="access token browsers must present (made and printed if the host is not loopback)")
    ui.add_argument("--protocols", metavar="V1,V2", help="only these protocol variants (default: every qa, "
                    "consultancy and debate variant of the run)")
    ui.add_argument("--limit", type=int, default=None, help="at most N episodes per judge")
    ui.add_argument("--all-views", action="store_true",
                    help="every view of every item per judge (both orders, both consultancy sides, every protocol); "
                         "default: one view of each item per judge, balanced over protocols and orders across judges")
    ui.add_argument("--seal", action="store_true",
                    help="only write the run's tables from its journal (human verdicts included), then exit")
    bt = sub.add_parser("batch", help="provider batches of a run made with --batch")
    bt.add_argument("action", choices=["status"], help="status: the journaled batches and their provider state")
    bt.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, runs/NAME/<run_id>")
    for command in sub.choices.values():
        # Accepted after the command too; SUPPRESS keeps a top-level --debug from being reset.
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        # Its own destination: a subcommand's value would otherwise replace the top-level list.
        command.add_argument("--include", action="append", default=argparse.SUPPRESS, metavar="PATH",
                             dest="include_after", help=INCLUDE_HELP)
    return p


def _check_run_options(args: argparse.Namespace) -> None:
    """Options that would do nothing as combined are an error, not silently ignored."""
    pointless = [
        (args.detach and not args.batch, "--detach only applies with --batch"),
        (args.batch_poll is not None and not (args.batch or args.resume),
         "--batch-poll only applies with --batch (or --resume, which collects a batch run's batches)"),
        (args.keep_errors and not args.resume, "--keep-errors only applies with --resume"),
        (args.dry_run and args.resume, "--dry-run plans a new run; it cannot be combined with --resume"),
        (args.dry_run and args.detach, "--dry-run sends nothing, so there is nothing to --detach from"),
        (args.dry_run and args.out is not None, "--dry-run writes nothing, so --out has no effect"),
        (args.dry_run and args.keep_errors, "--dry-run runs nothing, so --keep-errors has no effect"),
    ]
    for wrong, why in pointless:
        if wrong:
            raise OversightError(f"{why}. Drop the option, or add the one it needs.")
    if args.batch_poll is not None and not (0 < args.batch_poll <= 86_400):  # also false for nan
        raise OversightError(
            f"--batch-poll must be a number of seconds above 0 and at most 86400 (a day), got {args.batch_poll}."
        )


def cmd_run(args: argparse.Namespace) -> int:
    from oversight.engine.prepare import prepare
    from oversight.engine.spec import load_spec

    _check_run_options(args)
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
    sets = "".join(f" --set {shlex.quote(o)}" for o in args.overrides)  # the run's own overrides
    return _finish(result, f"run {shlex.quote(str(args.spec))}{sets}")


def _finish(result, again: str) -> int:  # type: ignore[no-untyped-def]
    """The end-of-run summary and errors of `run` and `judge`; `again` is the command's tail."""
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
    resume = f"{exe} {again} --resume --out {run_dir}"
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


def cmd_judge(args: argparse.Namespace) -> int:
    from oversight.engine import rejudge

    if args.dry_run:
        source = rejudge.read_source(args.run_dir)
        rj = rejudge.plan_rejudge(source, args.judges, args.mode, args.shots, args.allow_agent_calls,
                                  budget_usd=args.budget)
        print(f"Re-judging {source.run_dir}: {len(rj.reused_transcripts):,} debate transcript(s) and "
              f"{len(rj.reused_agent_qa):,} agent QA answer(s) reused from it, no agent call for them.")
        print_plan(rj.prep, rejudge.dry_run(rj, source))
        return 0
    result = rejudge.judge(args.run_dir, args.judges, args.mode, shots=args.shots, out=args.out,
                           allow_agent_calls=args.allow_agent_calls, resume=args.resume, cache=args.cache,
                           keep_errors=args.keep_errors, budget_usd=args.budget)
    return _finish(result, f"judge {shlex.quote(args.run_dir)} --judges {' '.join(args.judges)}"
                   + (f" --mode {args.mode}" if args.mode else "")
                   + (" --allow-agent-calls" if args.allow_agent_calls else ""))


def cmd_import(args: argparse.Namespace) -> int:
    from oversight.engine.importer import import_transcripts

    result = import_transcripts(args.file, task=args.task, out=args.out, fmt=args.format)
    print(result.summary())
    return 0


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
    print("Estimated model calls: requests sent to the provider, and repeats of an earlier request that the")
    print("response cache answers (no tokens, no dollars, no rate limit); input counts the part the providers'")
    print(f"prompt caches serve; {'dollars with prompt caching, then without':>98}")
    for label, t in sorted(est.models.items()):
        print("  " + _tally_line(label, t, prep.cards[label]))
    cached = sum(t.cached for t in est.models.values())
    print(f"  {'total':<24} {est.calls - cached:>9,} requests {cached:>8,} from cache {est.tokens:>13,} tokens"
          f" {'':>19} {_usd(est.cost_usd)} {_usd(est.uncached_cost_usd)}")
    _print_rate_time(est.models, prep.cards)
    if est.projected is not None:
        p = est.projected
        print(f"Projected at {spec.limit} items per task (some task files hold fewer, e.g. bundled samples):")
        for label, t in sorted(est.projected_models.items()):
            print("  " + _tally_line(label, t, prep.cards[label]))
        print(f"  {est.projected_episodes:,} episodes, {p.calls - p.cached:,} requests (+{p.cached:,} answered by "
              f"the cache), {p.input_tokens + p.output_tokens:,} tokens, ${est.projected_cost_usd:,.2f} with prompt "
              f"caching, ${est.projected_uncached_cost_usd:,.2f} without")
        _print_rate_time(est.projected_models, prep.cards, "  projected: ")
    print("Nothing was called (dry run). Derived open protocols add no calls; tokens are estimates.")


def _usd(x: float) -> str:
    return f"{'$' + format(x, ',.2f'):>11}"


def _tally_line(label: str, t, card) -> str:  # type: ignore[no-untyped-def]
    """One model's estimated requests, cache-answered calls, tokens and dollars with and
    without prompt caching."""
    return (f"{label:<24} {t.calls - t.cached:>9,} requests {t.cached:>8,} from cache {t.input_tokens:>13,} in "
            f"{t.cached_input_tokens:>11,} cached {t.output_tokens:>11,} out {_usd(t.cost(card))} "
            f"{_usd(t.cost(card, caching=False))}")


def _print_rate_time(models, cards, prefix: str = "  ") -> None:  # type: ignore[no-untyped-def]
    """The least time the cards' rate limits allow: they count requests the provider sees
    (a cache-answered call waits for no limit), and tokens of those requests."""
    for label, t in sorted(models.items()):
        card = cards[label]
        requests, tokens = t.calls - t.cached, t.input_tokens + t.output_tokens
        bounds = []
        if card.rpm:
            bounds.append((requests / card.rpm, f"{requests:,} requests at rpm {card.rpm:g}"))
        if card.tpm:
            bounds.append((tokens / card.tpm, f"{tokens:,} tokens at tpm {card.tpm:g}"))
        if bounds:
            minutes, why = max(bounds)
            print(f"{prefix}{label}: at least {minutes:,.1f} min under its rate limits ({why})")


def cmd_validate(args: argparse.Namespace) -> int:
    from oversight.engine.prepare import prepare
    from oversight.engine.spec import load_spec

    spec = load_spec(args.spec, args.overrides)
    prep = prepare(spec, args.spec)
    check_local_servers(prep.cards, args.spec)
    print(f"{args.spec}: OK — {len(prep.plan.episodes):,} episodes over {len(prep.items)} task(s), "
          f"{len(prep.cards)} model(s): {', '.join(prep.cards)}.")
    return 0


def check_local_servers(cards: dict[str, ModelCard], spec: str) -> None:
    """Every model card whose base_url is on this machine must have something listening
    there: a server that is down would otherwise fail every call of the run."""
    import socket
    from urllib.parse import urlsplit

    from oversight.model.types import is_local_url

    down = []
    for label, card in cards.items():
        if not is_local_url(card.base_url):
            continue
        parts = urlsplit(card.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = str(parts.hostname or "127.0.0.1")
        try:
            socket.create_connection((host, port), timeout=5).close()
        except OSError as exc:
            down.append(f"'{label}' at {card.base_url} ({exc.strerror or exc})")
    if down:
        raise OversightError(
            f"{spec}: nothing answers at the local server(s) of {'; '.join(down)}. Start the server "
            "(for example `llama-server --port PORT` or `ollama serve`) or correct base_url in the model's card, "
            "then validate again.")


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
                          elo_scale=args.elo_scale, elo_bootstrap=args.elo_bootstrap,
                          errors="wrong" if args.errors_as_wrong else "exclude", verdicts=args.verdicts,
                          progress=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(format_summary(result))
    for d in dirs:
        _report_rejudged(d, result.out_dir, args)
    return 0


def _report_rejudged(run_dir: Path, out: Path, args: argparse.Namespace) -> None:
    """A re-judged run: its new judges against the source run's, on the same transcripts."""
    from oversight.score.rejudged import format_judge_comparison, judge_comparison_table, source_of
    from oversight.store.tables import load

    source = source_of(run_dir)
    if source is None:
        return
    table = judge_comparison_table(load(run_dir).judgments, load(source).judgments, args.resamples, args.seed)
    table.to_parquet(out / "judge_comparison.parquet", index=False)
    print(format_judge_comparison(table, source))


def cmd_list(args: argparse.Namespace) -> int:
    if args.what == "tasks":
        from oversight.task.card import load_card

        for e in catalogue.entries("tasks"):
            try:
                tcard = load_card(e.name)
                print(f"{e.name:<18} {tcard.group:<11} {_first_sentence(tcard.description, 70):<72} {_origin(e)}")
            except OversightError as exc:
                print(f"{e.name:<18} (invalid card: {exc}) {_origin(e)}")
    elif args.what == "protocols":
        _list_protocols()
        local = [e for e in catalogue.entries("protocols") if e.origin != "bundled"]
        if local:
            print("Not bundled: " + "; ".join(f"{e.name} ({_origin(e)})" for e in local))
    elif args.what == "runs":
        _list_runs()
    else:
        from oversight.model import registry
        from oversight.model.card import SIM_PRESETS, resolve_model

        for e in catalogue.entries("judges"):
            try:
                card = resolve_model(e.name)
                url = card.public_dict()["base_url"]
                model = f"{card.provider}/{card.model}" + (f" @ {url}" if url else "")
                print(f"{e.name:<24} {model:<56} {_origin(e)}")
            except OversightError as exc:
                print(f"{e.name:<24} (invalid card: {exc}) {_origin(e)}")
        for preset in SIM_PRESETS:
            print(f"{'sim/' + preset:<24} {'built-in simulated model (offline)':<56} built-in")
        print(f"Any provider/model also works directly; providers: {', '.join(registry.names())}.")
    return 0


def _origin(e: catalogue.Entry) -> str:
    """Where a catalogue file comes from, and what it hides (a local card named like a bundled one)."""
    where = e.origin if e.origin == "bundled" else f"{e.origin}: {e.path}"
    return where + (f" (overrides {', '.join(e.overrides)})" if e.overrides else "")


def _list_runs() -> None:
    """Every spec by name with its origin and how many runs of it ./runs/NAME/ holds."""
    from oversight.config import read_yaml

    for e in catalogue.entries("runs"):
        try:
            data = read_yaml(e.path)
            about = str(data.get("description") or "") if isinstance(data, dict) else ""
            if not about:  # the bundled specs explain themselves in their opening comment
                lines = e.path.read_text(encoding="utf-8").splitlines()
                about = " ".join(ln.lstrip("#").strip() for ln in itertools.takewhile(lambda ln: ln.startswith("#"),
                                                                                     lines))
        except (OversightError, OSError):
            about = "(unreadable spec)"
        out = Path("runs") / e.name
        done = sum(1 for d in out.glob("*") if (d / "manifest.json").exists() and not d.is_symlink()) \
            if out.is_dir() else 0  # runs/NAME/latest is a link to one of them
        runs = f"{done} run(s) in ./runs/{e.name}/" if done else "no runs here yet"
        print(f"{e.name:<20} {_first_sentence(about, 60):<62} {runs:<30} {_origin(e)}")
    print("Run one by name: oversight run NAME (outputs go to ./runs/NAME/<run_id>/).")


def cmd_export(args: argparse.Namespace) -> int:
    from oversight.export.inspect_log import export_inspect

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise OversightError(f"Run directory not found: {run_dir}.")
    written = export_inspect(run_dir, args.out)
    folder = written[0].parent if written else Path(args.out or run_dir / "inspect")
    print(f"Wrote {len(written)} Inspect eval log(s) (one per task x protocol x judge) to {folder}. "
          f"Open them with: inspect view --log-dir {shlex.quote(str(folder))}")
    return 0


def _first_sentence(text: str, width: int = 90) -> str:
    """The description's opening, cut at a word boundary to fit one terminal line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width].rsplit(" ", 1)[0] + " …"


def _list_protocols() -> None:
    """Each preset with its base protocol and the settings it changes (a variant of the
    spec's settings); the registered protocols first (a plugin's with where it comes from)."""
    from oversight.protocol import registry
    from oversight.protocol.presets import load_preset, preset_names

    bases = [p.name for p in registry.ordered()]
    names = [*bases, *sorted(n for n in preset_names() if n not in bases)]
    presets = set(preset_names())
    for name in names:
        if name not in presets:
            proto = registry.get(name)
            about = (proto.__doc__ or proto.title or name).strip()
            print(f"{name:<18} {_first_sentence(about, 50)}  [{registry.origin(name)}]")
            continue
        try:
            preset = load_preset(name)
        except OversightError as exc:
            print(f"{name:<18} (invalid preset: {exc})")
            continue
        base = preset.base_protocol()
        settings = ", ".join(f"{k}={v}" for k, v in preset.options.set_values().items())
        extra = f"  [{base}: {settings}]" if name != base or settings else ""
        print(f"{name:<18} {_first_sentence(preset.description, 50 if extra else 80)}{extra}")


def cmd_build_task(args: argparse.Namespace) -> int:
    from oversight.task.build_cli import build_task

    build_task(args.task, args.source, args.model, args.samples, args.out, args.limit, args.unsafe_sandbox)
    return 0


def cmd_judge_ui(args: argparse.Namespace) -> int:
    from oversight.humanui.serve import JudgeServer, Settings, seal_only

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise OversightError(f"Run directory not found: {run_dir}.")
    if args.seal:
        n = seal_only(run_dir)
        print(f"Sealed {run_dir}: {n} human verdict(s) in judgments.parquet.")
        return 0
    if not 0 <= args.port <= 65535:
        raise OversightError(f"--port must be 0 … 65535, got {args.port}.")
    if args.limit is not None and args.limit < 1:
        raise OversightError(f"--limit must be 1 or more, got {args.limit}.")
    variants = [v.strip() for v in args.protocols.split(",") if v.strip()] if args.protocols else None
    settings = Settings(host=args.host, port=args.port, token=args.token, variants=variants, limit=args.limit,
                        views="all" if args.all_views else "one")
    JudgeServer(run_dir, settings, stream=sys.stdout).run_forever()
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
    "export": cmd_export,
    "judge-ui": cmd_judge_ui,
    "judge": cmd_judge,
    "import": cmd_import,
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


def _spec_path(spec: str) -> str:
    """A spec file as given, or a spec name (`quickstart`) found in the runs/ folders."""
    resolved = catalogue.resolve_spec(spec)
    if resolved == spec and not Path(spec).exists() and Path(spec).suffix == "" and "/" not in spec:
        from oversight.errors import unknown_name

        raise unknown_name("run spec (no such file, and no spec of that name in ./runs/ or bundled)", spec,
                           catalogue.names("runs"))
    return resolved


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    debug = getattr(args, "debug", False) or os.environ.get("OVERSIGHT_DEBUG", "") not in ("", "0")
    try:
        for inc in [*args.include, *getattr(args, "include_after", [])]:
            catalogue.include(inc)
        if args.command in ("run", "validate"):
            args.spec = _spec_path(args.spec)
        if getattr(args, "out", None) is not None and not str(args.out).strip():
            # An empty --out (an unset variable) would write into the current folder.
            raise OversightError("--out is empty (an unset shell variable?); give the directory to write to.")
        for name in ("spec", "run_dir", "run_dirs"):
            given = getattr(args, name, None)
            if any(not str(v).strip() for v in (given if isinstance(given, list) else [given] if given is not None
                                                 else [])):
                what = name.upper().removesuffix("S")
                raise OversightError(f"an empty {what} argument (an unset shell variable?); give the path.")
        return COMMANDS[args.command](args)
    except OversightError as exc:
        if debug:
            raise
        from oversight.model import redact

        print(f"error: {redact.scrub_known(str(exc))}", file=sys.stderr)
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
