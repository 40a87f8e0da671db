"""Large deviations of the reward under the KL-RL solution (Yang et al. 2024; docs/papers/bon_vs_kl_rl.md
§3.3–3.4).

Token law p over a finite vocabulary, token reward r, tilt φ_λ ∝ p·e^{λr}, and the log-MGF
Λ(s) = log Σ_v p(v) e^{s r(v)}. Under y ~ φ_λ^{⊗m}, (1/m)·Σ r(y_i) satisfies an LDP with rate

    I_λ(x) = sup_t { t x − [Λ(λ+t) − Λ(λ)] } = Λ*(x) − λx + Λ(λ) = D(φ_{θ(x)} ‖ φ_λ),  Λ'(θ(x)) = x,

(Cramér / Gärtner–Ellis; the Sanov I-projection form), +∞ outside [r_min, r_max]. The scaled cumulant
generating function is exact at every m: (1/m) log E_{φ_λ^{⊗m}} e^{tR} = Λ(λ+t) − Λ(λ), and equals
t·[log Σ_v e^{r(v)} − H_{1+t}(φ_λ; ψ_r)] with ψ_r = softmax(r) and the Rényi cross-entropy
H_α(φ; ψ) = (1/(1−α)) log Σ_v φ(v) ψ(v)^{α−1} (the naming/normalisation of [Y] is unverified; the
identity is exact).

API (p, r: token law and rewards [V]; λ, t, x: numbers or tensors, broadcast):
:func:`log_mgf` Λ(s), :func:`scgf` Λ(λ+t) − Λ(λ), :func:`rate_function` I_λ(x),
:func:`legendre_transform` Λ*(x) = I_0(x), :func:`renyi_cross_entropy` H_α(φ; ψ),
:func:`scgf_renyi` the Rényi form of the SCGF.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..inference.tilt import reference_inputs, tilt_to_mean


def _token(p, r):
    log_p, r = reference_inputs(p, r)
    if log_p.dim() != 1:
        raise ConfigError("p", f"must be one token law [V], got shape {tuple(log_p.shape)}")
    return log_p, r


def _num(name, v):
    t = torch.as_tensor(v, dtype=torch.float64)
    if torch.isnan(t).any():
        raise ConfigError(name, "must not be NaN")
    return t


def log_mgf(p, r, s) -> torch.Tensor:
    """Λ(s) = log Σ_v p(v) e^{s r(v)} for every entry of ``s``."""
    log_p, r = _token(p, r)
    s = _num("s", s)
    return torch.logsumexp(log_p + s[..., None] * r, -1)


def scgf(p, r, lam, t) -> torch.Tensor:
    """Scaled cumulant generating function of R under φ_λ^{⊗m}: Λ(λ+t) − Λ(λ) (exact for every m)."""
    lam, t = _num("lam", lam), _num("t", t)
    return log_mgf(p, r, lam + t) - log_mgf(p, r, lam)


def rate_function(p, r, lam, x) -> torch.Tensor:
    """I_λ(x) = Λ*(x) − λx + Λ(λ) (LDP rate of (1/m)R under φ_λ^{⊗m}); +inf outside [r_min, r_max].

    Interior points use θ(x) with Λ'(θ) = x (monotone root search): I = (θ − λ)x − Λ(θ) + Λ(λ). At the
    end points Λ*(r_max) = −log p(argmax r) and Λ*(r_min) = −log p(argmin r)."""
    log_p, r = _token(p, r)
    lam, x = _num("lam", lam), _num("x", x)
    lam, x = torch.broadcast_tensors(lam, x)
    sup = log_p > -math.inf
    hi, lo = r[sup].max(), r[sup].min()
    inside = (x > lo) & (x < hi)
    xi = torch.where(inside, x, 0.5 * (lo + hi))
    theta = tilt_to_mean(log_p, r, xi)
    lam_theta = torch.logsumexp(log_p + theta[..., None] * r, -1)
    star = theta * xi - lam_theta
    at_hi = -torch.logsumexp(torch.where(sup & (r == hi), log_p, -math.inf), -1)
    at_lo = -torch.logsumexp(torch.where(sup & (r == lo), log_p, -math.inf), -1)
    star = torch.where(x == hi, at_hi, torch.where(x == lo, at_lo, star))
    star = torch.where((x > hi) | (x < lo), math.inf, star)
    return (star - lam * x + torch.logsumexp(log_p + lam[..., None] * r, -1)).clamp_min(0.0)


def legendre_transform(p, r, x) -> torch.Tensor:
    """Λ*(x) = sup_s { s x − Λ(s) } (Cramér rate under p itself)."""
    return rate_function(p, r, 0.0, x)


def renyi_cross_entropy(phi, psi, alpha) -> torch.Tensor:
    """H_α(φ; ψ) = (1/(1−α)) log Σ_v φ(v) ψ(v)^{α−1}; α = 1 gives the cross-entropy −Σ φ log ψ."""
    phi = torch.as_tensor(phi, dtype=torch.float64)
    psi = torch.as_tensor(psi, dtype=torch.float64)
    alpha = _num("alpha", alpha)
    log_phi, log_psi = torch.log(phi), torch.log(psi)
    a = alpha[..., None]
    inner = torch.logsumexp(log_phi + (a - 1) * torch.where(phi > 0, log_psi, 0.0), -1)
    ce = -torch.where(phi > 0, phi * log_psi, 0.0).sum(-1)
    safe = torch.where(alpha == 1, 2.0, alpha)
    return torch.where(alpha == 1, ce, inner / (1 - safe))


def scgf_renyi(p, r, lam, t) -> torch.Tensor:
    """t·[log Σ_v e^{r(v)} − H_{1+t}(φ_λ; ψ_r)], ψ_r = softmax(r): equals :func:`scgf`
    (docs/papers/bon_vs_kl_rl.md §3.4)."""
    log_p, r = _token(p, r)
    lam, t = torch.broadcast_tensors(_num("lam", lam), _num("t", t))
    log_phi = log_p + lam[..., None] * r
    log_phi = log_phi - torch.logsumexp(log_phi, -1, keepdim=True)
    psi = torch.softmax(r, -1)
    h = renyi_cross_entropy(torch.exp(log_phi), psi, 1 + t)
    return t * (torch.logsumexp(r, -1) - h)
