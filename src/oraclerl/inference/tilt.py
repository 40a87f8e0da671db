"""The exact KL-constrained optimum: exponential tilting of a finite reference law.

Yang et al. (2024) §1.1 and ``docs/papers/bon_vs_kl_rl.md`` §1.2: the problem

    maximise_φ E_φ r   subject to   KL(φ ‖ p) ≤ Δ

is solved by the tilt φ_λ(y) = p(y)·e^{λ r(y)} / e^{Λ(λ)}, with the log-MGF Λ(λ) = log Σ_y p(y) e^{λ r(y)}
and λ = λ_Δ ≥ 0 the unique root of KL(φ_λ ‖ p) = λΛ'(λ) − Λ(λ) = Δ. The penalised form
max_φ E_φ r − β·KL(φ‖p) has the same family with λ = 1/β. When Δ ≥ Δ_max = −log p(argmax r) the
constraint saturates: the minimum-KL optimiser is p(· | argmax r) (λ = ∞), with KL = Δ_max.

API (all batched over leading dims; p, r: [..., Y]; float64 throughout):

* :func:`tilt` ``(p, r, kl=Δ)`` or ``(p, r, beta=β)`` (or ``log_p=`` instead of ``p``) -> :class:`TiltResult`
  with ``log_probs``, ``probs``, ``lam`` (``inf`` when saturated), ``kl`` (achieved), ``reward`` (E_φ r).
* :func:`kl_reward_frontier` ``(p, r, num=)`` -> :class:`Frontier` (kl, reward, lam): the optimal curve R⋆(Δ).
* :func:`tilt_to_mean` (θ with Λ'(θ) = x; used by the rate function) and :func:`monotone_root` (vectorised
  safeguarded Newton). Λ(s) itself is :func:`oraclerl.diagnostics.large_deviations.log_mgf`.
* :func:`reference_inputs` validates (p | log_p, r) and is shared by :mod:`oraclerl.inference.best_of_n`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..common.validation import check_log_probabilities, check_probabilities
from ..errors import ConfigError

_BRACKET_DOUBLINGS = 80


def reference_inputs(p=None, r=None, *, log_p=None, p_name: str = "p", r_name: str = "r"):
    """Validate a reference law (``p`` or ``log_p``, [..., Y]) and rewards ``r`` [..., Y]; return float64
    (log_p, r) broadcast to a common shape. Zero-mass outcomes get log_p = −inf."""
    if (p is None) == (log_p is None):
        raise ConfigError(
            p_name, f"pass exactly one of {p_name}= (probabilities) or log_{p_name}= (log-probabilities)"
        )
    if p is not None:
        p = check_probabilities(p_name, torch.as_tensor(p, dtype=torch.float64))
        log_p = torch.log(p / p.sum(-1, keepdim=True))
    else:
        log_p = check_log_probabilities(f"log_{p_name}", torch.as_tensor(log_p, dtype=torch.float64))
        log_p = log_p - torch.logsumexp(log_p, -1, keepdim=True)
    if r is None:
        raise ConfigError(r_name, "rewards are required")
    r = torch.as_tensor(r, dtype=torch.float64)
    if r.dim() == 0 or r.numel() == 0:
        raise ConfigError(r_name, "must be a non-empty tensor [..., Y]")
    if torch.isnan(r).any() or torch.isinf(r).any():
        raise ConfigError(r_name, "rewards must be finite (found NaN or inf)")
    if r.shape[-1] != log_p.shape[-1]:
        raise ConfigError(r_name, f"last dim must match {p_name} ({log_p.shape[-1]}), got {tuple(r.shape)}")
    try:
        shape = torch.broadcast_shapes(log_p.shape, r.shape)
    except RuntimeError:
        raise ConfigError(
            r_name, f"shape {tuple(r.shape)} does not broadcast with {p_name} {tuple(log_p.shape)}"
        ) from None
    return log_p.expand(shape), r.expand(shape)


def _tilted(log_p, r, lam):
    """log φ_λ, Λ(λ), E_φλ r for finite λ (r is pre-shifted so that max r = 0 on the support)."""
    z = log_p + lam[..., None] * r
    big = torch.logsumexp(z, -1)
    log_phi = z - big[..., None]
    phi = torch.exp(log_phi)
    mean = torch.where(phi > 0, phi * r, torch.zeros_like(r)).sum(-1)
    return log_phi, big, mean


def monotone_root(fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], target: torch.Tensor,
                  lo: torch.Tensor, hi: torch.Tensor, max_iter: int = 200) -> torch.Tensor:
    """Vectorised root of an increasing ``fn`` (``fn(x) -> (value, derivative)``; value(x) = target).

    The bracket [lo, hi] is widened by doubling until value(hi) ≥ target (at most 80 times), then a
    safeguarded Newton iteration runs: a Newton step that leaves the current bracket is replaced by
    bisection, and the bracket shrinks every step, so it converges whenever bisection would, and
    quadratically near the root. Stops when every bracket is at float64 resolution, the residual is
    below 4 ulp of the target, or no iterate moves by more than 2 ulp.
    """
    lo, hi = lo.clone(), hi.clone()
    for _ in range(_BRACKET_DOUBLINGS):
        short = fn(hi)[0] < target
        if not short.any():
            break
        width = hi - lo
        lo = torch.where(short, hi, lo)
        hi = torch.where(short, hi + 2 * width, hi)
    x = 0.5 * (lo + hi)
    tol = 4 * torch.finfo(torch.float64).eps * target.abs().clamp_min(1e-300)
    for _ in range(max_iter):
        val, grad = fn(x)
        below = val < target
        lo = torch.where(below, x, lo)
        hi = torch.where(below, hi, x)
        done = ((val - target).abs() <= tol) | (
            hi - lo <= 4 * torch.finfo(torch.float64).eps * hi.abs().clamp_min(1e-300)
        )
        if done.all():
            break
        step = x - (val - target) / grad
        ok = torch.isfinite(step) & (step > lo) & (step < hi)
        new = torch.where(done, x, torch.where(ok, step, 0.5 * (lo + hi)))
        if bool(((new - x).abs() <= 2 * torch.finfo(torch.float64).eps * x.abs()).all()):
            break  # Newton has stalled at float64 resolution everywhere
        x = new
    return x


@dataclass
class LogLaw:
    """A law over Y outcomes held by its log-probabilities (exact in the tails); ``probs`` exponentiates
    them."""

    log_probs: torch.Tensor
    """log π [..., Y] (−inf off the support)."""

    @property
    def probs(self) -> torch.Tensor:
        return torch.exp(self.log_probs)


@dataclass
class TiltResult(LogLaw):
    """The tilted law φ_λ ∝ p·e^{λr} (``log_probs``) and its KL / reward (Yang et al. §1.1;
    docs/papers/bon_vs_kl_rl.md §1.2)."""

    lam: torch.Tensor
    """λ ≥ 0 (= 1/β), ``inf`` where the constraint saturates (φ = p(·|argmax r))."""
    kl: torch.Tensor
    """Achieved KL(φ ‖ p) [...]."""
    reward: torch.Tensor
    """E_φ r [...]."""
    log_mgf_shifted: torch.Tensor
    """Λ(λ) − λ·r_max [...] (finite also at λ = ∞, where it equals log p(argmax r))."""


def tilt(p=None, r=None, *, kl=None, beta=None, log_p=None) -> TiltResult:
    """Exact optimum of max E_φ r s.t. KL(φ‖p) ≤ Δ (``kl=Δ``) or of E_φ r − β·KL(φ‖p) (``beta=β``).

    Yang et al. 2024 Eq. (KL-RL); λ_Δ solves λΛ'(λ) − Λ(λ) = Δ (monotone in λ, found by bisection);
    Δ ≥ Δ_max = −log p(argmax r) returns the saturated optimiser p(·|argmax r) with λ = ∞.
    ``kl``/``beta`` may be tensors broadcast against the batch shape of p.
    """
    if (kl is None) == (beta is None):
        raise ConfigError("kl", "pass exactly one of kl=Δ (constraint) or beta=β (penalty)")
    log_p, r = reference_inputs(p, r, log_p=log_p)
    name, val = ("kl", kl) if kl is not None else ("beta", beta)
    val = torch.as_tensor(val, dtype=torch.float64)
    if torch.isnan(val).any() or (val < 0).any() or (name == "beta" and (val <= 0).any()):
        raise ConfigError(name, f"must be {'>= 0' if name == 'kl' else '> 0'}, got {val.tolist()}")
    try:
        batch = torch.broadcast_shapes(log_p.shape[:-1], val.shape)
    except RuntimeError:
        raise ConfigError(
            name, f"shape {tuple(val.shape)} does not broadcast with the batch {tuple(log_p.shape[:-1])}"
        ) from None
    log_p, r = log_p.expand(batch + log_p.shape[-1:]), r.expand(batch + r.shape[-1:])
    val = val.expand(batch)
    support = log_p > -math.inf
    r_top = torch.where(support, r, torch.full_like(r, -math.inf)).amax(-1, keepdim=True)
    r_low = torch.where(support, r, torch.full_like(r, math.inf)).amin(-1, keepdim=True)
    scale = (r_top - r_low).clamp_min(1e-300)
    rs = torch.where(support, (r - r_top) / scale, torch.zeros_like(r))  # in [-1, 0] on the support
    is_top = support & (r == r_top)
    log_top = torch.logsumexp(torch.where(is_top, log_p, torch.full_like(log_p, -math.inf)), -1)
    kl_max = (-log_top).clamp_min(0.0)  # Δ_max
    kl_max = torch.where(kl_max <= 1e-13, torch.zeros_like(kl_max), kl_max)  # rounding when r is constant
    if beta is not None:
        lam_s = scale[..., 0] / val
        saturated = torch.isinf(lam_s) | (kl_max <= 0)
    else:
        saturated = val >= kl_max - 1e-14 * kl_max.clamp_min(1.0)
        target = torch.where(saturated, torch.zeros_like(val), val)

        def kl_of(lam):  # Δ(λ) = λΛ'(λ) − Λ(λ), Δ'(λ) = λ·Var_φλ(r)
            log_phi, big, mean = _tilted(log_p, rs, lam)
            var = (torch.exp(log_phi) * (rs - mean[..., None]) ** 2).sum(-1)
            return lam * mean - big, lam * var

        lam_s = monotone_root(kl_of, target, torch.zeros_like(target), torch.ones_like(target))
        lam_s = torch.where(target <= 0, torch.zeros_like(lam_s), lam_s)
    finite = torch.where(saturated, torch.zeros_like(lam_s), lam_s)
    log_phi, big, mean_s = _tilted(log_p, rs, finite)
    kl_fin = finite * mean_s - big
    log_sat = torch.where(is_top, log_p - log_top[..., None], torch.full_like(log_p, -math.inf))
    log_phi = torch.where(saturated[..., None], log_sat, log_phi)
    phi = torch.exp(log_phi)
    reward = torch.where(phi > 0, phi * r, torch.zeros_like(r)).sum(-1)
    # a constant reward (Δ_max = 0) leaves p unchanged for every λ: report λ = 0 there
    lam = torch.where(saturated & (kl_max > 0), torch.full_like(finite, math.inf), finite / scale[..., 0])
    log_shifted = torch.where(saturated, log_top, big)
    return TiltResult(
        log_phi, lam, torch.where(saturated, kl_max, kl_fin.clamp_min(0.0)), reward, log_shifted
    )


@dataclass
class Frontier:
    """The optimal KL–reward curve R⋆(Δ) = Λ'(λ_Δ) (concave, slope 1/λ_Δ; docs/papers/bon_vs_kl_rl.md
    §1.2)."""

    kl: torch.Tensor
    reward: torch.Tensor
    lam: torch.Tensor


def kl_reward_frontier(p=None, r=None, *, num: int = 101, kl=None, log_p=None) -> Frontier:
    """R⋆(Δ) for Δ on a grid (``num`` points on [0, Δ_max], or the given ``kl`` values): [num] per curve."""
    log_p, r = reference_inputs(p, r, log_p=log_p)
    if log_p.dim() != 1:
        raise ConfigError(
            "p", f"kl_reward_frontier takes one reference law [Y], got shape {tuple(log_p.shape)}"
        )
    if kl is None:
        if isinstance(num, bool) or not isinstance(num, int) or num < 2:
            raise ConfigError("num", f"must be an integer >= 2, got {num!r}")
        top = r[log_p > -math.inf].max()
        kl_max = float(-torch.logsumexp(log_p[(r == top) & (log_p > -math.inf)], 0))
        kl = torch.linspace(0.0, kl_max, num, dtype=torch.float64)
    kl = torch.as_tensor(kl, dtype=torch.float64)
    res = tilt(log_p=log_p.expand(kl.shape + log_p.shape), r=r.expand(kl.shape + r.shape), kl=kl)
    return Frontier(res.kl, res.reward, res.lam)


def tilt_to_mean(log_p: torch.Tensor, r: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """θ with Λ'(θ) = E_{φ_θ} r = x, for r_min < x < r_max ([..., Y] inputs, x [...]); θ ∈ ℝ.

    (The I-projection of p onto {q : E_q r = x}, Csiszár; used by the rate function.)"""
    x = torch.as_tensor(x, dtype=torch.float64)
    top = r.amax(-1)
    low = r.amin(-1)
    scale = (top - low).clamp_min(1e-300)
    rs = (r - top[..., None]) / scale[..., None]
    xs = (x - top) / scale

    def mean_of(theta):  # Λ'(θ) and Λ''(θ) = Var_φθ(r)
        log_phi, _, mean = _tilted(log_p, rs, theta)
        return mean, (torch.exp(log_phi) * (rs - mean[..., None]) ** 2).sum(-1)

    def neg(t):
        v, g = mean_of(-t)
        return -v, g

    # Λ' is increasing; search θ ≥ 0 and θ ≤ 0 separately (doubling brackets in each direction).
    mean0 = mean_of(torch.zeros_like(xs))[0]
    up = monotone_root(mean_of, xs, torch.zeros_like(xs), torch.ones_like(xs))
    down = -monotone_root(neg, -xs, torch.zeros_like(xs), torch.ones_like(xs))
    return torch.where(xs >= mean0, up, down) / scale
