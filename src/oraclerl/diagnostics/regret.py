"""Exact regret J_β(π⋆_β) − J_β(π̂) on exact models (Foster et al. Definition 2.2)."""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..oracles.protocols import ExactPolicy
from .divergences import kl_divergence, kl_regularised_objective


def policy_log_table(policy, instance) -> torch.Tensor:
    """Resolve a policy to its exact law log π̂(y|x) as an [X, Y] table.

    ``policy`` is either a tensor of log-probabilities [X, Y] or an
    :class:`~oraclerl.oracles.protocols.ExactPolicy` (``log_prob_table(instance) -> Tensor[X, Y]``: a sampler
    whose exact law is known, e.g. an improper SpannerSampling output).
    """
    if isinstance(policy, torch.Tensor):
        table = policy
    elif isinstance(policy, ExactPolicy):
        table = policy.log_prob_table(instance)
    else:
        raise ConfigError(
            "policy",
            f"must be a [X, Y] log-probability tensor or have log_prob_table(); got {type(policy).__name__}",
        )
    expected = tuple(instance.base.log_ref.shape)
    if tuple(table.shape) != expected:
        raise ConfigError(
            "policy", f"log-probability table must have shape {expected}, got {tuple(table.shape)}"
        )
    return table.to(instance.base.log_ref.dtype)


def J_beta(policy, instance) -> float:
    """Exact J_β(π) = E_x[E_π r⋆ − β KL(π ‖ π_ref)] on an exact instance."""
    log_pi = policy_log_table(policy, instance)
    return float(kl_regularised_objective(log_pi, instance.reward.table, instance.base.log_ref,
                                          instance.beta, instance.prompt_weights))


def regret(policy, instance) -> float:
    """J_β(π⋆_β) − J_β(π̂) = β·E_x KL(π̂(·|x) ‖ π⋆_β(·|x)), computed exactly through the KL identity.

    The identity (Lemma H.3) holds for every π̂ with π̂ ≪ π_ref; it is tested against the direct
    difference of objectives in the test-suite. For π̂ not absolutely continuous w.r.t. π_ref the
    regret is +inf.
    """
    log_pi = policy_log_table(policy, instance)
    kl = kl_divergence(log_pi, instance.optimal_log_policy())
    w = instance.prompt_weights.to(kl.dtype)
    return float(instance.beta * (w * kl).sum())
