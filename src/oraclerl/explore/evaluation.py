"""Exact evaluation of exploration runs on finite instances: regret trajectories against oracle counts.

Evaluation code (not an algorithm): it reads the instance. For a proper run (OnlineDPO, XPO) the output after
k batches is π_{θ^k}; for SpannerSampling the output after T rounds is the uniform mixture of its first T
components, whose Theorem 3.1 regret is the prefix average of the component regrets.
"""

from __future__ import annotations

import torch

from ..diagnostics.regret import regret


def proper_curve(result, instance) -> list[dict]:
    """[{t_data, t_comp, regret}] for θ^k, k = 0..K (θ^0 before any data, θ^K the output)."""
    log_pol = instance.base.log_policy
    hist = [{"t_data": 0, "t_comp": 0}] + result.history
    return [{"t_data": h["t_data"], "t_comp": h["t_comp"], "regret": regret(log_pol(th), instance)}
            for th, h in zip(result.thetas, hist)]


def spanner_curve(result, instance, exp_batch: int) -> list[dict]:
    """[{t_data, t_comp, regret}] after each exploration batch: regret = prefix average of component regrets."""
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
