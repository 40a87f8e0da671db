"""pg-figure1: policy gradient with outcome vs process rewards on the linear autoregressive model (Figure
1)."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="pg-figure1", paper="mousavi",
    config=experiment.PGFigure1Config, seeds=3, memory=experiment.memory,
    title="Policy gradient with outcome vs process rewards: the base-model barrier (Figure 1)",
))
