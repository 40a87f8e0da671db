"""pass@k: exact from a success probability, and the unbiased estimator from n samples (Chen et al. 2021).

* :func:`pass_at_k_exact`: 1 − (1 − p)^k for a per-problem success probability p (on the exact models,
  p = q(y*|x) is the sequence likelihood of the correct answer), computed as −expm1(k·log1p(−p)) — or from
  log p with log1p(−p) = log(−expm1(log p)) — so that tiny p (e.g. k^{−N}) and p near 1 stay accurate.
* :func:`pass_at_k_unbiased`: 1 − C(n−c, k)/C(n, k) from n samples with c correct, evaluated as
  −expm1(lgamma-difference) in float64 (no overflow of binomials); exactly 1 when n − c < k.
* :func:`mean_pass_at_k_exact` (a curve of the exact mean over problems) and :func:`doubling_ks` (the k grid
  1, 2, 4, ..., n of a curve from n samples).

Plain tensors in, tensors out (problems along any leading shape).
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError


def _log1mexp(a: torch.Tensor) -> torch.Tensor:
    """log(1 − e^a) for a ≤ 0, accurate on both ends (Mächler 2012)."""
    return torch.where(a > -0.6931471805599453, torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(a)))


def pass_at_k_exact(p: torch.Tensor | None = None, k: int | torch.Tensor = 1, *,
                    log_p: torch.Tensor | None = None) -> torch.Tensor:
    """1 − (1 − p)^k elementwise; give either ``p`` ∈ [0, 1] or ``log_p`` ≤ 0."""
    if (p is None) == (log_p is None):
        raise ConfigError("p", "give exactly one of p or log_p")
    k = torch.as_tensor(k, dtype=torch.float64)
    if (k < 1).any():
        raise ConfigError("k", "must be >= 1")
    if p is not None:
        p = torch.as_tensor(p, dtype=torch.float64)
        if (p < 0).any() or (p > 1).any() or torch.isnan(p).any():
            raise ConfigError("p", "must be probabilities in [0, 1]")
        log_q = torch.log1p(-p)
    else:
        log_p = torch.as_tensor(log_p, dtype=torch.float64)
        if (log_p > 0).any() or torch.isnan(log_p).any():
            raise ConfigError("log_p", "must be log-probabilities (<= 0)")
        log_q = _log1mexp(log_p)
    return -torch.expm1(k * log_q)


def pass_at_k_unbiased(n: int | torch.Tensor, c: torch.Tensor, k: int | torch.Tensor) -> torch.Tensor:
    """Unbiased pass@k estimate 1 − C(n−c, k)/C(n, k) (Chen et al. 2021, Eq. 1), elementwise over problems.

    Args:
        n: samples per problem (int or tensor broadcastable with ``c``); c: correct samples (0 ≤ c ≤ n);
        k: 1 ≤ k ≤ n.
    """
    c = torch.as_tensor(c, dtype=torch.float64)
    n = torch.as_tensor(n, dtype=torch.float64)
    k = torch.as_tensor(k, dtype=torch.float64)
    if (c < 0).any() or (c > n).any() or (c != c.round()).any():
        raise ConfigError("c", "must be integers with 0 <= c <= n")
    if (k < 1).any() or (k > n).any() or (k != k.round()).any():
        raise ConfigError("k", "must be integers with 1 <= k <= n")
    n, c, k = torch.broadcast_tensors(n, c, k)
    safe = (n - c) >= k
    nc = torch.where(safe, n - c, k)  # placeholder where the ratio is 0
    log_ratio = (torch.lgamma(nc + 1) - torch.lgamma(nc - k + 1)) - (
        torch.lgamma(n + 1) - torch.lgamma(n - k + 1)
    )
    return torch.where(safe, -torch.expm1(log_ratio), torch.ones_like(log_ratio))


def pass_at_k_from_samples(correct: torch.Tensor, k: int | list[int]) -> torch.Tensor:
    """Mean unbiased pass@k over problems from a boolean ``correct`` [P, n] (k an int or a list of ints)."""
    correct = torch.as_tensor(correct)
    if correct.dim() != 2:
        raise ConfigError("correct", f"must be [problems, samples], got {tuple(correct.shape)}")
    n, c = correct.shape[1], correct.to(torch.float64).sum(1)
    ks = [k] if isinstance(k, int) else list(k)
    return torch.stack([pass_at_k_unbiased(n, c, kk).mean() for kk in ks])


def mean_pass_at_k_exact(log_p: torch.Tensor, ks: list[int]) -> list[float]:
    """Exact mean pass@k over problems, E_x[1 − (1 − p(y*|x))^k], for each k in ``ks``, from the exact
    log-likelihoods ``log_p`` of the correct answers (moved to the CPU in float64 and clamped at 0 against
    float rounding)."""
    log_p = torch.as_tensor(log_p).double().cpu().clamp_max(0.0)
    return [float(pass_at_k_exact(log_p=log_p, k=k).mean()) for k in ks]


def doubling_ks(n: int) -> list[int]:
    """The k of a pass@k curve from n samples per problem: 1, 2, 4, ... up to n (n added when it is not a
    power of two)."""
    ks = [2 ** i for i in range(int(math.log2(n)) + 1)]
    return ks if ks[-1] == n else ks + [n]
