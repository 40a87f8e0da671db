"""Single-context teacher problems of the theory experiments (Mousavi-Hosseini & Erdogdu 2026, Algorithms 1-2,
Cor. 3.6 and Thm 4.1; docs/papers/mousavi2026_pg_barrier.md §3.2-3.3).

One context x (a point-mass context law, ‖x‖ = √d) with the argmax teacher's answer y*(x), and a base model
q₀ of the context-bigram class with a prescribed base likelihood q₀(y*|x) = α: the teacher direction, scaled
by bisection. α = k^{−N} (q₀ uniform, w = 0) is the off-support case.
"""

from __future__ import annotations

import math

import torch

from ..models.linear_ar import ContextBigramFeatures, LinearARModel
from .teacher import TeacherTask, teacher_task


def single_context_problem(d: int, k: int, N: int,
                           gen: torch.Generator) -> tuple[TeacherTask, torch.Tensor, torch.Tensor]:
    """(task, x [1, d], y*(x) [1, N]): a Gaussian direction scaled to norm √d and a fresh float64 teacher,
    both drawn from ``gen`` (in that order); the task's context law is the point mass on x."""
    x0 = torch.randn(1, d, generator=gen, dtype=torch.float64)
    x0 = x0 / x0.norm() * math.sqrt(d)
    task = teacher_task(d, k, N, "finite", generator=gen, dtype=torch.float64, support=x0)
    return task, x0, task.target(x0)


def base_with_likelihood(task: TeacherTask, x0: torch.Tensor, ystar: torch.Tensor,
                         alpha: float) -> LinearARModel:
    """q₀ = p_{s·w_T} with w_T the (normalised) teacher direction and s such that q₀(y*|x) = α (60 bisection
    steps on s, returning the upper end, so q₀(y*|x) ≥ α)."""
    fm = ContextBigramFeatures(task.context_dim, task.num_actions)
    wt = torch.cat([task.W1_star.T.reshape(-1), task.W2_star.reshape(-1)])
    wt = wt / wt.norm()

    def log_q(s: float) -> float:
        return LinearARModel(fm, task.horizon, s * wt, dtype=torch.float64).log_likelihood(x0, ystar).item()

    lo, hi = 0.0, 1.0
    while log_q(hi) < math.log(alpha):
        hi *= 2
    for _ in range(60):
        s = (lo + hi) / 2
        lo, hi = (s, hi) if log_q(s) < math.log(alpha) else (lo, s)
    return LinearARModel(fm, task.horizon, hi * wt, dtype=torch.float64)
