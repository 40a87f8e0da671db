"""estimators-exact: the exact estimator lab (KL estimators, KL placements, group advantage estimators)."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="estimators-exact", paper="mousavi",
    config=experiment.EstimatorsExactConfig, seeds=2,
    title="The exact estimator lab: KL estimators, KL placements and advantage estimators, bias and variance "
          "exactly",
))
