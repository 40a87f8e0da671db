"""coverage-token-vs-sequence: token-level coverage C_cond vs sequence coverage C_cov across the horizon."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment(
    name="coverage-token-vs-sequence",
    title="Token-level coverage C_cond vs sequence coverage C_cov across the horizon H",
    paper="foster", config=experiment.CoverageTokenVsSequenceConfig, run=experiment.run,
    scales=experiment.SCALES, claims=analysis.claims, plot=analysis.plot, seeds=3,
))
