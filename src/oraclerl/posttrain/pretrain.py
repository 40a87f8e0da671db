"""Supervised pre-training of the base model q₀ (Mousavi-Hosseini & Erdogdu 2026, §3.1 and §6).

Minimises the sequence log-loss −log p_w(y*|x) on fresh labelled pairs (x, y*(x)) with teacher forcing:

* the experiments (docs/papers/mousavi2026_pg_barrier.md §3.5): Adagrad lr 0.1, batch 256, 1000 steps, loss =
  token mean of the
  cross-entropy over batch × positions, w₀ = 0;
* the theory (Prop. 2.2): one sample per step, the adaptive step η = 1/(4 + 2‖g‖²) on the *sequence* loss
  (sum over tokens), output a random iterate w_τ.

Gradients are closed form (:meth:`LinearARModel.grad_log_likelihood`, tested against autograd).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..common.config import param
from ..models.linear_ar import LinearARModel
from .optim import RandomIterate, TrainingConfig, ascent_step, make_optimizer


@dataclass
class PretrainConfig(TrainingConfig):
    """Pre-training hyper-parameters (defaults: the paper's Figure-1 run); the optimiser knobs are
    :class:`~oraclerl.posttrain.optim.TrainingConfig`'s."""

    steps: int = param(1000, "optimisation steps (paper: 1000)", low=1)
    batch_size: int = param(256, "fresh labelled contexts per step (paper: 256; theory: 1)", low=1)


@dataclass
class PretrainResult:
    model: LinearARModel
    """The final model (the base model q₀ of the experiments)."""
    iterate: LinearARModel | None
    """w_τ when ``random_iterate`` (theory output), else None."""


class Pretrain:
    """``Pretrain(PretrainConfig(...)).run(model, data, generator)`` -> :class:`PretrainResult`."""

    def __init__(self, config: PretrainConfig | None = None):
        self.config = config if config is not None else PretrainConfig()

    def run(self, model: LinearARModel, data, generator: torch.Generator | None = None,
            track: Callable[[int, LinearARModel], None] | None = None) -> PretrainResult:
        """Train ``model.w`` in place on ``data.draw_labelled(B, gen) -> (x, y*)`` (counts prompts);
        ``track(t, model)`` after every step (and at t = 0)."""
        cfg = self.config
        w = model.w
        opt = make_optimizer(cfg.optimizer, [w], cfg.lr)
        rnd = RandomIterate(cfg.steps, generator, cfg.random_iterate)
        if track is not None:
            track(0, model)
        for t in range(cfg.steps):
            rnd.observe(t, w)
            x, y = data.draw_labelled(cfg.batch_size, generator)
            g = model.grad_log_likelihood(x, y) * cfg.loss_scale(cfg.batch_size, y.shape[-1])
            ascent_step(opt, w, g)
            if track is not None:
                track(t + 1, model)
        return PretrainResult(model, model.copy(rnd.w) if rnd.w is not None else None)
