"""bon-winrate: win rate vs KL of best-of-n, rewind-and-repeat and the optimal tilted curve."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment(
    name="bon-winrate",
    title="Win rate vs KL: best-of-n, rewind-and-repeat, optimal tilted curve",
    paper="yang_bon", config=experiment.BonWinRateConfig, run=experiment.run, scales=experiment.SCALES,
    claims=analysis.claims, plot=analysis.plot, seeds=3,
))
