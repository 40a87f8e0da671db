"""Token-MDP models and instances (Foster et al. 2025, §5, App. I): exact DP vs brute-force enumeration."""

import math

import pytest
import torch

from oraclerl.errors import ConfigError, RevealError
from oraclerl.models.autoregressive_softmax import (
    enumerate_sequences,
    monte_carlo_value,
    policy_value,
    sequence_log_probs,
    sequence_sums,
    soft_bellman,
    state_occupancy,
)
from oraclerl.problems.token_mdp import coverage_gap_family, random_token_mdp

INSTANCES = [
    lambda: random_token_mdp(num_actions=3, horizon=4, d=4, num_prompts=2, seed=0),
    lambda: random_token_mdp(num_actions=2, horizon=5, d=3, num_prompts=3, num_states=4, seed=1),
    lambda: random_token_mdp(num_actions=4, horizon=3, d=5, num_prompts=1, ref_spread=2.0, seed=2),
    lambda: coverage_gap_family(5, beta=0.3, d=3, num_prompts=2, seed=3),
]


def _brute_optimum(inst):
    """π⋆_β ∝ π_ref·exp(r/β) over whole sequences, and V⋆(x) = β log E_{π_ref} e^{r/β}."""
    log_ref = sequence_log_probs(inst.model)
    r = sequence_sums(inst.model, inst.step_rewards)
    logits = log_ref + r / inst.beta
    return torch.log_softmax(logits, -1), inst.beta * torch.logsumexp(logits, -1), log_ref, r


@pytest.mark.parametrize("make", INSTANCES)
def test_dp_optimum_equals_brute_force_over_sequences(make):
    inst = make()
    brute_logpi, brute_v, _, _ = _brute_optimum(inst)
    dp_seq = sequence_log_probs(inst.model, inst.optimal.log_policy)
    assert torch.allclose(dp_seq, brute_logpi, atol=1e-10)
    assert torch.allclose(inst.optimal.V[0][inst.model.init_state], brute_v, atol=1e-10)
    # J_β(π⋆) = E_x V⋆(x) (Gibbs variational principle)
    J_brute = float((inst.prompt_weights * brute_v).sum())
    assert inst.J_star() == pytest.approx(J_brute, abs=1e-10)
    assert inst.J(inst.optimal.log_policy) == pytest.approx(J_brute, abs=1e-10)


@pytest.mark.parametrize("make", INSTANCES)
def test_policy_value_and_regret_identity_against_enumeration(make):
    inst = make()
    gen = torch.Generator().manual_seed(7)
    tables = [
        torch.log_softmax(2 * torch.randn(lr.shape, generator=gen, dtype=lr.dtype), -1)
        for lr in inst.model.log_ref
    ]
    log_pi = sequence_log_probs(inst.model, tables)
    brute_logpi, _, log_ref, r = _brute_optimum(inst)
    p = log_pi.exp()
    J_x = (p * (r - inst.beta * (log_pi - log_ref))).sum(-1)
    assert inst.J(tables) == pytest.approx(float((inst.prompt_weights * J_x).sum()), abs=1e-10)
    kl = (p * (log_pi - brute_logpi)).sum(-1)  # Lemma H.3: regret = β E_x KL(π ‖ π⋆)
    assert inst.regret(tables) == pytest.approx(
        inst.beta * float((inst.prompt_weights * kl).sum()), abs=1e-10
    )
    # Monte Carlo roll-outs agree with the DP (4 standard errors)
    mc, se = monte_carlo_value(inst.model, inst.step_rewards, tables, inst.prompt_weights, 40000, gen)
    assert abs(mc - inst.J(tables)) <= 4 * se
    # Q^π_1(x, a) = E^π[Σ_h r_h − β Σ_{h≥2} log(π_h/π_{h,ref}) | x, a_1 = a], by enumeration of the suffixes
    Q, _ = policy_value(inst.model, inst.step_rewards, tables)
    m = inst.model
    A, H = m.num_actions, m.horizon
    first = torch.arange(A ** H) // A ** (H - 1)
    s1 = m.init_state
    lp1 = tables[0][s1][:, first]                       # log π_1(a_1|x) per sequence
    lr1 = m.log_ref[0][s1][:, first]
    vals = r - inst.beta * (log_pi - log_ref) + inst.beta * (lp1 - lr1)
    w = (log_pi - lp1).exp()                            # π(a_{2:H} | x, a_1)
    brute_Q = torch.zeros(m.num_prompts, A, dtype=w.dtype).index_add_(1, first, w * vals)
    assert torch.allclose(Q[0][s1], brute_Q, atol=1e-9)
    occ = state_occupancy(inst.model, tables, inst.prompt_weights)
    assert all(float(o.sum()) == pytest.approx(1.0, abs=1e-12) for o in occ)


@pytest.mark.parametrize("make", INSTANCES)
def test_realisability_autoregressive_and_sequence(make):
    """π⋆_{h,β} = π^auto_{h,θ⋆} (Assumption I.1, Eq. 73) and π⋆_β = π^seq_{θ_seq} (Eq. 12)."""
    inst = make()
    m = inst.model
    for h in range(m.horizon):
        auto = torch.log_softmax(m.log_ref[h] + (m.phi[h] @ inst.theta_star[h]) / inst.beta, -1)
        assert torch.allclose(auto, inst.optimal.log_policy[h], atol=1e-9)
        assert float(m.phi[h].norm(dim=-1).max()) <= 1 + 1e-12
        assert float(inst.step_rewards[h].min()) >= 0
    assert float(inst.theta_star.norm(dim=-1).max()) <= inst.B + 1e-12
    seq = inst.sequence_instance()
    brute_logpi, *_ = _brute_optimum(inst)
    linear = seq.base.log_policy(seq.theta_star)
    assert torch.allclose(linear, brute_logpi, atol=1e-9)
    assert torch.allclose(seq.optimal_log_policy(), brute_logpi, atol=1e-9)
    assert float(seq.base.phi.norm(dim=-1).max()) <= 1 + 1e-12
    # the weak sequence oracle (token by token) reveals exactly the sequence instance's features
    s = inst.oracles().weak.sample(torch.tensor([0]), 6, torch.Generator().manual_seed(0))
    A, H = m.num_actions, m.horizon
    idx = (s.responses[0] * A ** torch.arange(H - 1, -1, -1)).sum(-1)
    assert torch.allclose(s.features[0], seq.base.phi[0][idx], atol=1e-12)


def test_oracles_sample_the_model_law_and_count():
    inst = random_token_mdp(num_actions=3, horizon=3, d=3, num_prompts=2, seed=4)
    o = inst.oracles()
    gen = torch.Generator().manual_seed(0)
    n = 60000
    y = o.weak.sample(torch.tensor([1]), n, gen).responses[0]  # [n, H]
    assert o.ledger.t_comp == n
    idx = (y * torch.tensor([9, 3, 1])).sum(-1)
    freq = torch.bincount(idx, minlength=27).double() / n
    p = sequence_log_probs(inst.model)[1].exp()
    # 5-sigma binomial band per sequence
    assert ((freq - p).abs() <= 5 * (p * (1 - p) / n).sqrt() + 1e-12).all()
    # next-token oracle at a prefix, with features and counts; the prefix is reached through the oracle itself
    # (the local simulator continues only from visited states: prefixes of whole sequences drawn by the weak
    # oracle are not states the autoregressive oracle visited)
    a1 = o.auto.next_token(torch.tensor([1]), torch.zeros(1, 0, dtype=torch.long), 1, generator=gen).responses
    a2 = o.auto.next_token(torch.tensor([1]), a1, 1, generator=gen).responses
    prefix = torch.cat([a1, a2], 1)
    s = o.auto.next_token(torch.tensor([1]), prefix, 30000, generator=gen)
    assert o.ledger.t_comp_token == 30002
    state = inst.model.states(torch.tensor([1]), prefix)
    pa = inst.model.log_ref[2][state[0]].exp()
    fa = torch.bincount(s.responses[0], minlength=3).double() / 30000
    assert ((fa - pa).abs() <= 5 * (pa * (1 - pa) / 30000).sqrt()).all()
    assert torch.equal(s.features[0], inst.model.phi[2][state[0]][s.responses[0]])
    # sequence features are (ϕ_1, …, ϕ_H) and the anchor query counts t_feature
    feats = o.weak.sample(torch.tensor([0]), 2, gen).features
    assert feats.shape == (1, 2, 9)
    o.auto.anchor_features(torch.tensor([0, 1]), torch.zeros(2, 0, dtype=torch.long), torch.tensor([0, 0]))
    assert o.ledger.t_feature == 2
    with pytest.raises(RevealError):
        inst.oracles(allow_anchor_features=False).auto.anchor_features(
            torch.tensor([0]), torch.zeros(1, 0, dtype=torch.long), torch.tensor([0])
        )


def test_step_and_sequence_rewards_agree():
    inst = random_token_mdp(num_actions=3, horizon=4, d=3, num_prompts=2, seed=5)
    o = inst.oracles()
    gen = torch.Generator().manual_seed(1)
    prompts = torch.tensor([0, 1, 1])
    y = o.weak.sample(prompts, 5, gen).responses
    proc = o.reward.process(prompts, y)
    assert o.ledger.t_data == 3 * 5 * 4
    for h in range(1, 5):
        o.step_reward.grant(prompts, y[..., :h])  # a prefix alone is not a drawn response: granted, counted
        step = o.step_reward.outcome(prompts, y[..., :h])
        assert torch.allclose(step, proc[..., h - 1])
    assert o.ledger.t_data == 3 * 5 * 4 * 2
    # one grant per distinct proper (prompt, prefix); repeats and the drawn whole sequences (h = 4) are free
    distinct = {
        (int(prompts[b]), tuple(y[b, j, :h].tolist()))
        for b in range(3)
        for j in range(5)
        for h in range(1, 4)
    }
    assert o.ledger.t_grant == len(distinct)
    assert torch.allclose(o.reward.outcome(prompts, y), proc.sum(-1))
    seqs = enumerate_sequences(3, 4)
    assert seqs.shape == (81, 4)


def test_coverage_gap_family_structure():
    inst = coverage_gap_family(6, beta=0.5, p_good=0.25, d=2, num_prompts=2, seed=0)
    logpi = inst.optimal.log_policy
    # π⋆(good) = 2p at every state: the good token has ratio exactly 2
    for h in range(6):
        ratio = (logpi[h] - inst.model.log_ref[h]).exp()
        assert torch.allclose(ratio.max(-1).values, torch.full((4,), 2.0, dtype=ratio.dtype), atol=1e-12)
    assert inst.meta["r_good"] == pytest.approx(0.5 * math.log(3))


def test_reproducible_and_seed_dependent():
    a, b = random_token_mdp(seed=3), random_token_mdp(seed=3)
    c = random_token_mdp(seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.model.phi, b.model.phi))
    assert not torch.equal(a.model.phi[0], c.model.phi[0])
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(
        a.model.sample(torch.tensor([0, 1]), 4, g1), b.model.sample(torch.tensor([0, 1]), 4, g2)
    )


def test_bad_input_fails_fast():
    with pytest.raises(ConfigError, match="p_good"):
        coverage_gap_family(4, p_good=0.5)
    with pytest.raises(ConfigError, match="horizon"):
        random_token_mdp(num_actions=4, horizon=12, num_prompts=2)
    with pytest.raises(ConfigError, match="num_actions"):
        random_token_mdp(num_actions=1)
    with pytest.raises(ConfigError, match="prefixes"):
        inst = random_token_mdp(horizon=3)
        inst.oracles().auto.next_token(torch.tensor([0]), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ConfigError, match="horizon"):
        enumerate_sequences(10, 8)


def test_soft_bellman_handles_long_horizons_with_automata():
    """DP over automaton states is exact where |A|^H is not enumerable (H = 40)."""
    inst = random_token_mdp(num_actions=4, horizon=40, d=4, num_states=8, seed=6)
    Q, V, logpi = soft_bellman(inst.model, inst.step_rewards)
    assert all(torch.isfinite(v).all() for v in V)
    assert inst.regret(logpi) == pytest.approx(0.0, abs=1e-9)
    assert inst.regret(inst.model.log_ref) > 0
