"""dnf-proper: Max-k-DNF, proper OnlineDPO and XPO vs improper SpannerSampling, mass off the null response."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="dnf-proper", paper="foster", config=experiment.DNFProperConfig, seeds=3,
    title="Max-k-DNF: proper learners (OnlineDPO, XPO) vs improper SpannerSampling, mass off the null "
          "response",
))
