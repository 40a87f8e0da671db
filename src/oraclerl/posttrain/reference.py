"""Straightforward per-token reference implementation, as the authors' code does it
(docs/papers/mousavi2026_pg_barrier.md §3.5, §5.7 item 8).

For every position i it recomputes the logits xᵀW₁ + W₂[:, y_{i−1}] from the weights, samples the token with
``torch.multinomial(softmax(logits))``, and differentiates the loss −mean(A·log p) with autograd. It exists
to check that the fast implementation (:mod:`oraclerl.posttrain.policy_gradient`: table sampling, closed-form
gradients) is statistically equivalent, and as the baseline of ``benchmarks/bench_posttrain.py``. Rewards
still go through the reward oracle (same T_data). Its responses are the learner's own draws from its own
weights, not a sampling oracle's, so it counts none itself: it grants them to the reward oracle, which counts
each new pair in T_grant (issue 16 §5; T_comp stays 0). On-policy behaviour and torch optimisers only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import ConfigError
from ..models.linear_ar import LinearARModel
from ..oracles.samplers import PromptSource
from .advantages import advantages
from .optim import make_optimizer
from .policy_gradient import PGConfig, PGResult
from .pretrain import PretrainConfig, PretrainResult


def _logits_at(w: torch.Tensor, x: torch.Tensor, prev: torch.Tensor | None, d: int, k: int) -> torch.Tensor:
    """Logits of one position, recomputing x·W₁ (the authors' per-token loop)."""
    W1, W2 = w[: d * k].view(d, k), w[d * k:].view(k, k)
    out = x @ W1
    return out if prev is None else out + W2[:, prev].T


def reference_sample(w: torch.Tensor, x: torch.Tensor, N: int, k: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample one sequence per context token by token with torch.multinomial: long [B, N]."""
    d = x.shape[1]
    toks, prev = [], None
    with torch.no_grad():
        for _ in range(N):
            probs = torch.softmax(_logits_at(w, x, prev, d, k), -1)
            prev = torch.multinomial(probs, 1, generator=generator)[:, 0]
            toks.append(prev)
    return torch.stack(toks, 1)


def reference_token_log_probs(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """log p_w(y_i | x, y_{i−1}) per position with autograd-able ops: [B, N]."""
    d = x.shape[1]
    cols = [
        torch.log_softmax(_logits_at(w, x, None if i == 0 else y[:, i - 1], d, k), -1).gather(
            1, y[:, i : i + 1]
        )
        for i in range(y.shape[1])
    ]
    return torch.cat(cols, 1)


def reference_pretrain(
    model: LinearARModel, data, cfg: PretrainConfig, generator: torch.Generator | None = None
) -> PretrainResult:
    """Adagrad/SGD/Adam pre-training with autograd on the token-mean cross-entropy (teacher forcing)."""
    if cfg.optimizer == "adaptive" or cfg.random_iterate:
        raise ConfigError(
            "optimizer", "the reference implementation covers torch optimisers without random iterate"
        )
    w = model.w.clone().requires_grad_(True)
    opt = make_optimizer(cfg.optimizer, [w], cfg.lr)
    for _ in range(cfg.steps):
        x, y = data.draw_labelled(cfg.batch_size, generator)
        loss = -reference_token_log_probs(w, x.to(w.dtype), y, model.num_actions).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.w = w.detach().clone()
    return PretrainResult(model, None)


def reference_policy_gradient(policy: LinearARModel, contexts, reward, prompts: PromptSource, cfg: PGConfig,
                              generator: torch.Generator | None = None,
                              track: Callable[[int, LinearARModel], None] | None = None) -> PGResult:
    """On-policy PG with per-token multinomial sampling and an autograd loss (one response per context).

    ``prompts`` draws the contexts' ids (``PromptSource(contexts, ledger)``, as
    :func:`~.policy_gradient.pg_oracles` builds it) and ``contexts.lookup`` gives their x."""
    if cfg.behaviour != "on_policy" or cfg.group_size != 1 or cfg.optimizer == "adaptive":
        raise ConfigError(
            "behaviour", "the reference implementation covers on-policy PG, n = 1, torch optimisers"
        )
    if cfg.loss_normalisation != "token_mean":
        raise ConfigError("loss_normalisation", "the reference implementation uses the authors' token mean")
    k, N = policy.num_actions, policy.horizon
    w = policy.w.clone().requires_grad_(True)
    opt = make_optimizer(cfg.optimizer, [w], cfg.lr)
    history = []
    if track is not None:
        track(0, policy)
    for t in range(cfg.steps):
        ids = prompts.draw(cfg.batch_size, generator)
        x = contexts.lookup(ids).to(w.dtype)
        y = reference_sample(w.detach(), x, N, k, generator)
        reward.grant(ids, y[:, None, :])        # sampled by the learner itself: the oracle counts t_grant
        if cfg.reward == "outcome":
            r = reward.outcome(ids, y[:, None, :], generator)[:, 0]
            history.append(float(r.mean()))
            A = advantages(r[:, None], cfg.advantage)[:, 0, None]              # [B, 1]
        else:
            r = reward.process(ids, y[:, None, :], generator)[:, 0]
            history.append(float(r[:, -1].mean()))
            A = advantages(r[:, None], cfg.advantage)[:, 0]                    # [B, N]
        loss = -(A * reference_token_log_probs(w, x, y, k)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        policy.w = w.detach().clone()
        if track is not None:
            track(t + 1, policy)
    return PGResult(policy, None, reward.ledger.snapshot(), history)
