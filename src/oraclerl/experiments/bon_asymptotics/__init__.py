"""bon-asymptotics: best-of-N with N = e^{mδ} vs the KL-constrained optimum as the sequence length m grows."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="bon-asymptotics", paper="yang_bon",
    config=experiment.BonAsymptoticsConfig, seeds=3,
    title="Best-of-N (N = e^{mδ}) vs the KL-RL optimum as the sequence length m grows",
))
