"""Exact KL-constrained optimum (Yang et al. 2024 §1.1; docs/papers/bon_vs_kl_rl.md §1.2–1.3)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oraclerl.errors import ConfigError
from oraclerl.inference.tilt import kl_reward_frontier, tilt, tilt_to_mean


def _kl(a, b):
    return float((a * (a / b).log()).where(a > 0, torch.zeros_like(a)).sum())


@st.composite
def instances(draw, max_y=8):
    y = draw(st.integers(2, max_y))
    w = torch.tensor(draw(st.lists(st.floats(0.05, 1.0), min_size=y, max_size=y)), dtype=torch.float64)
    # rewards on a 1/4 grid: gaps between reward levels stay resolvable in float64 near saturation
    r = torch.tensor(draw(st.lists(st.integers(-12, 12), min_size=y, max_size=y)), dtype=torch.float64) / 4
    return w / w.sum(), r


def test_tilt_matches_direct_gibbs_form():
    p = torch.tensor([0.5, 0.2, 0.2, 0.1], dtype=torch.float64)
    r = torch.tensor([0.0, 1.0, -1.0, 3.0], dtype=torch.float64)
    lam = 0.7
    phi = p * torch.exp(lam * r)
    phi = phi / phi.sum()
    res = tilt(p, r, kl=_kl(phi, p))
    assert float(res.lam) == pytest.approx(lam, rel=1e-9)
    assert torch.allclose(res.probs, phi, atol=1e-12)
    assert float(res.reward) == pytest.approx(float((phi * r).sum()), abs=1e-12)
    pen = tilt(p, r, beta=1 / lam)
    assert torch.allclose(pen.probs, phi, atol=1e-14)


def test_tilt_is_optimal_against_random_feasible_laws():
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    r = torch.tensor([0.0, 0.5, 1.0, 2.0], dtype=torch.float64)
    best = tilt(p, r, kl=0.3)
    q = -torch.log(torch.rand(20000, 4, generator=g, dtype=torch.float64))  # Dirichlet(1, 1, 1, 1)
    q = q / q.sum(-1, keepdim=True)
    kl = (q * (q / p).log()).sum(-1)
    feasible = kl <= 0.3
    assert feasible.sum() > 100
    assert float((q[feasible] * r).sum(-1).max()) <= float(best.reward) + 1e-12


def test_saturated_and_degenerate_cases():
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    r = torch.tensor([0.0, 2.0, 2.0], dtype=torch.float64)  # argmax set has mass 0.5
    res = tilt(p, r, kl=5.0)
    assert math.isinf(float(res.lam))
    assert torch.allclose(res.probs, torch.tensor([0.0, 0.6, 0.4], dtype=torch.float64))
    assert float(res.kl) == pytest.approx(math.log(2))
    const = tilt(p, torch.ones(3), kl=0.4)  # Δ_max = 0: p itself
    assert torch.allclose(const.probs, p) and float(const.kl) == 0.0
    zero = tilt(p, r, kl=0.0)
    assert torch.allclose(zero.probs, p) and float(zero.lam) == 0.0


def test_batched_and_frontier():
    p = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    r = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    fr = kl_reward_frontier(p, r, num=41)
    assert fr.kl[-1] == pytest.approx(-math.log(0.1))
    assert (fr.reward.diff() > 0).all()
    slopes = fr.reward.diff() / fr.kl.diff()
    assert (slopes.diff() < 1e-12).all()  # concave
    # slope dR*/dΔ = 1/λ_Δ (central difference)
    mid = tilt(p, r, kl=torch.tensor([0.5 - 1e-5, 0.5, 0.5 + 1e-5], dtype=torch.float64))
    assert float((mid.reward[2] - mid.reward[0]) / 2e-5) == pytest.approx(1 / float(mid.lam[1]), rel=1e-5)
    batch = tilt(p.expand(3, 3), r.expand(3, 3), kl=torch.tensor([0.1, 0.2, 0.3]))
    for i, d in enumerate([0.1, 0.2, 0.3]):
        assert torch.allclose(batch.probs[i], tilt(p, r, kl=d).probs, atol=1e-12)


def test_tilt_to_mean_inverts_the_mean():
    p = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    r = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    x = torch.tensor([0.05, 0.4, 0.5, 1.2, 1.95], dtype=torch.float64)
    th = tilt_to_mean(p.log(), r, x)
    phi = torch.softmax(p.log() + th[:, None] * r, -1)
    assert torch.allclose((phi * r).sum(-1), x, atol=1e-11)


@settings(max_examples=40, deadline=None)
@given(instances(), st.floats(0.0, 1.0))
def test_property_kl_equals_requested_and_identity(inst, frac):
    p, r = inst
    top = r == r.max()
    kl_max = max(0.0, -math.log(float(p[top].sum())))  # p sums to 1 only up to rounding
    delta = frac * kl_max * 0.999
    res = tilt(p, r, kl=delta)
    assert float(res.kl) == pytest.approx(delta, abs=1e-9)
    # KL(φ‖φ_Δ) = KL(φ‖p) − Δ + λ(E_φΔ r − E_φ r) for any φ (docs/papers/bon_vs_kl_rl.md §1.3)
    g = torch.Generator().manual_seed(int(frac * 1e6))
    q = torch.rand(p.shape, generator=g, dtype=torch.float64) + 0.01
    q = q / q.sum()
    lhs = _kl(q, res.probs)
    rhs = _kl(q, p) - delta + float(res.lam) * (float(res.reward) - float((q * r).sum()))
    assert lhs == pytest.approx(rhs, abs=1e-8 * max(1.0, abs(lhs)))


@pytest.mark.parametrize("kwargs, field", [
    (dict(p=[0.5, -0.1, 0.6], r=[0, 1, 2], kl=0.1), "p"),
    (dict(p=[0.5, 0.1, 0.1], r=[0, 1, 2], kl=0.1), "p"),
    (dict(p=[0.5, 0.3, 0.2], r=[0, float("nan"), 2], kl=0.1), "r"),
    (dict(p=[0.5, 0.3, 0.2], r=[0, 1, 2], kl=-0.1), "kl"),
    (dict(p=[0.5, 0.3, 0.2], r=[0, 1, 2], beta=0.0), "beta"),
    (dict(p=[0.5, 0.3, 0.2], r=[0, 1, 2]), "kl"),
    (dict(p=[0.5, 0.3, 0.2], r=[0, 1], kl=0.1), "r"),
])
def test_bad_input(kwargs, field):
    with pytest.raises(ConfigError) as e:
        tilt(**kwargs)
    assert e.value.field == field
