"""``oraclerl sweep EXPERIMENT --seeds 0-9 --set key=v1,v2 ... [--executor ray] [--workers N]``."""

from __future__ import annotations

from pathlib import Path


def _cmd_sweep(args) -> int:
    from ..common.validation import check_output_dir
    from ..runtime.execution.executors import make_executor
    from ..runtime.execution.progress import LiveProgress
    from ..runtime.execution.sweep import parse_seeds, plan_sweep
    from ..runtime.reporting.sweep_tables import run_sweep
    from ..runtime.reporting.tracking import check_trackers
    from ..runtime.run.registry import get_experiment
    from ..runtime.run.store import RunStore

    # Everything is checked before anything runs: experiment, grid, ranges, seeds, trackers, executor.
    exp = get_experiment(args.experiment)
    plan = plan_sweep(exp, args.set, parse_seeds(args.seeds), args.scale)
    log = check_trackers(args.log)
    executor = make_executor(args.executor, args.workers, args.address)
    check_output_dir("--runs", args.runs)
    if args.out:
        check_output_dir("--out", args.out)
    store = RunStore(args.runs)
    n = len(plan.configs) * len(plan.seeds)
    if args.dry_run:
        print(
            f"sweep {exp.name}: valid; would run {len(plan.configs)} grid point(s) × {len(plan.seeds)} "
            f"seed(s) = {n} runs into {store.root}"
        )
        return 0
    def label(point: int) -> str:
        return " ".join(f"{k}={v}" for k, v in plan.params(point).items())

    with LiveProgress(quiet=args.quiet, point_label=label if plan.keys else None) as live:
        live.note(
            f"sweep {exp.name}: {len(plan.configs)} grid point(s) × {len(plan.seeds)} seed(s) = {n} runs "
            f"on {executor.describe()}"
        )
        outcome = run_sweep(plan, store, executor, Path(args.out) if args.out else None, force=args.force,
                            log=log, listener=live)
    s = outcome.summary
    print(f"{exp.name}: {len(s.ran)} ran, {len(s.reused)} re-used, {len(s.failed)} failed; "
          f"table {outcome.tables[0]}; summary {outcome.out / 'sweep.md'}")
    for r in s.untrusted:
        print(f"  re-ran point {r.spec.point} seed {r.spec.seed} ({r.run_dir.path}): {r.previous}")
    for r in s.failed:
        print(f"  failed: point {r.spec.point} seed {r.spec.seed}: {r.error}")
    for e in outcome.errors:
        print(f"  error: {e}")
    return 0 if outcome.ok else 1


def add_execution_arguments(parser) -> None:
    """Options shared by ``oraclerl report`` and ``oraclerl sweep``: executor, workers, Ray address,
    trackers."""
    parser.add_argument("--executor", default="local", help="local (default: worker processes) or ray")
    parser.add_argument("--workers", type=int, default=None,
                        help="local worker processes (default: the CPU count, at most 8; 0 runs inline) "
                             "or Ray CPUs when starting Ray")
    parser.add_argument("--address", default=None, help="Ray cluster address (with --executor ray)")
    parser.add_argument(
        "--log",
        action="append",
        metavar="TRACKER",
        help="also log metrics to tensorboard, wandb or trackio (repeatable or comma-separated)",
    )
    parser.add_argument("--force", action="store_true", help="re-run finished runs too")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    parser.add_argument(
        "--dry-run", action="store_true", help="check every input and say what would run; run nothing"
    )


def add_parser(subparsers) -> None:
    sp = subparsers.add_parser(
        "sweep",
        help="run a grid of configs × seeds, resumably, and aggregate it",
        description="Run EXPERIMENT over the cartesian product of the --set values and "
        "the seeds; finished runs are re-used; results go to one table.",
    )
    sp.add_argument("experiment")
    sp.add_argument("--set", action="append", metavar="KEY=V1,V2",
                    help="grid values for a config field (repeatable); list fields take ';'-separated lists")
    sp.add_argument("--seeds", default=None, help="e.g. 0-9 or 0,3,7 (default: the experiment's own count)")
    sp.add_argument("--scale", default="quick", help="base configuration: quick (default) or paper")
    sp.add_argument("--runs", default="runs", help="run store root (default: runs/)")
    sp.add_argument(
        "--out", default=None, help="where tables and figures go (default: runs/sweeps/NAME-HASH)"
    )
    add_execution_arguments(sp)
    sp.set_defaults(func=_cmd_sweep)
