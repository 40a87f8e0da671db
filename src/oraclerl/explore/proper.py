"""Shared pieces of the *proper* pairwise baselines OnlineDPO and XPO (Foster et al. 2025, App. B.1, Def.
4.1).

Both run rounds t = 1..T: fit θ^t ∈ Θ on the data so far, draw a prompt x^t ~ ρ and two responses
(y₁, y₂) whose law depends on the algorithm, query both rewards, and store
(φ(x, y₁, y₂) = ϕ(x, y₁) − ϕ(x, y₂), r₁ − r₂). :func:`pairwise_rounds` is that loop (``batch`` rounds
share one θ; theory: 1); :class:`LinearSoftmaxPolicy` is the proper output π_θ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..oracles.ledger import ledger_totals
from ..oracles.samplers import Samples


class LinearSoftmaxPolicy:
    """A proper policy π_θ ∝ π_ref·exp(⟨θ, ϕ⟩/β); sampled through a strong oracle, evaluated exactly."""

    def __init__(self, theta: torch.Tensor, strong=None):
        self.theta = theta
        self.strong = strong

    def log_prob_table(self, instance) -> torch.Tensor:
        """Exact log π_θ(y|x) [X, Y] (evaluation code)."""
        return instance.base.log_policy(self.theta)

    def sample(self, prompts, n: int = 1, generator: torch.Generator | None = None) -> Samples:
        """n responses per prompt from π_θ through the strong oracle (counted in its ledger)."""
        return self.strong.sample(prompts, self.theta, n, generator)

    def __repr__(self) -> str:
        return f"LinearSoftmaxPolicy(θ={[round(float(v), 4) for v in self.theta]})"


@dataclass
class ProperResult:
    policy: LinearSoftmaxPolicy
    """The output π_θ with θ fitted on all the data (θ^{T+1})."""
    thetas: torch.Tensor
    """[num_batches + 1, d]: θ^t used for each batch of rounds, then the output θ."""
    ledger: dict
    """Oracle counts of the run."""
    history: list = field(default_factory=list)
    """Per batch (aligned with ``thetas[1:]``): cumulative {"round", "t_data", "t_comp", "prompts"}."""
    stats: dict = field(default_factory=dict)


def pairwise_rounds(
    fit: Callable[[], torch.Tensor],
    sample_pair: Callable,
    record: Callable,
    reward,
    prompts,
    T: int,
    batch: int,
    generator: torch.Generator | None,
    oracles: tuple,
) -> tuple[list, list]:
    """The round loop shared by OnlineDPO and XPO.

    ``fit()`` returns θ^t from the data recorded so far; ``sample_pair(xs, θ, gen)`` returns the two
    Samples (y₁, y₂), each [nb, 1]; ``record(xs, s1, s2, r1, r2)`` stores the round. Returns the θ's of
    the batches and the per-batch cumulative ledger history.
    """
    thetas, history = [], []
    for t0 in range(0, T, batch):
        nb = min(batch, T - t0)
        theta = fit()
        xs = prompts.draw(nb, generator)
        s1, s2 = sample_pair(xs, theta, generator)
        r = reward.outcome(xs, torch.cat([s1.responses, s2.responses], dim=1), generator)
        record(xs, s1, s2, r[:, 0], r[:, 1])
        thetas.append(theta)
        tot = ledger_totals(*oracles)
        history.append({"round": t0 + nb, "t_data": tot.get("t_data", 0), "t_comp": tot.get("t_comp", 0),
                        "prompts": tot.get("prompts", 0)})
    return thetas, history
