"""spanner-rates: averaged regret of SpannerSampling vs T_data for d ∈ {4, 8, 16, 32}, against d²/(βε)."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment(
    name="spanner-rates",
    title="SpannerSampling: averaged regret vs T_data for d ∈ {4, 8, 16, 32}, against d²/(βε)",
    paper="foster", config=experiment.SpannerRatesConfig, run=experiment.run, scales=experiment.SCALES,
    claims=analysis.claims, plot=analysis.plot, seeds=3,
))
