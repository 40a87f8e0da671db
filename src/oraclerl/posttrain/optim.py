"""Optimisers shared by pre-training and policy gradients, and the random-iterate output.

* ``"adaptive"``: the paper's gradient-norm-adaptive step (Mousavi-Hosseini & Erdogdu 2026, §3.1, Prop. 2.2;
  Algorithms 1-2): w ← w − η·∇L with η = lr / (4 + 2‖∇L‖²) (lr = 1 is the theory; the constants 4 and 2 are
  as printed by the secondary source, docs/papers/mousavi2026_pg_barrier.md §3.1).
* ``"adagrad"`` (the experiments: lr 0.1, torch defaults), ``"sgd"``, ``"adam"``, or the name of any
  ``torch.optim`` optimiser class (e.g. ``"RMSprop"``, ``"AdamW"``), built with ``lr`` and torch defaults.

Gradients are set in closed form (``w.grad = ...``) by the callers, so any torch optimiser works on the
plain weight tensor. :class:`TrainingConfig` holds the knobs that pre-training and the linear-model policy
gradient share (optimiser, rate, loss normalisation, random-iterate output); :func:`make_optimizer` is the one
optimiser factory of the package (the LM policy gradient uses it too).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.config import param, validate
from ..errors import ConfigError

OPTIMIZERS = ("adagrad", "adaptive", "sgd", "adam")


class AdaptiveStep(torch.optim.Optimizer):
    """w ← w − lr·g/(4 + 2‖g‖²) with ‖g‖ the norm of the whole gradient (all parameters together)."""

    def __init__(self, params, lr: float = 1.0):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return None
        sq = sum(float((g.double() ** 2).sum()) for g in grads)
        for group in self.param_groups:
            eta = group["lr"] / (4.0 + 2.0 * sq)
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-eta)
        return None


def check_optimizer(name: str) -> str:
    """Raise a ConfigError unless ``name`` is one of :data:`OPTIMIZERS` or a ``torch.optim`` optimiser
    class."""
    cls = getattr(torch.optim, name, None)
    if name in OPTIMIZERS or (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)
                               and cls is not torch.optim.Optimizer):
        return name
    raise ConfigError(
        "optimizer", f"must be one of {list(OPTIMIZERS)} or a torch.optim class name, got {name!r}"
    )


def make_optimizer(name: str, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """A fresh optimiser over ``params`` (the paper re-creates Adagrad at the start of PG,
    docs/papers/mousavi2026_pg_barrier.md §5.7 item 4)."""
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    if name == "adaptive":
        return AdaptiveStep(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return getattr(torch.optim, check_optimizer(name))(params, lr=lr)


@dataclass
class TrainingConfig:
    """Optimisation knobs shared by :class:`~oraclerl.posttrain.pretrain.PretrainConfig` and
    :class:`~oraclerl.posttrain.policy_gradient.PGConfig` (their subclasses); validated when
    constructed."""

    optimizer: str = param("adagrad", "adagrad (experiments, fresh state) | adaptive (theory, "
                                      "η=1/(4+2‖g‖²)) | sgd | adam | any torch.optim class name")
    lr: float = param(0.1, "learning rate (paper: Adagrad 0.1; adaptive: multiplier, theory 1)",
                      low=0.0, low_open=True)
    loss_normalisation: str = param("token_mean", "token_mean (experiments: mean over every token of the "
                                                  "batch) | sequence_sum (theory: Σ over tokens, mean over "
                                                  "the sequences)",
                                    choices=("token_mean", "sequence_sum"))
    random_iterate: bool = param(False, "also return w_τ, τ ∼ Unif{0..T−1} (theory output)")

    def __post_init__(self):
        validate(self)

    def check(self) -> None:
        check_optimizer(self.optimizer)

    def loss_scale(self, sequences: int, tokens_per_sequence: int) -> float:
        """1 / the loss's normaliser: every token of the batch (token_mean) or every sequence
        (sequence_sum)."""
        return 1.0 / (sequences * (tokens_per_sequence if self.loss_normalisation == "token_mean" else 1))


def ascent_step(opt: torch.optim.Optimizer, w: torch.Tensor, grad_objective: torch.Tensor) -> None:
    """One optimiser step that *increases* the objective whose gradient is ``grad_objective`` (loss =
    −objective)."""
    w.grad = -grad_objective
    opt.step()
    w.grad = None


class RandomIterate:
    """Keeps w_τ for τ ∼ Unif{0, …, T−1} drawn up front (the output of Prop. 2.2 and Algorithms 1-2)."""

    def __init__(self, steps: int, generator: torch.Generator | None, enabled: bool = True):
        dev = generator.device if generator is not None else "cpu"
        self.tau = int(torch.randint(0, steps, (1,), generator=generator, device=dev)) if enabled else -1
        self.w: torch.Tensor | None = None

    def observe(self, t: int, w: torch.Tensor) -> None:
        """Call with the iterate w_t *before* update t."""
        if t == self.tau:
            self.w = w.detach().clone()
