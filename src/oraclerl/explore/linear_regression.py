"""Shared linear-algebra pieces of the exploration algorithms (Foster et al. 2025, App. B.1 and G).

* :class:`LeastSquaresState`: the sufficient statistics (G = Σ φφᵀ, h = Σ φ·Δr, n) of the reward-based
  DPO loss Σ (⟨θ, φ(x, y₁, y₂)⟩ − (r₁ − r₂))² (Eq. 16 / Eq. 49; footnote 6), kept as running sums.
* :func:`constrained_least_squares`: argmin_{θ∈Θ} ‖Φθ − Δr‖² + λ‖θ‖² for Θ = {‖θ‖₂ ≤ B} (exact, by the
  Lagrange multiplier of the ball found by bisection on the eigen-decomposition of G) or Θ = {‖θ‖_∞ ≤ B}
  (accelerated projected gradient). λ ≥ 0 is an optional ridge (Eq. 16 and Eq. 49 use λ = 0; a tiny λ makes
  the argmin unique).
* :class:`InverseGram`: Σ⁻¹ for Σ = λI + Σ φφᵀ with Sherman–Morrison rank-one updates (Σ_span of Alg. 3).
* :func:`project`: Euclidean projection onto Θ.
"""

from __future__ import annotations

import math

import torch

from ..common.validation import check_choice, check_nonneg, check_positive
from ..errors import ConfigError

THETA_SETS = ("l2", "linf")


def project(theta: torch.Tensor, B: float, theta_set: str = "l2") -> torch.Tensor:
    """Euclidean projection of θ ([d] or [..., d]) onto Θ = {‖θ‖₂ ≤ B} or {‖θ‖_∞ ≤ B}."""
    if theta_set == "linf":
        return theta.clamp(-B, B)
    norm = theta.norm(dim=-1, keepdim=True)
    return theta * torch.clamp(B / norm.clamp_min(1e-300), max=1.0)


class LeastSquaresState:
    """Running sums G = Σ φφᵀ, h = Σ φ·Δr, s = Σ Δr², n of a least-squares problem in ℝ^d."""

    def __init__(self, d: int, dtype: torch.dtype = torch.float64, device=None):
        self.G = torch.zeros(d, d, dtype=dtype, device=device)
        self.h = torch.zeros(d, dtype=dtype, device=device)
        self.s = 0.0
        self.n = 0

    def add(self, phi: torch.Tensor, target: torch.Tensor) -> None:
        """Add rows φ [n, d] with targets Δr [n]."""
        phi = phi.to(self.G).reshape(-1, self.G.shape[0])
        target = target.to(self.G).reshape(-1)
        self.G += phi.T @ phi
        self.h += phi.T @ target
        self.s += float((target * target).sum())
        self.n += phi.shape[0]

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """Σ (⟨θ, φ_i⟩ − Δr_i)² for θ [..., d] (without the ridge)."""
        theta = theta.to(self.G)
        return torch.einsum("...i,ij,...j->...", theta, self.G, theta) - 2 * theta @ self.h + self.s


def constrained_least_squares(G: torch.Tensor, h: torch.Tensor, lam: float, B: float, theta_set: str = "l2",
                              iters: int = 500, tol: float = 1e-12) -> torch.Tensor:
    """argmin_{θ∈Θ} θᵀ(G + λI)θ − 2hᵀθ, i.e. the ridge loss ‖Φθ − Δr‖² + λ‖θ‖² over Θ.

    ``theta_set="l2"``: KKT gives θ(μ) = (G + (λ+μ)I)⁻¹h with μ ≥ 0 and ‖θ(μ)‖ = B when the ridge solution
    lies outside the ball; ‖θ(μ)‖ decreases in μ, so μ is found by bisection on the eigenbasis of G
    (exact up to ``tol``). ``theta_set="linf"``: FISTA (accelerated projected gradient, step 1/L with
    L = 2λ_max(G + λI)) for ``iters`` iterations, stopping when the iterate moves less than ``tol``.
    """
    check_choice("theta_set", theta_set, THETA_SETS)
    lam = check_nonneg("lam", lam)
    B = check_positive("B", B)
    d = h.shape[0]
    if theta_set == "l2":
        evals, evecs = torch.linalg.eigh(G)
        evals = evals.clamp_min(0.0)
        c = evecs.T @ h

        def norm2(mu: float) -> float:
            return float(((c / (evals + lam + mu)) ** 2).sum())

        if lam + float(evals.min()) > 0 and norm2(0.0) <= B * B:
            return evecs @ (c / (evals + lam))
        if float(c.abs().max()) == 0.0:
            return torch.zeros_like(h)
        lo, hi = 0.0, max(1.0, float(c.norm()) / B)
        while norm2(hi) > B * B:
            hi *= 2.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if norm2(mid) > B * B:
                lo = mid
            else:
                hi = mid
            if hi - lo <= tol * max(1.0, hi):
                break
        return evecs @ (c / (evals + lam + hi))
    A = G + lam * torch.eye(d, dtype=G.dtype, device=G.device)
    L = 2.0 * float(torch.linalg.eigvalsh(A).max())
    if L <= 0:
        return torch.zeros_like(h)
    x = project(_psd_solve(A, h), B, "linf")
    y, t = x.clone(), 1.0
    for _ in range(iters):
        x_new = project(y - (2.0 * (A @ y) - 2.0 * h) / L, B, "linf")
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        y = x_new + ((t - 1.0) / t_new) * (x_new - x)
        moved = float((x_new - x).abs().max())
        x, t = x_new, t_new
        if moved < tol:
            break
    return x


def _psd_solve(A: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """A⁺h for a symmetric PSD A via its eigen-decomposition (eigenvalues ≤ 1e-12·λ_max dropped).

    Deterministic run to run, unlike ``torch.linalg.lstsq``'s default driver (gelsy), whose result differed by
    ~1e-15 between identical runs and made dnf-proper non-reproducible (issue 16, §4).
    """
    evals, evecs = torch.linalg.eigh(A)
    keep = evals > 1e-12 * float(evals.abs().max().clamp_min(1e-300))
    inv = torch.where(keep, 1.0 / torch.where(keep, evals, torch.ones_like(evals)), torch.zeros_like(evals))
    return evecs @ (inv * (evecs.T @ h))


class InverseGram:
    """Σ⁻¹ for Σ = λI_d + Σ_i φ_i φ_iᵀ, kept by Sherman–Morrison: (Σ + φφᵀ)⁻¹ = Σ⁻¹ − Σ⁻¹φφᵀΣ⁻¹/(1 +
    φᵀΣ⁻¹φ)."""

    def __init__(self, d: int, lam: float, dtype: torch.dtype = torch.float64, device=None):
        lam = check_positive("lam", lam)
        self.lam = lam
        self.inv = torch.eye(d, dtype=dtype, device=device) / lam
        self.gram = lam * torch.eye(d, dtype=dtype, device=device)
        self.count = 0

    def sq_norm(self, phi: torch.Tensor) -> torch.Tensor:
        """‖φ‖²_{Σ⁻¹} for φ [..., d]."""
        phi = phi.to(self.inv)
        return torch.einsum("...i,ij,...j->...", phi, self.inv, phi)

    def add(self, phi: torch.Tensor) -> torch.Tensor:
        """Σ ← Σ + φφᵀ; returns u = Σ_old⁻¹φ / sqrt(1 + φᵀΣ_old⁻¹φ), so ‖v‖²_new = ‖v‖²_old − ⟨v, u⟩²."""
        phi = phi.to(self.inv).reshape(-1)
        if phi.shape[0] != self.inv.shape[0]:
            raise ConfigError("phi", f"must have {self.inv.shape[0]} entries, got {phi.shape[0]}")
        w = self.inv @ phi
        u = w / math.sqrt(1.0 + float(phi @ w))
        self.inv -= torch.outer(u, u)
        self.inv = 0.5 * (self.inv + self.inv.T)
        self.gram += torch.outer(phi, phi)
        self.count += 1
        return u
