"""mtss-vs-spanner: MTSS vs SpannerSampling on sequences, queries to the same regret as the horizon grows."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="mtss-vs-spanner", paper="foster",
    config=experiment.MTSSVsSpannerConfig, seeds=3,
    title="MTSS vs SpannerSampling on sequences: sampling and reward queries to the same regret as H grows",
))
