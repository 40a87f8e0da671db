"""Exact divergences and KL-regularised objectives on finite laws, in log space.

J_β(π) = E_x[ E_{y~π(x)} r⋆(x, y) − β·KL(π(x) ‖ π_ref(x)) ]   (Foster et al. Eq. 1),
and the identity J_β(π⋆_β) − J_β(π) = β·E_x KL(π(x) ‖ π⋆_β(x)) (Lemma H.3 / G.4).
"""

from __future__ import annotations

import torch


def kl_divergence(log_p: torch.Tensor, log_q: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """KL(p ‖ q) = Σ p (log p − log q) along ``dim`` from log-probabilities (0·log 0 = 0; +inf if p ≫̸ q)."""
    p = torch.exp(log_p)
    diff = torch.where(p > 0, log_p - log_q, torch.zeros_like(log_p))
    terms = torch.where(p > 0, p * diff, torch.zeros_like(p))
    return terms.sum(dim)


def entropy(log_p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy −Σ p log p from log-probabilities."""
    p = torch.exp(log_p)
    return -torch.where(p > 0, p * log_p, torch.zeros_like(p)).sum(dim)


def expected(log_p: torch.Tensor, values: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """E_p[values] along ``dim``, ignoring values where p = 0 (so -inf/inf values at zero mass are fine)."""
    p = torch.exp(log_p)
    return torch.where(p > 0, p * values, torch.zeros_like(p)).sum(dim)


def kl_regularised_objective(log_pi: torch.Tensor, reward: torch.Tensor, log_ref: torch.Tensor, beta: float,
                             prompt_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Exact J_β(π) for tables [X, Y] of log π, r⋆ and log π_ref, with prompt law ρ (uniform by default)."""
    per_x = expected(log_pi, reward) - beta * kl_divergence(log_pi, log_ref)
    if prompt_weights is None:
        return per_x.mean()
    return (prompt_weights.to(per_x.dtype) * per_x).sum()
