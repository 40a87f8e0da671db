"""``oraclerl report``: run every registered experiment at a scale over several seeds, then write the report."""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..errors import ConfigError
from .registry import all_experiments, get_experiment
from .report import ExperimentOutcome, write_report
from .runner import run_one
from .store import RunStore


def run_report(scale: str = "quick", only: list[str] | None = None, seeds: list[int] | None = None,
               out: Path = Path("report"), runs: Path = Path("runs"), force: bool = False,
               quiet: bool = False) -> tuple[Path, Path]:
    """Run the selected experiments (all by default) and write ``out/report.md`` and ``out/index.html``."""
    exps = [get_experiment(n) for n in only] if only else all_experiments()
    # Validate every config before any work starts.
    plans = [(e, e.make_config(scale), seeds if seeds is not None else list(range(e.seeds))) for e in exps]
    if not plans:
        raise ConfigError("--only", "selected no experiment")
    store = RunStore(runs)
    outcomes: list[ExperimentOutcome] = []
    t_start = time.perf_counter()
    total = sum(len(s) for _, _, s in plans)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), disable=quiet, transient=False) as prog:
        overall = prog.add_task("all experiments", total=total)
        for exp, cfg, seed_list in plans:
            oc = ExperimentOutcome(exp, cfg, seed_list)
            t0 = time.perf_counter()
            results = []
            task = prog.add_task(f"{exp.name}", total=len(seed_list))
            try:
                for s in seed_list:
                    step = prog.add_task(f"  seed {s}", total=1.0)

                    def cb(frac, msg, _t=step):
                        prog.update(_t, completed=frac, description=f"  seed {s} {msg}"[:60])

                    res, reused = run_one(exp, cfg, s, store, force=force, progress=cb)
                    prog.remove_task(step)
                    oc.reused += int(reused)
                    results.append(res)
                    prog.advance(task)
                    prog.advance(overall)
                oc.claims = exp.claims(results, cfg)
                figdir = Path(out) / "figures" / exp.name
                figdir.mkdir(parents=True, exist_ok=True)
                oc.figures = exp.plot(results, cfg, figdir)
            except Exception as exc:  # an experiment failing must not lose the others' results
                oc.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            oc.elapsed_s = time.perf_counter() - t0
            outcomes.append(oc)
    return write_report(outcomes, Path(out), scale, time.perf_counter() - t_start)
