"""bon-winrate: win rate vs KL of best-of-n, rewind-and-repeat and the optimal tilted curve."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="bon-winrate", paper="yang_bon", config=experiment.BonWinRateConfig, seeds=3,
    title="Win rate vs KL: best-of-n, rewind-and-repeat, optimal tilted curve",
))
