"""transformer-barrier: the base-model barrier on a tiny transformer, outcome vs process rewards."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="transformer-barrier", paper="lm",
    config=experiment.TransformerBarrierConfig, seeds=2, memory=experiment.memory,
    title="Base-model barrier on a tiny transformer: outcome vs process rewards",
))
