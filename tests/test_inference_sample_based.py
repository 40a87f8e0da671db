"""Sample-based BoN / soft BoN / rejection sampling / Best-of-Poisson through the oracles, checked against
the exact laws by chi-square tests (level 1e-3) on exact memoryless models."""

import itertools
import math

import pytest
import torch
from scipy import stats

from oraclerl.errors import BudgetExceeded, ConfigError
from oraclerl.inference.best_of_n import best_of_n_expected_estimate, best_of_n_law, best_of_poisson_law
from oraclerl.inference.sample_based import (
    BestOfN,
    BestOfNConfig,
    BestOfPoisson,
    BestOfPoissonConfig,
    RejectionSampling,
    RejectionSamplingConfig,
    SoftBestOfN,
    SoftBestOfNConfig,
)
from oraclerl.inference.tilt import tilt
from oraclerl.models.memoryless import AdditiveReward, MemorylessModel, memoryless_alignment
from oraclerl.oracles import Budget, Ledger, RewardOracle, WeakSampler

P = torch.tensor([0.3, 0.1, 0.2, 0.25, 0.15], dtype=torch.float64)
R = torch.tensor([1.0, 3.0, 3.0, 2.0, 0.0], dtype=torch.float64)


def oracles(p=P, r=R, length=1, reveal=("log_probs",), budget=None):
    ledger = Ledger(budget)
    weak = WeakSampler(MemorylessModel(p, length), ledger, reveal=reveal)
    return weak, RewardOracle(AdditiveReward(r, length), ledger)


def chi2_pvalue(ids, probs):
    counts = torch.bincount(ids.reshape(-1), minlength=len(probs)).double()
    keep = probs > 1e-12
    assert counts[~keep].sum() == 0
    return stats.chisquare(counts[keep].numpy(), (probs[keep] * counts.sum()).numpy()).pvalue


def test_best_of_n_matches_exact_law_and_counts_calls():
    weak, reward = oracles()
    prompts = torch.zeros(50, dtype=torch.long)
    out = BestOfN(BestOfNConfig(n=4, num_samples=200)).run(weak, reward, prompts,
                                                           torch.Generator().manual_seed(0))
    assert out.responses.shape == (50, 200, 1) and out.rewards.shape == (50, 200)
    assert out.ledger["t_comp"] == 50 * 200 * 4 and out.ledger["t_data"] == 50 * 200 * 4
    assert chi2_pvalue(out.responses[..., 0], best_of_n_law(P, R, 4).probs) > 1e-3
    # estimator averaged over winners -> E_{π⁽ⁿ⁾} D̂_n(p(y)) (5σ Monte Carlo tolerance)
    est, exact = out.kl_estimate, float(best_of_n_expected_estimate(P, R, 4))
    assert abs(float(est.mean()) - exact) < 5 * float(est.std()) / math.sqrt(50) + 1e-9
    assert out.kl_formula == pytest.approx(math.log(4) - 0.75)


def test_best_of_n_on_token_sequences_and_reveal():
    weak, reward = oracles(P[:3] / P[:3].sum(), R[:3], length=6, reveal=())
    out = BestOfN(BestOfNConfig(n=8, num_samples=100)).run(weak, reward, torch.zeros(20, dtype=torch.long),
                                                           torch.Generator().manual_seed(1))
    assert out.responses.shape == (20, 100, 6) and out.kl_estimate is None
    assert torch.equal(out.rewards, R[:3][out.responses].sum(-1))
    exact = memoryless_alignment(P[:3] / P[:3].sum(), R[:3], 6, 0.0, log_n=math.log(8)).bon_reward * 6
    x = out.rewards.reshape(-1)
    assert abs(float(x.mean()) - exact) < 5 * float(x.std()) / math.sqrt(x.numel())


def test_best_of_n_is_reproducible_and_budgeted():
    cfg = BestOfNConfig(n=3, num_samples=5)
    a = BestOfN(cfg).run(*oracles(), torch.zeros(4, dtype=torch.long), torch.Generator().manual_seed(7))
    b = BestOfN(cfg).run(*oracles(), torch.zeros(4, dtype=torch.long), torch.Generator().manual_seed(7))
    c = BestOfN(cfg).run(*oracles(), torch.zeros(4, dtype=torch.long), torch.Generator().manual_seed(8))
    assert torch.equal(a.responses, b.responses) and torch.equal(a.kl_estimate, b.kl_estimate)
    assert not torch.equal(a.responses, c.responses)
    weak, reward = oracles(budget=Budget(t_comp=10))
    with pytest.raises(BudgetExceeded):
        BestOfN(cfg).run(weak, reward, torch.zeros(4, dtype=torch.long))
    assert weak.ledger.t_comp == 0
    with pytest.raises(ConfigError):
        BestOfN(BestOfNConfig(n=0)).run(*oracles(), torch.zeros(1, dtype=torch.long))


def soft_bon_brute_force(p, r, n, tau):
    out = torch.zeros(len(p), dtype=torch.float64)
    for t in itertools.product(range(len(p)), repeat=n):
        pr = math.prod(float(p[i]) for i in t)
        w = torch.softmax(torch.tensor([float(r[i]) for i in t]) / tau, 0)
        for k, i in enumerate(t):
            out[i] += pr * float(w[k])
    return out


def test_soft_best_of_n_matches_brute_force():
    weak, reward = oracles()
    out = SoftBestOfN(SoftBestOfNConfig(n=3, temperature=0.7, num_samples=500)).run(
        weak, reward, torch.zeros(40, dtype=torch.long), torch.Generator().manual_seed(2)
    )
    law = soft_bon_brute_force(P, R, 3, 0.7)
    assert chi2_pvalue(out.responses[..., 0], law) > 1e-3
    kl = float((law * (law / P).log()).sum())
    assert float(out.kl_estimate.mean()) >= kl  # data-processing bound (far above MC noise here)
    assert out.ledger["t_comp"] == 40 * 500 * 3


def test_rejection_sampling_is_exact():
    weak, reward = oracles()
    beta = 0.8
    out = RejectionSampling(RejectionSamplingConfig(beta=beta, num_samples=300)).run(
        weak, reward, torch.zeros(30, dtype=torch.long), torch.Generator().manual_seed(3)
    )
    target = tilt(P, R, beta=beta)
    assert out.exact.all()
    assert chi2_pvalue(out.responses[..., 0], target.probs) > 1e-3
    assert out.ledger["t_comp"] == int(out.proposals.sum()) == out.ledger["t_data"]
    # mean proposals per acceptance = e^{r_max/β − Λ(1/β)}
    expected = 1 / float((P * torch.exp((R - R.max()) / beta)).sum())
    assert float(out.proposals.sum()) / (30 * 300) == pytest.approx(expected, rel=0.1)
    assert float(out.kl_estimate.mean()) == pytest.approx(float(target.kl), abs=0.02)


def test_rejection_sampling_bound_and_fallback():
    weak, reward = oracles()
    with pytest.raises(ConfigError) as e:
        RejectionSampling(RejectionSamplingConfig(beta=1.0, r_max=2.0)).run(weak, reward,
                                                                            torch.zeros(2, dtype=torch.long),
                                                                            torch.Generator().manual_seed(0))
    assert e.value.field == "r_max"
    out = RejectionSampling(RejectionSamplingConfig(beta=0.01, num_samples=50, proposals_per_round=2,
                                                     max_proposals=4)).run(*oracles(),
                                                                           torch.zeros(3, dtype=torch.long),
                                                                           torch.Generator().manual_seed(0))
    assert not out.exact.all() and (out.proposals == 4).all()
    assert (
        out.rewards[~out.exact] == out.rewards.max(-1, keepdim=True).values.expand_as(out.rewards)[~out.exact]
    ).all()


def test_best_of_poisson_matches_exact_law():
    weak, reward = oracles()
    out = BestOfPoisson(BestOfPoissonConfig(mu=2.5, num_samples=1000)).run(weak, reward,
                                                                           torch.zeros(20, dtype=torch.long),
                                                                           torch.Generator().manual_seed(4))
    assert out.responses.shape == (20, 1000, 1)
    assert chi2_pvalue(out.responses[..., 0], best_of_poisson_law(P, R, 2.5).probs) > 1e-3
    assert out.ledger["t_comp"] == int(out.n_drawn.sum())
    assert float(out.kl_estimate.mean()) >= float(best_of_poisson_law(P, R, 2.5).kl) - 0.02
