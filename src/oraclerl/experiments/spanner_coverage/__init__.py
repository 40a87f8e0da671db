"""spanner-coverage: T_data and T_comp to reach regret ε vs C_cov for SpannerSampling, OnlineDPO, XPO,
best-of-n."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment(
    name="spanner-coverage",
    title="T_data and T_comp to reach regret ε vs C_cov: SpannerSampling, OnlineDPO, XPO",
    paper="foster", config=experiment.SpannerCoverageConfig, run=experiment.run, scales=experiment.SCALES,
    claims=analysis.claims, plot=analysis.plot, seeds=3,
))
