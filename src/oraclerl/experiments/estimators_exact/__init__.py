"""estimators-exact: the exact estimator lab (KL estimators, KL placements, group advantage estimators)."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment(
    name="estimators-exact",
    title="The exact estimator lab: KL estimators, KL placements and advantage estimators, bias and variance "
          "exactly",
    paper="mousavi", config=experiment.EstimatorsExactConfig, run=experiment.run, scales=experiment.SCALES,
    claims=analysis.claims, plot=analysis.plot, seeds=2,
))
