"""coverage-lower-bound: sampling queries before a near-optimal response is seen vs min(C⋆, e^{1/(2β)})."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="coverage-lower-bound", paper="foster",
    config=experiment.CoverageLowerBoundConfig, seeds=3, memory=experiment.memory,
    title="Sampling queries before a near-optimal response is seen vs min(C⋆, e^{1/(2β)})",
))
