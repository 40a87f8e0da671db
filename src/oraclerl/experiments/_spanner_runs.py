"""SpannerSampling at a coverage knob Ĉ with the theory's Ĉ-schedule, for experiments that measure the sampling
*need* (the smallest Ĉ that still reaches ε) rather than the schedule's spend (not an experiment module).

Alg. 3 line 3 and App. G.4.2 set M_rej ∝ Ĉ and T_span ∝ Ĉ, so T_comp ∝ Ĉ by construction; a claim about how
T_comp grows with C_cov must therefore vary Ĉ and find where ε stops being reached.
"""

from __future__ import annotations

import math

from ..explore.evaluation import first_reach, spanner_curve
from ..explore.spanner_sampling import SpannerSampling, SpannerSamplingConfig


def spanner_at(inst, c_knob: float, *, nu: float, T_prompt: int, span_factor: float, m_factor: float, T_exp: int,
               exp_batch: int, epsilon: float, gen, theta_set: str = "l2"):
    """(output, first reach of ε on the regret curve) for Ĉ = ``c_knob``: T_span = ⌈κĈ⌉, M_rej = max(1, mĈ)."""
    o = inst.oracles()
    sc = SpannerSamplingConfig(coverage_bound=c_knob, B=inst.B, nu=nu, T_prompt=T_prompt, theta_set=theta_set,
                               T_span=math.ceil(span_factor * c_knob), T_exp=T_exp,
                               M_rej=max(1.0, m_factor * c_knob), exp_batch=exp_batch)
    out = SpannerSampling(sc).run(o.weak, o.reward, o.prompts, gen)
    return out, first_reach(spanner_curve(out, inst, exp_batch), epsilon)
