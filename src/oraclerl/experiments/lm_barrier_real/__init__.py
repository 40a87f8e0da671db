"""lm-barrier-real: the base-model barrier on Gemma-3-270M, pass@k before and after outcome / process PG."""

from ...runtime.run.registry import Experiment, register
from . import analysis, experiment

register(Experiment(
    name="lm-barrier-real",
    title="Base-model barrier on Gemma-3-270M: pass@k before and after outcome / process PG",
    paper="lm", config=experiment.LMBarrierRealConfig, run=experiment.run, scales=experiment.SCALES,
    claims=analysis.claims, plot=analysis.plot, seeds=1,
))
