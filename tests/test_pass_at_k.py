"""pass@k: exact formula vs Monte Carlo, unbiased estimator vs exact binomial ratios and its expectation."""

import math

import pytest
import torch

from oraclerl.diagnostics.pass_at_k import pass_at_k_exact, pass_at_k_from_samples, pass_at_k_unbiased
from oraclerl.errors import ConfigError


def test_exact_matches_monte_carlo_and_log_form():
    p = torch.tensor([0.0, 0.01, 0.3, 0.9, 1.0], dtype=torch.float64)
    k = 5
    exact = pass_at_k_exact(p, k)
    g = torch.Generator().manual_seed(0)
    hits = (
        (torch.rand(200000, 5, k, generator=g, dtype=torch.float64) < p[None, :, None])
        .any(-1)
        .double()
        .mean(0)
    )
    assert torch.allclose(hits, exact, atol=4e-3)
    assert torch.allclose(pass_at_k_exact(log_p=torch.log(p), k=k), exact, atol=1e-15)


def test_exact_tiny_and_near_one():
    log_p = torch.tensor([-128 * math.log(32), -1e-12], dtype=torch.float64)
    out = pass_at_k_exact(log_p=log_p, k=1000)
    assert out[0].item() == pytest.approx(1000 * math.exp(log_p[0].item()), rel=1e-9)
    assert out[1].item() == pytest.approx(1.0, abs=1e-15)


def test_unbiased_equals_binomial_formula():
    for n in (1, 5, 20, 64):
        for c in range(n + 1):
            for k in range(1, n + 1):
                want = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k_unbiased(n, c, k).item() == pytest.approx(want, abs=1e-12)


def test_unbiased_is_unbiased():
    """E over c ∼ Bin(n, p) of the estimator equals 1 − (1 − p)^k exactly."""
    n, k, p = 16, 4, 0.23
    c = torch.arange(n + 1)
    pmf = torch.tensor(
        [math.comb(n, int(j)) * p ** int(j) * (1 - p) ** (n - int(j)) for j in c], dtype=torch.float64
    )
    assert (pmf * pass_at_k_unbiased(n, c, k)).sum().item() == pytest.approx(1 - (1 - p) ** k, abs=1e-12)


def test_large_n_stable_and_from_samples():
    val = pass_at_k_unbiased(10000, torch.tensor([1, 5000]), 100)
    assert val[0].item() == pytest.approx(0.01, abs=1e-9)
    assert val[1].item() == pytest.approx(1.0, abs=1e-12)
    correct = torch.tensor([[True, False, False, False], [False] * 4])
    assert torch.allclose(
        pass_at_k_from_samples(correct, [1, 4]), torch.tensor([0.125, 0.5], dtype=torch.float64)
    )


def test_bad_input():
    with pytest.raises(ConfigError, match="c"):
        pass_at_k_unbiased(4, 5, 1)
    with pytest.raises(ConfigError, match="k"):
        pass_at_k_unbiased(4, 1, 5)
    with pytest.raises(ConfigError, match="p"):
        pass_at_k_exact(torch.tensor([1.5]), 2)
    with pytest.raises(ConfigError, match="p"):
        pass_at_k_exact(k=2)
