"""Runtime, grouped by job: :mod:`~oraclerl.runtime.run` (what one run needs: seeding, registry, store,
runner), :mod:`~oraclerl.runtime.execution` (engine, executors, workers, sweep plans, progress) and
:mod:`~oraclerl.runtime.reporting` (report, sweep tables and figures, stats, figure helpers, tracking)."""

from .run.registry import PAPERS, Claim, Experiment, all_experiments, get_experiment, register
from .run.runner import RunContext, run_one
from .run.seeding import SeedTree, derive_seed
from .run.store import RunDir, RunStore

__all__ = [
    "Claim", "Experiment", "PAPERS", "register", "all_experiments", "get_experiment", "RunContext", "run_one",
    "SeedTree", "derive_seed", "RunDir", "RunStore",
]
