"""lq-pretraining: likelihood quantiles (CDF, LQ, α-tail) of the base model along pre-training."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment(
    name="lq-pretraining",
    title="Likelihood quantiles (CDF, LQ, α-tail) of the base model along pre-training",
    paper="mousavi", config=experiment.LQPretrainingConfig, run=experiment.run, scales=experiment.SCALES,
    claims=analysis.claims, plot=analysis.plot, seeds=3, memory=experiment.memory,
))
