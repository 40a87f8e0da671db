"""Coverage coefficients (Foster et al. 2025, Eq. 3 and Eq. 13)."""

from __future__ import annotations

import math

import torch

from ..inference.softmax_sampler import sampler_log_law
from .regret import regret


def log_coverage_coefficient(log_target: torch.Tensor, log_ref: torch.Tensor,
                             prompt_weights: torch.Tensor | None = None) -> float:
    """log C_cov = log sup_{x, y} π(y|x)/π_ref(y|x) over prompts with ρ(x) > 0 and responses with π(y|x) > 0.

    Returns ``inf`` when π puts mass where π_ref has none.
    """
    ratio = torch.where(log_target > -math.inf, log_target - log_ref, torch.full_like(log_target, -math.inf))
    per_x = ratio.max(dim=-1).values
    if prompt_weights is not None:
        per_x = per_x[prompt_weights > 0]
    return float(per_x.max())


def coverage_coefficient(instance_or_log_target, log_ref: torch.Tensor | None = None,
                         prompt_weights: torch.Tensor | None = None) -> float:
    """C_cov(π⋆_β) := sup_{x,y} π⋆_β(y|x)/π_ref(y|x) (Foster et al. Eq. 3), exact.

    Call as ``coverage_coefficient(instance)`` on a problem instance (anything with
    ``optimal_log_policy()``, ``base.log_ref`` and ``prompt_weights``), or as
    ``coverage_coefficient(log_target, log_ref)`` for any pair of log-probability tables [X, Y].
    """
    if log_ref is None:
        inst = instance_or_log_target
        return math.exp(
            log_coverage_coefficient(inst.optimal_log_policy(), inst.base.log_ref, inst.prompt_weights)
        )
    return math.exp(log_coverage_coefficient(instance_or_log_target, log_ref, prompt_weights))


def clipping_envelope(instance, eps: float, delta: float = 0.05) -> float:
    """M⋆(ε): the smallest envelope M whose SoftmaxSampler_{β,M,δ} (Foster et al. 2025, Alg. 1) applied to
    π⋆_β itself (f = r⋆) has regret ≤ ε, on an instance with a reward table (``instance.reward.table``).

    A sampler with envelope M clips the density ratio π⋆_β/π_ref at M; C_cov(π⋆_β) is the envelope that
    never clips, but a regret ε tolerates clipping responses that carry little π⋆_β mass. Bisection on log M
    (the regret is non-increasing in M), exact by enumeration of Y.
    """
    base = instance.base
    f = instance.reward.table.to(base.dtype)
    log_cov = float((instance.optimal_log_policy() - base.log_ref).max())

    def reg(log_m):
        return regret(sampler_log_law(base.log_ref, f, instance.beta, math.exp(log_m), delta), instance)

    if reg(0.0) <= eps:
        return 1.0
    lo, hi = 0.0, log_cov + 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if reg(mid) <= eps:
            hi = mid
        else:
            lo = mid
    return math.exp(hi)
