"""Command-line interface: ``oraclerl list | run | report | sweep``.

Every input is validated before any work starts; errors print one line naming the field and what is
allowed, and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import OracleRLError


def _cmd_list(args) -> int:
    from ..common.config import describe_fields
    from ..runtime.run.registry import all_experiments, load_errors

    for e in all_experiments():
        print(f"{e.name:28s} [{e.paper}] {e.title}")
        if args.verbose:
            for name, tp, default, doc in describe_fields(e.config):
                print(f"    {name} ({tp}, default {default!r}): {doc}")
    for mod, err in load_errors().items():
        print(f"warning: experiment module {mod} failed to import: {err}", file=sys.stderr)
    return 0


def _parse_seeds(text: str | None) -> list[int] | None:
    from ..runtime.execution.sweep import parse_seeds

    return parse_seeds(text)


def _cmd_run(args) -> int:
    from ..common.config import parse_set_args, to_dict
    from ..common.validation import check_output_dir
    from ..runtime.reporting.report import verdict
    from ..runtime.run.registry import get_experiment
    from ..runtime.run.runner import run_one
    from ..runtime.run.seeding import check_seed
    from ..runtime.run.store import RunStore, dumps

    exp = get_experiment(args.experiment)
    cfg = exp.make_config(args.scale, parse_set_args(args.set))
    check_seed("--seed", args.seed)
    from ..common.threads import torch_threads
    from ..runtime.reporting.tracking import check_trackers, make_loggers

    kinds = check_trackers(args.log)
    check_output_dir("--out", args.out)
    store = RunStore(args.out)
    rd = store.run_dir(exp.name, to_dict(cfg), args.seed)
    if args.dry_run:
        print(f"{exp.name} seed {args.seed}: valid; would run into {rd.path}")
        return 0
    loggers = make_loggers(kinds, rd.path, f"{exp.name}-{rd.path.name}", to_dict(cfg))
    try:
        # One intra-op thread, as in sweep and report workers: a run's result never depends on the command.
        with torch_threads(1):
            result, reused = run_one(exp, cfg, args.seed, store, force=args.force, loggers=loggers)
    finally:
        for lg in loggers:
            lg.close()
    figs = exp.plot([result], cfg, rd.figures)
    print(f"{exp.name} seed {args.seed}: {'re-used' if reused else 'ran'} -> {rd.path}")
    for c in exp.claims([result], cfg):
        print(f"  [{c.kind}: {verdict(c)}] {c.claim}: {c.measured}")
    for f in figs:
        print(f"  figure: {f}")
    if args.print_result:
        print(dumps(result))
    return 0


def _cmd_report(args) -> int:
    from ..runtime.execution.executors import make_executor
    from ..runtime.reporting.report import tally
    from ..runtime.reporting.report_runner import run_report

    seeds = _parse_seeds(args.seeds)
    executor = make_executor(args.executor, args.workers, args.address)
    rep = run_report(
        scale=args.scale,
        only=args.only,
        seeds=seeds,
        out=Path(args.out),
        runs=Path(args.runs),
        force=args.force,
        quiet=args.quiet,
        executor=executor,
        log=args.log,
        dry_run=args.dry_run,
    )
    if rep is None:  # --dry-run: everything checked, nothing run
        return 0
    claims = [c for o in rep.outcomes for c in o.claims]
    print(f"report written: {rep.html} and {rep.md} ({rep.wall_s:.0f} s; {tally(claims)})")
    for r in rep.summary.untrusted:
        print(f"  re-ran {r.spec.experiment.name} seed {r.spec.seed} ({r.run_dir.path}): {r.previous}")
    for o in rep.outcomes:
        if o.error:
            print(f"  {o.experiment.name}: error: {o.error}", file=sys.stderr)
    return 0 if rep.ok else 1


_PLUGIN_COMMANDS = ("oraclerl.cli.sweep", "oraclerl.cli.diagnose")


def build_parser() -> argparse.ArgumentParser:
    from .sweep import add_execution_arguments

    p = argparse.ArgumentParser(prog="oraclerl", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    pl = sub.add_parser("list", help="list registered experiments")
    pl.add_argument("-v", "--verbose", action="store_true", help="show every config field")
    pl.set_defaults(func=_cmd_list)

    pr = sub.add_parser("run", help="run one experiment for one seed")
    pr.add_argument("experiment")
    pr.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)"
    )
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--scale", default="quick", help="quick (default) or paper")
    pr.add_argument("--out", default="runs", help="run store root (default: runs/)")
    pr.add_argument("--force", action="store_true", help="re-run even if a finished run exists")
    pr.add_argument("--print-result", action="store_true")
    pr.add_argument(
        "--dry-run", action="store_true", help="check every input and say what would run; run nothing"
    )
    pr.add_argument(
        "--log", action="append", metavar="TRACKER", help="also log to tensorboard, wandb or trackio"
    )
    pr.set_defaults(func=_cmd_run)

    rp = sub.add_parser("report", help="run every experiment and write report/index.html + report/report.md")
    rp.add_argument("--scale", default="quick", help="quick (default, laptop-sized) or paper")
    rp.add_argument("--only", action="append", metavar="NAME", help="only these experiments (repeatable)")
    rp.add_argument("--seeds", default=None, help="seeds, e.g. 0-2 (default: each experiment's own count)")
    rp.add_argument("--out", default="report")
    rp.add_argument("--runs", default="runs")
    add_execution_arguments(rp)
    rp.set_defaults(func=_cmd_report)

    # Sub-commands that live next to what they drive (each module exposes add_parser(subparsers)).
    import importlib

    for mod in _PLUGIN_COMMANDS:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name is None or not mod.startswith(exc.name):
                raise
            continue
        module.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except OracleRLError as exc:
        print(f"oraclerl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "oraclerl: interrupted (finished runs are kept; run the command again to resume)", file=sys.stderr
        )
        return 130
    except Exception as exc:
        # e.g. an import cut short by Ctrl-C
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            print(
                "oraclerl: interrupted (finished runs are kept; run the command again to resume)",
                file=sys.stderr,
            )
            return 130
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
