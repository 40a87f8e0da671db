"""``oraclerl report``: run every registered experiment at a scale over several seeds, then write the report.

All runs of all experiments go to one executor (local worker processes by default, so two cores run two
seeds at once), through the same resumable engine as sweeps: a second call re-uses every finished run
and only redraws claims and figures. One experiment failing (bad config, a run raising, claims or plot
raising, its module not importing) is reported in the page and does not stop the others.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from ...common.validation import check_output_dir
from ...errors import ConfigError
from ..execution.engine import ExecutionSummary, RunSpec, execute_runs
from ..execution.executors import LocalExecutor
from ..execution.progress import LiveProgress
from ..run.registry import all_experiments, get_experiment, load_errors
from ..run.store import RunStore
from .report import ExperimentOutcome, write_report
from .stats import fmt_ci
from .tracking import check_trackers


@dataclass
class ReportOutput:
    """Paths and outcomes of a report; unpacks as ``md_path, html_path`` like before."""

    md: Path
    html: Path
    outcomes: list[ExperimentOutcome]
    summary: ExecutionSummary
    wall_s: float

    def __iter__(self):
        return iter((self.md, self.html))

    @property
    def ok(self) -> bool:
        return all(o.error is None for o in self.outcomes)


def _top_level_metrics(results: list[dict], limit: int = 12) -> list[tuple[str, str]]:
    keys = []
    for r in results:
        for k, v in r.items():
            if k != "elapsed_s" and isinstance(v, (int, float)) and not isinstance(v, bool) and k not in keys:
                keys.append(k)
    out = []
    for k in keys[:limit]:
        vals = [float(r[k]) for r in results if isinstance(r.get(k), (int, float))]
        bad = [v for v in vals if not math.isfinite(v)]
        text = fmt_ci(vals, 4) if len(bad) < len(vals) else "n/a"
        if bad:  # the interval is over the finite values; say which seeds were not finite
            text += (
                f" ({len(bad)} of {len(vals)} seeds non-finite: {', '.join(sorted({str(v) for v in bad}))})"
            )
        out.append((k, text))
    return out


def _one_line(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().replace("\n", " ")


def run_report(scale: str = "quick", only: list[str] | None = None, seeds: list[int] | None = None,
               out: Path = Path("report"), runs: Path = Path("runs"), force: bool = False,
               quiet: bool = False, executor=None, workers: int | None = None, log=(),
               dry_run: bool = False) -> ReportOutput | None:
    """Run the selected experiments (all by default) and write ``out/report.md`` and ``out/index.html``.

    ``executor`` defaults to :class:`LocalExecutor` with ``workers`` processes (2 on a 2-core machine).
    Unknown ``--only`` names, a ``--scale`` some selected experiment lacks, a config that is out of range
    or would not fit in memory, trackers, executors, and output or run-store folders that cannot be
    written raise :class:`ConfigError` before anything runs. ``dry_run`` stops there (returns None).
    """
    t_start = time.perf_counter()
    exps = [get_experiment(n) for n in dict.fromkeys(only)] if only else all_experiments()
    if not exps:
        raise ConfigError("--only", "selected no experiment")
    lacking = [e.name for e in exps if scale not in e.scales]
    if lacking:
        raise ConfigError("--scale", f"{scale!r} is not a scale of {', '.join(lacking)} (scales: "
                                     f"{sorted(set().union(*(e.scales for e in exps)))})")
    log = check_trackers(log)
    check_output_dir("--out", out)
    check_output_dir("--runs", runs)
    executor = executor if executor is not None else LocalExecutor(workers)
    outcomes: list[ExperimentOutcome] = []
    specs: list[RunSpec] = []
    for i, e in enumerate(exps):
        seed_list = list(seeds) if seeds is not None else list(range(e.seeds))
        try:
            cfg = e.make_config(scale)
        except ConfigError:  # bad input (e.g. a scale that does not fit in memory): stop before any work
            raise
        except Exception as exc:  # noqa: BLE001 - a broken experiment config must not stop the report
            if only:
                raise
            outcomes.append(ExperimentOutcome(e, None, seed_list, error=f"config: {_one_line(exc)}"))
            continue
        outcomes.append(ExperimentOutcome(e, cfg, seed_list))
        specs += [RunSpec(e, cfg, s, point=i) for s in seed_list]
    if dry_run:
        print(
            f"report ({scale} scale): valid; would bring {len(specs)} runs of {len(exps)} experiment(s) up "
            f"to date in {runs} and write {out}"
        )
        return None
    store = RunStore(runs)
    with LiveProgress(quiet=quiet) as live:
        live.note(f"oraclerl report ({scale} scale): {len(exps)} experiment(s), {len(specs)} runs on "
                  f"{executor.describe()}")
        summary = execute_runs(specs, store, executor, force=force, log=log, listener=live)
    for oc in outcomes:
        if oc.config is None:
            continue
        t0 = time.perf_counter()
        name = oc.experiment.name
        recs = sorted(
            (r for r in summary.records if r.spec.experiment.name == name), key=lambda r: r.spec.seed
        )
        oc.ran = sum(r.state == "ran" and r.same_as is None for r in recs)
        oc.reused = sum(r.state == "reused" for r in recs)
        oc.run_time_s = sum(float(r.result.get("elapsed_s", 0.0)) for r in recs if r.result)
        failed = [r for r in recs if r.result is None]
        if failed:
            oc.error = "; ".join(f"seed {r.spec.seed}: {r.error}" for r in failed)
            continue
        results = [r.result for r in recs]
        oc.metrics = _top_level_metrics(results)
        try:
            oc.claims = oc.experiment.claims(results, oc.config)
            figdir = Path(out) / "figures" / name
            figdir.mkdir(parents=True, exist_ok=True)
            oc.figures = [Path(f) for f in oc.experiment.plot(results, oc.config, figdir)]
        except Exception as exc:  # noqa: BLE001 - an experiment failing must not lose the others' results
            oc.error = f"claims/plot: {_one_line(exc)}"
        oc.elapsed_s = time.perf_counter() - t0
    wall = time.perf_counter() - t_start
    md, html_path = write_report(
        outcomes,
        Path(out),
        scale,
        wall,
        load_errors=load_errors() if not only else None,
        executor=executor.describe(),
    )
    return ReportOutput(md, html_path, outcomes, summary, wall)
