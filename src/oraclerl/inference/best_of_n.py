"""Best-of-n, exactly: law with uniform tie-breaking, KL, the Beirami et al. estimator, win rate, sampling.

Beirami et al. (2024/2025) and docs/papers/bon_vs_kl_rl.md §2, §4. Best-of-n draws y₁..y_n ~ p i.i.d. and
returns the one with the highest reward (ties broken uniformly). With F(v) = P_p(r ≤ v) and F⁻(v) = P_p(r <
v), the reward level v gets mass F(v)^n − F⁻(v)^n and each outcome of the level its p-proportional share
(BOND, Sessa et al. 2024, Thm 1): π⁽ⁿ⁾(y) = p(y)·(F^n − F⁻^n)/(F − F⁻). Quantile representation: y = F⁻¹(V)
with V = U^{1/n} ~ Beta(n, 1).

Everything is computed in log space from the survival S(v) = P(r > v) at the top and the CDF at the bottom
(log F^n = n·log1p(−S) without forming F^n), so n may be as large as e^{10^300} (pass ``log_n``).

API (p, r: [..., Y] (or ``log_p=``); n: number or tensor broadcast against the batch shape [...]):

* :func:`best_of_n_law` -> :class:`SelectionLaw` (``log_probs`` [..., Y], ``kl``, ``win_rate``,
  ``expected_reward``, ``expected_estimate`` = E_{π⁽ⁿ⁾} D̂_n(p(y))), and shortcuts :func:`best_of_n_kl`,
  :func:`best_of_n_win_rate`, :func:`best_of_n_expected_reward`.
* :func:`best_of_n_kl_formula` log n − (n−1)/n (Thm 3.1: an upper bound on the exact KL).
* :func:`best_of_n_kl_estimate` D̂_n(ε) (Beirami et al. §4), from ε or ``log_eps``.
* :func:`sample_best_of_n` exact draws of outcome indices without drawing n candidates.
* :func:`best_of_poisson_law` (n' = 1 + Poisson(μ); Khalaf et al. 2025) and :func:`rewind_and_repeat_law`
  (p(·| r ≥ τ); Beirami et al. §6, our reading) on the same footing, with :func:`rewind_and_repeat_summary`
  for many thresholds in linear memory (KL, win rate, reward only), and :func:`calibrated_reward`
  c(y) = F⁻ + ½P(r = r(y)) (E_π c is the win rate of π against p).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .tilt import LogLaw, reference_inputs

_NEG_INF = -math.inf
_LOG_HALF = math.log(0.5)


def as_log_n(n=None, log_n=None, name: str = "n") -> torch.Tensor:
    """Validate n ≥ 1 (number or tensor) or log n ≥ 0 and return log n as float64."""
    if (n is None) == (log_n is None):
        raise ConfigError(name, f"pass exactly one of {name}= or log_{name}=")
    if n is not None:
        if isinstance(n, int) and not isinstance(n, bool):
            if n < 1:
                raise ConfigError(name, f"must be >= 1, got {n}")
            return torch.tensor(math.log(n), dtype=torch.float64)
        t = torch.as_tensor(n, dtype=torch.float64)
        if torch.isnan(t).any() or (t < 1).any() or torch.isinf(t).any():
            raise ConfigError(
                name, f"must be finite and >= 1 (use log_{name}= beyond 1e308), got {t.tolist()}"
            )
        return torch.log(t)
    t = torch.as_tensor(log_n, dtype=torch.float64)
    if torch.isnan(t).any() or (t < 0).any() or torch.isinf(t).any():
        raise ConfigError(f"log_{name}", f"must be finite and >= 0, got {t.tolist()}")
    return t


def _log_neg_log1m(log_x: torch.Tensor) -> torch.Tensor:
    """log(−log(1 − x)) from log x, accurate for x → 0 (≈ log x + x/2) and x → 1."""
    x = torch.exp(log_x)
    small = log_x < -20
    return torch.where(small, log_x + 0.5 * x, torch.log(-torch.log1p(-x.clamp(max=1.0))))


def _log1m_exp_neg(log_w: torch.Tensor) -> torch.Tensor:
    """log(1 − e^{−w}) from log w, accurate for w → 0 (≈ log w − w/2)."""
    w = torch.exp(log_w)
    return torch.where(log_w < -20, log_w - 0.5 * w, torch.log(-torch.expm1(-w)))


@dataclass
class Levels:
    """Reward-sorted view of (p, r) with per-outcome level statistics (all log space, [..., Y])."""

    order: torch.Tensor
    """Sorting permutation (ascending reward)."""
    log_p: torch.Tensor
    r: torch.Tensor
    log_F: torch.Tensor
    """log F(v) = log P(r ≤ v) at the outcome's level, accurate at both tails."""
    log_Fm: torch.Tensor
    """log F⁻(v) = log P(r < v)."""
    log_S: torch.Tensor
    """log S(v) = log P(r > v)."""
    log_Sm: torch.Tensor
    """log P(r ≥ v)."""
    log_level: torch.Tensor
    """log P(r = v) (exact segment log-sum-exp)."""
    log_tail: torch.Tensor
    """Outcome-granular log Σ_{j ≥ i} p_j in sorted order, with a trailing −inf ([..., Y+1])."""
    first: torch.Tensor
    last: torch.Tensor


def levels(log_p: torch.Tensor, r: torch.Tensor, presorted: bool = False) -> Levels:
    """Sort by reward and compute F, F⁻, S, P(level) per outcome, vectorised (no loop over outcomes).

    ``presorted=True`` promises r ascending along the last dim (skips the sort; ties still handled)."""
    Y = r.shape[-1]
    if presorted:
        r_sorted, lp = r, log_p
        order = torch.arange(Y, device=r.device).expand(r.shape)
    else:
        r_sorted, order = torch.sort(r, dim=-1, stable=True)
        lp = log_p.gather(-1, order)
    pad = torch.full(lp.shape[:-1] + (1,), _NEG_INF, dtype=lp.dtype, device=lp.device)
    tail = torch.cat([torch.logcumsumexp(lp.flip(-1), -1).flip(-1), pad], -1)  # log Σ_{j≥i}
    head = torch.cat([pad, torch.logcumsumexp(lp, -1)], -1)  # log Σ_{j<i}
    new = torch.ones_like(r_sorted, dtype=torch.bool)
    new[..., 1:] = r_sorted[..., 1:] != r_sorted[..., :-1]
    if bool(new.all()):  # distinct rewards: every outcome is its own level (fast path)
        first = last = torch.arange(Y, device=r.device).expand(r.shape)
        log_S, log_Sm = tail[..., 1:], tail[..., :-1]
        head_last, head_first = head[..., 1:], head[..., :-1]
        log_level = lp
    else:
        idx = torch.arange(Y, device=r.device).expand(r.shape)
        is_last = torch.ones_like(new)
        is_last[..., :-1] = new[..., 1:]
        first = torch.cummax(torch.where(new, idx, 0), -1).values
        last = torch.cummin(torch.where(is_last, idx, Y).flip(-1), -1).values.flip(-1)
        log_S, log_Sm = tail.gather(-1, last + 1), tail.gather(-1, first)
        head_last, head_first = head.gather(-1, last + 1), head.gather(-1, first)
        level_id = torch.cumsum(new.to(torch.long), -1) - 1
        mx = torch.full_like(lp, _NEG_INF).scatter_reduce(-1, level_id, lp, "amax", include_self=True)
        mxg = mx.gather(-1, level_id)
        sh = torch.where(mxg > _NEG_INF, lp - mxg, _NEG_INF)
        tot = torch.zeros_like(lp).scatter_add(-1, level_id, torch.exp(sh))
        log_level = (mx + torch.log(tot)).gather(-1, level_id)
    log_F = torch.where(log_S < _LOG_HALF, torch.log1p(-torch.exp(log_S)), head_last)
    log_Fm = torch.where(log_Sm < _LOG_HALF, torch.log1p(-torch.exp(log_Sm)), head_first)
    return Levels(order, lp, r_sorted, log_F, log_Fm, log_S, log_Sm, log_level, tail, first, last)


@dataclass
class SelectionLaw(LogLaw):
    """Law of a quantile-selection policy π(y) = p(y)·(G(F) − G(F⁻))/(F − F⁻) (``log_probs``, in the caller's
    outcome order) and its summaries."""

    kl: torch.Tensor
    """KL(π ‖ p) [...]."""
    win_rate: torch.Tensor
    """P(r(y) > r(z)) + ½P(r(y) = r(z)), y ~ π, z ~ p [...]."""
    expected_reward: torch.Tensor
    """E_π r [...]."""
    log_p: torch.Tensor
    """log p [..., Y] (caller's order, broadcast to the batch shape)."""


def _unsort(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    if order.dim() == 1 and order.numel() and bool((order[1:] > order[:-1]).all()) and order[0] == 0:
        return x
    order = order.expand(x.shape)
    return torch.empty_like(x).scatter_(-1, order, x)


def selection_law(lv: Levels, log_G: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> SelectionLaw:
    """Law of y = F⁻¹(V) for a selecting quantile V with CDF G on [0, 1], given ``log_G(log F, log S)``.

    Level mass G(F) − G(F⁻) = e^{log G(F)}·(−expm1(log G(F⁻) − log G(F))); shared by best-of-n
    (G(u) = uⁿ) and Best-of-Poisson (G(u) = u·e^{−μ(1−u)}).
    """
    a = log_G(lv.log_F, lv.log_S)
    b = log_G(lv.log_Fm, lv.log_Sm)
    log_mass = a + torch.log(-torch.expm1(b - a))
    log_mass = torch.where(a == _NEG_INF, torch.full_like(a, _NEG_INF), log_mass)
    log_ratio = log_mass - lv.log_level  # log π/p, constant on a level
    lp = lv.log_p.expand(log_ratio.shape)
    log_pi = torch.where(lp == _NEG_INF, torch.full_like(lp, _NEG_INF), lp + log_ratio)
    pi = torch.exp(log_pi)
    pos = pi > 0
    kl = torch.where(pos, pi * log_ratio, torch.zeros_like(pi)).sum(-1)
    win = (pi * (torch.exp(lv.log_Fm) + 0.5 * torch.exp(lv.log_level))).sum(-1)
    reward = (pi * lv.r).sum(-1)
    return SelectionLaw(_unsort(log_pi, lv.order), kl.clamp_min(0.0), win, reward, _unsort(lp, lv.order))


def bon_log_G(log_n: torch.Tensor):
    ln = log_n[..., None]

    def log_G(log_F, log_S):
        # n·log F = −exp(log n + log(−log F)); at the top tail −log F = −log1p(−S) is taken from log S
        # directly (S may be far below 1e-308 while n·S is not small), at the bottom from log F.
        top = log_S < _LOG_HALF
        lnl = torch.where(top, _log_neg_log1m(torch.where(top, log_S, _LOG_HALF)), torch.log(-log_F))
        return -torch.exp(ln + lnl)

    return log_G


def best_of_n_law(p=None, r=None, n=None, *, log_n=None, log_p=None) -> SelectionLaw:
    """Exact best-of-n law with uniform tie-breaking (BOND Thm 1; Beirami et al. §2) and its KL, win rate,
    expected reward. O(Y log Y) time, ~10 float64 arrays of size Y of memory."""
    ln = as_log_n(n, log_n)
    log_p, r = reference_inputs(p, r, log_p=log_p)
    return selection_law(levels(log_p, r), bon_log_G(ln))


def best_of_n_kl(p=None, r=None, n=None, *, log_n=None, log_p=None) -> torch.Tensor:
    """Exact KL(π⁽ⁿ⁾ ‖ p) (ties handled)."""
    return best_of_n_law(p, r, n, log_n=log_n, log_p=log_p).kl


def best_of_n_win_rate(p=None, r=None, n=None, *, log_n=None, log_p=None) -> torch.Tensor:
    """Exact win rate of best-of-n against p (ties count ½); ≤ n/(n+1) (Beirami et al. Thm 5.3)."""
    return best_of_n_law(p, r, n, log_n=log_n, log_p=log_p).win_rate


def best_of_n_expected_reward(p=None, r=None, n=None, *, log_n=None, log_p=None) -> torch.Tensor:
    """Exact E_{π⁽ⁿ⁾} r."""
    return best_of_n_law(p, r, n, log_n=log_n, log_p=log_p).expected_reward


def best_of_n_kl_formula(n=None, *, log_n=None) -> torch.Tensor:
    """The classical log n − (n−1)/n = log n + expm1(−log n) (Stiennon et al. 2020); an upper bound on the
    exact KL for every p, r (Beirami et al. Thm 3.1), equality iff r#p has no atoms (or n = 1)."""
    ln = as_log_n(n, log_n)
    return ln + torch.expm1(-ln)


def best_of_n_kl_estimate(eps=None, n=None, *, log_eps=None, log_n=None) -> torch.Tensor:
    """Beirami et al. (2025) §4 estimator, elementwise in ε ∈ (0, 1]:

    D̂_n(ε) = (1−ε)ⁿ[log n + (n−1)log(1−ε) − (n−1)/n] + (1 − (1−ε)ⁿ)·log((1 − (1−ε)ⁿ)/ε),

    the exact BoN KL of a reference made of a continuum of mass 1−ε plus one top atom of mass ε.
    Use ε = π_ref(y|x) of the *selected* response and average over selections (Conjecture 4.4: an
    upper bound in expectation). ``log_eps`` accepts sequence log-probabilities far below 1e-308.
    """
    ln = as_log_n(n, log_n)
    if (eps is None) == (log_eps is None):
        raise ConfigError("eps", "pass exactly one of eps= or log_eps=")
    if eps is not None:
        e = torch.as_tensor(eps, dtype=torch.float64)
        if torch.isnan(e).any() or (e <= 0).any() or (e > 1).any():
            raise ConfigError("eps", "must be in (0, 1] (the reference probability of the selected response)")
        le = torch.log(e)
    else:
        le = torch.as_tensor(log_eps, dtype=torch.float64)
        if torch.isnan(le).any() or (le > 1e-12).any() or (le == _NEG_INF).any():
            raise ConfigError("log_eps", "must be in (-inf, 0] (log-probability of the selected response)")
        le = le.clamp(max=0.0)
    log1m = torch.where(le < -20, -torch.exp(le), torch.log1p(-torch.exp(le)))  # log(1−ε)
    a = -torch.exp(ln + _log_neg_log1m(le))  # n·log(1−ε) = log (1−ε)ⁿ
    a = torch.where(le == 0, torch.full_like(a, _NEG_INF), a)
    w = torch.exp(a)
    frac = -torch.expm1(-ln)  # (n−1)/n
    inner = ln + torch.where(w > 0, a - log1m, torch.zeros_like(a)) - frac
    q = -torch.expm1(a)  # 1 − (1−ε)ⁿ
    term2 = torch.special.xlogy(q, q) - q * le
    return (torch.where(w > 0, w * inner, torch.zeros_like(w)) + term2).clamp_min(0.0)


def best_of_n_expected_estimate(p=None, r=None, n=None, *, log_n=None, log_p=None) -> torch.Tensor:
    """E_{y~π⁽ⁿ⁾}[D̂_n(p(y))], exactly (what the averaged estimator converges to)."""
    ln = as_log_n(n, log_n)
    law = best_of_n_law(p, r, log_n=ln, log_p=log_p)
    d = best_of_n_kl_estimate(log_eps=law.log_p.clamp_min(-1e300), log_n=ln[..., None])
    return torch.where(law.log_probs > _NEG_INF, law.probs * d, torch.zeros_like(d)).sum(-1)


def best_of_poisson_law(p=None, r=None, mu=None, *, log_p=None) -> SelectionLaw:
    """Best-of-Poisson (Khalaf et al. 2025): best-of-n' with n' = 1 + Poisson(μ).

    G(u) = E[u^{1+K}] = u·e^{−μ(1−u)}, so the level mass is F e^{−μS} − F⁻ e^{−μS⁻}."""
    mu_t = torch.as_tensor(mu, dtype=torch.float64) if mu is not None else None
    if mu_t is None or torch.isnan(mu_t).any() or (mu_t < 0).any() or torch.isinf(mu_t).any():
        raise ConfigError("mu", f"must be finite and >= 0, got {mu!r}")
    log_p, r = reference_inputs(p, r, log_p=log_p)
    m = mu_t[..., None]
    return selection_law(levels(log_p, r), lambda log_F, log_S: log_F - m * torch.exp(log_S))


_LAW_BYTES_MAX = 2 << 30
"""Largest memory (bytes, ≈ 8 float64 arrays of the law's [..., Y] shape) :func:`rewind_and_repeat_law`
allocates."""


@dataclass
class SelectionSummary:
    """KL, win rate and expected reward of a family of selection laws, without their [..., Y]
    probabilities."""

    kl: torch.Tensor
    """KL(π ‖ p) [...]."""
    win_rate: torch.Tensor
    """P(r(y) > r(z)) + ½P(r(y) = r(z)), y ~ π, z ~ p [...]."""
    expected_reward: torch.Tensor
    """E_π r [...]."""


def _thresholds(threshold) -> torch.Tensor:
    tau = torch.as_tensor(threshold, dtype=torch.float64)
    if torch.isnan(tau).any():
        raise ConfigError("threshold", "must not be NaN")
    return tau


def _log_suffix(log_w: torch.Tensor) -> torch.Tensor:
    """log Σ_{j ≥ i} w_j along the last dim, with a trailing −inf ([..., Y+1])."""
    pad = torch.full(log_w.shape[:-1] + (1,), _NEG_INF, dtype=log_w.dtype, device=log_w.device)
    return torch.cat([torch.logcumsumexp(log_w.flip(-1), -1).flip(-1), pad], -1)


def rewind_and_repeat_summary(p=None, r=None, threshold=None, *, log_p=None) -> SelectionSummary:
    """KL, win rate and expected reward of :func:`rewind_and_repeat_law` for thresholds τ [...], in memory
    linear in Y + |τ| (issue 12 item 8; the law itself is |τ|·Y).

    With the outcomes sorted by reward and i₀(τ) the first with r ≥ τ, P(r ≥ τ) is a suffix sum of p, and
    E_π c (c = F⁻ + ½P(level), the calibrated reward: E_π c is the win rate) and E_π r are suffix sums of p·c
    and p·r over it, all in log space (r split into its positive and negative parts): O((Y + |τ|) log Y).
    """
    log_p, r = reference_inputs(p, r, log_p=log_p)
    tau = _thresholds(threshold)
    lv = levels(log_p, r)
    log_c = torch.logaddexp(lv.log_Fm, lv.log_level + _LOG_HALF)
    rs = lv.r
    with torch.no_grad():
        pos = torch.where(rs > 0, torch.log(rs.clamp_min(0)), _NEG_INF)
        neg = torch.where(rs < 0, torch.log((-rs).clamp_min(0)), _NEG_INF)
    tails = [
        lv.log_tail,
        _log_suffix(lv.log_p + log_c),
        _log_suffix(lv.log_p + pos),
        _log_suffix(lv.log_p + neg),
    ]
    if rs.dim() == 1:
        i0 = torch.searchsorted(rs, tau.reshape(-1), right=False).reshape(tau.shape)
        mass, win, rp, rn = (t[i0] for t in tails)
    else:
        shape = torch.broadcast_shapes(rs.shape[:-1], tau.shape)
        i0 = torch.searchsorted(
            rs.expand(shape + rs.shape[-1:]).contiguous(),
            tau.expand(shape)[..., None].contiguous(),
            right=False,
        )
        mass, win, rp, rn = (t.expand(shape + t.shape[-1:]).gather(-1, i0)[..., 0] for t in tails)
    if bool((mass == _NEG_INF).any()):
        raise ConfigError("threshold", "must be <= the largest reward with positive mass")
    return SelectionSummary(-mass, torch.exp(win - mass), torch.exp(rp - mass) - torch.exp(rn - mass))


def rewind_and_repeat_law(p=None, r=None, threshold=None, *, log_p=None) -> SelectionLaw:
    """Rewind-and-repeat (Beirami et al. §6, our reading of an unverified definition): resample y ~ p until
    r(y) ≥ τ, i.e. π = p(·| r ≥ τ); KL = −log P(r ≥ τ). ``threshold`` τ [...] must be ≤ max r.

    The law is [..., Y] for the broadcast batch of p and τ; above ≈ 2 GiB of working memory this raises a
    ConfigError naming the estimate (use :func:`rewind_and_repeat_summary` for KL/win rate/reward only)."""
    log_p, r = reference_inputs(p, r, log_p=log_p)
    tau = _thresholds(threshold)
    shape = torch.broadcast_shapes(log_p.shape[:-1], tau.shape) + log_p.shape[-1:]
    need = 8 * 8 * math.prod(shape)
    if need > _LAW_BYTES_MAX:
        raise ConfigError(
            "threshold",
            f"{tuple(tau.shape)} thresholds × {log_p.shape[-1]} outcomes would need "
            f"≈ {need / 2**30:.1f} GiB (limit {_LAW_BYTES_MAX / 2**30:.0f} GiB); use "
            "rewind_and_repeat_summary (linear memory) for KL, win rate and reward",
        )
    keep = (r >= tau[..., None]) & (log_p > _NEG_INF)
    if not keep.any(-1).all():
        raise ConfigError("threshold", "must be <= the largest reward with positive mass")
    lp_keep = torch.where(keep, log_p, torch.full_like(log_p, _NEG_INF))
    log_mass = torch.logsumexp(lp_keep, -1)
    lv = levels(log_p, r)
    log_pi = lp_keep - log_mass[..., None]
    pi = torch.exp(log_pi)
    win = (
        pi.gather(-1, lv.order.expand(pi.shape)) * (torch.exp(lv.log_Fm) + 0.5 * torch.exp(lv.log_level))
    ).sum(-1)
    return SelectionLaw(log_pi, -log_mass, win, (pi * r).sum(-1), log_p)


def calibrated_reward(p=None, r=None, *, log_p=None) -> torch.Tensor:
    """c(y) = P_p(r < r(y)) + ½P_p(r = r(y)) [..., Y] (InfAlign / BoNBoN calibration; E_π c = win rate)."""
    log_p, r = reference_inputs(p, r, log_p=log_p)
    lv = levels(log_p, r)
    return _unsort(torch.exp(lv.log_Fm) + 0.5 * torch.exp(lv.log_level), lv.order)


def sample_best_of_n(
    p=None,
    r=None,
    n=None,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
    *,
    log_n=None,
    log_p=None,
) -> torch.Tensor:
    """Exact draws from π⁽ⁿ⁾ without drawing n candidates: outcome indices [..., num_samples].

    V = U^{1/n} ~ Beta(n, 1) picks the reward level through 1 − V = −expm1(log U / n) compared with the
    survival S (accurate for n up to e^{1e300}); a second uniform picks the outcome inside the level ∝ p
    (uniform tie-breaking). ``n``/``log_n`` may vary per sample ([..., num_samples]), e.g. n' = 1 +
    Poisson(μ).
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ConfigError("num_samples", f"must be an integer >= 1, got {num_samples!r}")
    ln = as_log_n(n, log_n)
    log_p, r = reference_inputs(p, r, log_p=log_p)
    lv = levels(log_p, r)
    batch = torch.broadcast_shapes(r.shape[:-1], ln.shape[:-1] if ln.dim() else ())
    shape = batch + (num_samples,)
    u1 = torch.rand(shape, generator=generator, dtype=torch.float64).clamp_min(1e-300)
    u2 = torch.rand(shape, generator=generator, dtype=torch.float64).clamp_min(1e-300)
    # −log V = −log(U)/n, so log(1 − V) = log(1 − e^{−w}) with log w = log(−log U) − log n
    log_s = _log1m_exp_neg(torch.log(-torch.log(u1)) - (ln.expand(shape) if ln.dim() else ln))
    Y = r.shape[-1]
    inc = lv.log_tail[..., :-1].expand(batch + (Y,)).flip(-1).contiguous()  # log T, increasing

    def locate(log_target):
        count = Y - torch.searchsorted(inc, log_target.contiguous(), side="left")
        return (count - 1).clamp(0, Y - 1)

    i = locate(log_s)
    first = lv.first.expand(batch + (Y,)).gather(-1, i)
    last = lv.last.expand(batch + (Y,)).gather(-1, i)
    log_gt = lv.log_S.expand(batch + (Y,)).gather(-1, i)
    log_lvl = lv.log_level.expand(batch + (Y,)).gather(-1, i)
    j = torch.minimum(torch.maximum(locate(torch.logaddexp(log_gt, torch.log(u2) + log_lvl)), first), last)
    return lv.order.expand(batch + (Y,)).gather(-1, j)
