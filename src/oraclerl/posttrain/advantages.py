"""Advantage estimators for policy gradients with outcome and process rewards.

Plain tensors in, tensors out; nothing here knows about models or oracles, so the same estimators
serve the exact linear autoregressive model and real language models.

Shapes
------
* outcome rewards: ``rewards`` is ``[B, n]`` (B prompts, n sampled responses per prompt; one scalar
  reward per response). The advantage has the same shape and multiplies the *whole* sequence
  log-likelihood, i.e. every token of response (b, j) gets ``A[b, j]``.
* process rewards: ``rewards`` is ``[B, n, H]`` (one reward per prefix y_{1:i}, i = 1..H). The
  advantage ``A[b, j, i]`` multiplies the log-probability of token i of response (b, j). Variable-length
  responses (language models) pass ``mask`` ``[B, n, H]`` (True = real token): masked entries are left
  out of every mean/std and get advantage 0.

Estimators (``estimator=``)
---------------------------
* ``"none"``: A = r (REINFORCE; the theory of Mousavi-Hosseini & Erdogdu 2026, Algorithms 1-2, uses
  {0,1} rewards and no baseline; their PRM experiment uses ±1 rewards and no baseline).
* ``"batch_mean"``: A = r − mean(r) over the whole batch (all B·n responses; for process rewards the
  mean is taken per position i over the B·n responses, as ``R[b,i] − mean_b R[b,i]`` in the authors'
  code). This is the baseline of the paper's ORM experiment (§3.5/§5.7 of the notes).
* ``"leave_one_out"``: RLOO (Kool et al. 2019; Ahmadian et al. 2024): A_j = r_j − mean_{j'≠j} r_{j'} over
  the n responses of the same prompt (per position for process rewards). Needs n ≥ 2. Unbiased: the
  baseline of response j does not depend on response j.
* ``"group_normalised"``: GRPO (Shao et al. 2024): A_j = (r_j − mean_group r) / (std_group r + eps) over
  the n responses of a prompt (per position for process rewards), with the Bessel-corrected std
  (``torch.std`` default, as TRL). Needs n ≥ 2. Groups with identical rewards get A = 0.
* ``"dr_grpo"``: Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-like training", arXiv 2503.20783, §3.1):
  A_j = r_j − mean_group r, without GRPO's std division (and without its per-response length normalisation,
  which is a property of the loss, not of the advantage). Its baseline includes r_j itself, so its expected
  gradient is (n−1)/n times the true one (computed exactly by :mod:`oraclerl.diagnostics.estimators`).
* ``"pass_at_k"``: the unbiased pass@k policy gradient of Walder & Karkhanis (2025, "Pass@k policy
  optimization", arXiv 2505.15201, §3): with the n rewards of a group sorted increasingly, r_(1) ≤ … ≤ r_(n),
  A_(i) = n / C(n, k) · [C(i−1, k−1)·r_(i) + Σ_{m>i} C(m−2, k−2)·r_(m)] = n/C(n,k)·Σ_{K ∋ i, |K| = k} max_K r,
  so that (1/n) Σ_j A_j ∇log π(y_j) is unbiased for ∇ E[max of k i.i.d. rewards] (= ∇ pass@k for {0,1}
  rewards). Outcome rewards only, no mask; needs 1 ≤ k ≤ n (k = 1 is REINFORCE).

Example::

    r = reward_oracle.outcome(prompts, responses)            # [B, n]
    A = advantages(r, "leave_one_out")                        # [B, n]
    loss = -(A[..., None] * token_logp).mean()                # token_logp [B, n, H]
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError

ESTIMATORS = ("none", "batch_mean", "leave_one_out", "group_normalised")
"""The estimators the trainers offer as a config choice (``PGConfig.advantage``, ``LMPGConfig.advantage``)."""

ALL_ESTIMATORS = ESTIMATORS + ("dr_grpo", "pass_at_k")
"""Names accepted by :func:`advantages` (``pass_at_k`` also takes ``k``)."""


def _masked_mean(x: torch.Tensor, m: torch.Tensor, dims) -> tuple[torch.Tensor, torch.Tensor]:
    cnt = m.sum(dims, keepdim=True)
    s = (x * m).sum(dims, keepdim=True)
    return s / cnt.clamp_min(1), cnt


def _pass_at_k(r: torch.Tensor, k: int) -> torch.Tensor:
    """Walder & Karkhanis (2025) §3 weights for outcome rewards [B, n] (see the module doc); log-space
    binomials."""
    n = r.shape[1]
    rs, order = torch.sort(r, dim=1)
    i = torch.arange(1, n + 1, dtype=torch.float64)

    def log_comb(a, b):  # log C(a, b) for tensors a and a scalar b >= 0 (−inf where a < b)
        ok = a >= b
        a = torch.where(ok, a, torch.full_like(a, float(b)))
        return torch.where(ok, torch.lgamma(a + 1) - math.lgamma(b + 1) - torch.lgamma(a - b + 1),
                           torch.full_like(a, -math.inf))

    log_norm = math.log(n) - (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1))
    own = torch.exp(log_comb(i - 1, k - 1) + log_norm).to(r.dtype)                # C(i−1,k−1)·n/C(n,k)
    if k >= 2:
        # C(m−2,k−2)·r_(m)·n/C(n,k)
        above = torch.exp(log_comb(i - 2, k - 2) + log_norm).to(r.dtype) * rs
        tail = torch.flip(torch.cumsum(torch.flip(above, [1]), 1), [1])            # Σ_{m ≥ i}
        tail = torch.cat([tail[:, 1:], torch.zeros_like(tail[:, :1])], 1)          # Σ_{m > i}
    else:
        tail = torch.zeros_like(rs)
    return torch.empty_like(r).scatter_(1, order, own * rs + tail)


def advantages(rewards: torch.Tensor, estimator: str = "none", *, mask: torch.Tensor | None = None,
               eps: float = 1e-4, k: int = 1) -> torch.Tensor:
    """Advantages for outcome rewards ``[B, n]`` or process rewards ``[B, n, H]`` (see module doc).

    Args:
        rewards: ``[B, n]`` outcome or ``[B, n, H]`` process rewards (floating point).
        estimator: one of :data:`ALL_ESTIMATORS`.
        mask: optional boolean ``[B, n, H]`` (process) or ``[B, n]`` (outcome) of valid entries; invalid
            entries are excluded from every statistic and get advantage 0.
        eps: added to the group std by ``"group_normalised"`` (> 0).
        k: the k of ``"pass_at_k"`` (1 ≤ k ≤ n); ignored by the other estimators.

    Returns:
        A tensor of the shape of ``rewards``.
    """
    if estimator not in ALL_ESTIMATORS:
        raise ConfigError("estimator", f"must be one of {list(ALL_ESTIMATORS)}, got {estimator!r}")
    r = torch.as_tensor(rewards)
    if r.dim() not in (2, 3):
        raise ConfigError(
            "rewards", f"must have shape [B, n] (outcome) or [B, n, H] (process), got {tuple(r.shape)}"
        )
    if not torch.is_floating_point(r):
        r = r.to(torch.get_default_dtype())
    # a NaN makes the sum NaN: one cheap pass first
    if bool(torch.isnan(r.sum())) and bool(torch.isnan(r).any()):
        raise ConfigError("rewards", "contains NaN")
    if not eps > 0:
        raise ConfigError("eps", f"must be > 0, got {eps!r}")
    if mask is None:
        m = torch.ones_like(r)
    else:
        mask = torch.as_tensor(mask, device=r.device)
        if mask.shape != r.shape:
            raise ConfigError(
                "mask", f"must have the shape of rewards {tuple(r.shape)}, got {tuple(mask.shape)}"
            )
        m = mask.to(r.dtype)
    n = r.shape[1]
    if estimator in ("leave_one_out", "group_normalised", "dr_grpo") and n < 2:
        raise ConfigError(
            "rewards", f"estimator {estimator!r} needs n >= 2 responses per prompt (dim 1), got n={n}"
        )
    if estimator == "pass_at_k":
        if r.dim() != 2 or mask is not None:
            raise ConfigError("estimator", "'pass_at_k' takes outcome rewards [B, n] without a mask")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
            raise ConfigError("k", f"must be an integer in [1, n={n}] for 'pass_at_k', got {k!r}")
        return _pass_at_k(r, k)

    if estimator == "none":
        out = r
    elif estimator == "batch_mean":
        mean, _ = _masked_mean(r, m, (0, 1))  # over all B·n responses (per position for process rewards)
        out = r - mean
    elif estimator == "dr_grpo":
        mean, _ = _masked_mean(r, m, (1,))
        out = r - mean
    elif estimator == "leave_one_out":
        s = (r * m).sum(1, keepdim=True)
        cnt = m.sum(1, keepdim=True)
        others = (cnt - m).clamp_min(1)  # number of *other* valid responses in the group
        out = r - (s - r * m) / others
    else:  # group_normalised
        mean, cnt = _masked_mean(r, m, (1,))
        var = (((r - mean) * m) ** 2).sum(1, keepdim=True) / (cnt - 1).clamp_min(1)
        out = (r - mean) / (var.sqrt() + eps)
    return out * m


def outcome_advantages(rewards: torch.Tensor, estimator: str = "none", **kw) -> torch.Tensor:
    """:func:`advantages` for outcome rewards; checks that ``rewards`` is ``[B, n]``."""
    if torch.as_tensor(rewards).dim() != 2:
        raise ConfigError(
            "rewards", f"outcome rewards must be [B, n], got {tuple(torch.as_tensor(rewards).shape)}"
        )
    return advantages(rewards, estimator, **kw)


def process_advantages(rewards: torch.Tensor, estimator: str = "none", **kw) -> torch.Tensor:
    """:func:`advantages` for process rewards; checks that ``rewards`` is ``[B, n, H]``."""
    if torch.as_tensor(rewards).dim() != 3:
        raise ConfigError(
            "rewards", f"process rewards must be [B, n, H], got {tuple(torch.as_tensor(rewards).shape)}"
        )
    return advantages(rewards, estimator, **kw)
