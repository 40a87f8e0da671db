"""dnf-proper: Max-k-DNF, proper OnlineDPO and XPO vs improper SpannerSampling, mass off the null response."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment(
    name="dnf-proper",
    title="Max-k-DNF: proper learners (OnlineDPO, XPO) vs improper SpannerSampling, mass off the null "
          "response",
    paper="foster", config=experiment.DNFProperConfig, run=experiment.run, scales=experiment.SCALES,
    claims=analysis.claims, plot=analysis.plot, seeds=3,
))
