"""Exact linear-softmax models: closed forms vs brute-force enumeration vs Monte Carlo through the oracles."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from oraclerl.diagnostics import J_beta, coverage_coefficient, kl_divergence, regret
from oraclerl.errors import ConfigError
from oraclerl.models import LinearSoftmaxModel, sample_from_log_probs
from oraclerl.oracles import StrongSampler, WeakSampler
from oraclerl.problems import linear_softmax


def brute_policy(log_ref, phi, theta, beta):
    """π_θ(y|x) by explicit loops in NumPy (independent of the tensor code)."""
    X, Y, _ = phi.shape
    out = np.zeros((X, Y))
    for x in range(X):
        w = [math.exp(log_ref[x, y]) * math.exp(float(np.dot(theta, phi[x, y])) / beta) for y in range(Y)]
        z = sum(w)
        out[x] = [v / z for v in w]
    return out


def test_log_policy_matches_brute_force():
    inst = linear_softmax(d=3, num_prompts=4, num_responses=6, beta=0.7, target_coverage=3.0, seed=1)
    theta = torch.tensor([0.3, -0.5, 0.9], dtype=torch.float64)
    got = inst.base.log_policy(theta).exp().numpy()
    want = brute_policy(inst.base.log_ref.numpy(), inst.base.phi.numpy(), theta.numpy(), 0.7)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    # Per-prompt θ gives the same rows as a shared θ.
    prompts = torch.tensor([2, 0, 2])
    rows = inst.base.log_policy(theta.expand(3, 3), prompts)
    torch.testing.assert_close(rows, inst.base.log_policy(theta)[prompts])


def test_optimum_is_pi_theta_star_under_realisability():
    inst = linear_softmax(d=5, num_prompts=8, num_responses=32, beta=0.3, target_coverage=10.0, seed=2)
    torch.testing.assert_close(
        inst.optimal_log_policy(), inst.base.log_policy(inst.theta_star), atol=1e-10, rtol=0
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regret_identity_on_random_policies(seed):
    """J_β(π⋆_β) − J_β(π) = β·E_x KL(π ‖ π⋆_β) (Foster et al. Lemma H.3) for random π."""
    inst = linear_softmax(d=4, num_prompts=5, num_responses=12, beta=0.4, target_coverage=5.0, seed=seed)
    g = torch.Generator().manual_seed(seed)
    for _ in range(5):
        log_pi = torch.log_softmax(2.0 * torch.randn(5, 12, generator=g, dtype=torch.float64), -1)
        direct = J_beta(inst.optimal_log_policy(), inst) - J_beta(log_pi, inst)
        via_kl = inst.beta * kl_divergence(log_pi, inst.optimal_log_policy()).mean().item()
        assert direct == pytest.approx(via_kl, rel=1e-9, abs=1e-12)
        assert regret(log_pi, inst) == pytest.approx(direct, rel=1e-9, abs=1e-12)
    assert regret(inst.optimal_log_policy(), inst) == pytest.approx(0.0, abs=1e-12)
    # π⋆ maximises J_β: any other policy is worse.
    assert regret(inst.base.log_ref, inst) > 0


def test_J_beta_matches_enumeration():
    inst = linear_softmax(d=2, num_prompts=3, num_responses=4, beta=0.5, target_coverage=2.0, seed=3)
    log_pi = inst.base.log_policy(torch.tensor([0.2, 0.1], dtype=torch.float64))
    p, ref, r = log_pi.exp().numpy(), inst.base.log_ref.exp().numpy(), inst.reward.table.numpy()
    want = np.mean(
        [sum(p[x, y] * (r[x, y] - 0.5 * math.log(p[x, y] / ref[x, y])) for y in range(4)) for x in range(3)]
    )
    assert J_beta(log_pi, inst) == pytest.approx(want, rel=1e-12)


def test_coverage_matches_enumeration():
    inst = linear_softmax(d=3, num_prompts=4, num_responses=9, beta=0.5, target_coverage=4.0, seed=4)
    star, ref = inst.optimal_log_policy().exp().numpy(), inst.base.log_ref.exp().numpy()
    want = max(star[x, y] / ref[x, y] for x in range(4) for y in range(9))
    assert coverage_coefficient(inst) == pytest.approx(want, rel=1e-10)


def _chi2_pvalue(samples: np.ndarray, probs: np.ndarray) -> float:
    counts = np.bincount(samples, minlength=probs.size)
    keep = probs * samples.size >= 5
    obs = np.append(counts[keep], counts[~keep].sum())
    exp = np.append(probs[keep], probs[~keep].sum()) * samples.size
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    return stats.chisquare(obs, exp).pvalue


def test_weak_and_strong_samplers_follow_exact_laws(gen):
    """Chi-square goodness of fit at level 1e-3 for π_ref and π_θ through the oracles."""
    inst = linear_softmax(d=3, num_prompts=2, num_responses=10, beta=0.5, target_coverage=4.0, seed=5)
    weak, strong = WeakSampler(inst.base), StrongSampler(inst.base)
    s = weak.sample(torch.tensor([1]), 20000, gen)
    assert _chi2_pvalue(s.responses[0].numpy(), inst.base.log_ref[1].exp().numpy()) > 1e-3
    theta = inst.theta_star
    s = strong.sample(torch.tensor([0]), theta, 20000, gen)
    assert _chi2_pvalue(s.responses[0].numpy(), inst.base.log_policy(theta)[0].exp().numpy()) > 1e-3
    # Monte Carlo J_β of π_θ⋆ (reward mean minus β·KL estimated from samples) agrees with the exact value.
    prompts = torch.arange(2).repeat_interleave(1)
    s = strong.sample(prompts, theta, 20000, gen)
    r = inst.reward.mean(prompts, s.responses)
    logratio = inst.base.tilted_log_prob(prompts, s.responses, theta) - inst.base.ref_log_prob(
        prompts, s.responses
    )
    mc = (r - inst.beta * logratio).mean().item()
    exact = J_beta(inst.base.log_policy(theta), inst)
    se = (r - inst.beta * logratio).std().item() / math.sqrt(r.numel())
    assert abs(mc - exact) < 5 * se


def test_sampling_never_returns_zero_mass_responses(gen):
    log_p = torch.log(torch.tensor([[0.0, 0.5, 0.0, 0.5]], dtype=torch.float64))
    idx = sample_from_log_probs(log_p, 5000, gen)
    assert set(idx.unique().tolist()) <= {1, 3}


def test_million_pairs_batched():
    """10^6 (prompt, response) pairs with d = 64 run batched (timing lives in benchmarks/)."""
    g = torch.Generator().manual_seed(0)
    X, Y, d = 16, 65536, 64
    phi = torch.randn(X, Y, d, generator=g, dtype=torch.float32)
    phi = phi / phi.norm(dim=-1, keepdim=True)
    model = LinearSoftmaxModel(torch.log_softmax(torch.randn(X, Y, generator=g), -1), phi, beta=0.5)
    theta = torch.randn(d, generator=g)
    lp = model.log_policy(theta)
    assert lp.shape == (X, Y) and torch.isfinite(lp).all()
    torch.testing.assert_close(lp.logsumexp(-1), torch.zeros(X), atol=1e-4, rtol=0)
    y = model.sample_tilted(torch.arange(X), theta, 128, g)
    assert y.shape == (X, 128)


def test_bad_inputs_are_rejected():
    log_ref = torch.log_softmax(torch.randn(2, 3), -1)
    with pytest.raises(ConfigError, match="beta"):
        LinearSoftmaxModel(log_ref, torch.zeros(2, 3, 4), beta=0.0)
    with pytest.raises(ConfigError, match="log_ref"):
        LinearSoftmaxModel(torch.log(torch.full((2, 3), 0.5)), torch.zeros(2, 3, 4), beta=1.0)
    with pytest.raises(ConfigError, match="phi"):
        LinearSoftmaxModel(log_ref, torch.zeros(2, 4, 4), beta=1.0)
    model = LinearSoftmaxModel(log_ref, torch.zeros(2, 3, 4), beta=1.0)
    with pytest.raises(ConfigError, match="theta"):
        model.log_policy(torch.zeros(5))
