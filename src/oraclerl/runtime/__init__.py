"""Runtime: seeding, configs, run store, experiment registry, runner and report."""

from .config import apply_overrides, param, validate
from .registry import PAPERS, Claim, Experiment, all_experiments, get_experiment, register
from .runner import RunContext, default_device, run_one
from .seeding import SeedTree, derive_seed
from .store import RunDir, RunStore

__all__ = [
    "param", "validate", "apply_overrides", "Claim", "Experiment", "PAPERS", "register", "all_experiments",
    "get_experiment", "RunContext", "run_one", "default_device", "SeedTree", "derive_seed", "RunDir", "RunStore",
]
