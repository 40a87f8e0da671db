"""Coverage coefficients (Foster et al. 2025, Eq. 3 and Eq. 13)."""

from __future__ import annotations

import math

import torch


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
        return math.exp(log_coverage_coefficient(inst.optimal_log_policy(), inst.base.log_ref, inst.prompt_weights))
    return math.exp(log_coverage_coefficient(instance_or_log_target, log_ref, prompt_weights))
