"""Policy gradient with outcome vs process rewards for full fine-tuning of causal LMs.

Mousavi-Hosseini & Erdogdu (2026), §3 (PG-OR, Algorithm 1; PG-PR, Algorithm 2): on-policy samples, no
importance weighting; the loss is

    ℓ(w) = − (1 / #tokens) Σ_{b, j, i} A_{b j i} · log p_w(y_i^{(b j)} | x_b, y_{1:i-1}^{(b j)})
           + β · (1 / #tokens) Σ_{b, j, i} k(log p_w(y_i | ·), log p_ref(y_i | ·)),

with A_{bj i} = A_{bj} (outcome reward r(x, y), one per response, on every token) or A_{bj i} built from the
process rewards r(x, y_{1:i}) (one per prefix). The advantage estimators (REINFORCE, batch-mean baseline,
leave-one-out/RLOO, group-normalised/GRPO) are :func:`oraclerl.posttrain.advantages.advantages`. The optional
KL penalty (``kl_coef`` = β > 0) is the per-token estimate k ∈ {k1, k2, k3} of
:func:`oraclerl.posttrain.kl_penalty.kl_estimate` between the policy and the frozen base model on the sampled
tokens, placed in the loss as in GRPO (Shao et al. 2024, arXiv:2402.03300, Eq. 3-4, which uses k3); β = 0
(the default, and the paper's recipe) skips the reference pass entirely. Which gradient that placement follows
is computed exactly by the estimator lab (:mod:`oraclerl.diagnostics.estimators`, experiment
``estimators-exact``, docs/experiments/estimators-exact.md): per-token k3 in the loss follows neither
∇KL(π‖π_ref) nor ∇KL(π_ref‖π) once responses have more than one token (16–59% bias on exact linear-AR
instances); per-token k1 in the loss has zero expected gradient. The penalty is a regulariser here, not an
unbiased KL gradient; k2 in the loss is the least biased per-token choice (7–28%).

Defaults are those of LM RL fine-tuning, not of the paper's linear model: Adam with lr 1e-6 (the low end of
the 1e-6–1e-5 range of RLHF/RLVR fine-tuning of pretrained LMs) and the gradient norm clipped to 1.0. Adam's
first steps move every weight by ≈ lr in the sign of its gradient, so the rate, not the clipping, bounds the
damage: on Gemma-3-270M (few-shot addition, outcome rewards, RLOO, 16 responses per step) one step at 1e-6
raised the mean log-likelihood of held-out answers by 0.37 nats (0.90 after three), one at 1e-5 lowered it by
6.3 nats (and the batch reward to 0 by the second step); with process rewards one step at 1e-3 lowered it by ≈
58 nats. Experiments that reproduce the paper's recipe on a tiny model pass ``max_grad_norm=0`` (no clipping)
and their own learning rate. ``trainable="no_embeddings"`` freezes the token embedding and the LM head (one
tensor when tied; on Gemma-3-270M: 168M of its 268M parameters), which cuts the optimiser state and the
backward pass through the 262k-row output matrix.

Shape: ``LMPolicyGradient(LMPGConfig(...)).run(base, reward, prompts, generator) -> LMPGResult``; the knobs
it shares with the linear-model trainer (:mod:`oraclerl.posttrain.policy_gradient`) have the same names there
(``steps``, ``batch_size``, ``group_size``, ``advantage``, ``lr``, and ``optimizer``, built by the one factory
:func:`~oraclerl.posttrain.optim.make_optimizer`).

Oracle discipline: the policy starts from the base model's weights (the model-access regime of the paper,
q₀ = p_{w_base}) and is the learner's own network; its samples are drawn through a ``WeakSampler`` over the
current policy (counted in ``t_comp``), rewards only through the ``RewardOracle`` (``t_data``), prompts
through the ``PromptSource`` (``prompts``). The reward oracle is checked to provide what ``reward=`` asks for
before anything is sampled. The gradient is that of the log-probability of the *sampled* (processed) law, so
the update is on-policy also at temperature ≠ 1; the KL reference is the base model's processed law.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..common.config import param, validate
from ..errors import ConfigError
from ..oracles import PromptSource, RewardOracle, WeakSampler
from ..oracles.protocols import RewardQueries
from .advantages import ESTIMATORS, outcome_advantages, process_advantages
from .kl_penalty import KL_ESTIMATORS, kl_estimate
from .optim import make_optimizer


@dataclass
class LMPGConfig:
    """Policy gradient on a causal LM (Mousavi-Hosseini & Erdogdu 2026, §3; LM fine-tuning defaults)."""

    steps: int = param(100, "number of PG updates T (paper: 4000)", low=1)
    batch_size: int = param(16, "prompts per update B (paper: 1024)", low=1)
    group_size: int = param(4, "responses per prompt n (paper: 1; RLOO/GRPO need >= 2)", low=1)
    reward: str = param(
        "process",
        "outcome (one reward per response, PG-OR) or process (one per prefix, PG-PR)",
        choices=("outcome", "process"),
    )
    advantage: str = param("batch_mean", "advantage estimator (paper: batch_mean for ORM, none for PRM)",
                           choices=ESTIMATORS)
    optimizer: str = param("adam", "adam, adagrad (paper: Adagrad lr 0.1 on a linear model) or sgd",
                           choices=("adam", "adagrad", "sgd"))
    lr: float = param(
        1e-6,
        "learning rate (Adam; LM RL fine-tuning uses 1e-6 to 1e-5; on Gemma-3-270M one step "
        "at 1e-5 already costs the held-out answers 6 nats)",
        low=0.0,
        low_open=True,
    )
    max_grad_norm: float = param(
        1.0, "clip the gradient norm to this value (0 = no clipping, as the paper)", low=0.0
    )
    kl_coef: float = param(
        0.0,
        "β of the per-token KL penalty to the base model in the loss (0 = none, as the "
        "paper; > 0 costs one teacher-forced pass of the base model per update)",
        low=0.0,
    )
    kl_estimator: str = param(
        "k3",
        "per-token KL estimator of the penalty (k3 as GRPO, biased as a KL gradient: see "
        "the module doc and estimators-exact)",
        choices=KL_ESTIMATORS,
    )
    trainable: str = param(
        "all",
        "parameters updated: all, or no_embeddings (freeze the token embedding and the "
        "LM head, one tensor when tied)",
        choices=("all", "no_embeddings"),
    )
    eval_every: int = param(10, "call the evaluation hook every this many updates (and at the end)", low=1)

    def __post_init__(self):
        validate(self)

    def check(self):
        if self.advantage in ("leave_one_out", "group_normalised") and self.group_size < 2:
            raise ConfigError(
                "group_size", f"must be >= 2 for advantage={self.advantage!r}, got {self.group_size}"
            )


@dataclass
class LMPGResult:
    """The fine-tuned policy (a CausalLM), the evaluation history and the oracle counts."""

    policy: object
    history: list[dict] = field(default_factory=list)
    ledger: dict = field(default_factory=dict)


def check_reward_oracle(reward, kind: str) -> None:
    """Raise :class:`ConfigError` unless ``reward`` answers ``kind`` ("outcome" or "process") queries.

    Called before anything is sampled, so a process run on an outcome-only verifier fails in one line instead
    of after the first batch has been generated."""
    if not isinstance(reward, RewardQueries):
        raise ConfigError("reward", f"must be a RewardOracle (outcome/process queries and a ledger), got "
                          f"{type(reward).__name__}")
    if kind == "process" and not reward.has_process:
        raise ConfigError(
            "reward",
            f"reward='process' needs process rewards (one per prefix), but the oracle's "
            f"reward function {reward.reward_name} has no process_mean; pass reward='outcome' or a process "
            "verifier (e.g. TRLProcessReward with a per-prefix function)",
        )


def freeze_embeddings(model) -> int:
    """Turn off gradients of the input embedding and the output embedding (the same tensor when tied);
    returns the number of parameters frozen."""
    frozen = {}
    for mod in (model.get_input_embeddings(), model.get_output_embeddings()):
        if mod is not None:
            for p in mod.parameters():
                p.requires_grad_(False)
                frozen[id(p)] = p.numel()
    return sum(frozen.values())


class LMPolicyGradient:
    """``LMPolicyGradient(cfg).run(base, reward, prompts, generator)`` -> :class:`LMPGResult`."""

    def __init__(self, config: LMPGConfig | None = None):
        self.config = config if config is not None else LMPGConfig()

    def step(self, policy, sampler: WeakSampler, reward: RewardOracle, prompts: PromptSource, opt,
             generator: torch.Generator | None, reference=None) -> dict:
        """One PG update; returns the batch's mean outcome/process reward, the loss and, with a KL penalty
        (``reference`` = the frozen base CausalLM), the mean per-response k1 estimate of KL(policy‖base)."""
        cfg = self.config
        x = prompts.draw(cfg.batch_size, generator)
        y = sampler.sample(x, cfg.group_size, generator).responses  # [B, n, L]
        mask = policy.response_mask(y)
        if cfg.reward == "process":
            r = reward.process(x, y, generator)  # [B, n, L]
            adv = process_advantages(r, cfg.advantage, mask=mask)
            stat = (r * mask).sum() / mask.sum()
        else:
            r = reward.outcome(x, y, generator)  # [B, n]
            adv = outcome_advantages(r, cfg.advantage)[..., None] * mask
            stat = r.mean()
        logp = policy.token_log_probs(x, y, processed=True, grad=True)  # [B, n, L], 0 after the end
        ntok = mask.sum()
        loss = -(adv.to(logp.dtype) * logp).sum() / ntok
        out = {"reward": float(stat)}
        if cfg.kl_coef > 0:
            with torch.no_grad():
                logp_ref = reference.token_log_probs(x, y, processed=True).to(logp.dtype)
            kl_tok = kl_estimate(logp, logp_ref, cfg.kl_estimator) * mask
            loss = loss + cfg.kl_coef * kl_tok.sum() / ntok
            out["kl"] = float((logp.detach() - logp_ref).sum(-1).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in policy.model.parameters() if p.requires_grad]
        if cfg.max_grad_norm > 0:
            out["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
        opt.step()
        out["loss"] = float(loss.detach())
        return out

    def run(self, base, reward: RewardOracle, prompts: PromptSource, generator: torch.Generator | None = None,
            evaluate: Callable | None = None, log: Callable | None = None) -> LMPGResult:
        """Fine-tune a trainable copy of ``base`` (a CausalLM); ``evaluate(policy) -> dict`` is called every
        ``eval_every`` updates (step 0 included) and its output stored in the history; ``log(step, **m)``
        receives the per-step metrics. The reward oracle is checked against ``reward=`` first."""
        cfg = self.config
        check_reward_oracle(reward, cfg.reward)
        policy = base.trainable_copy()
        if cfg.trainable == "no_embeddings":
            freeze_embeddings(policy.model)
        sampler = WeakSampler(policy, ledger=reward.ledger, reveal=())
        opt = make_optimizer(cfg.optimizer, [p for p in policy.model.parameters() if p.requires_grad], cfg.lr)
        out = LMPGResult(policy)
        if evaluate is not None:
            out.history.append({"step": 0, **evaluate(policy)})
        for t in range(1, cfg.steps + 1):
            m = self.step(policy, sampler, reward, prompts, opt, generator, reference=base)
            if log is not None:
                log(t, **{f"pg/{k}": v for k, v in m.items()})
            if evaluate is not None and (t % cfg.eval_every == 0 or t == cfg.steps):
                out.history.append({"step": t, "batch_reward": m["reward"], **evaluate(policy)})
        out.ledger = reward.ledger.snapshot()
        return out
