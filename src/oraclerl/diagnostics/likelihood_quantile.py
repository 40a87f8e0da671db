"""Likelihood quantiles (Mousavi-Hosseini & Erdogdu 2026, §4.1; docs/papers/mousavi2026_pg_barrier.md §4.1).

    Q_q(ε) = sup{α ∈ [0, 1] : P_x(q(y*(x)|x) ≤ α) ≤ ε}                   (likelihood quantile, LQ)
    Q^TL_q(ε) = sup{α : P_x(min_i q(y*_i | x, y*_{<i}) ≤ α) ≤ ε}          (token-level LQ)

For a distribution of likelihood values with atoms v_(1) ≤ … ≤ v_(M) and weights w (empirical: 1/M each),
P(q ≤ α) is a right-continuous step function, so Q(ε) is the smallest atom whose cumulative weight exceeds ε
(and 1 when ε ≥ 1). Everything is in log space (``log_q``): sequence likelihoods reach k^{−N}
(32^{−128} ≈ 10^{−193}). The "exact" versions take exact likelihoods of contexts (exact per context, an
empirical law over contexts, or ``weights`` for a finite context law); the "empirical" versions take k
samples per problem (real LMs): q̂ = c/k, resolution 1/k.

Also: the CDF P[q ≤ α] and the α-tail α·P[q > α] (≤ E q by Markov; both drawn in the authors' cdf_quantile
experiment).
"""

from __future__ import annotations

import torch

from ..errors import ConfigError


def _prep(log_q: torch.Tensor, weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    log_q = torch.as_tensor(log_q, dtype=torch.float64).reshape(-1)
    if log_q.numel() == 0:
        raise ConfigError("log_q", "must be non-empty")
    if torch.isnan(log_q).any() or (log_q > 1e-4).any():
        raise ConfigError("log_q", "must be log-likelihoods (<= 0, no NaN)")
    if weights is None:
        w = torch.full_like(log_q, 1.0 / log_q.numel())
    else:
        w = torch.as_tensor(weights, dtype=torch.float64).reshape(-1)
        if w.shape != log_q.shape or (w < 0).any() or w.sum() <= 0:
            raise ConfigError("weights", "must be non-negative, non-zero and match log_q")
        w = w / w.sum()
    order = torch.argsort(log_q)
    return log_q[order].clamp_max(0.0), w[order]


def log_likelihood_quantile(log_q: torch.Tensor, eps, weights: torch.Tensor | None = None) -> torch.Tensor:
    """log Q_q(ε) for each ε in ``eps`` (scalar or 1-D), from log-likelihoods of contexts."""
    v, w = _prep(log_q, weights)
    eps_t = torch.as_tensor(eps, dtype=torch.float64)
    if torch.isnan(eps_t).any() or (eps_t < 0).any() or (eps_t > 1).any():
        raise ConfigError("eps", f"must be probability levels in [0, 1], got {eps_t.tolist()}")
    cum = torch.cumsum(w, 0)
    cum[-1] = 1.0
    idx = torch.searchsorted(cum, eps_t.reshape(-1), right=True)        # first j with cum_j > ε
    out = torch.where(idx < v.numel(), v[idx.clamp_max(v.numel() - 1)], torch.zeros_like(eps_t.reshape(-1)))
    return out.reshape(eps_t.shape)


def likelihood_quantile(log_q: torch.Tensor, eps, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Q_q(ε) (may underflow to 0 in float64 below 10^{−308}; use the log version for plots)."""
    return torch.exp(log_likelihood_quantile(log_q, eps, weights))


def token_level_log_likelihood(token_log_probs: torch.Tensor) -> torch.Tensor:
    """min_i log q(y*_i | x, y*_{<i}) from per-token log-probs of y* [M, N]: [M]."""
    return torch.as_tensor(token_log_probs).min(-1).values


def log_token_level_quantile(
    token_log_probs: torch.Tensor, eps, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """log Q^TL_q(ε) from per-token log-probabilities of y* [M, N]."""
    return log_likelihood_quantile(token_level_log_likelihood(token_log_probs), eps, weights)


def likelihood_cdf(log_q: torch.Tensor, log_alpha, weights: torch.Tensor | None = None) -> torch.Tensor:
    """P[q ≤ α] for each log α in ``log_alpha``."""
    v, w = _prep(log_q, weights)
    la = torch.as_tensor(log_alpha, dtype=torch.float64)
    cum = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(w, 0)])
    cnt = torch.searchsorted(v, la.reshape(-1), right=True)              # atoms ≤ α
    return cum[cnt].clamp(0.0, 1.0).reshape(la.shape)


def alpha_tail(log_q: torch.Tensor, log_alpha, weights: torch.Tensor | None = None) -> torch.Tensor:
    """α·P[q > α] for each log α (Markov: ≤ E q)."""
    la = torch.as_tensor(log_alpha, dtype=torch.float64)
    return torch.exp(la) * (1.0 - likelihood_cdf(log_q, la, weights))


def empirical_likelihoods(correct: torch.Tensor) -> torch.Tensor:
    """q̂(x) = c/k per problem from a boolean ``correct`` [P, k] (k samples per problem)."""
    correct = torch.as_tensor(correct)
    if correct.dim() != 2 or correct.shape[1] < 1:
        raise ConfigError("correct", f"must be [problems, samples], got {tuple(correct.shape)}")
    return correct.to(torch.float64).mean(1)


def empirical_likelihood_quantile(correct: torch.Tensor, eps) -> torch.Tensor:
    """Q̂(ε) from k samples per problem (resolution 1/k; problems never solved give 0)."""
    q = empirical_likelihoods(correct)
    return torch.exp(log_likelihood_quantile(torch.log(q), eps))
