"""Instance generators: realisability, bounds, coverage hits its target, hard instance of App. E."""

import math

import pytest
import torch

from oraclerl.diagnostics import coverage_coefficient
from oraclerl.errors import ConfigError
from oraclerl.problems import coverage_lower_bound, linear_softmax


@pytest.mark.parametrize(
    "target,beta,seed", [(2.0, 0.5, 0), (16.0, 0.5, 1), (64.0, 0.25, 2), (256.0, 0.1, 3)]
)
def test_linear_softmax_hits_coverage_target(target, beta, seed):
    inst = linear_softmax(d=6, num_prompts=8, num_responses=512, beta=beta, target_coverage=target, seed=seed)
    assert coverage_coefficient(inst) == pytest.approx(target, rel=0.05)
    assert inst.base.phi.norm(dim=-1).max() <= 1 + 1e-12
    assert inst.theta_star.norm().item() == pytest.approx(inst.B, rel=1e-12)
    r = inst.reward.table
    assert r.min() >= -1e-12 and r.max() <= inst.r_max + 1e-12
    # Reward differences are linear in ϕ (Lemma G.1), so π⋆_β = π_θ⋆.
    diff = r - r[:, :1]
    lin = (inst.base.phi - inst.base.phi[:, :1]) @ inst.theta_star
    torch.testing.assert_close(diff, lin, atol=1e-12, rtol=0)


def test_linear_softmax_is_deterministic_per_seed():
    a = linear_softmax(d=4, num_prompts=3, num_responses=16, seed=7)
    b = linear_softmax(d=4, num_prompts=3, num_responses=16, seed=7)
    c = linear_softmax(d=4, num_prompts=3, num_responses=16, seed=8)
    assert torch.equal(a.base.phi, b.base.phi) and torch.equal(a.theta_star, b.theta_star)
    assert not torch.equal(a.base.phi, c.base.phi)


def test_unreachable_targets_are_rejected():
    with pytest.raises(ConfigError, match="target_coverage"):
        linear_softmax(num_responses=4, target_coverage=1e9)
    with pytest.raises(ConfigError, match="r_max"):
        linear_softmax(target_coverage=100.0, beta=0.5, r_max=0.01)
    with pytest.raises(ConfigError, match="beta"):
        linear_softmax(beta=-1.0)
    with pytest.raises(ConfigError, match="num_responses"):
        linear_softmax(num_responses=1)


@pytest.mark.parametrize("c_star,beta", [(8.0, 0.05), (1000.0, 0.1)])
def test_coverage_lower_bound_instance(c_star, beta):
    inst = coverage_lower_bound(num_responses=32, d=8, beta=beta, c_star=c_star, seed=0)
    eps = max(1 / c_star, math.exp(-1 / (2 * beta)))
    ref = inst.base.log_ref.exp()[0]
    y_star = inst.meta["y_star"]
    assert ref[0].item() == pytest.approx(1 - eps) and ref[y_star].item() == pytest.approx(eps)
    assert (ref > 0).sum() == 2
    assert inst.reward.table[0].tolist() == [1.0 if y == y_star else 0.0 for y in range(32)]
    # Exact C_cov = e^{1/β} / (1 − ε + ε e^{1/β}).
    want = math.exp(1 / beta) / (1 - eps + eps * math.exp(1 / beta))
    assert coverage_coefficient(inst) == pytest.approx(want, rel=1e-10)
    # The optimum puts most of its mass on y⋆ and J_β(π⋆_β) = β log E_ref e^{r/β} ≥ 1/2 (App. E).
    from oraclerl.diagnostics import J_beta

    assert J_beta(inst.optimal_log_policy(), inst) == pytest.approx(
        beta * math.log(1 - eps + eps * math.exp(1 / beta))
    )
    assert J_beta(inst.optimal_log_policy(), inst) >= 0.5
