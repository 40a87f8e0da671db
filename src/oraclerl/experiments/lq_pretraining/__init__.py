"""lq-pretraining: likelihood quantiles (CDF, LQ, α-tail) of the base model along pre-training."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="lq-pretraining", paper="mousavi",
    config=experiment.LQPretrainingConfig, seeds=3, memory=experiment.memory,
    title="Likelihood quantiles (CDF, LQ, α-tail) of the base model along pre-training",
))
