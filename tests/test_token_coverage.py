"""Exact C_cond (Eq. 13) and C_cov (Eq. 3) on token MDPs vs brute-force enumeration."""

import math

import pytest
import torch

from oraclerl.diagnostics.token_coverage import (
    conditional_coverage,
    log_conditional_coverage,
    log_sequence_coverage,
    reachable_states,
    sequence_coverage,
)
from oraclerl.models.autoregressive_softmax import enumerate_sequences, sequence_log_probs
from oraclerl.problems.token_mdp import coverage_gap_family, random_token_mdp


def _brute_conditional(inst, log_pi_seq, log_ref_seq):
    """max over h, prefixes a_{1:h} of π(a_h|a_{<h})/π_ref(a_h|a_{<h}) from the whole-sequence laws only."""
    A, H = inst.num_actions, inst.horizon
    best = -math.inf
    for x in range(inst.model.num_prompts):
        p = log_pi_seq[x].reshape((A,) * H)
        q = log_ref_seq[x].reshape((A,) * H)
        for h in range(1, H + 1):
            # marginal of a_{1:h}: logsumexp over the suffix axes
            mp = torch.logsumexp(p.reshape(A ** h, -1), -1).reshape((A,) * h)
            mq = torch.logsumexp(q.reshape(A ** h, -1), -1).reshape((A,) * h)
            cp = mp - torch.logsumexp(mp, -1, keepdim=True)  # π(a_h | a_{<h})
            cq = mq - torch.logsumexp(mq, -1, keepdim=True)
            best = max(best, float((cp - cq).max()))
    return best


CASES = [
    lambda: random_token_mdp(num_actions=3, horizon=4, d=4, num_prompts=2, seed=0),
    lambda: random_token_mdp(num_actions=2, horizon=6, d=3, num_prompts=2, num_states=3, seed=1),
    lambda: random_token_mdp(num_actions=4, horizon=3, d=3, num_prompts=3, ref_spread=2.5, seed=2),
    lambda: coverage_gap_family(7, beta=0.4, d=2, num_prompts=2, seed=5),
]


@pytest.mark.parametrize("make", CASES)
def test_exact_coverages_equal_brute_force(make):
    inst = make()
    m = inst.model
    log_ref_seq = sequence_log_probs(m)
    for log_pi in (
        inst.optimal.log_policy,
        [
            torch.log_softmax(
                lr + torch.randn(lr.shape, generator=torch.Generator().manual_seed(h), dtype=lr.dtype), -1
            )
            for h, lr in enumerate(m.log_ref)
        ],
    ):
        log_pi_seq = sequence_log_probs(m, log_pi)
        brute_cov = float((log_pi_seq - log_ref_seq).max())
        assert log_sequence_coverage(m, log_pi, inst.prompt_weights) == pytest.approx(brute_cov, abs=1e-9)
        brute_cond = _brute_conditional(inst, log_pi_seq, log_ref_seq)
        assert log_conditional_coverage(m, log_pi, inst.prompt_weights) == pytest.approx(brute_cond, abs=1e-9)
    c_cond, c_cov = conditional_coverage(inst), sequence_coverage(inst)
    assert c_cond >= 1.0 and 1.0 - 1e-12 <= c_cov <= c_cond ** inst.horizon * (1 + 1e-9)


@pytest.mark.parametrize("H", [1, 4, 10, 16])
def test_family_separates_token_and_sequence_coverage(H):
    """C_cond(π⋆_β) ≤ 2 while C_cov(π⋆_β) ≥ 2^H (the claim after Eq. 13)."""
    inst = coverage_gap_family(H, beta=0.5, d=3, num_prompts=2, seed=H)
    assert conditional_coverage(inst) == pytest.approx(2.0, rel=1e-12)
    assert sequence_coverage(inst) == pytest.approx(2.0 ** H, rel=1e-10)


def test_prompt_weights_restrict_the_supremum():
    inst = random_token_mdp(num_actions=3, horizon=3, d=3, num_prompts=2, seed=8)
    logpi = inst.optimal.log_policy
    per_prompt = [log_sequence_coverage(inst.model, logpi, torch.tensor([1.0, 0.0], dtype=torch.float64)),
                  log_sequence_coverage(inst.model, logpi, torch.tensor([0.0, 1.0], dtype=torch.float64))]
    assert log_sequence_coverage(inst.model, logpi, inst.prompt_weights) == pytest.approx(max(per_prompt))
    reach = reachable_states(inst.model, torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert int(reach[0].sum()) == 1 and int(reach[2].sum()) == 9
    assert enumerate_sequences(3, 3).shape[0] == 27
