"""Memoryless model (Yang et al. 2024): reward law, factorised tilt, best-of-N with N = e^{mδ}, sampling."""

import itertools
import math

import pytest
import torch
from scipy import stats

from oraclerl.errors import ConfigError
from oraclerl.inference.best_of_n import best_of_n_law
from oraclerl.inference.tilt import tilt
from oraclerl.models.memoryless import (
    AdditiveReward,
    MemorylessModel,
    memoryless_alignment,
    reward_distribution,
    sample_bon_sequences,
    sample_tilted_sequences,
)
from oraclerl.oracles import RewardOracle, WeakSampler

P = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
R_LAT = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
R_IRR = torch.tensor([0.0, 1.0, math.sqrt(2) + 0.3], dtype=torch.float64)


def sequences(p, r, m):
    """Brute force: every sequence of 𝒱^m with its probability and reward."""
    seqs = torch.tensor(list(itertools.product(range(len(p)), repeat=m)))
    return seqs, p[seqs].prod(-1), r[seqs].sum(-1)


@pytest.mark.parametrize("r", [R_LAT, R_IRR])
def test_reward_distribution_matches_enumeration(r):
    _, sp, sr = sequences(P, r, 5)
    d = reward_distribution(P, r, 5, method="types")
    for v, lp in zip(d.values.tolist(), d.log_probs.tolist()):
        assert math.exp(lp) == pytest.approx(float(sp[(sr - v).abs() < 1e-9].sum()), rel=1e-12)
    assert float(torch.logsumexp(d.log_probs, 0)) == pytest.approx(0.0, abs=1e-13)
    if r is R_LAT:
        lat = reward_distribution(P, r, 5, method="lattice")
        assert torch.equal(lat.values, d.values) and torch.allclose(lat.log_probs, d.log_probs, atol=1e-12)
    else:
        with pytest.raises(ConfigError):
            reward_distribution(P, r, 5, method="lattice")


@pytest.mark.parametrize("r", [R_LAT, R_IRR])
def test_alignment_matches_sequence_level_brute_force(r):
    m, delta = 4, 0.15
    _, sp, sr = sequences(P, r, m)
    N = math.exp(m * delta)
    bon = best_of_n_law(sp, sr, N)  # best-of-N over the 81 sequences, ties uniform
    seq_tilt = tilt(sp, sr, kl=m * delta)  # KL-constrained optimum on sequences
    a = memoryless_alignment(P, r, m, delta)
    assert a.bon_reward == pytest.approx(float(bon.expected_reward) / m, abs=1e-12)
    assert a.bon_kl == pytest.approx(float(bon.kl) / m, abs=1e-12)
    assert a.tilt_reward == pytest.approx(float(seq_tilt.reward) / m, abs=1e-10)  # the tilt factorises
    assert a.tilt_kl == pytest.approx(delta, abs=1e-12)
    assert a.lam == pytest.approx(float(seq_tilt.lam), rel=1e-8)
    kl_bt = float((bon.probs * (bon.log_probs - seq_tilt.log_probs)).sum())
    assert a.kl_bon_tilt == pytest.approx(kl_bt, abs=1e-10)
    assert a.bon_win_rate == pytest.approx(float(bon.win_rate), abs=1e-12)


def test_asymptotics_per_token_kl_to_tilt_vanishes():
    out = [memoryless_alignment(P, R_LAT, m, 0.2) for m in (1, 10, 100, 1000)]
    per_token = [a.kl_bon_tilt / a.length for a in out]
    assert all(b < a for a, b in zip(per_token, per_token[1:]))
    assert per_token[-1] < 0.005
    assert all(a.bon_kl <= 0.2 for a in out)  # KL ≤ log N − (N−1)/N < mδ
    assert abs(out[-1].bon_reward - out[-1].tilt_reward) < 0.01
    sat = memoryless_alignment(P, R_LAT, 50, 5.0)  # δ ≥ δ_max: both saturate
    assert math.isinf(sat.lam) and sat.tilt_reward == pytest.approx(2.0)
    assert sat.bon_reward == pytest.approx(2.0, abs=1e-9)


@pytest.mark.parametrize("method", ["types", "lattice"])
def test_bon_sequence_sampler_matches_exact_law(method):
    m, log_n = 12, 3.0
    d = reward_distribution(P, R_LAT, m, method=method)
    law = memoryless_alignment(dist=d, delta=0.1, log_n=log_n).bon_law
    seqs = sample_bon_sequences(d, 30_000, torch.Generator().manual_seed(0), log_n=log_n)
    assert seqs.shape == (30_000, m)
    level = torch.searchsorted(d.values, R_LAT[seqs].sum(-1))
    counts = torch.bincount(level, minlength=d.values.numel()).double()
    keep = law.probs * 30_000 > 5
    exp = law.probs * 30_000
    obs = torch.cat([counts[keep], counts[~keep].sum()[None]])
    expv = torch.cat([exp[keep], exp[~keep].sum()[None]])
    assert stats.chisquare(obs.numpy(), expv.numpy()).pvalue > 1e-3
    # within a level, the sequence is p-proportional: token positions exchangeable, first-token law check
    top = seqs[level == int(law.probs.argmax())]
    assert abs(float((top == 2).double().mean(0).std())) < 0.05


def test_model_behind_oracles_and_tilted_sampler():
    model = MemorylessModel(P, 7)
    weak = WeakSampler(model, reveal={"log_probs"})
    reward = RewardOracle(AdditiveReward(R_LAT, 7))
    s = weak.sample(torch.zeros(3, dtype=torch.long), 5, torch.Generator().manual_seed(0))
    assert s.responses.shape == (3, 5, 7)
    assert torch.allclose(s.log_probs, P.log()[s.responses].sum(-1))
    proc = AdditiveReward(R_LAT, 7).process_mean(s.prompts, s.responses)
    assert torch.equal(proc[..., -1], reward.outcome(s.prompts, s.responses))
    assert reward.r_max == 14.0
    tok = sample_tilted_sequences(P, R_LAT, 200, 0.2, 50, torch.Generator().manual_seed(1))
    freq = torch.bincount(tok.reshape(-1), minlength=3).double() / tok.numel()
    assert torch.allclose(freq, tilt(P, R_LAT, kl=0.2).probs, atol=0.02)
    with pytest.raises(ConfigError):
        MemorylessModel(P, 0)
    with pytest.raises(ConfigError):
        memoryless_alignment(P, R_LAT, 5, -0.1)


def test_large_budget_tails_far_below_float_range():
    """N = e^{mδ} with mδ = 1500: the relevant reward levels have p^{⊗m}-mass ≈ e^{−1500}."""
    a = memoryless_alignment(P, R_LAT, 1000, 1.5)
    assert 0.97 * 1.5 < a.bon_kl < 1.5
    assert abs(a.bon_reward - a.tilt_reward) < 0.02
    seqs = sample_bon_sequences(a.dist, 200, torch.Generator().manual_seed(0), log_n=1500.0)
    x = R_LAT[seqs].sum(-1) / 1000
    assert abs(float(x.mean()) - a.bon_reward) < 5 * float(x.std()) / math.sqrt(200) + 1e-3


def test_focused_types_match_the_full_law():
    """Folding types negligible for BoN_N and the tilt (focus) changes nothing at float64 precision."""
    m, delta = 400, 0.3
    full = memoryless_alignment(dist=reward_distribution(P, R_IRR, m, method="types"), delta=delta)
    fast = memoryless_alignment(P, R_IRR, m, delta)
    assert fast.dist.focus is not None and fast.dist.values.numel() < full.dist.values.numel() / 2
    for f in ("bon_reward", "bon_kl", "tilt_reward", "bon_win_rate"):
        assert getattr(fast, f) == pytest.approx(getattr(full, f), abs=1e-12)
    assert fast.kl_bon_tilt == pytest.approx(full.kl_bon_tilt, abs=1e-9)
    seqs = sample_bon_sequences(fast.dist, 3000, torch.Generator().manual_seed(2), log_n=m * delta)
    x = R_IRR[seqs].sum(-1) / m
    assert abs(float(x.mean()) - full.bon_reward) < 5 * float(x.std()) / math.sqrt(3000)
    with pytest.raises(ConfigError):
        memoryless_alignment(dist=fast.dist, delta=0.1)
