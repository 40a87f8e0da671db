"""Tiny experiments registered for the runtime tests (report, sweeps, executors, tracking).

They register at import only inside executor worker processes (``in_worker()``); in the test process
itself, tests call :func:`install` / :func:`uninstall` around their use, so other test modules running
in the same process never see them in ``all_experiments()``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from oraclerl.common.config import param
from oraclerl.runtime.execution.executors import in_worker
from oraclerl.runtime.reporting.stats import fmt_ci, mean_ci
from oraclerl.runtime.run import registry
from oraclerl.runtime.run.registry import Claim, Experiment, get_experiment


@dataclass
class CounterConfig:
    steps: int = param(8, "steps (each draws one Gaussian)", low=1, high=1000)
    scale: float = param(1.0, "standard deviation of the draws", low=0.0, low_open=True, high=10.0)
    sleep_s: float = param(0.0, "sleep per step (to have something to interrupt)", low=0.0, high=5.0)
    gate: str = param("", "if set, each run waits after its first step until this file exists (at most 60 s)")


def counter_run(cfg: CounterConfig, ctx) -> dict:
    gen = ctx.generator("noise")
    x = torch.randn(cfg.steps, generator=gen, dtype=torch.float64) * cfg.scale
    for t in range(cfg.steps):
        if cfg.sleep_s:
            time.sleep(cfg.sleep_s)
        ctx.log(t, **{"reward/mean": float(x[: t + 1].mean()), "kl/value": float(x[t] ** 2), "t_data": t + 1})
        ctx.progress((t + 1) / cfg.steps, f"step {t + 1}/{cfg.steps}")
        if cfg.gate and t == 0:
            deadline = time.monotonic() + 60
            while not Path(cfg.gate).exists() and time.monotonic() < deadline:
                time.sleep(0.01)
    return {"mean": float(x.mean()), "sum_sq": float((x ** 2).sum()), "series": x.tolist(),
            "int_seed": ctx.seeds.int("x") % 1000}


def counter_claims(results: list[dict], cfg: CounterConfig) -> list[Claim]:
    means = [r["mean"] for r in results]
    m, lo, hi = mean_ci(means)
    se = cfg.scale / math.sqrt(cfg.steps * len(results))
    return [Claim("The sample mean of N(0, s²) draws is within 4 standard errors of 0", "fake, CLT",
                  fmt_ci(means), abs(m) <= 4 * se, f"standard error {se:.3g}")]


def counter_plot(results: list[dict], cfg: CounterConfig, outdir) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    for r in results:
        ax.plot(r["series"])
    path = outdir / "counter.png"
    fig.savefig(path, dpi=60)
    plt.close(fig)
    return [path]


@dataclass
class FailsConfig:
    bad_seed: int = param(1, "the seed whose run raises", low=0)


def fails_run(cfg: FailsConfig, ctx) -> dict:
    if ctx.seed == cfg.bad_seed:
        raise RuntimeError(f"boom on seed {ctx.seed}")
    return {"value": float(ctx.seed)}


CLB = get_experiment("coverage-lower-bound")


def tiny_coverage_run(cfg, ctx) -> dict:
    return CLB.run(cfg, ctx)


FAKES = [
    Experiment(
        "fake-counter",
        "Gaussian draws (test fake)",
        "yang_bon",
        CounterConfig,
        counter_run,
        counter_claims,
        counter_plot,
        scales={"quick": {}, "paper": {"steps": 64}},
        seeds=3,
        description="A fast fake experiment for the runtime tests.",
    ),
    Experiment(
        "fake-fails",
        "Raises on one seed (test fake)",
        "mousavi",
        FailsConfig,
        fails_run,
        lambda results, cfg: [],
        lambda results, cfg, outdir: [],
        seeds=2,
        description="A fake experiment whose run raises.",
    ),
    # The real coverage-lower-bound experiment's code at a tiny size (its own quick scale takes longer).
    Experiment(
        "fake-coverage-tiny",
        "coverage-lower-bound at a tiny size (test)",
        "foster",
        CLB.config,
        tiny_coverage_run,
        CLB.claims,
        CLB.plot,
        scales={"quick": CLB.scales["toy"], "paper": {}},
        seeds=2,
        description="coverage-lower-bound with 20 trials and two C⋆.",
    ),
]
NAMES = [e.name for e in FAKES]


def install() -> None:
    for e in FAKES:
        registry.register(e)


def uninstall() -> None:
    for name in NAMES:
        registry._REGISTRY.pop(name, None)


if in_worker():  # a worker process started by a test
    for _e in FAKES:
        registry.register(_e)


def test_fakes_register_only_on_request():
    install()
    try:
        assert set(NAMES) <= {e.name for e in registry.all_experiments()}
        for e in FAKES:
            e.make_config("quick")
    finally:
        uninstall()
    assert not set(NAMES) & {e.name for e in registry.all_experiments()}
