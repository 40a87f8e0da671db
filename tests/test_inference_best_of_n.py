"""Exact best-of-n (Beirami et al. 2025; docs/papers/bon_vs_kl_rl.md §2) against brute force, Monte Carlo
and the theorems."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from oraclerl.errors import ConfigError
from oraclerl.inference.best_of_n import (
    best_of_n_expected_estimate,
    best_of_n_kl,
    best_of_n_kl_estimate,
    best_of_n_kl_formula,
    best_of_n_law,
    best_of_poisson_law,
    calibrated_reward,
    rewind_and_repeat_law,
    rewind_and_repeat_summary,
    sample_best_of_n,
)


def brute_force_bon(p, r, n):
    """Enumerate all Y^n candidate tuples; ties split uniformly among the tied draws."""
    out = torch.zeros(len(p), dtype=torch.float64)
    for t in itertools.product(range(len(p)), repeat=n):
        pr = math.prod(float(p[i]) for i in t)
        best = max(float(r[i]) for i in t)
        winners = [i for i in t if float(r[i]) == best]
        for i in winners:
            out[i] += pr / len(winners)
    return out


def _kl(a, b):
    return float(torch.where(a > 0, a * (a / b).log(), torch.zeros_like(a)).sum())


def _win(pi, p, r):
    return sum(float(pi[i] * p[j]) * (1.0 if r[i] > r[j] else 0.5 if r[i] == r[j] else 0.0)
               for i in range(len(p)) for j in range(len(p)))


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_law_matches_brute_force_with_ties(n):
    p = torch.tensor([0.1, 0.25, 0.15, 0.3, 0.2], dtype=torch.float64)
    r = torch.tensor([2.0, 0.0, 2.0, 1.0, 0.0], dtype=torch.float64)  # ties at the top and the bottom
    law = best_of_n_law(p, r, n)
    bf = brute_force_bon(p, r, n)
    assert torch.allclose(law.probs, bf, atol=1e-13)
    assert float(law.kl) == pytest.approx(_kl(bf, p), abs=1e-12)
    assert float(law.win_rate) == pytest.approx(_win(bf, p, r), abs=1e-12)
    assert float(law.expected_reward) == pytest.approx(float((bf * r).sum()), abs=1e-12)


def test_batched_n_and_p():
    p = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], dtype=torch.float64)
    r = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    n = torch.tensor([[1.0], [4.0], [9.0]])  # [3, 1] x batch [2] -> [3, 2]
    law = best_of_n_law(p, r, n)
    assert law.kl.shape == (3, 2)
    for i, ni in enumerate([1, 4, 9]):
        for j in range(2):
            assert float(law.kl[i, j]) == pytest.approx(float(best_of_n_kl(p[j], r, ni)), abs=1e-13)


def test_huge_n_in_log_space_saturates():
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    r = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    for kwargs in (dict(n=1e300), dict(log_n=1e4), dict(log_n=1e300)):
        law = best_of_n_law(p, r, **kwargs)
        assert torch.isfinite(law.kl) and float(law.kl) == pytest.approx(-math.log(0.2), abs=1e-12)
        assert float(law.win_rate) == pytest.approx(0.8 + 0.1, abs=1e-12)
    # top outcome of mass 1e-250: KL of BoN with n = 1e200 is ≈ log n − (n−1)/n far below saturation
    q = torch.tensor([1 - 1e-250, 1e-250], dtype=torch.float64)
    mid = best_of_n_law(q, torch.tensor([0.0, 1.0]), 1e200)
    assert float(mid.probs[1]) == pytest.approx(1e-50, rel=1e-9)


def test_continuum_limit_matches_formula_and_win_rate():
    L, n = 200_000, 10
    p = torch.full((L,), 1.0 / L, dtype=torch.float64)
    r = torch.randperm(L, generator=torch.Generator().manual_seed(0)).double()
    law = best_of_n_law(p, r, n)
    assert float(law.kl) == pytest.approx(float(best_of_n_kl_formula(n)), abs=1e-3)
    assert float(law.win_rate) == pytest.approx(n / (n + 1), abs=1e-3)


def test_estimator_is_exact_kl_of_atom_plus_continuum():
    # D̂_n(ε) = exact BoN KL of (continuum of mass 1−ε) + (top atom ε); continuum ≈ 2e5 fine atoms
    L, eps, n = 200_000, 0.01, 50
    p = torch.cat(
        [torch.full((L,), (1 - eps) / L, dtype=torch.float64), torch.tensor([eps], dtype=torch.float64)]
    )
    r = torch.arange(L + 1, dtype=torch.float64)
    assert float(best_of_n_kl(p, r, n)) == pytest.approx(float(best_of_n_kl_estimate(eps, n)), abs=2e-3)
    assert float(best_of_n_kl_estimate(1.0, n)) == pytest.approx(0.0, abs=1e-15)
    assert float(best_of_n_kl_estimate(1e-300, n)) == pytest.approx(float(best_of_n_kl_formula(n)), abs=1e-12)
    assert float(best_of_n_kl_estimate(log_eps=-5000.0, n=n)) == pytest.approx(float(best_of_n_kl_formula(n)))


@st.composite
def instances(draw):
    y = draw(st.integers(2, 7))
    w = torch.tensor(draw(st.lists(st.floats(0.01, 1.0), min_size=y, max_size=y)), dtype=torch.float64)
    r = torch.tensor(draw(st.lists(st.integers(0, 5), min_size=y, max_size=y)), dtype=torch.float64)
    n = draw(st.integers(1, 400))
    return w / w.sum(), r, n


@settings(max_examples=60, deadline=None)
@given(instances())
def test_property_kl_below_formula_and_win_below_bound(inst):
    p, r, n = inst
    law = best_of_n_law(p, r, n)
    assert float(law.kl) <= float(best_of_n_kl_formula(n)) + 1e-12  # Thm 3.1
    assert float(law.win_rate) <= n / (n + 1) + 1e-12  # Thm 5.3
    assert float(law.kl) <= -math.log(float(p[r == r.max()].sum())) + 1e-12  # saturation level
    gap = float(best_of_n_kl_formula(n)) - float(law.kl)
    distinct = len(set(r.tolist())) == len(r)
    if distinct:
        assert gap <= 2 * n * (n - 1) * float((p ** 2).sum()) + 1e-12  # Thm 3.4 (constant as stated)
        assert n / (n + 1) - float(law.win_rate) <= (n - 1) / 2 * float((p ** 2).sum()) + 1e-12  # Thm 5.4


@settings(max_examples=60, deadline=None)
@given(instances())
def test_property_estimator_upper_bounds_kl_in_expectation(inst):
    """Conjecture 4.4 (distinct rewards, Assumption 2.1): E_{π⁽ⁿ⁾} D̂_n(p(y)) ≥ KL(π⁽ⁿ⁾ ‖ p)."""
    p, r, n = inst
    r = r + torch.arange(len(r), dtype=torch.float64) * 1e-3  # make rewards distinct
    est = float(best_of_n_expected_estimate(p, r, n))
    kl = float(best_of_n_kl(p, r, n))
    assert est >= kl - 1e-10
    assert est <= float(best_of_n_kl_formula(n)) + 1e-12


@pytest.mark.parametrize("kwargs", [dict(n=4), dict(log_n=60.0)])
def test_exact_sampler_chi_square(kwargs):
    p = torch.tensor([0.3, 0.1, 0.2, 0.25, 0.15], dtype=torch.float64)
    r = torch.tensor([1.0, 3.0, 3.0, 2.0, 0.0], dtype=torch.float64)
    law = best_of_n_law(p, r, **kwargs)
    idx = sample_best_of_n(p, r, num_samples=40_000, generator=torch.Generator().manual_seed(1), **kwargs)
    counts = torch.bincount(idx, minlength=5).double()
    keep = law.probs > 1e-9
    assert counts[~keep].sum() == 0
    stat = stats.chisquare(counts[keep].numpy(), (law.probs[keep] * 40_000).numpy())
    assert stat.pvalue > 1e-3  # test level 1e-3


def test_sampler_seeded_and_per_sample_n():
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    r = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    a = sample_best_of_n(p, r, 8, 100, torch.Generator().manual_seed(3))
    b = sample_best_of_n(p, r, 8, 100, torch.Generator().manual_seed(3))
    c = sample_best_of_n(p, r, 8, 100, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    n = torch.tensor([1.0, 1e6]).repeat(5000)
    idx = sample_best_of_n(p, r, n, 10_000, torch.Generator().manual_seed(5))
    assert (idx[1::2] == 2).all()
    assert abs(float((idx[0::2] == 0).double().mean()) - 0.5) < 0.03


def test_best_of_poisson_is_a_poisson_mixture_of_bon():
    p = torch.tensor([0.3, 0.1, 0.2, 0.25, 0.15], dtype=torch.float64)
    r = torch.tensor([1.0, 3.0, 3.0, 2.0, 0.0], dtype=torch.float64)
    mu = 3.5
    mix = sum(math.exp(-mu) * mu**k / math.factorial(k) * best_of_n_law(p, r, k + 1).probs for k in range(80))
    assert torch.allclose(best_of_poisson_law(p, r, mu).probs, mix, atol=1e-13)


def test_rewind_and_repeat_and_calibration():
    p = torch.tensor([0.3, 0.1, 0.2, 0.25, 0.15], dtype=torch.float64)
    r = torch.tensor([1.0, 3.0, 3.0, 2.0, 0.0], dtype=torch.float64)
    law = rewind_and_repeat_law(p, r, 2.0)
    cond = torch.where(r >= 2.0, p, 0.0) / 0.55
    assert torch.allclose(law.probs, cond) and float(law.kl) == pytest.approx(-math.log(0.55))
    assert float(law.win_rate) == pytest.approx(_win(cond, p, r), abs=1e-13)
    c = calibrated_reward(p, r)
    assert float((p * c).sum()) == pytest.approx(0.5, abs=1e-14)
    bon = best_of_n_law(p, r, 7)
    assert float((bon.probs * c).sum()) == pytest.approx(float(bon.win_rate), abs=1e-13)


def test_rewind_and_repeat_summary_matches_brute_force_and_the_law():
    """Linear-memory KL / win rate / reward (issue 12 item 8) vs the definition p(·| r ≥ τ), ties included."""
    g = torch.Generator().manual_seed(4)
    p = torch.rand(9, generator=g, dtype=torch.float64)
    p[3] = 0.0
    p = p / p.sum()
    r = torch.tensor([1.0, -2.0, 3.0, 3.0, 0.5, -2.0, 1.0, 2.5, 0.0], dtype=torch.float64)
    tau = torch.tensor([-5.0, -2.0, 0.0, 0.7, 1.0, 2.5, 3.0], dtype=torch.float64)  # levels and in between
    s = rewind_and_repeat_summary(p, r, tau)
    for t, kl, win, rew in zip(tau.tolist(), s.kl, s.win_rate, s.expected_reward):
        cond = torch.where(r >= t, p, 0.0)
        mass = float(cond.sum())
        assert float(kl) == pytest.approx(-math.log(mass), abs=1e-13)
        assert float(win) == pytest.approx(_win(cond / mass, p, r), abs=1e-13)
        assert float(rew) == pytest.approx(float((cond * r).sum()) / mass, abs=1e-13)
    P = torch.rand(3, 1, 9, generator=g, dtype=torch.float64)
    P = P / P.sum(-1, keepdim=True)
    law, summ = rewind_and_repeat_law(P, r, tau[None]), rewind_and_repeat_summary(P, r, tau[None])
    for a, b in (
        (law.kl, summ.kl),
        (law.win_rate, summ.win_rate),
        (law.expected_reward, summ.expected_reward),
    ):
        assert a.shape == b.shape == (3, 7) and torch.allclose(a, b, atol=1e-13, rtol=0)
    with pytest.raises(ConfigError, match="threshold"):
        rewind_and_repeat_summary(p, r, 3.5)


def test_rewind_and_repeat_memory_is_linear_or_refused():
    """The uniform reference over L outcomes with every level as a threshold: the law would be L² (refused
    with the estimate, before allocating), the summary is linear (L = 2·10⁵ would need 300 GiB as a law)."""
    L = 200_000
    p = torch.full((L,), 1.0 / L, dtype=torch.float64)
    r = torch.arange(L, dtype=torch.float64)
    with pytest.raises(ConfigError, match=r"threshold.*GiB.*rewind_and_repeat_summary"):
        rewind_and_repeat_law(p, r, r)
    s = rewind_and_repeat_summary(p, r, r)
    top = L - torch.arange(L, dtype=torch.float64)                      # outcomes kept by threshold r_i
    assert torch.allclose(s.kl, torch.log(L / top), atol=1e-9)
    assert torch.allclose(s.win_rate, 1 - top / (2 * L), atol=1e-9)     # mean of (j + ½)/L over the kept j


@pytest.mark.parametrize("call, field", [
    (lambda: best_of_n_law([0.5, 0.6], [0, 1], 2), "p"),
    (lambda: best_of_n_law([0.5, 0.5], [0, float("nan")], 2), "r"),
    (lambda: best_of_n_law([0.5, 0.5], [0, 1], 0), "n"),
    (lambda: best_of_n_law([0.5, 0.5], [0, 1], 0.5), "n"),
    (lambda: best_of_n_law([0.5, 0.5], [0, 1], log_n=-1.0), "log_n"),
    (lambda: best_of_n_kl_estimate(0.0, 4), "eps"),
    (lambda: best_of_n_kl_estimate(1.5, 4), "eps"),
    (lambda: best_of_poisson_law([0.5, 0.5], [0, 1], -1.0), "mu"),
    (lambda: rewind_and_repeat_law([0.5, 0.5], [0, 1], 2.0), "threshold"),
    (lambda: sample_best_of_n([0.5, 0.5], [0, 1], 2, 0), "num_samples"),
])
def test_bad_input(call, field):
    with pytest.raises(ConfigError) as e:
        call()
    assert e.value.field == field


def test_tail_masses_below_float_range():
    """A top atom of mass e^{−800} with n = e^{790} / e^{810}: P(top) = 1 − (1−ε)^n ≈ 1 − exp(−nε)."""
    log_p = torch.tensor([0.0, -800.0], dtype=torch.float64)  # normalised up to e^{-800}
    r = torch.tensor([0.0, 1.0], dtype=torch.float64)
    for log_n, want in ((790.0, -math.expm1(-math.exp(-10))), (810.0, -math.expm1(-math.exp(10)))):
        law = best_of_n_law(log_p=log_p, r=r, log_n=log_n)
        assert float(law.probs[1]) == pytest.approx(want, rel=1e-9)
        idx = sample_best_of_n(log_p=log_p, r=r, log_n=log_n, num_samples=20_000,
                               generator=torch.Generator().manual_seed(0))
        assert abs(float(idx.double().mean()) - want) < 5 * math.sqrt(want * (1 - want) / 20_000) + 1e-9
