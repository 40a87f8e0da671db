"""bon-kl: the KL divergence of best-of-n, exact vs the formula log n − (n−1)/n vs the Beirami et al.
estimator."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="bon-kl", paper="yang_bon", config=experiment.BonKLConfig, seeds=3,
    title="KL of best-of-n: exact vs log n − (n−1)/n vs the Beirami et al. estimator",
))
