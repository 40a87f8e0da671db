"""SpannerSampling on a real LM: what the theory schedule asks, and a practical preset from a sampling budget.

**The theory schedule does not fit an LM.** Theorem 3.1's choices (Foster et al. 2025, App. G.4.2, constants
1; :func:`~oraclerl.explore.spanner_sampling.theory_schedule`) grow with d²: at the hidden size d = 640 of
Gemma-3-270M, with β = R_max = 1, ε = 0.05, δ = 0.1 and Ĉ = 16 they are T_exp = T_prompt ≈ 4.3·10⁷
exploration rounds and spanner prompts, T_span ≈ 6.9·10⁸ trials per spanner prompt, ν ≈ 0.009 and a
rejection envelope M_rej ≈ 946: about 1.7·10⁸ reward queries and a T_comp bound of 6·10¹⁶ samples
(:func:`theory_cost` recomputes these). The d² comes from the worst case over all feature maps; it is a
statement about the analysis, not a recipe.

**Practical preset.** :func:`lm_spanner_config` spends a sampling budget ``t_comp`` (the bound
``SpannerSchedule.t_comp_bound`` is ≤ it): half on the spanner (T_prompt prompts × T_span trials, 2 draws
each) and half on exploration rounds (each ``2⌈4 M_rej log(4/δ_rej)⌉ + 2`` draws with M_rej = 4,
δ_rej = 0.5, i.e. 70 draws). ν = 0.5 and λ = 1 suit unit-norm features.

**Feature scaling.** ϕ(x, y) is the pooled last-layer hidden state projected onto the unit ball (divided by
max(1, ‖h‖); :meth:`~oraclerl.models.hf.causal_lm.CausalLM.features`). On Gemma-3-270M the mean-pooled
post-norm hidden states have norms of 67–140 (median 85 over 64 sampled responses; single-token states reach ≈
130; measured in ``benchmarks/bench_hf.py``), so every feature lands on the unit sphere: only the direction of
h is used, ‖θ‖ ≤ B = 1 bounds the tilt ⟨θ, ϕ⟩/β by 1/β, and the spanner radius ν is on the scale of unit
vectors. To use a different scale, wrap the model's ``features`` (the oracle assumption ‖ϕ‖ ≤ 1 must hold).
"""

from __future__ import annotations

import math

from ...common.validation import check_int, check_positive
from ...errors import ConfigError

#: Exploration-round rejection settings of the preset (Alg. 1 draws 2⌈4·M·log(4/δ)⌉ + 2 per round).
PRESET_M_REJ, PRESET_DELTA_REJ, PRESET_T_SPAN = 4.0, 0.5, 8


def theory_cost(d: int, beta: float = 1.0, r_max: float = 1.0, epsilon: float = 0.05, delta: float = 0.1,
                coverage_bound: float = 16.0) -> dict:
    """The theory schedule's sizes at feature dimension ``d`` (T_exp, T_prompt, T_span, ν, M_rej and the
    T_data / T_comp bounds), as a dict."""
    from ...explore.spanner_sampling import SpannerSamplingConfig, theory_schedule

    cfg = SpannerSamplingConfig(epsilon=epsilon, delta=delta, coverage_bound=coverage_bound)
    s = theory_schedule(
        cfg, check_int("d", d, low=1), check_positive("beta", beta), check_positive("r_max", r_max)
    )
    return {
        "d": d,
        "T_exp": s.T_exp,
        "T_prompt": s.T_prompt,
        "T_span": s.T_span,
        "nu": s.nu,
        "M_rej": s.M_rej,
        "t_data_bound": s.t_data_bound,
        "t_comp_bound": s.t_comp_bound,
    }


def lm_spanner_config(t_comp: int, *, t_span: int = PRESET_T_SPAN, **overrides):
    """A :class:`~oraclerl.explore.spanner_sampling.SpannerSamplingConfig` whose T_comp bound fits ``t_comp``
    samples (see the module docstring); ``overrides`` set any other config field."""
    from ...explore.spanner_sampling import SpannerSamplingConfig

    check_int("t_comp", t_comp, low=1)
    check_int("t_span", t_span, low=1)
    per_round = 2 * math.ceil(4 * PRESET_M_REJ * math.log(4 / PRESET_DELTA_REJ)) + 2
    T_exp = (t_comp // 2) // per_round
    T_prompt = (t_comp - T_exp * per_round) // (2 * t_span)
    if T_exp < 1 or T_prompt < 1:
        raise ConfigError("t_comp", f"a budget of {t_comp} samples is too small: one exploration round costs "
                          f"{per_round} and one spanner prompt {2 * t_span}; use at least {2 * per_round}")
    kw = dict(B=1.0, nu=0.5, lam=1.0, T_prompt=T_prompt, T_span=t_span, T_exp=T_exp, M_rej=PRESET_M_REJ,
              delta_rej=PRESET_DELTA_REJ, span_chunk=t_span)
    kw.update(overrides)
    return SpannerSamplingConfig(**kw)
