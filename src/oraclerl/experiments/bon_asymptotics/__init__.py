"""bon-asymptotics: best-of-N with N = e^{mδ} vs the KL-constrained optimum as the sequence length m grows."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment(
    name="bon-asymptotics",
    title="Best-of-N (N = e^{mδ}) vs the KL-RL optimum as the sequence length m grows",
    paper="yang_bon", config=experiment.BonAsymptoticsConfig, run=experiment.run, scales=experiment.SCALES,
    claims=analysis.claims, plot=analysis.plot, seeds=3,
))
