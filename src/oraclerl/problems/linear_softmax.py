"""Generators of linear-softmax instances with known ground truth (Foster et al. 2025, §1–3, App. E)."""

from __future__ import annotations

import math

import torch

from ..common.validation import check_int, check_positive, check_range
from ..errors import ConfigError
from ..models.linear_softmax import LinearSoftmaxModel
from ..models.rewards import LinearReward
from ..oracles import RewardNoise
from .instance import LinearSoftmaxInstance


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-300)


def _log_cov_per_scale(log_ref: torch.Tensor, u: torch.Tensor, scale: float, beta: float) -> float:
    """log C_cov of π_{s·e} vs π_ref, where u = ⟨e, ϕ⟩: max_x [max_y s u/β − log Σ π_ref e^{s u/β}]."""
    z = scale * u / beta
    masked = torch.where(log_ref > -math.inf, z, torch.full_like(z, -math.inf))
    return float((masked.max(-1).values - torch.logsumexp(log_ref + z, -1)).max())


def linear_softmax(d: int = 8, num_prompts: int = 16, num_responses: int = 256, beta: float = 0.5,
                   target_coverage: float = 16.0, r_max: float | None = None, noise: float = 0.0,
                   seed: int = 0, ref_spread: float = 1.0, dtype: torch.dtype = torch.float64,
                   device: str | torch.device = "cpu") -> LinearSoftmaxInstance:
    """A realisable random linear-softmax instance whose exact C_cov(π⋆_β) hits ``target_coverage``.

    Construction: features ϕ(x, y) uniform on the sphere with radii in [½, 1] (‖ϕ‖ ≤ 1), π_ref(·|x) =
    softmax of N(0, ref_spread²) logits, θ⋆ = s·e with e uniform on the sphere. C_cov(π_{s e}) is
    non-decreasing in s (its derivative in s is E over the argmax minus the tilted mean of ⟨e, ϕ⟩), so s is
    found by bisection until log C_cov is within 1e-7 of log target. Rewards r⋆(x, y) = ⟨θ⋆, ϕ(x, y)⟩ + c(x),
    with c(x) = −min_y ⟨θ⋆, ϕ(x, y)⟩, lie in [0, R_max]; B = ‖θ⋆‖.

    Raises :class:`ConfigError` naming the field when the target coverage is not reachable (it is at
    most max_x 1/π_ref(argmax_y ⟨e, ϕ(x,y)⟩ | x)) or when ``r_max`` is smaller than the reward range the
    target needs.
    """
    d = check_int("d", d, low=1)
    num_prompts = check_int("num_prompts", num_prompts, low=1)
    num_responses = check_int("num_responses", num_responses, low=2)
    beta = check_positive("beta", beta)
    target_coverage = check_range("target_coverage", target_coverage, low=1.0)
    noise = check_range("noise", noise, low=0.0)
    ref_spread = check_range("ref_spread", ref_spread, low=0.0)
    if r_max is not None:
        check_positive("r_max", r_max)
    seed = check_int("seed", seed, low=0)
    gen = torch.Generator().manual_seed(seed)
    raw = torch.randn(num_prompts, num_responses, d, generator=gen, dtype=dtype)
    radii = 0.5 + 0.5 * torch.rand(num_prompts, num_responses, 1, generator=gen, dtype=dtype)
    phi = _unit_rows(raw) * radii
    log_ref = torch.log_softmax(
        ref_spread * torch.randn(num_prompts, num_responses, generator=gen, dtype=dtype), -1
    )
    e = _unit_rows(torch.randn(d, generator=gen, dtype=dtype))
    u = phi @ e

    target = math.log(target_coverage)
    top = (u == u.max(-1, keepdim=True).values)
    reachable = float(
        (-torch.logsumexp(torch.where(top, log_ref, torch.full_like(log_ref, -math.inf)), -1)).max()
    )
    if target > reachable - 1e-3:
        raise ConfigError(
            "target_coverage",
            f"must be < {math.exp(reachable):.4g} for this instance "
            f"(num_responses={num_responses}, ref_spread={ref_spread}, seed={seed}); got {target_coverage}",
        )
    lo, hi = 0.0, beta
    while _log_cov_per_scale(log_ref, u, hi, beta) < target:
        hi *= 2.0
        if hi > 1e8:
            raise ConfigError("target_coverage", f"not reachable for this instance; got {target_coverage}")
    scale = hi
    for _ in range(200):
        scale = 0.5 * (lo + hi)
        value = _log_cov_per_scale(log_ref, u, scale, beta)
        if abs(value - target) < 1e-7 or hi - lo < 1e-13 * max(1.0, hi):
            break
        if value < target:
            lo = scale
        else:
            hi = scale
    theta_star = scale * e
    score = phi @ theta_star
    offset = -score.min(-1).values
    reward_range = float((score + offset[:, None]).max())
    if r_max is None:
        r_max = reward_range
    elif reward_range > r_max + 1e-9:
        raise ConfigError(
            "r_max",
            f"must be >= {reward_range:.4g} to reach target_coverage={target_coverage} "
            f"at beta={beta}; got {r_max}",
        )
    base = LinearSoftmaxModel(log_ref.to(device), phi.to(device), beta, validate=False)
    reward = LinearReward(theta_star.to(device), phi.to(device), offset.to(device), r_max=r_max)
    noise_spec = RewardNoise("gaussian", noise) if noise > 0 else RewardNoise()
    return LinearSoftmaxInstance(
        base=base, reward=reward, theta_star=theta_star.to(device),
        prompt_weights=torch.full((num_prompts,), 1.0 / num_prompts, dtype=dtype, device=device),
        r_max=float(r_max), B=float(scale), noise=noise_spec, name="linear_softmax",
        meta={"target_coverage": target_coverage, "seed": seed},
    )


def coverage_lower_bound(num_responses: int = 64, d: int = 16, beta: float = 0.1, c_star: float = 16.0,
                         seed: int = 0, dtype: torch.dtype = torch.float64) -> LinearSoftmaxInstance:
    """The hard instance of Theorem 2.1 (Foster et al. App. E).

    One prompt; Y = {0} ∪ S with |S| = num_responses − 1; a hidden y⋆ ∈ S and θ⋆ uniform on the unit
    sphere; π_ref(0) = 1 − ε_ref, π_ref(y⋆) = ε_ref with ε_ref = max{1/C⋆, e^{−1/(2β)}}, zero mass on
    the rest of S; ϕ(y⋆) = θ⋆, ϕ(y) = 0 otherwise, so r⋆(y) = 1[y = y⋆]; Θ = B₂(1), R_max = B = 1.
    """
    num_responses = check_int("num_responses", num_responses, low=2)
    d = check_int("d", d, low=1)
    beta = check_positive("beta", beta)
    c_star = check_range("c_star", c_star, low=1.0)
    seed = check_int("seed", seed, low=0)
    gen = torch.Generator().manual_seed(seed)
    eps_ref = max(1.0 / c_star, math.exp(-1.0 / (2.0 * beta)))
    y_star = int(torch.randint(1, num_responses, (1,), generator=gen))
    theta_star = _unit_rows(torch.randn(d, generator=gen, dtype=dtype))
    log_ref = torch.full((1, num_responses), -math.inf, dtype=dtype)
    log_ref[0, 0] = math.log1p(-eps_ref)
    log_ref[0, y_star] = math.log(eps_ref)
    phi = torch.zeros(1, num_responses, d, dtype=dtype)
    phi[0, y_star] = theta_star
    base = LinearSoftmaxModel(log_ref, phi, beta)
    reward = LinearReward(theta_star, phi, r_max=1.0)
    return LinearSoftmaxInstance(
        base=base, reward=reward, theta_star=theta_star, prompt_weights=torch.ones(1, dtype=dtype),
        r_max=1.0, B=1.0, name="coverage_lower_bound",
        meta={"c_star": c_star, "eps_ref": eps_ref, "y_star": y_star, "seed": seed},
    )


def needle_instance(d: int = 4, num_prompts: int = 4, num_responses: int = 64, beta: float = 0.5,
                    coverage: float = 16.0, gap: float = 6.0, hay_scale: float = 0.5, noise: float = 0.5,
                    seed: int = 0) -> LinearSoftmaxInstance:
    """A realisable instance whose C_cov(π⋆_β) equals ``coverage`` through π_ref's mass on a needle response:
    the mechanism of the coverage lower bounds (Foster et al. 2025, App. E; Xie et al.), nothing but the
    needle reveals the e₁ direction, while R_max, B and the haystack stay fixed across coverage values.

    Response 0 of every prompt has ϕ = e₁; the others have ϕ = (0, u) with u uniform on a sphere shell of
    radius [½, 1] in ℝ^{d−1}. θ⋆ = (gap, w) with ‖w‖ = hay_scale, r⋆ = ⟨θ⋆, ϕ⟩ + c(x) ∈ [0, R_max]. With a =
    gap/β and m(x) = E_{hay} e^{⟨w, u⟩/β}, the needle's ratio π⋆/π_ref = e^a/(p e^a + (1−p) m) equals C for p
    = (e^a − C m)/(C (e^a − m)); this is the sup over responses when e^a ≥ C·m·max_u e^{⟨w,u⟩/β}/m.
    """
    g = torch.Generator().manual_seed(seed)
    X, Y = num_prompts, num_responses
    u = torch.randn(X, Y, d - 1, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=-1, keepdim=True) * (0.5 + 0.5 * torch.rand(X, Y, 1, generator=g, dtype=torch.float64))
    phi = torch.zeros(X, Y, d, dtype=torch.float64)
    phi[:, 1:, 1:] = u[:, 1:]
    phi[:, 0, 0] = 1.0
    w = torch.randn(d - 1, generator=g, dtype=torch.float64)
    theta = torch.cat([torch.tensor([gap], dtype=torch.float64), w / w.norm() * hay_scale])
    hay = torch.log_softmax(0.5 * torch.randn(X, Y - 1, generator=g, dtype=torch.float64), -1)
    score = phi @ theta
    a = gap / beta
    m = torch.logsumexp(hay + score[:, 1:] / beta, -1).exp()
    if not bool((math.exp(a) > coverage * m * (score[:, 1:] / beta).exp().max(-1).values / m).all()):
        raise ConfigError(
            "gap",
            f"must satisfy e^(gap/β) > C·max e^(⟨w,u⟩/β) (the needle must be the argmax ratio); "
            f"gap={gap} is too small for coverage={coverage} at beta={beta}",
        )
    p = (math.exp(a) - coverage * m) / (coverage * (math.exp(a) - m))
    log_ref = torch.cat([torch.log(p)[:, None], torch.log1p(-p)[:, None] + hay], -1)
    offset = -score.min(-1).values
    return LinearSoftmaxInstance(
        base=LinearSoftmaxModel(log_ref, phi, beta),
        reward=LinearReward(theta, phi, offset),
        theta_star=theta,
        prompt_weights=torch.full((X,), 1.0 / X, dtype=torch.float64),
        r_max=float((score + offset[:, None]).max()),
        B=float(theta.norm()),
        noise=RewardNoise("gaussian", noise) if noise > 0 else RewardNoise(),
        name="needle",
        meta={"coverage": coverage, "gap": gap, "seed": seed},
    )
