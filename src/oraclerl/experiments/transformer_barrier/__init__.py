"""transformer-barrier: the base-model barrier on a tiny transformer, outcome vs process rewards."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment(
    name="transformer-barrier",
    title="Base-model barrier on a tiny transformer: outcome vs process rewards",
    paper="lm", config=experiment.TransformerBarrierConfig, run=experiment.run, scales=experiment.SCALES,
    claims=analysis.claims, plot=analysis.plot, seeds=2, memory=experiment.memory,
))
