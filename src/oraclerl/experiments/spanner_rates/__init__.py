"""spanner-rates: averaged regret of SpannerSampling vs T_data for d ∈ {4, 8, 16, 32}, against d²/(βε)."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="spanner-rates", paper="foster", config=experiment.SpannerRatesConfig, seeds=3,
    title="SpannerSampling: averaged regret vs T_data for d ∈ {4, 8, 16, 32}, against d²/(βε)",
))
