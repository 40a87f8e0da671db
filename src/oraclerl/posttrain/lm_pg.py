"""Policy gradient with outcome vs process rewards for full fine-tuning of small causal LMs.

Mousavi-Hosseini & Erdogdu (2026), §3 (PG-OR, Algorithm 1; PG-PR, Algorithm 2) and the recipe their experiments
run (notes §3.5): on-policy samples, no importance weighting, no KL, no clipping; the loss is

    ℓ(w) = − (1 / #tokens) Σ_{b, j, i} A_{b j i} · log p_w(y_i^{(b j)} | x_b, y_{1:i-1}^{(b j)}),

with A_{bj i} = A_{bj} (outcome reward r(x, y), one per response, on every token) or A_{bj i} built from the
process rewards r(x, y_{1:i}) (one per prefix). The advantage estimators (REINFORCE, batch-mean baseline,
leave-one-out/RLOO, group-normalised/GRPO) are :func:`oraclerl.posttrain.advantages.advantages`.

Oracle discipline: the policy starts from the base model's weights (the model-access regime of the paper,
q₀ = p_{w_base}) and is the learner's own network; its samples are drawn through a ``WeakSampler`` over the
current policy (counted in ``t_comp``), rewards only through the ``RewardOracle`` (``t_data``), prompts
through the ``PromptSource`` (``prompts``). The gradient is that of the log-probability of the *sampled*
(processed) law, so the update is on-policy also at temperature ≠ 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..oracles import PromptSource, RewardOracle, WeakSampler
from ..runtime.config import param, validate
from .advantages import ESTIMATORS, outcome_advantages, process_advantages


@dataclass
class LMPGConfig:
    """Policy gradient on a causal LM (Mousavi-Hosseini & Erdogdu 2026, §3 and notes §3.5)."""

    steps: int = param(100, "number of PG updates T (paper: 4000)", low=1)
    batch_prompts: int = param(16, "prompts per update B (paper: 1024)", low=1)
    group_size: int = param(4, "responses per prompt n (paper: 1; RLOO/GRPO need >= 2)", low=1)
    reward: str = param("process", "outcome (one reward per response, PG-OR) or process (one per prefix, PG-PR)",
                        choices=("outcome", "process"))
    advantage: str = param("batch_mean", "advantage estimator (paper: batch_mean for ORM, none for PRM)",
                           choices=ESTIMATORS)
    optimizer: str = param("adam", "adam, adagrad (paper: Adagrad lr 0.1 on a linear model) or sgd",
                           choices=("adam", "adagrad", "sgd"))
    lr: float = param(1e-3, "learning rate", low=0.0, low_open=True)
    max_grad_norm: float = param(0.0, "clip the gradient norm to this value (0 = no clipping, as the paper)", low=0.0)
    eval_every: int = param(10, "call the evaluation hook every this many updates (and at the end)", low=1)

    def check(self):
        from ..errors import ConfigError

        if self.advantage in ("leave_one_out", "group_normalised") and self.group_size < 2:
            raise ConfigError("group_size", f"must be >= 2 for advantage={self.advantage!r}, got {self.group_size}")


@dataclass
class LMPGResult:
    """The fine-tuned policy (a CausalLM), the evaluation history and the oracle counts."""

    policy: object
    history: list[dict] = field(default_factory=list)
    ledger: dict = field(default_factory=dict)


def _optimizer(name: str, params, lr: float):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    return torch.optim.SGD(params, lr=lr)


class LMPolicyGradient:
    """``LMPolicyGradient(cfg).run(base, reward, prompts, generator)`` -> :class:`LMPGResult`."""

    def __init__(self, config: LMPGConfig):
        self.config = validate(config)

    def step(self, policy, sampler: WeakSampler, reward: RewardOracle, prompts: PromptSource, opt,
             generator: torch.Generator | None) -> dict:
        """One PG update; returns the batch's mean outcome/process reward and the loss."""
        cfg = self.config
        x = prompts.draw(cfg.batch_prompts, generator)
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
        loss = -(adv.to(logp.dtype) * logp).sum() / mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(policy.model.parameters(), cfg.max_grad_norm)
        opt.step()
        return {"reward": float(stat), "loss": float(loss.detach())}

    def run(self, base, reward: RewardOracle, prompts: PromptSource, generator: torch.Generator | None = None,
            evaluate: Callable | None = None, log: Callable | None = None) -> LMPGResult:
        """Fine-tune a trainable copy of ``base`` (a CausalLM); ``evaluate(policy) -> dict`` is called every
        ``eval_every`` updates (step 0 included) and its output stored in the history; ``log(step, **m)``
        receives the per-step metrics."""
        cfg = self.config
        policy = base.trainable_copy()
        sampler = WeakSampler(policy, ledger=reward.ledger, reveal=())
        opt = _optimizer(cfg.optimizer, [p for p in policy.model.parameters() if p.requires_grad], cfg.lr)
        out = LMPGResult(policy)
        if evaluate is not None:
            out.history.append({"step": 0, **evaluate(policy)})
        for t in range(1, cfg.steps + 1):
            m = self.step(policy, sampler, reward, prompts, opt, generator)
            if log is not None:
                log(t, **{f"pg/{k}": v for k, v in m.items()})
            if evaluate is not None and (t % cfg.eval_every == 0 or t == cfg.steps):
                out.history.append({"step": t, "batch_reward": m["reward"], **evaluate(policy)})
        out.ledger = reward.ledger.snapshot()
        return out
