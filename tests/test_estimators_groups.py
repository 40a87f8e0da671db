"""Group advantage estimators: exact group enumeration vs a brute-force loop over groups, vs the two-point
closed form, the unbiasedness identities, autograd of the exact objectives, and Monte Carlo through the
oracles (negative control: the same test rejects GRPO's expectation as the true gradient)."""

import itertools
import math

import pytest
import torch

from oraclerl.diagnostics.estimators.groups import (
    group_gradient_moments,
    max_of_k_gradient,
    policy_gradient_exact,
    sampled_group_moments,
    two_point_gain,
)
from oraclerl.diagnostics.estimators.score_tables import linear_ar_table, linear_softmax_table
from oraclerl.errors import ConfigError
from oraclerl.models.linear_ar import ContextBigramFeatures, LinearARModel
from oraclerl.models.linear_softmax import LinearSoftmaxModel
from oraclerl.models.rewards import TableReward
from oraclerl.oracles import RewardOracle, WeakSampler
from oraclerl.posttrain.advantages import ALL_ESTIMATORS, advantages

TOL = 1e-12


def _instance(seed=0, X=3, Y=4, d=3, p_success=0.4):
    g = torch.Generator().manual_seed(seed)
    lr = torch.log_softmax(torch.randn(X, Y, generator=g, dtype=torch.float64), -1)
    model = LinearSoftmaxModel(lr, torch.randn(X, Y, d, generator=g, dtype=torch.float64), 1.0)
    theta = torch.randn(d, generator=g, dtype=torch.float64)
    R = (torch.rand(X, Y, generator=g) < p_success).double()
    R[:, 0], R[:, 1] = 1.0, 0.0                                          # every prompt has both outcomes
    return model, theta, linear_softmax_table(model, theta), R


def _kw(est):
    return {"k": 2} if est == "pass_at_k" else {}


def _brute(log_q, R, score, n, est, process=False):
    """E ĝ and E‖ĝ‖² by an explicit Python loop over every group (one advantages() call per group)."""
    X, Y = log_q.shape
    mean = torch.zeros(score.shape[-1], dtype=torch.float64)
    second = 0.0
    for x in range(X):
        for grp in itertools.product(range(Y), repeat=n):
            idx = torch.tensor(grp)
            prob = math.exp(float(log_q[x, idx].sum()))
            A = advantages(R[x, idx][None], est, **_kw(est))[0]
            g = (torch.einsum("nh,nhd->d", A, score[x, idx]) if process else A @ score[x, idx]) / n
            mean += prob * g / X
            second += prob * float(g @ g) / X
    return mean, second


@pytest.mark.parametrize("est", ALL_ESTIMATORS)
def test_enumeration_matches_brute_force(est):
    _, _, t, R = _instance()
    m = group_gradient_moments(t.seq_log_q, R, t.seq_score, 3, est, block=7, **_kw(est))
    mean, second = _brute(t.seq_log_q, R, t.seq_score, 3, est)
    assert torch.allclose(m.mean, mean, atol=TOL)
    assert m.var_total == pytest.approx(second - float(mean @ mean), abs=1e-10)
    assert m.groups == 4 ** 3


@pytest.mark.parametrize("est", ["none", "batch_mean", "leave_one_out", "group_normalised"])
def test_process_rewards_match_brute_force(est):
    g = torch.Generator().manual_seed(3)
    fm = ContextBigramFeatures(2, 2)
    pol = LinearARModel(fm, 2, torch.randn(fm.dim, generator=g), dtype=torch.float64)
    t = linear_ar_table(pol, pol, torch.randn(2, 2, generator=g, dtype=torch.float64))
    Rp = torch.randn(2, 4, 2, generator=g, dtype=torch.float64)               # [X, S, H] per-prefix rewards
    m = group_gradient_moments(t.seq_log_q, Rp, t.score, 3, est, block=5)
    mean, second = _brute(t.seq_log_q, Rp, t.score, 3, est, process=True)
    assert torch.allclose(m.mean, mean, atol=TOL)
    assert m.var_total == pytest.approx(second - float(mean @ mean), abs=1e-10)


@pytest.mark.parametrize("est", ALL_ESTIMATORS)
def test_two_point_closed_form(est):
    """Binary rewards: E[ĝ|x] = c(p_x, n)·∇p_x, c from the binomial sum (independent of the enumeration)."""
    _, _, t, R = _instance(seed=1)
    q = t.seq_log_q.exp()
    p = (q * R).sum(1)
    grad_p = torch.einsum("xy,xy,xyd->xd", q, R, t.seq_score)
    for n in (2, 4):
        m = group_gradient_moments(t.seq_log_q, R, t.seq_score, n, est, **_kw(est))
        c = two_point_gain(est, n, p, **_kw(est))
        assert torch.allclose(m.per_prompt, c[:, None] * grad_p, atol=TOL), (est, n)


def test_unbiasedness_identities_and_autograd():
    model, theta, t, R = _instance(seed=2)
    gJ = policy_gradient_exact(t.seq_log_q, R, t.seq_score)
    th = theta.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad((model.log_policy(th).exp() * R).sum(1).mean(), th)
    assert torch.allclose(gJ, auto, atol=TOL)
    n = 4
    mom = {
        e: group_gradient_moments(t.seq_log_q, R, t.seq_score, n, e, **_kw(e)).mean for e in ALL_ESTIMATORS
    }
    assert torch.allclose(mom["none"], gJ, atol=TOL) and torch.allclose(mom["leave_one_out"], gJ, atol=TOL)
    assert torch.allclose(mom["dr_grpo"], (n - 1) / n * gJ, atol=TOL)
    assert torch.allclose(mom["batch_mean"], mom["dr_grpo"], atol=TOL)         # one-prompt batch
    for k in (1, 2, 3):
        gk = max_of_k_gradient(t.seq_log_q, R, t.seq_score, k)
        got = group_gradient_moments(t.seq_log_q, R, t.seq_score, n, "pass_at_k", k=k).mean
        assert torch.allclose(got, gk, atol=TOL)
        th = theta.clone().requires_grad_(True)
        q = model.log_policy(th).exp()
        fail = ((1 - R) * q).sum(1)
        (auto,) = torch.autograd.grad((1 - fail ** k).mean(), th)               # pass@k = 1 − (1 − p)^k
        assert torch.allclose(gk, auto, atol=TOL)
    # negative control: GRPO's expectation is not proportional to ∇J on heterogeneous prompts
    cos = float(mom["group_normalised"] @ gJ / (mom["group_normalised"].norm() * gJ.norm()))
    assert cos < 1 - 1e-6


def test_max_of_k_with_real_rewards_matches_autograd():
    model, theta, t, _ = _instance(seed=5)
    R = torch.randn(t.seq_log_q.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    R[0, 1] = R[0, 2]                                                           # a tie
    th = theta.clone().requires_grad_(True)
    q = model.log_policy(th).exp()
    k = 3  # E max of k = Σ over ordered k-tuples, written out
    emax = (
        sum(
            torch.stack(
                [
                    q[:, i] * q[:, j] * q[:, l] * torch.maximum(torch.maximum(R[:, i], R[:, j]), R[:, l])
                    for i, j, l in itertools.product(range(q.shape[1]), repeat=3)
                ]
            ).sum(0)
        )
        / q.shape[0]
    )
    (auto,) = torch.autograd.grad(emax.sum(), th)
    assert torch.allclose(max_of_k_gradient(t.seq_log_q, R, t.seq_score, k), auto, atol=TOL)


def test_monte_carlo_through_the_oracles_with_negative_control():
    """Groups drawn by a WeakSampler over π_θ, rewards by a RewardOracle, advantages by advantages(), the
    estimate built from the closed-form score: its mean matches the exact expectation (|z| ≤ 4.5 per
    coordinate with the exact per-prompt variances); GRPO's Monte Carlo mean is rejected as ∇J."""
    model, theta, t, R = _instance(seed=6, X=2, Y=4, p_success=0.1)
    R[0] = torch.tensor([1.0, 0, 0, 0])
    sampler = WeakSampler(LinearSoftmaxModel(model.log_policy(theta), model.phi, model.beta), reveal=())
    reward = RewardOracle(TableReward(R), sampler.ledger)
    n, B = 4, 20000
    prompts = torch.arange(2).repeat(B // 2)
    gen = torch.Generator().manual_seed(1)
    y = sampler.sample(prompts, n, gen).responses                               # [B, n]
    r = reward.outcome(prompts, y)
    sig = t.seq_score[prompts[:, None], y]                                     # [B, n, d]
    gJ = policy_gradient_exact(t.seq_log_q, R, t.seq_score)
    for est in ("leave_one_out", "group_normalised"):
        ghat = torch.einsum("bn,bnd->bd", advantages(r, est), sig) / n
        exact = group_gradient_moments(t.seq_log_q, R, t.seq_score, n, est)
        se = ghat.std(0) / math.sqrt(B)
        z = (ghat.mean(0) - exact.mean) / se
        assert z.abs().max() < 4.5, (est, z)
        assert float(ghat.var(0).sum()) == pytest.approx(exact.var_total, rel=0.1)
        z_true = ((ghat.mean(0) - gJ) / se).abs().max()
        assert (z_true > 4.5) == (est == "group_normalised"), (est, z_true)
    assert sampler.ledger.snapshot()["t_comp"] == B * n


def test_bad_input_and_limits():
    _, _, t, R = _instance()
    with pytest.raises(ConfigError, match="max_groups"):
        group_gradient_moments(t.seq_log_q, R, t.seq_score, 11, "none")
    with pytest.raises(ConfigError, match="estimator"):
        group_gradient_moments(t.seq_log_q, R, t.seq_score, 2, "ppo")
    with pytest.raises(ConfigError, match="rewards"):
        group_gradient_moments(t.seq_log_q, R[:, :2], t.seq_score, 2, "none")
    with pytest.raises(ConfigError, match="k"):
        advantages(torch.zeros(2, 3), "pass_at_k", k=4)
    with pytest.raises(ConfigError, match="n >= 2"):
        advantages(torch.zeros(2, 1), "dr_grpo")
    # a user-defined estimator (callable) runs through the same enumeration
    m = group_gradient_moments(t.seq_log_q, R, t.seq_score, 2, lambda r: 2 * r)
    assert torch.allclose(m.mean, 2 * policy_gradient_exact(t.seq_log_q, R, t.seq_score), atol=TOL)


def test_sampled_groups_beyond_enumeration():
    """6^16 groups cannot be enumerated; RLOO's Monte Carlo mean still matches the exact ∇J (identity:
    unbiased) and Dr. GRPO's matches (n−1)/n·∇J, |z| ≤ 4.5 per coordinate; GRPO's is rejected as ∇J. At an
    enumerable n the sampled and enumerated moments agree."""
    _, _, t, R = _instance(seed=7, X=3, Y=6)
    gJ = policy_gradient_exact(t.seq_log_q, R, t.seq_score)
    gen = torch.Generator().manual_seed(2)
    n = 16
    with pytest.raises(ConfigError, match="max_groups"):
        group_gradient_moments(t.seq_log_q, R, t.seq_score, n, "leave_one_out")
    for est, target, ok in (("leave_one_out", gJ, True), ("dr_grpo", (n - 1) / n * gJ, True),
                            ("group_normalised", gJ, False)):
        mean, se, _ = sampled_group_moments(t.seq_log_q, R, t.seq_score, n, est, groups=20000, generator=gen)
        assert (((mean - target) / se).abs().max() < 4.5) == ok, est
    exact = group_gradient_moments(t.seq_log_q, R, t.seq_score, 3, "group_normalised")
    mean, se, var = sampled_group_moments(t.seq_log_q, R, t.seq_score, 3, "group_normalised", groups=20000,
                                          generator=gen)
    assert ((mean - exact.mean) / se).abs().max() < 4.5
    assert var == pytest.approx(exact.var_total, rel=0.1)
