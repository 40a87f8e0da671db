"""spanner-coverage: T_data and T_comp to reach regret ε vs C_cov for SpannerSampling, OnlineDPO, XPO,
best-of-n."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="spanner-coverage", paper="foster",
    config=experiment.SpannerCoverageConfig, seeds=3,
    title="T_data and T_comp to reach regret ε vs C_cov: SpannerSampling, OnlineDPO, XPO",
))
