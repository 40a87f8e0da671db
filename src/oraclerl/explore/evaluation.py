"""Exact evaluation of exploration runs on finite instances: regret trajectories against oracle counts.

Evaluation code (not an algorithm): it reads the instance. For a proper run (OnlineDPO, XPO) the output after
k batches is π_{θ^k}; for SpannerSampling the output after T rounds is the uniform mixture of its first T
components, whose Theorem 3.1 regret is the prefix average of the component regrets.
"""

from __future__ import annotations

import math

import torch

from ..diagnostics.regret import regret
from ..inference.softmax_sampler import sampler_log_law
from .spanner_sampling import SpannerSampling, SpannerSamplingConfig
from .truncated_softmax import truncated_score


def proper_curve(result, instance) -> list[dict]:
    """[{t_data, t_comp, regret}] for θ^k, k = 0..K (θ^0 before any data, θ^K the output)."""
    log_pol = instance.base.log_policy
    hist = [{"t_data": 0, "t_comp": 0}] + result.history
    return [{"t_data": h["t_data"], "t_comp": h["t_comp"], "regret": regret(log_pol(th), instance)}
            for th, h in zip(result.thetas, hist)]


def spanner_curve(result, instance, exp_batch: int) -> list[dict]:
    """[{t_data, t_comp, regret}] after each exploration batch: regret = prefix average of component
    regrets."""
    regs = result.policy.regret_curve(instance, stride=exp_batch)
    sizes = torch.tensor([min(exp_batch, result.schedule.T_exp - k * exp_batch) for k in range(regs.numel())],
                         dtype=regs.dtype)
    avg = torch.cumsum(regs * sizes, 0) / torch.cumsum(sizes, 0)
    return [{"t_data": h["t_data"], "t_comp": h["t_comp"], "regret": float(a), "component_regret": float(r)}
            for h, a, r in zip(result.history, avg, regs)]


def first_reach(curve: list[dict], epsilon: float) -> dict:
    """The first point after which the regret stays ≤ ε ({..., "censored": False}), else the last point with
    ``censored=True`` (the budget did not suffice)."""
    k = len(curve)
    while k > 0 and curve[k - 1]["regret"] <= epsilon:
        k -= 1
    if k == len(curve):
        return dict(curve[-1], censored=True)
    return dict(curve[k], censored=False)


def spanner_at(
    inst,
    c_knob: float,
    *,
    nu: float,
    T_prompt: int,
    span_factor: float,
    m_factor: float,
    T_exp: int,
    exp_batch: int,
    epsilon: float,
    gen,
    theta_set: str = "l2",
):
    """SpannerSampling at coverage knob Ĉ = ``c_knob`` with the theory's Ĉ-schedule, for measuring the
    sampling *need* (the smallest Ĉ that still reaches ε) rather than the schedule's spend.

    Alg. 3 line 3 and App. G.4.2 of Foster et al. (2025) set M_rej ∝ Ĉ and T_span ∝ Ĉ, so T_comp ∝ Ĉ by
    construction: T_span = ⌈κĈ⌉, M_rej = max(1, mĈ) (:meth:`SpannerSamplingConfig.scheduled`). Returns
    (output, :func:`first_reach` of ε on its regret curve)."""
    o = inst.oracles()
    sc = SpannerSamplingConfig.scheduled(c_knob, span_factor=span_factor, m_factor=m_factor, B=inst.B, nu=nu,
                                         T_prompt=T_prompt, theta_set=theta_set, T_exp=T_exp,
                                         exp_batch=exp_batch)
    out = SpannerSampling(sc).run(o.weak, o.reward, o.prompts, gen)
    return out, first_reach(spanner_curve(out, inst, exp_batch), epsilon)


def spanner_sampler_log_table(policy, seq_inst) -> torch.Tensor:
    """Exact law [X, Y] of SpannerSampling's output sampler (Foster et al. 2025, Alg. 3 output): the
    mixture over its components θ^t and y′ ~ π_ref of SoftmaxSampler_{β,M_rej,δ_rej}(r^t(x, ·, y′)), with a
    known normaliser."""
    base = seq_inst.base
    thetas, counts = policy.distinct_components()
    w = counts.to(base.dtype) / counts.sum()
    X, Y, D = base.phi.shape
    out = torch.full((X, Y), -math.inf, dtype=base.dtype)
    for k in range(thetas.shape[0]):
        for x in range(X):
            phi = base.phi[x]                                   # [Y, D]
            # [y′, y]
            f = truncated_score(thetas[k], policy.sigma_inv, policy.nu, phi[None].expand(Y, Y, D), phi)
            law = sampler_log_law(
                base.log_ref[x][None].expand(Y, Y), f, policy.beta, policy.M_rej, policy.delta_rej
            )
            marg = torch.logsumexp(base.log_ref[x][:, None] + law, dim=0)
            out[x] = torch.logaddexp(out[x], marg + math.log(float(w[k])))
    return out
