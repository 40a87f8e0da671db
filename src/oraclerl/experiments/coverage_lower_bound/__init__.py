"""coverage-lower-bound: sampling queries before a near-optimal response is seen vs min(C⋆, e^{1/(2β)})."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment(
    name="coverage-lower-bound",
    title="Sampling queries before a near-optimal response is seen vs min(C⋆, e^{1/(2β)})",
    paper="foster", config=experiment.CoverageLowerBoundConfig, run=experiment.run, scales=experiment.SCALES,
    claims=analysis.claims, plot=analysis.plot, seeds=3, memory=experiment.memory,
))
