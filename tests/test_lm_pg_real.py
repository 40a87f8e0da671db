"""Policy gradient on a causal LM with the LM defaults (issue 11 §2): the reward-oracle check before any
sampling, gradient clipping, the KL penalty to the base model (loss recomputed independently), frozen
embeddings, and on the real model (``real_lm``) that one update at the defaults keeps the answers (the 1e-3
regression)."""

import pytest
import torch

pytest.importorskip("transformers")

from oraclerl.errors import ConfigError  # noqa: E402
from oraclerl.models.hf.rewards import TRLProcessReward, TRLReward  # noqa: E402
from oraclerl.models.hf.tiny import tiny_causal_lm  # noqa: E402
from oraclerl.oracles import Ledger, PromptSource, RewardOracle, WeakSampler  # noqa: E402
from oraclerl.posttrain.advantages import outcome_advantages  # noqa: E402
from oraclerl.posttrain.lm_pg import LMPGConfig, LMPolicyGradient, check_reward_oracle  # noqa: E402
from oraclerl.problems.lm_tasks import few_shot_task  # noqa: E402

pytestmark = pytest.mark.hf


def _setup(process=False, seed=0):
    task = few_shot_task("add", num_train=6, num_test=2, shots=1, size=1, seed=seed)
    lm = tiny_causal_lm(task.alphabet, task.prompts, seed=seed, max_new_tokens=3, stop_strings=("\n",))
    ledger = Ledger()
    fn = (
        TRLProcessReward(lm, task.outcome_fn(), task.process_fn())
        if process
        else TRLReward(lm, task.outcome_fn())
    )
    return task, lm, RewardOracle(fn, ledger), PromptSource(task.weights, ledger)


def _flat(model, embeddings=None):
    emb = model.get_input_embeddings().weight
    ps = [p for p in model.parameters() if (embeddings is None) or ((p is emb) == embeddings)]
    return torch.cat([p.detach().flatten() for p in ps])


def test_defaults_are_lm_safe():
    cfg = LMPGConfig()
    assert cfg.optimizer == "adam" and 1e-6 <= cfg.lr <= 1e-5 and cfg.max_grad_norm > 0 and cfg.kl_coef == 0


def test_process_reward_without_process_oracle_fails_before_sampling():
    _, lm, reward, prompts = _setup(process=False)
    with pytest.raises(ConfigError, match="reward='process' needs process rewards.*TRLReward"):
        LMPolicyGradient(LMPGConfig(steps=1, reward="process")).run(lm, reward, prompts, torch.Generator())
    # nothing drawn
    assert reward.ledger.snapshot()["t_comp"] == 0 and reward.ledger.snapshot()["prompts"] == 0
    with pytest.raises(ConfigError, match="RewardOracle"):
        check_reward_oracle(reward.__dict__, "outcome")  # not an oracle at all
    check_reward_oracle(reward, "outcome")  # an outcome verifier serves reward="outcome"


def test_gradient_clipping_bounds_the_update():
    """SGD with lr = 1: the parameter change is exactly the clipped gradient, so its norm is ≤
    max_grad_norm."""
    _, lm, reward, prompts = _setup(process=True)
    for clip, bounded in [(1e-3, True), (0.0, False)]:
        cfg = LMPGConfig(
            steps=1,
            batch_size=4,
            group_size=2,
            reward="process",
            advantage="none",
            optimizer="sgd",
            lr=1.0,
            max_grad_norm=clip,
        )
        res = LMPolicyGradient(cfg).run(lm, reward, prompts, torch.Generator().manual_seed(0))
        delta = float((_flat(res.policy.model) - _flat(lm.model)).norm())
        assert (delta <= 1e-3 * (1 + 1e-4)) == bounded, (clip, delta)  # unclipped: the raw gradient, ≫ 1e-3


def test_kl_penalty_loss_matches_an_independent_computation():
    """One update with β > 0 from a policy ≠ base: the reported loss and KL equal the PG loss plus β·mean k3,
    recomputed here from the same samples (same generator state) with the k3 formula written out."""
    task, lm, reward, prompts = _setup(process=False)
    policy = lm.trainable_copy()
    with torch.no_grad():
        for p in policy.model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    beta = 0.7
    cfg = LMPGConfig(steps=1, batch_size=4, group_size=3, reward="outcome", advantage="leave_one_out",
                     kl_coef=beta, kl_estimator="k3", lr=1e-12)
    pg = LMPolicyGradient(cfg)
    g = torch.Generator().manual_seed(5)
    g2 = torch.Generator().manual_seed(5)
    opt = torch.optim.SGD([p for p in policy.model.parameters()], lr=1e-12)
    m = pg.step(
        policy, WeakSampler(policy, ledger=reward.ledger, reveal=()), reward, prompts, opt, g, reference=lm
    )
    x = torch.multinomial(task.weights, 4, replacement=True, generator=g2)
    y = policy.sample(x, 3, g2)
    mask = policy.response_mask(y)
    r = torch.tensor([[float(task.answer(c) == task.targets[int(xi)]) for c in row]
                      for xi, row in zip(x, policy.decode(y))], dtype=torch.float64)
    adv = outcome_advantages(r, "leave_one_out")[..., None] * mask
    with torch.no_grad():
        lp = policy.token_log_probs(x, y, processed=True)
        lr_ = lm.token_log_probs(x, y, processed=True)
    d = lr_ - lp
    k3 = (torch.exp(d) - d - 1) * mask
    want = float(-(adv * lp).sum() / mask.sum() + beta * k3.sum() / mask.sum())
    assert m["loss"] == pytest.approx(want, rel=1e-5, abs=1e-7)
    assert m["kl"] == pytest.approx(float((lp - lr_).sum(-1).mean()), rel=1e-5, abs=1e-7)
    assert float(k3.sum()) > 1e-3  # the policy differs from the base: the penalty is not vacuous


def test_kl_penalty_keeps_the_policy_closer_to_the_base():
    """Same seed, same rewards: with β = 5 the policy's KL to the base after 6 updates is smaller than with
    β = 0 (measured on the tiny model: 0.014 vs 0.19 nats, 0.08×; required: < 0.5×)."""
    kls = {}
    for beta in (0.0, 5.0):
        _, lm, reward, prompts = _setup(process=True)
        cfg = LMPGConfig(steps=6, batch_size=4, group_size=2, reward="process", advantage="none", lr=3e-3,
                         kl_coef=beta)
        res = LMPolicyGradient(cfg).run(lm, reward, prompts, torch.Generator().manual_seed(0))
        x = torch.arange(lm.num_prompts)
        y = res.policy.sample(x, 64, torch.Generator().manual_seed(9))
        kls[beta] = float((res.policy.log_prob(x, y) - lm.log_prob(x, y)).mean())  # k1 Monte Carlo of the KL
    assert kls[5.0] < 0.5 * kls[0.0], kls


def test_frozen_embeddings_do_not_move():
    _, lm, reward, prompts = _setup(process=True)
    cfg = LMPGConfig(steps=2, batch_size=4, group_size=2, reward="process", advantage="none", lr=1e-2,
                     trainable="no_embeddings")
    res = LMPolicyGradient(cfg).run(lm, reward, prompts, torch.Generator().manual_seed(0))
    assert torch.equal(_flat(res.policy.model, True), _flat(lm.model, True))
    assert not torch.equal(_flat(res.policy.model, False), _flat(lm.model, False))


@pytest.mark.real_lm
def test_one_update_at_the_default_rate_keeps_gemma_answers(real_lm_dir):
    """The issue-11 regression: PG at a rate meant for the paper's linear model wrecks a pretrained LM in
    one step. One outcome-reward update (RLOO, 16 responses, clipping on) at the default rate must not
    lower the mean log-likelihood of the held-out answers; at 1e-5 it does, by nats. Measured (this setup,
    seed 0): +0.37 nats at 1e-6, −6.3 at 1e-5; thresholds −0.5 and −3 leave margins of ≥ 0.8 and 3 nats."""
    from oraclerl.models.hf.causal_lm import CausalLM

    task = few_shot_task("add", num_train=32, num_test=12, shots=3, size=2, size_b=1, seed=0)
    lm = CausalLM.from_pretrained(
        real_lm_dir, task.prompts, max_new_tokens=5, stop_strings=("\n",), device="cpu", dtype=torch.float32
    )
    test = torch.tensor(task.meta["test_ids"])
    tgt = task.target_tokens(lm)[test][:, None]
    base = lm.log_prob(test, tgt)[:, 0]
    change = {}
    for lr in (LMPGConfig().lr, 1e-5):
        ledger = Ledger()
        reward = RewardOracle(TRLReward(lm, task.outcome_fn()), ledger)
        cfg = LMPGConfig(
            steps=1,
            batch_size=4,
            group_size=4,
            reward="outcome",
            advantage="leave_one_out",
            lr=lr,
            trainable="no_embeddings",
        )
        res = LMPolicyGradient(cfg).run(
            lm, reward, PromptSource(task.weights, ledger), torch.Generator().manual_seed(0)
        )
        change[lr] = float((res.policy.log_prob(test, tgt)[:, 0] - base).mean())
        del res
    assert change[LMPGConfig().lr] > -0.5 and change[1e-5] < -3.0, change
