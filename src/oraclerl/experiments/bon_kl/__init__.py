"""bon-kl: the KL divergence of best-of-n, exact vs the formula log n − (n−1)/n vs the Beirami et al.
estimator."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment(
    name="bon-kl",
    title="KL of best-of-n: exact vs log n − (n−1)/n vs the Beirami et al. estimator",
    paper="yang_bon", config=experiment.BonKLConfig, run=experiment.run, scales=experiment.SCALES,
    claims=analysis.claims, plot=analysis.plot, seeds=3,
))
