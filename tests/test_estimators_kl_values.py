"""KL value estimators: exact moments vs brute force, vs their closed forms, and vs Monte Carlo through the
oracles (with negative controls: a wrong estimator or wrong target must fail the same checks)."""

import math

import pytest
import torch

from oraclerl.diagnostics.divergences import kl_divergence
from oraclerl.diagnostics.estimators.kl_values import (
    VALUE_ESTIMATORS,
    kl_estimator_moments,
    kl_value_estimates,
)
from oraclerl.errors import ConfigError
from oraclerl.models.memoryless import MemorylessModel
from oraclerl.oracles import WeakSampler
from oraclerl.posttrain.kl_penalty import kl_estimate


def _laws(X=4, Y=7, seed=0, zeros=True):
    g = torch.Generator().manual_seed(seed)
    lq = torch.log_softmax(1.5 * torch.randn(X, Y, generator=g, dtype=torch.float64), -1)
    lp = torch.log_softmax(1.5 * torch.randn(X, Y, generator=g, dtype=torch.float64), -1)
    if zeros:  # q misses one response that p has (k3 / IS lose that mass), p misses none of supp q
        lq[:, 0] = -math.inf
        lq = torch.log_softmax(lq, -1)
    return lq, lp


def _brute(lq, lp, name):
    """E and Var one response at a time, the formulas written out in plain Python."""
    means, vars_ = [], []
    for x in range(lq.shape[0]):
        vals = []
        for y in range(lq.shape[1]):
            q = math.exp(lq[x, y])
            if q == 0:
                continue
            r = math.exp(lp[x, y] - lq[x, y])
            lr = math.log(r)
            v = {
                "k1": -lr,
                "k2": 0.5 * lr * lr,
                "k3": r - 1 - lr,
                "k1_is": r * lr,
                "k2_is": 0.5 * r * lr * lr,
                "k3_is": r * lr - (r - 1),
            }[name]
            vals.append((q, v))
        m = sum(q * v for q, v in vals)
        means.append(m)
        vars_.append(sum(q * (v - m) ** 2 for q, v in vals))
    return torch.tensor(means, dtype=torch.float64), torch.tensor(vars_, dtype=torch.float64)


@pytest.mark.parametrize("name", VALUE_ESTIMATORS)
def test_moments_match_brute_force(name):
    lq, lp = _laws()
    mom = kl_estimator_moments(lq, lp)
    m, v = _brute(lq, lp, name)
    assert torch.allclose(mom.mean[name], m, rtol=1e-12, atol=1e-12)
    assert torch.allclose(mom.var[name], v, rtol=1e-10, atol=1e-12)


def test_closed_forms():
    lq, lp = _laws()
    mom = kl_estimator_moments(lq, lp)
    kl = kl_divergence(lq, lp)
    assert torch.allclose(mom.mean["k1"], kl, atol=1e-13)                                   # unbiased
    # Var k1 = E(log r)² − KL²
    assert torch.allclose(mom.var["k1"], 2 * mom.mean["k2"] - kl ** 2, atol=1e-12)
    p_on = torch.where(lq > -math.inf, lp.exp(), torch.zeros_like(lp)).sum(-1)
    # the planted missing mass
    assert (p_on < 1 - 1e-3).all()
    # biased by the missed mass
    assert torch.allclose(mom.mean["k3"], kl + p_on - 1, atol=1e-13)
    assert torch.allclose(mom.mean["k3_is"], mom.mean["k1_is"] + 1 - p_on, atol=1e-13)
    full_q, full_p = _laws(zeros=False)
    full = kl_estimator_moments(full_q, full_p)
    for name in VALUE_ESTIMATORS:  # on full supports the unbiased ones hit their targets, k2 is biased
        err = (full.bias(name)).abs().max()
        assert (err < 1e-12) == (name not in ("k2", "k2_is")), (name, err)


def test_zero_mass_conventions_and_chunking():
    lq, lp = _laws()
    lp = lp.clone()
    lp[0, 3] = -math.inf                                    # p = 0 < q: k1..k3 infinite, IS limits finite
    lp = torch.log_softmax(lp, -1)
    mom = kl_estimator_moments(lq, lp)
    for name in ("k1", "k2", "k3"):
        assert math.isinf(mom.mean[name][0]) and math.isinf(mom.var[name][0])
    assert math.isinf(mom.kl_qp[0]) and torch.isfinite(mom.mean["k3_is"]).all()
    chunked = kl_estimator_moments(lq, lp, chunk_elements=7)   # one prompt per block
    for name in VALUE_ESTIMATORS:
        assert torch.equal(chunked.mean[name], mom.mean[name]) and torch.equal(
            chunked.var[name], mom.var[name]
        )
    batched = kl_estimator_moments(lq.reshape(2, 2, -1), lp.reshape(2, 2, -1))
    assert torch.equal(batched.mean["k3"].reshape(-1), mom.mean["k3"])


def test_monte_carlo_through_the_oracle_with_negative_control():
    """Samples of q from a WeakSampler revealing log-probs; the same z-test rejects a wrong target."""
    lq, lp = _laws(X=1, Y=9, seed=3, zeros=False)
    mom = kl_estimator_moments(lq, lp)
    weak = WeakSampler(MemorylessModel(lq[0].exp(), 1), reveal={"log_probs"})
    M = 40000
    s = weak.sample(torch.zeros(1, dtype=torch.long), M, torch.Generator().manual_seed(5))
    y = s.responses.reshape(-1)
    logq_s = s.log_probs.reshape(-1)
    assert torch.allclose(logq_s, lq[0, y])                  # the oracle's log-probs are those of q
    for name in VALUE_ESTIMATORS:
        est = kl_value_estimates(logq_s, lp[0, y], name)
        se = math.sqrt(float(mom.var[name][0]) / M)
        z = (float(est.mean()) - float(mom.mean[name][0])) / se
        assert abs(z) < 4.5, (name, z)
        assert abs(float(est.var()) / float(mom.var[name][0]) - 1) < 0.25, name
    # negative control: k2's Monte Carlo mean is far (in standard errors) from the true KL it is biased for
    z_wrong = (float(kl_value_estimates(logq_s, lp[0, y], "k2").mean()) - float(mom.kl_qp[0])) / math.sqrt(
        float(mom.var["k2"][0]) / M)
    assert abs(z_wrong) > 4.5


def test_planted_bug_is_caught():
    """A k3 without its '−1' (a plausible typo) is no longer unbiased: the closed-form check flags it."""
    lq, lp = _laws(zeros=False)
    kl = kl_divergence(lq, lp)
    wrong = (lq.exp() * (torch.exp(lp - lq) - (lp - lq))).sum(-1)
    assert (wrong - kl).abs().min() > 0.5
    assert torch.allclose((lq.exp() * kl_estimate(lq, lp, "k3")).sum(-1), kl, atol=1e-12)


def test_bad_input():
    lq, lp = _laws()
    with pytest.raises(ConfigError, match="estimator"):
        kl_estimate(lq, lp, "k4")
    with pytest.raises(ConfigError, match="estimator"):
        kl_estimator_moments(lq, lp, estimators=("k5",))
    with pytest.raises(ConfigError, match="log_p"):
        kl_estimator_moments(lq, lp[:, :3])
    with pytest.raises(ConfigError, match="logp_ref"):
        kl_estimate(torch.zeros(3), torch.zeros(4))
