"""mtss-vs-spanner: MTSS vs SpannerSampling on sequences, queries to the same regret as the horizon grows."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment(
    name="mtss-vs-spanner",
    title="MTSS vs SpannerSampling on sequences: sampling and reward queries to the same regret as H grows",
    paper="foster", config=experiment.MTSSVsSpannerConfig, run=experiment.run, scales=experiment.SCALES,
    claims=analysis.claims, plot=analysis.plot, seeds=3,
))
