"""Large deviations, SCGF and the Rényi cross-entropy identity (docs/papers/bon_vs_kl_rl.md §3.3–3.4) vs
direct computation."""

import math

import pytest
import torch

from oraclerl.diagnostics.large_deviations import (
    legendre_transform,
    log_mgf,
    rate_function,
    renyi_cross_entropy,
    scgf,
    scgf_renyi,
)
from oraclerl.inference.tilt import tilt
from oraclerl.models.memoryless import reward_distribution

P = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
R = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
LAM = 0.8


def tilted_law(m):
    d = reward_distribution(P, R, m)
    z = d.log_probs + LAM * d.values
    return d.values, z - torch.logsumexp(z, 0)


def test_scgf_exact_at_every_m_and_renyi_identity():
    t = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.0, 3.0], dtype=torch.float64)
    for m in (1, 7, 40):
        v, lp = tilted_law(m)
        direct = torch.logsumexp(lp[None, :] + t[:, None] * v[None, :], 1) / m
        assert torch.allclose(scgf(P, R, LAM, t), direct, atol=1e-12)
    assert torch.allclose(scgf_renyi(P, R, LAM, t), scgf(P, R, LAM, t), atol=1e-13)
    # Λ(s) = s·[log Σ e^r − H_{1+s}(p; ψ_r)]
    psi = torch.softmax(R, 0)
    s = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64)
    assert torch.allclose(
        log_mgf(P, R, s), s * (torch.logsumexp(R, 0) - renyi_cross_entropy(P, psi, 1 + s)), atol=1e-13
    )
    assert float(renyi_cross_entropy(P, psi, 1.0)) == pytest.approx(float(-(P * psi.log()).sum()))
    assert float(renyi_cross_entropy(P, psi, 1 + 1e-7)) == pytest.approx(
        float(-(P * psi.log()).sum()), rel=1e-6
    )


def test_rate_function_against_sup_and_sanov_forms():
    x = torch.tensor([0.2, 0.6, 1.0, 1.5, 1.9], dtype=torch.float64)
    rate = rate_function(P, R, LAM, x)
    grid = torch.linspace(-40, 40, 400_001, dtype=torch.float64)
    sup = (grid[None, :] * x[:, None] - scgf(P, R, LAM, grid)[None, :]).max(1).values
    assert torch.allclose(rate, sup, atol=1e-6)
    phi = tilt(P, R, beta=1 / LAM).probs
    for xi, ri in zip(x.tolist(), rate.tolist()):  # D(φ_θ(x) ‖ φ_λ), the I-projection (Sanov) form
        th = float(torch.tensor(0.0))
        lo, hi = -50.0, 50.0
        for _ in range(200):
            th = 0.5 * (lo + hi)
            q = torch.softmax(P.log() + th * R, 0)
            lo, hi = (th, hi) if float((q * R).sum()) < xi else (lo, th)
        assert ri == pytest.approx(float((q * (q / phi).log()).sum()), abs=1e-9)
    mean = float((phi * R).sum())
    assert float(rate_function(P, R, LAM, mean)) == pytest.approx(0.0, abs=1e-12)
    assert math.isinf(float(rate_function(P, R, LAM, 2.5))) and math.isinf(
        float(rate_function(P, R, LAM, -0.1))
    )
    assert float(legendre_transform(P, R, 2.0)) == pytest.approx(-math.log(0.1))
    assert float(rate_function(P, R, LAM, 2.0)) == pytest.approx(-math.log(float(phi[2])), abs=1e-12)
    second = rate.diff().diff()
    assert (second > 0).all()  # convex on the grid (equally spaced x)


def test_ldp_tail_converges_to_rate():
    x = 1.4  # above the tilted mean Λ'(0.8) ≈ 0.96
    errs = []
    for m in (25, 100, 400):
        v, lp = tilted_law(m)
        tail = float(torch.logsumexp(lp[v >= m * x - 1e-9], 0))
        errs.append(abs(-tail / m - float(rate_function(P, R, LAM, x))))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.02  # O(log m / m)
