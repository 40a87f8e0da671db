"""Running one (experiment, config, seed): the run context handed to experiments, and resumable execution."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ...common.config import to_dict
from .registry import Experiment
from .seeding import SeedTree
from .store import RunDir, RunStore


@dataclass
class RunContext:
    """What an experiment's ``run(config, ctx)`` receives."""

    seed: int
    """The run seed."""
    run_dir: RunDir | None = None
    """Where metrics and figures go (None for in-memory runs, e.g. in tests)."""
    on_progress: Callable[[float, str], None] | None = None
    """Optional callback ``on_progress(fraction_done, message)``, called by :meth:`progress`."""
    loggers: list = field(default_factory=list)
    """Extra metric sinks with ``log(step, metrics)`` (e.g. TensorBoard)."""

    @property
    def seeds(self) -> SeedTree:
        return SeedTree(self.seed)

    def generator(self, name: str, device: str | torch.device = "cpu") -> torch.Generator:
        """A named torch generator derived from the run seed."""
        return self.seeds.torch(name, device)

    def log(self, step: int, **metrics) -> None:
        """Record metrics for a step (namespaced names like ``regret/mean`` are encouraged)."""
        if self.run_dir is not None:
            self.run_dir.log_metrics({"step": int(step), **metrics})
        for lg in self.loggers:
            lg.log(step, metrics)

    def progress(self, fraction: float, message: str = "") -> None:
        """Report how far the run is (``fraction`` in [0, 1], clipped) and what it is doing."""
        if self.on_progress is not None:
            self.on_progress(min(max(float(fraction), 0.0), 1.0), message)


def run_one(
    exp: Experiment,
    cfg,
    seed: int,
    store: RunStore | None = None,
    *,
    force: bool = False,
    progress: Callable[[float, str], None] | None = None,
    loggers: list | None = None,
) -> tuple[dict, bool]:
    """Run (or re-use) one seed of ``exp`` at ``cfg``. Returns (result, reused)."""
    cfg_dict = to_dict(cfg)
    if store is None:
        ctx = RunContext(seed=seed, on_progress=progress, loggers=loggers or [])
        return exp.run(cfg, ctx), False
    rd = store.run_dir(exp.name, cfg_dict, seed)
    done, _ = rd.check()
    if done and not force:
        return rd.load_result(), True

    def waiting(holder: str) -> None:
        if progress is not None:
            progress(0.0, f"waiting for the same run in {holder}")

    # One process at a time per run (see RunDir.lock): a second process sharing the store waits here and
    # then re-uses the first one's result (even with ``force``: it was just made).
    with rd.lock(on_wait=waiting) as waited:
        done, _ = rd.check()
        if done and (waited or not force):
            return rd.load_result(), True
        rd.start({"experiment": exp.name, "seed": seed, "config": cfg_dict})
        ctx = RunContext(seed=seed, run_dir=rd, on_progress=progress, loggers=loggers or [])
        t0 = time.perf_counter()
        try:
            result = exp.run(cfg, ctx)
        except BaseException as exc:
            rd.fail("".join(traceback.format_exception_only(type(exc), exc)).strip())
            raise
        elapsed = time.perf_counter() - t0
        result = {**result, "elapsed_s": elapsed}
        rd.finish(result, elapsed)
        return rd.load_result(), False
