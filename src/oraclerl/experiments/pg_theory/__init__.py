"""pg-theory: reward queries of the theoretical PG algorithms vs base likelihood α, target ε and horizon N."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment(
    name="pg-theory",
    title="Reward queries of the theoretical PG algorithms vs base likelihood α, target ε and horizon N",
    paper="mousavi", config=experiment.PGTheoryConfig, run=experiment.run, scales=experiment.SCALES,
    claims=analysis.claims, plot=analysis.plot, seeds=2,
))
