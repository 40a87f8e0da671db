"""Ground-truth reward functions r⋆(x, y) on finite response sets (what reward oracles wrap)."""

from __future__ import annotations

import torch

from ..errors import ConfigError


class TableReward:
    """r⋆(x, y) given as a table [X, Y]; ``r_max`` bounds it when known (used by Bernoulli noise)."""

    def __init__(self, table: torch.Tensor, r_max: float | None = None):
        table = torch.as_tensor(table)
        if table.dim() != 2:
            raise ConfigError("table", f"must have shape (X, Y), got {tuple(table.shape)}")
        if torch.isnan(table).any():
            raise ConfigError("table", "rewards must not be NaN")
        self.table = table
        self.r_max = float(table.max()) if r_max is None else float(r_max)

    def mean(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        """r⋆(x, y): [B, n]."""
        return self.table[prompts.to(self.table.device)[:, None], responses]


class LinearReward(TableReward):
    """r⋆(x, y) = ⟨θ⋆, ϕ(x, y)⟩ + c(x) (Foster et al. §8.1: reward differences are linear, Lemma G.1)."""

    def __init__(self, theta_star: torch.Tensor, phi: torch.Tensor, offset: torch.Tensor | None = None,
                 r_max: float | None = None):
        table = phi @ theta_star.to(phi.dtype)
        if offset is not None:
            table = table + offset.to(phi.dtype)[:, None]
        super().__init__(table, r_max)
        self.theta_star = theta_star
