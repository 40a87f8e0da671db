"""The implicit prefix-tree token MDP (issue 15 item 4: MTSS at H = 12, |A| = 4 in bounded memory).

`prefix_tree_token_mdp` computes every per-prefix table on demand and evaluates the exact DP in blocks of
states. Each test checks it against an independent computation on the same instance: its materialised dense
tables (`dense()`, the `AutoregressiveSoftmaxModel` / `soft_bellman` / `policy_value` code path), brute-force
enumeration of A^H, and MTSS run on both models with the same seed (bit-identical oracles).
"""

import math

import pytest
import torch

from oraclerl.errors import ConfigError
from oraclerl.explore.mtss import MTSS, MTSSConfig
from oraclerl.models.autoregressive_softmax import sequence_log_probs, sequence_sums, soft_bellman
from oraclerl.problems.token_mdp import prefix_tree_token_mdp


def _inst(pool=16, chunk=7, **kw):
    args = dict(num_actions=3, horizon=4, d=4, num_prompts=2, seed=1)
    args.update(kw)
    return prefix_tree_token_mdp(pool=pool, chunk=chunk, **args)


@pytest.mark.parametrize("pool", [1 << 14, 16, 5])
def test_exact_values_match_dense_tables_and_enumeration(pool):
    """J⋆, J(π_ref) and J(π⋆) of the chunked DP equal the dense DP's and the enumeration of all 3^4
    sequences (1e-12); π⋆ is realisable with θ⋆ (Assumption I.1) on the dense tables; chunking changes
    nothing (bitwise)."""
    imp = _inst(pool=pool)
    den = imp.dense()
    m = den.model
    j_star = imp.J_star()
    assert j_star == pytest.approx(den.J_star(), abs=1e-12)
    logits = sequence_log_probs(m) + sequence_sums(m, den.step_rewards) / m.beta
    brute = float((den.prompt_weights * m.beta * torch.logsumexp(logits, -1)).sum())
    assert j_star == pytest.approx(brute, abs=1e-12)
    j_ref, j_opt = imp.J_many(["ref", "optimal"])
    assert j_ref == pytest.approx(den.J(m.log_ref), abs=1e-12)
    assert j_opt == pytest.approx(j_star, abs=1e-12)
    assert j_star - j_ref > 0.01
    _, _, logpi = soft_bellman(m, den.step_rewards)
    for h in range(m.horizon):
        auto = torch.log_softmax(m.log_ref[h] + m.phi[h] @ imp.theta_star[h] / m.beta, -1)
        assert float((auto - logpi[h]).abs().max()) < 1e-12
    assert imp.B == pytest.approx(float(imp.theta_star.norm(dim=-1).max()))
    whole = _inst(pool=pool, chunk=1 << 16)
    assert whole.J_many(["ref", "optimal"]) == [j_ref, j_opt]


def test_types_pool_and_stored_memory():
    """Layers with S_h ≤ pool give every prefix its own row; beyond, rows are hashed into the pool (all in
    range, several used); the last feature coordinate still differs per prefix; one float64 per prefix is
    stored."""
    imp = _inst(pool=8, num_actions=2, horizon=6, d=3, num_prompts=1)
    m = imp.model
    assert m.num_states == [1, 2, 4, 8, 16, 32]
    for h in range(4):
        assert torch.equal(m.types(h, torch.arange(m.num_states[h])), torch.arange(m.num_states[h]))
        assert m.log_ref_pool[h].shape[0] == m.num_states[h]
    for h in (4, 5):
        k = m.types(h, torch.arange(m.num_states[h]))
        assert m.log_ref_pool[h].shape[0] == 8 and int(k.min()) >= 0 and int(k.max()) < 8
        assert k.unique().numel() >= 4
    k4 = m.types(4, torch.arange(16))
    # V⋆ sums the subtree: per prefix, not per type
    assert m.values[4].unique().numel() > k4.unique().numel()
    r = m.rows(3, torch.arange(8))
    assert torch.equal(r.phi[:, :, -1].reshape(-1), (m.values[4] - m.centre[3]) / m.coef)
    assert [v.numel() for v in m.values] == m.num_states
    assert imp.meta["prefix_values_bytes"] == 8 * sum(m.num_states)


def test_oracles_and_mtss_are_bit_identical_on_the_implicit_and_dense_models():
    """MTSS through the oracles of both models with one seed: same ledger, θ, Σ⁻¹ and uncertainties, bitwise;
    the chunked regret of π̂ equals the dense regret of its tables for both laws (1e-12)."""
    imp = _inst(pool=4, chunk=5, horizon=3)
    den = imp.dense()
    out = []
    for inst in (imp, den):
        o = inst.oracles()
        out.append(MTSS(MTSSConfig(T=3, B=inst.B)).run(o.auto, o.step_reward, o.prompts,
                                                       torch.Generator().manual_seed(0), keep_iterates=True))
    a, b = out
    assert a.ledger == b.ledger and a.transitions == b.transitions and a.uncertainty == b.uncertainty
    for p, q in zip(a.iterates, b.iterates):
        assert torch.equal(p.theta, q.theta) and torch.equal(p.sigma_inv, q.sigma_inv)
    for law in ("sampler", "target"):
        assert imp.regret(a.policy, law) == pytest.approx(
            den.regret(b.policy.log_prob_tables(den.model, law=law)), abs=1e-12)
    assert imp.regret(a.policy) > -1e-12                            # π⋆ is optimal


def test_model_protocol_matches_the_dense_model():
    """States, features, log-probabilities, weak and strong draws (same generator) and step rewards agree
    with the dense model at random prefixes of every length."""
    imp = _inst(pool=5)
    den = imp.dense()
    gen = torch.Generator().manual_seed(3)
    for L in range(imp.horizon):
        B = 6
        prompts = torch.randint(0, 2, (B,), generator=gen)
        prefixes = torch.randint(0, 3, (B, L), generator=gen)
        tokens = torch.randint(0, 3, (B, 5), generator=gen)
        theta = torch.randn(4, generator=gen, dtype=torch.float64)
        im, dm = imp.model, den.model
        assert torch.equal(im.states(prompts, prefixes), dm.states(prompts, prefixes))
        assert torch.equal(
            im.step_features(prompts, prefixes, tokens), dm.step_features(prompts, prefixes, tokens)
        )
        assert torch.equal(
            im.next_log_prob(prompts, prefixes, tokens), dm.next_log_prob(prompts, prefixes, tokens)
        )
        assert torch.allclose(im.next_log_prob(prompts, prefixes, tokens, theta),
                              dm.next_log_prob(prompts, prefixes, tokens, theta), atol=1e-12, rtol=0)
        for th in (None, theta):
            g1, g2 = torch.Generator().manual_seed(L), torch.Generator().manual_seed(L)
            assert torch.equal(
                im.sample_next(prompts, prefixes, 7, g1, th), dm.sample_next(prompts, prefixes, 7, g2, th)
            )
        full = torch.cat([prefixes, tokens[:, :1]], 1)[:, None, :]
        assert torch.equal(imp.step_reward.mean(prompts, full), den.step_reward.mean(prompts, full))
    assert imp.step_reward.r_max == pytest.approx(den.step_reward.r_max)


def test_bad_input_is_one_clear_error():
    with pytest.raises(ConfigError, match="pool"):
        prefix_tree_token_mdp(horizon=3, pool=0)
    with pytest.raises(ConfigError, match="horizon"):
        prefix_tree_token_mdp(num_actions=4, horizon=20)
    with pytest.raises(ConfigError, match="horizon"):
        _inst().dense(max_states=10)
    with pytest.raises(ConfigError, match="policy"):
        _inst().J("uniform")
    with pytest.raises(ConfigError, match="policy"):
        _inst().J(3.0)
    with pytest.raises(ConfigError, match="prefixes"):
        _inst().step_reward.mean(torch.tensor([0]), torch.zeros(1, 1, 5, dtype=torch.long))
    assert math.isfinite(_inst(horizon=1).J_star())
