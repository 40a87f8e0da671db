"""The Max-k-DNF instance of the ETH lower bound for proper algorithms (Foster et al. 2025, App. H.2, Thm
4.1).

A k-DNF formula over d variables has m clauses; clause i is a conjunction of k literals on the variables
S_i ⊂ [d] with signs f_i(j) ∈ {±1} (j ∈ S_i); an assignment z ∈ {±1}^d satisfies it iff f_i(j)·z_j = 1 for
all j ∈ S_i, and val(φ; z) counts satisfied clauses. The alignment instance has one prompt and

* Y = {0} ∪ [m] (one response per clause, 0 the *null* response);
* π_ref(0) = 1 − e^{−1/β}, π_ref(i) = e^{−1/β}/m;
* ϕ(0) = 0, ϕ(i)_j = f_i(j)/k for j ∈ S_i and 0 otherwise (‖ϕ(i)‖₂ = k^{−1/2} ≤ 1);
* θ⋆ ∈ {±1}^d a maximising assignment and r⋆(y) = ⟨ϕ(y), θ⋆⟩ ∈ [−1, 1] (= 1 iff θ⋆ satisfies clause y);
* Θ = {‖θ‖_∞ ≤ 1} (``theta_set="linf"``, ``B = 1`` is the box radius; its ℓ₂ radius is √d).

Lemma H.2: Σ_{i≥1} π_{θ⋆}(i) ≥ val(φ)/(2m), while every θ ∈ Θ has Σ_{i≥1} π_θ(i) ≤ 2(val(φ; sgn θ)/m +
e^{−1/(βk)}) (for e^{−1/β} ≤ ½): a *proper* policy keeps almost all its mass on the useless null response
unless sgn θ nearly maximises the DNF. The maximiser is found here by enumerating {±1}^d (d ≤ 22).
"""

from __future__ import annotations

import math

import torch

from ..common.validation import check_int, check_nonneg, check_positive
from ..errors import ConfigError
from ..models.linear_softmax import LinearSoftmaxModel
from ..models.rewards import LinearReward
from ..oracles import RewardNoise
from .instance import LinearSoftmaxInstance

__all__ = ["max_k_dnf", "dnf_value", "clause_mass", "lemma_h2_upper"]


def dnf_value(assignments: torch.Tensor, variables: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """val(φ; z) for assignments z [..., d] (entries with sign 0 satisfy no literal): number of satisfied
    clauses.

    ``variables`` [m, k] (long) and ``signs`` [m, k] (±1) describe the clauses.
    """
    z = assignments[..., variables]                         # [..., m, k]
    sat = (z * signs.to(z.dtype) > 0).all(-1)               # clause satisfied iff every literal is
    return sat.sum(-1)


def clause_mass(log_policy: torch.Tensor) -> torch.Tensor:
    """Σ_{i≥1} π(i) = 1 − π(0): the mass a policy ([..., m+1] log-probs) puts off the null response."""
    return -torch.expm1(log_policy[..., 0])


def lemma_h2_upper(theta: torch.Tensor, inst: LinearSoftmaxInstance) -> torch.Tensor:
    """Lemma H.2's bound 2(val(φ; sgn θ)/m + e^{−1/(βk)}) on Σ_{i≥1} π_θ(i), for θ [..., d]."""
    m, k = inst.meta["num_clauses"], inst.meta["k"]
    val = dnf_value(torch.sign(theta), inst.meta["variables"], inst.meta["signs"]).to(theta.dtype)
    return 2.0 * (val / m + math.exp(-1.0 / (inst.beta * k)))


def max_k_dnf(num_vars: int = 10, num_clauses: int = 40, k: int = 3, beta: float = 0.25, seed: int = 0,
              noise: float = 0.0, dtype: torch.dtype = torch.float64) -> LinearSoftmaxInstance:
    """A random k-DNF (clauses: uniform k-subsets of the variables, uniform signs) as the App. H.2
    instance."""
    d = check_int("num_vars", num_vars, low=1, high=22)
    m = check_int("num_clauses", num_clauses, low=1)
    k = check_int("k", k, low=1, high=d)
    beta = check_positive("beta", beta)
    noise = check_nonneg("noise", noise)
    if math.exp(-1.0 / beta) > 0.5:
        raise ConfigError(
            "beta", f"must be <= 1/log 2 ≈ {1 / math.log(2):.4f} so that π_ref(0) ≥ ½ (Lemma H.2), got {beta}"
        )
    seed = check_int("seed", seed, low=0)
    gen = torch.Generator().manual_seed(seed)
    variables = torch.argsort(torch.rand(m, d, generator=gen), dim=1)[:, :k]          # S_i, uniform k-subsets
    signs = torch.where(torch.rand(m, k, generator=gen) < 0.5, -1, 1).to(torch.long)  # f_i(j)
    # Brute-force maximiser over {±1}^d (ties: the first in binary order).
    codes = torch.arange(2 ** d)
    cube = ((codes[:, None] >> torch.arange(d)) & 1).to(dtype) * 2 - 1             # [2^d, d]
    vals = torch.cat([dnf_value(c, variables, signs) for c in cube.split(1 << 14)])
    best = int(torch.argmax(vals))
    theta_star = cube[best].clone()
    phi = torch.zeros(1, m + 1, d, dtype=dtype)
    rows = torch.arange(1, m + 1)[:, None].expand(m, k)
    phi[0, rows, variables] = signs.to(dtype) / k
    log_ref = torch.empty(1, m + 1, dtype=dtype)
    log_ref[0, 0] = math.log(-math.expm1(-1.0 / beta))
    log_ref[0, 1:] = -1.0 / beta - math.log(m)
    base = LinearSoftmaxModel(log_ref, phi, beta)
    reward = LinearReward(theta_star, phi, r_max=1.0)
    return LinearSoftmaxInstance(
        base=base, reward=reward, theta_star=theta_star, prompt_weights=torch.ones(1, dtype=dtype), r_max=1.0,
        B=1.0, theta_set="linf", noise=RewardNoise("gaussian", noise) if noise > 0 else RewardNoise(),
        name="max_k_dnf",
        meta={"num_vars": d, "num_clauses": m, "k": k, "seed": seed, "val": int(vals[best]),
              "variables": variables, "signs": signs},
    )
