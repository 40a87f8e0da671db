"""lm-barrier-real: the base-model barrier on Gemma-3-270M, pass@k before and after outcome / process PG."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment.from_modules(
    experiment, analysis, name="lm-barrier-real", paper="lm", config=experiment.LMBarrierRealConfig, seeds=1,
    title="Base-model barrier on Gemma-3-270M: pass@k before and after outcome / process PG",
))
