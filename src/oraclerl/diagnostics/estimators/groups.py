"""Exact moments of group policy-gradient estimators by enumerating every group of n responses.

For one prompt x, a policy q over Y responses (sequences), rewards R and scores σ (∇_θ log q), a group
y_1..y_n ~ q i.i.d. gives advantages A = estimator(R(y_1..y_n)) and the estimate

    outcome:  ĝ = (1/n) Σ_j A_j σ(y_j)           process:  ĝ = (1/n) Σ_j Σ_i A_{j,i} σ_i(y_j)

(the loss of :mod:`oraclerl.posttrain.policy_gradient` and :mod:`oraclerl.posttrain.lm_pg` up to the constant
1/H of the token mean). :func:`group_gradient_moments` sums over all |Y|^n groups (ids decoded in base |Y|,
blocks of groups at a time, no Python loop over groups) and returns E ĝ and its variance, averaged over
uniformly weighted prompts. The advantage code is :func:`oraclerl.posttrain.advantages.advantages`, run
unchanged, or any callable ``f(rewards [G, n] or [G, n, H]) -> advantages`` of the same shape.

Closed forms (identities, checked in ``tests/test_estimators_groups.py``):

* true gradient ∇J = E_x Σ_y q(y|x) R(x, y) σ(x, y)   (:func:`policy_gradient_exact`);
* for an advantage that depends on the rewards only and two-valued rewards {lo, hi} with P(hi) = p_x,
  E[ĝ | x] = c(p_x, n)·∇p_x with c = E[A_1 | r_1 = hi] − E[A_1 | r_1 = lo] (a sum over the binomial count of
  successes among the other n − 1; :func:`two_point_gain`). Hence per prompt the direction is exact and
  only the weight c(p_x, n) differs: REINFORCE c = hi − lo, RLOO c = hi − lo, Dr. GRPO and the batch-mean
  baseline of one prompt c = (1 − 1/n)(hi − lo), GRPO c = E[(hi − lo)/(std + eps) ...] which grows like
  1/√(p(1 − p)) at the extremes and vanishes on the all-equal groups (probability p^n + (1−p)^n);
* with B prompts in the batch, the batch-mean baseline's expected gradient is (1 − 1/(Bn))·∇J;
* pass_at_k: E ĝ = ∇_θ E_x E[max of k i.i.d. rewards] (:func:`max_of_k_gradient`; = ∇ pass@k for {0,1}).

``"batch_mean"`` is evaluated for a batch of one prompt (B = 1), by running the estimator on the groups laid
out along its per-position axis.

Beyond enumeration (|Y|^n > ``max_groups``), :func:`sampled_group_moments` draws groups exactly from q
(inverse CDF) and returns the Monte Carlo mean with its standard error, for a z-test against a closed form
(e.g. RLOO's E ĝ = ∇J at any n; ``tests/test_estimators_groups.py`` uses |z| ≤ 4.5 per coordinate).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from ...errors import ConfigError
from ...posttrain.advantages import ALL_ESTIMATORS, advantages


def decode_groups(start: int, stop: int, num_responses: int, n: int, device=None) -> torch.Tensor:
    """Groups ``start..stop-1`` of [Y]^n as response ids [stop − start, n] (base-Y digits, first = least)."""
    codes = torch.arange(start, stop, device=device)
    powers = num_responses ** torch.arange(n, device=device)
    return (codes[:, None] // powers) % num_responses


def _advantage_fn(estimator, kw) -> Callable[[torch.Tensor], torch.Tensor]:
    if callable(estimator):
        return estimator
    if estimator not in ALL_ESTIMATORS:
        raise ConfigError(
            "estimator", f"must be one of {list(ALL_ESTIMATORS)} or a callable, got {estimator!r}"
        )
    if estimator != "batch_mean":
        return partial(advantages, estimator=estimator, **kw)

    def one_prompt_batch(R):  # [G, n(, H)] -> the batch of one prompt, groups along the position axis
        G, n = R.shape[:2]
        lay = R.reshape(G, n, -1).permute(1, 0, 2).reshape(1, n, -1)
        A = advantages(lay, "batch_mean", **kw)
        return A.reshape(n, G, -1).permute(1, 0, 2).reshape(R.shape)
    return one_prompt_batch


@dataclass
class GroupMoments:
    """Exact moments of a group estimator ĝ (one group of n per prompt, prompts uniform)."""

    mean: torch.Tensor
    """E ĝ: [D]."""
    per_prompt: torch.Tensor
    """E[ĝ | x]: [X, D]."""
    var_total: float
    """tr Cov(ĝ) with x uniform: E‖ĝ‖² − ‖E ĝ‖²."""
    var_within: float
    """E_x tr Cov(ĝ | x)."""
    groups: int
    """Groups enumerated per prompt (|Y|^n)."""


def group_gradient_moments(log_q: torch.Tensor, rewards: torch.Tensor, score: torch.Tensor, n: int,
                           estimator: str | Callable = "none", *, max_groups: int = 10 ** 6,
                           block: int = 1 << 15, **estimator_kw) -> GroupMoments:
    """Exact E ĝ and variance of a group estimator by enumerating all |Y|^n groups of every prompt.

    Args:
        log_q: [X, Y] log q(y|x) of the sampling policy.
        rewards: [X, Y] outcome or [X, Y, H] process rewards (one per prefix).
        score: [X, Y, D] sequence scores ∇log q(y|x) (outcome) or [X, Y, H, D] per-token scores (process; also
            accepted for outcome rewards, summed over tokens).
        n: group size.
        estimator: a name of :data:`~oraclerl.posttrain.advantages.ALL_ESTIMATORS` or a callable.
        max_groups: refuse more than this many groups per prompt.
        block: groups per vectorised block.
        estimator_kw: passed to :func:`~oraclerl.posttrain.advantages.advantages` (``eps``, ``k``).
    """
    log_q, rewards, score = (torch.as_tensor(t) for t in (log_q, rewards, score))
    if log_q.dim() != 2:
        raise ConfigError("log_q", f"must be [X, Y], got {tuple(log_q.shape)}")
    X, Y = log_q.shape
    process = rewards.dim() == 3
    if rewards.shape[:2] != (X, Y) or rewards.dim() not in (2, 3):
        raise ConfigError(
            "rewards", f"must be [X, Y] or [X, Y, H] with X, Y = {X}, {Y}, got {tuple(rewards.shape)}"
        )
    if process and (score.dim() != 4 or score.shape[:3] != rewards.shape):
        raise ConfigError(
            "score", f"process rewards need per-token scores [X, Y, H, D], got {tuple(score.shape)}"
        )
    if score.dim() == 4 and not process:
        score = score.sum(2)
    if score.shape[:2] != (X, Y) or score.dim() != (4 if process else 3):
        raise ConfigError("score", f"must be [X, Y, D] (or [X, Y, H, D]), got {tuple(score.shape)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError("n", f"must be an integer >= 1, got {n!r}")
    G = Y ** n
    if G > max_groups:
        raise ConfigError("n", f"|Y|^n = {Y}^{n} = {G} groups exceed max_groups={max_groups}")
    f = _advantage_fn(estimator, estimator_kw)
    D = score.shape[-1]
    dt = score.dtype
    per_prompt = torch.zeros(X, D, dtype=dt, device=score.device)
    second = torch.zeros(X, dtype=dt, device=score.device)
    for x in range(X):  # prompts × blocks of groups; each block is one vectorised evaluation
        for s in range(0, G, block):
            idx = decode_groups(s, min(G, s + block), Y, n, device=score.device)   # [c, n]
            prob = torch.exp(log_q[x][idx].sum(1)).to(dt)                          # [c]
            A = f(rewards[x][idx]).to(dt)                                          # [c, n(, H)]
            sig = score[x][idx]                                                     # [c, n(, H), D]
            g = (torch.einsum("cnh,cnhd->cd", A, sig) if process else torch.einsum("cn,cnd->cd", A, sig)) / n
            per_prompt[x] += prob @ g
            second[x] += prob @ (g * g).sum(-1)
    mean = per_prompt.mean(0)
    within = float((second - (per_prompt * per_prompt).sum(-1)).mean())
    total = float(second.mean() - mean @ mean)
    return GroupMoments(mean, per_prompt, total, within, G)


def sampled_group_moments(
    log_q: torch.Tensor,
    rewards: torch.Tensor,
    score: torch.Tensor,
    n: int,
    estimator: str | Callable = "none",
    *,
    groups: int = 10_000,
    generator: torch.Generator | None = None,
    **estimator_kw,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Monte Carlo (mean [D], standard error [D], tr Cov) of ĝ over ``groups`` groups per prompt drawn exactly
    from q, prompts uniform: the same estimate as :func:`group_gradient_moments` without its size limit."""
    from ...models.linear_softmax import sample_from_log_probs

    log_q, rewards, score = (torch.as_tensor(t) for t in (log_q, rewards, score))
    if log_q.dim() != 2 or rewards.shape != log_q.shape or score.shape[:2] != log_q.shape or score.dim() != 3:
        raise ConfigError("score", "sampled_group_moments takes outcome rewards [X, Y] and scores [X, Y, D]")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 2:
        raise ConfigError("groups", f"must be an integer >= 2, got {groups!r}")
    f = _advantage_fn(estimator, estimator_kw)
    X = log_q.shape[0]
    y = sample_from_log_probs(log_q.repeat_interleave(groups, 0), n, generator)       # [X·G, n]
    xs = torch.arange(X).repeat_interleave(groups)
    A = f(rewards[xs[:, None], y]).to(score.dtype)
    g = torch.einsum("bn,bnd->bd", A, score[xs[:, None], y]) / n                       # [X·G, D]
    per = g.reshape(X, groups, -1)
    mean = per.mean((0, 1))
    se = (per.var(1) / groups).sum(0).sqrt() / X                                       # prompts stratified
    return mean, se, float(g.var(0).sum())


def policy_gradient_exact(log_q: torch.Tensor, rewards: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """∇_θ J = E_x Σ_y q(y|x) R(x, y) σ(x, y) for outcome rewards [X, Y] and sequence scores [X, Y, D]."""
    q = torch.exp(log_q)
    return torch.einsum("xy,xy,xyd->d", q, rewards.to(q.dtype), score) / q.shape[0]


def max_of_k_gradient(
    log_q: torch.Tensor, rewards: torch.Tensor, score: torch.Tensor, k: int
) -> torch.Tensor:
    """∇_θ E_x E[max(R(y_1), …, R(y_k))], y_j ~ q i.i.d. (∇ pass@k for {0,1} rewards), in closed form.

    With the responses sorted by reward and F_m the q-mass of the m lowest, E max = Σ_m R_(m)(F_m^k −
    F_{m−1}^k) (ties telescope), so ∇E max = k Σ_m R_(m)(F_m^{k−1} ∇F_m − F_{m−1}^{k−1} ∇F_{m−1}) with ∇F_m =
    Σ_{l ≤ m} q_(l) σ_(l).
    """
    q = torch.exp(log_q)
    R, order = torch.sort(rewards.to(q.dtype), dim=1)
    qs = q.gather(1, order)
    ss = score.gather(1, order[..., None].expand_as(score))
    F = torch.cumsum(qs, 1)
    dF = torch.cumsum(qs[..., None] * ss, 1)
    F0 = torch.cat([torch.zeros_like(F[:, :1]), F[:, :-1]], 1)
    dF0 = torch.cat([torch.zeros_like(dF[:, :1]), dF[:, :-1]], 1)
    term = F[..., None] ** (k - 1) * dF - F0[..., None] ** (k - 1) * dF0
    return k * torch.einsum("xm,xmd->d", R, term) / q.shape[0]


def two_point_gain(
    estimator: str | Callable, n: int, p: torch.Tensor, values=(0.0, 1.0), **estimator_kw
) -> torch.Tensor:
    """c(p, n) = E[A_1 | r_1 = hi] − E[A_1 | r_1 = lo] for rewards in {lo, hi} with P(hi) = p (module doc):
    E[ĝ | x] = c(p_x, n)·∇p_x. Sums the binomial law of the others' successes; runs the estimator on the
    2n reward patterns. ``p`` may be a tensor of success probabilities."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError("n", f"must be an integer >= 1, got {n!r}")
    lo, hi = float(values[0]), float(values[1])
    p = torch.as_tensor(p, dtype=torch.float64)
    f = _advantage_fn(estimator, estimator_kw)
    m = torch.arange(n)                                                        # successes among the others
    pats = torch.full((2, n, n), lo, dtype=torch.float64)
    pats[1, :, 0] = hi
    pats[:, :, 1:] = torch.where(torch.arange(1, n)[None, :] <= m[:, None], hi, lo)
    A1 = f(pats.reshape(2 * n, n))[:, 0].reshape(2, n)                        # [own, m]
    logc = torch.tensor([math.lgamma(n) - math.lgamma(j + 1) - math.lgamma(n - j) for j in range(n)],
                        dtype=torch.float64)
    w = torch.exp(logc) * p[..., None] ** m * (1 - p[..., None]) ** (n - 1 - m)     # [..., n]
    return (w * (A1[1] - A1[0])).sum(-1)
