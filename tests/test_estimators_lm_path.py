"""The LM-path test oracle: LMPolicyGradient.step (the transformers backend's policy gradient, with its
advantages and per-token KL penalty) runs unchanged on an exact linear AR model; the Monte Carlo mean of its
gradient matches the exact expectation, and the same z-test rejects the expectations of other placements."""

import math

import pytest
import torch

from oraclerl.diagnostics.estimators.kl_gradients import kl_gradient_moments
from oraclerl.diagnostics.estimators.lm_path import (
    ExactLMPolicy,
    SequenceTableReward,
    exact_step_gradient,
    exact_table,
    step_gradients,
)
from oraclerl.models.linear_ar import ContextBigramFeatures, LinearARModel
from oraclerl.oracles import PromptSource, RewardOracle, WeakSampler
from oraclerl.posttrain.lm_pg import LMPGConfig, LMPolicyGradient

Z_MAX = 4.5  # per coordinate, 15 coordinates: false alarm < 1e-4 under the CLT


def _setup(seed=0, X=3, d=2, k=3, H=3):
    g = torch.Generator().manual_seed(seed)
    fm = ContextBigramFeatures(d, k)
    ctx = torch.randn(X, d, generator=g, dtype=torch.float64)
    pol = ExactLMPolicy(
        LinearARModel(fm, H, 0.8 * torch.randn(fm.dim, generator=g), dtype=torch.float64), ctx
    )
    ref = ExactLMPolicy(
        LinearARModel(fm, H, 0.8 * torch.randn(fm.dim, generator=g), dtype=torch.float64), ctx
    )
    table = exact_table(pol, ref)
    outcome = (torch.rand(X, k ** H, generator=g) < 0.3).double()
    # [X, H] a correct answer
    target = table.sequences[torch.randint(k ** H, (X,), generator=g)]
    prefix_ok = torch.cumprod((table.sequences[None] == target[:, None]).double(), -1)  # [X, S, H] {0,1} PRM
    return pol, ref, table, outcome, prefix_ok


def _z(grads, exact):
    se = grads.std(0) / math.sqrt(grads.shape[0])
    return ((grads.mean(0) - exact) / se).abs().max().item()


@pytest.mark.parametrize("reward_kind,advantage,kl_coef,kl_estimator", [
    ("outcome", "leave_one_out", 1.0, "k3"),
    ("outcome", "group_normalised", 0.5, "k1"),
    ("process", "none", 1.0, "k2"),
])
def test_lm_step_matches_exact_expectation(reward_kind, advantage, kl_coef, kl_estimator):
    pol, ref, table, outcome, prefix_ok = _setup()
    n, B, T = 3, 1024, 40
    cfg = LMPGConfig(steps=1, batch_size=B, group_size=n, reward=reward_kind, advantage=advantage,
                     optimizer="sgd", lr=1.0, max_grad_norm=0.0, kl_coef=kl_coef, kl_estimator=kl_estimator)
    reward = RewardOracle(SequenceTableReward(outcome, 3, process=prefix_ok))
    prompts = PromptSource(pol.num_prompts, reward.ledger)
    sampler = WeakSampler(pol, reward.ledger, reveal=())
    grads = step_gradients(LMPolicyGradient(cfg), pol, sampler, reward, prompts, T,
                           torch.Generator().manual_seed(1), reference=ref)
    assert torch.equal(pol.model.w, pol.trainable_copy().model.w)        # the recorder never moved w
    proc = prefix_ok if reward_kind == "process" else None
    exact = exact_step_gradient(table, outcome, n, advantage, kl_coef, kl_estimator, process=proc)
    assert _z(grads, exact) < Z_MAX
    # negative controls through the same verdict: the penalty's expected gradient replaced by ∇KL(q‖p) or
    # ∇KL(p‖q) (what a practitioner might believe it follows), no penalty, another advantage estimator
    H = table.log_q.shape[-1]
    m = kl_gradient_moments(table)
    own = m.mean[f"loss/token/{kl_estimator}"]
    for target in (m.grad_kl_qp, m.grad_kl_pq):
        assert _z(grads, exact + kl_coef * (target - own) / H) > Z_MAX
    # k1 in the loss has zero expected gradient (identity), so dropping it is *not* detectable
    assert (_z(grads, exact - kl_coef * own / H) > Z_MAX) == (kl_estimator != "k1")
    other = "leave_one_out" if advantage == "group_normalised" else "dr_grpo"
    assert (
        _z(grads, exact_step_gradient(table, outcome, n, other, kl_coef, kl_estimator, process=proc)) > Z_MAX
    )
