"""Supervised pre-training of a causal LM from scratch on (x, y⋆(x)), x ∼ ρ: teacher forcing, token-mean
cross-entropy, Adam (the statistical-learning phase that makes the base model q₀, Mousavi-Hosseini & Erdogdu
2026, §3.1 and §6; docs/papers/mousavi2026_pg_barrier.md §3.5: the linear-model analogue is
:func:`oraclerl.posttrain.pretrain.pretrain`). Extra ``[hf]``."""

from __future__ import annotations

import torch

from .optim import make_optimizer


def pretrain_lm(lm, weights: torch.Tensor, targets: torch.Tensor, steps: int, batch_size: int, lr: float,
                generator: torch.Generator | None):
    """A trained copy of ``lm`` (a CausalLM; ``lm`` itself is unchanged, the copy's gradients are off).

    Each of ``steps`` steps draws ``batch_size`` prompt ids from ``weights`` (with replacement) and takes an
    Adam step of size ``lr`` on −Σ log q(y⋆|x) under the raw model, divided by the number of target tokens
    (batch × ``targets.shape[1]``); ``targets`` [X, L] are the canonical target tokens of every prompt."""
    model = lm.trainable_copy()
    opt = make_optimizer("adam", list(model.model.parameters()), lr)
    length = targets.shape[1]
    for _ in range(steps):
        x = torch.multinomial(weights, batch_size, replacement=True, generator=generator)
        log_q = model.token_log_probs(x, targets[x][:, None], processed=False, grad=True)
        loss = -log_q.sum() / (x.numel() * length)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    for p in model.model.parameters():
        p.requires_grad_(False)
    return model
