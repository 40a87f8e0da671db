"""coverage-token-vs-sequence: token-level coverage C_cond vs sequence coverage C_cov across the horizon."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="coverage-token-vs-sequence", paper="foster",
    config=experiment.CoverageTokenVsSequenceConfig, seeds=3,
    title="Token-level coverage C_cond vs sequence coverage C_cov across the horizon H",
))
