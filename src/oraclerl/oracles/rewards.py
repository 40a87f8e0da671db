"""Reward oracles: outcome rewards, process rewards, noisy rewards and Bradley–Terry preferences.

A reward *function* is any object with ``mean(prompts, responses) -> Tensor[B, n]`` (the expected
reward r⋆(x, y)) and, for process rewards, ``process_mean(prompts, responses) -> Tensor[B, n, H]`` (one
value per prefix y_{1:i}). The oracle adds the configured noise and counts every query in T_data:
one per (prompt, response) for outcome rewards, one per (prompt, prefix) for process rewards
(Mousavi-Hosseini & Erdogdu 2026 count a reward query per verifier call), one per pair for
preferences (Foster et al. Eq. 14).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..validation import check_choice, check_nonneg, check_positive
from .ledger import Ledger


@dataclass(frozen=True)
class RewardNoise:
    """Observation noise of a reward oracle: E[r | x, y] = r⋆(x, y) in every case.

    ``kind="gaussian"`` adds N(0, scale²); ``kind="bernoulli"`` returns r_max·Bernoulli(r⋆/r_max) and
    needs r⋆ ∈ [0, r_max]; ``kind="none"`` returns r⋆.
    """

    kind: str = "none"
    """One of "none", "gaussian", "bernoulli"."""
    scale: float = 0.0
    """Standard deviation of the Gaussian noise (ignored otherwise)."""

    def __post_init__(self):
        check_choice("noise.kind", self.kind, ("none", "gaussian", "bernoulli"))
        check_nonneg("noise.scale", self.scale)

    def apply(self, mean: torch.Tensor, r_max: float | None, generator) -> torch.Tensor:
        if self.kind == "none":
            return mean
        if self.kind == "gaussian":
            return mean + self.scale * torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        if r_max is None:
            raise ConfigError("noise.kind", "bernoulli noise needs a reward function with a known r_max")
        p = mean / r_max
        if (p < -1e-9).any() or (p > 1 + 1e-9).any():
            raise ConfigError("reward", f"bernoulli noise needs rewards in [0, {r_max}]")
        u = torch.rand(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return (u < p.clamp(0, 1)).to(mean.dtype) * r_max


def _check_finite_rewards(r: torch.Tensor, what: str) -> torch.Tensor:
    if torch.isnan(r).any():
        raise ConfigError("reward", f"{what} returned NaN")
    return r


class RewardOracle:
    """Counts and answers reward queries on responses the learner has sampled (T_data)."""

    def __init__(self, reward, ledger: Ledger | None = None, noise: RewardNoise | None = None):
        if not hasattr(reward, "mean"):
            raise ConfigError("reward", f"{type(reward).__name__} has no mean(prompts, responses) method")
        self._reward = reward
        self.ledger = ledger if ledger is not None else Ledger()
        self.noise = noise or RewardNoise()

    @property
    def r_max(self) -> float | None:
        return getattr(self._reward, "r_max", None)

    @property
    def has_process(self) -> bool:
        return hasattr(self._reward, "process_mean")

    def outcome(self, prompts, responses, generator: torch.Generator | None = None) -> torch.Tensor:
        """Outcome rewards for ``responses`` [B, n, ...] of ``prompts`` [B]: shape [B, n]."""
        prompts = torch.as_tensor(prompts, dtype=torch.long)
        if responses.shape[0] != prompts.numel():
            raise ConfigError("responses", f"first dim must match prompts ({prompts.numel()}), got {tuple(responses.shape)}")
        self.ledger.charge("t_data", responses.shape[0] * responses.shape[1])
        mean = _check_finite_rewards(self._reward.mean(prompts, responses), "reward.mean")
        return self.noise.apply(mean, self.r_max, generator)

    __call__ = outcome

    def process(self, prompts, responses, generator: torch.Generator | None = None) -> torch.Tensor:
        """Process rewards, one per prefix: shape [B, n, H]; counts B·n·H queries."""
        if not self.has_process:
            raise ConfigError("reward", f"{type(self._reward).__name__} has no process rewards (process_mean)")
        prompts = torch.as_tensor(prompts, dtype=torch.long)
        mean = _check_finite_rewards(self._reward.process_mean(prompts, responses), "reward.process_mean")
        self.ledger.charge("t_data", mean.numel())
        return self.noise.apply(mean, self.r_max, generator)


class PreferenceOracle:
    """Bradley–Terry preference oracle (Foster et al. Eq. 14): P(y₁ ≻ y₂ | x) = σ((r⋆(x,y₁) − r⋆(x,y₂))/τ)."""

    def __init__(self, reward, ledger: Ledger | None = None, temperature: float = 1.0):
        self._reward = reward
        self.ledger = ledger if ledger is not None else Ledger()
        self.temperature = check_positive("temperature", temperature)

    def compare(self, prompts, first: torch.Tensor, second: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Return a {0,1} tensor [B, n]: 1 where ``first`` is preferred. Counts one query per pair."""
        prompts = torch.as_tensor(prompts, dtype=torch.long)
        if first.shape != second.shape:
            raise ConfigError("second", f"must have the shape of first {tuple(first.shape)}, got {tuple(second.shape)}")
        self.ledger.charge("t_data", first.shape[0] * first.shape[1])
        diff = self._reward.mean(prompts, first) - self._reward.mean(prompts, second)
        p = torch.sigmoid(diff / self.temperature)
        u = torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device)
        return (u < p).to(p.dtype)
