"""pg-theory: reward queries of the theoretical PG algorithms vs base likelihood α, target ε and horizon N."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="pg-theory", paper="mousavi", config=experiment.PGTheoryConfig, seeds=2,
    title="Reward queries of the theoretical PG algorithms vs base likelihood α, target ε and horizon N",
))
