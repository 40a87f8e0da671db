"""Likelihood quantiles vs the definition (sup over α on a grid), CDF/α-tail identities, token-level LQ."""

import math

import pytest
import torch

from oraclerl.diagnostics.likelihood_quantile import (
    alpha_tail,
    empirical_likelihood_quantile,
    likelihood_cdf,
    log_likelihood_quantile,
    log_token_level_quantile,
)
from oraclerl.errors import ConfigError


def _definition(q, w, eps):
    """sup{α ∈ [0,1]: Σ_j w_j 1[q_j ≤ α] ≤ ε}: the sup is at an atom or 1 (check atoms from above)."""
    cands = sorted(set(q.tolist()) | {1.0})
    best = 0.0
    for a in cands:
        # P(q ≤ a') ≤ ε for all a' < a  ⟺  P(q < a) ≤ ε; the sup is the largest such a
        if sum(wj for qj, wj in zip(q.tolist(), w.tolist()) if qj < a) <= eps + 1e-15:
            best = max(best, a)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantile_matches_definition(seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.rand(30, generator=g, dtype=torch.float64) ** 3
    q[:5] = q[5]                                        # ties
    w = torch.rand(30, generator=g, dtype=torch.float64)
    w /= w.sum()
    for eps in [0.0, 0.01, 0.1, 0.33, 0.5, 0.9, 0.999, 1.0]:
        got = math.exp(log_likelihood_quantile(torch.log(q), eps, w).item())
        assert got == pytest.approx(_definition(q, w, eps), abs=1e-12)


def test_uniform_policy_quantile_is_k_to_minus_n():
    log_q = torch.full((100,), -128 * math.log(32), dtype=torch.float64)
    assert torch.allclose(log_likelihood_quantile(log_q, torch.tensor([0.01, 0.5, 0.99])),
                          torch.full((3,), -128 * math.log(32), dtype=torch.float64))
    # token level of the uniform policy: 1/k regardless of N
    tok = torch.full((100, 128), -math.log(32), dtype=torch.float64)
    assert log_token_level_quantile(tok, 0.5).item() == pytest.approx(-math.log(32))


def test_token_level_dominates_sequence_level():
    g = torch.Generator().manual_seed(3)
    tok = -torch.rand(200, 10, generator=g, dtype=torch.float64) * 3
    eps = torch.linspace(0, 0.99, 12)
    assert (log_token_level_quantile(tok, eps) >= log_likelihood_quantile(tok.sum(1), eps) - 1e-12).all()


def test_cdf_and_alpha_tail():
    g = torch.Generator().manual_seed(4)
    q = torch.rand(500, generator=g, dtype=torch.float64)
    la = torch.log(torch.linspace(0.01, 1, 50, dtype=torch.float64))
    cdf = likelihood_cdf(torch.log(q), la)
    brute = torch.stack([(q <= a).double().mean() for a in la.exp()])
    assert torch.allclose(cdf, brute, atol=1e-12)
    tail = alpha_tail(torch.log(q), la)
    assert (tail <= q.mean() + 1e-12).all()                 # Markov
    # the quantile is the generalised inverse of the CDF: CDF(Q(ε)) > ε ≥ CDF just below Q(ε)
    for eps in [0.05, 0.5, 0.95]:
        lq = log_likelihood_quantile(torch.log(q), eps)
        assert likelihood_cdf(torch.log(q), lq).item() > eps
        assert likelihood_cdf(torch.log(q), lq - 1e-9).item() <= eps


def test_empirical_from_samples():
    correct = torch.zeros(4, 8, dtype=torch.bool)
    correct[1, :2] = True
    correct[2, :4] = True
    correct[3] = True
    q = empirical_likelihood_quantile(correct, torch.tensor([0.1, 0.3, 0.6, 0.8]))
    assert q.tolist() == [0.0, 0.25, 0.5, 1.0]


def test_bad_input():
    with pytest.raises(ConfigError, match="log_q"):
        log_likelihood_quantile(torch.tensor([0.5]), 0.1)
    with pytest.raises(ConfigError, match="eps"):
        log_likelihood_quantile(torch.tensor([-1.0]), -0.1)
    with pytest.raises(ConfigError, match="weights"):
        log_likelihood_quantile(torch.tensor([-1.0, -2.0]), 0.1, torch.tensor([1.0]))


def test_levels_outside_the_unit_interval_are_rejected():
    import pytest

    from oraclerl.diagnostics.likelihood_quantile import log_likelihood_quantile
    from oraclerl.errors import ConfigError

    log_q = torch.log(torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
    for bad in (2.0, -0.1, float("nan")):
        with pytest.raises(ConfigError, match="eps"):
            log_likelihood_quantile(log_q, bad)
