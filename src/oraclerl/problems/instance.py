"""A problem instance with known ground truth: base model, reward, β, prompt law and the optimum."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from types import SimpleNamespace

import torch

from ..common.forwarding import forwarded
from ..models.linear_softmax import LinearSoftmaxModel
from ..models.rewards import TableReward
from ..oracles import Budget, Ledger, PromptSource, RewardNoise, RewardOracle, StrongSampler, WeakSampler


@dataclass
class LinearSoftmaxInstance:
    """A realisable KL-regularised contextual bandit (Foster et al. §1–2) with every quantity exact.

    π⋆_β(y|x) ∝ π_ref(y|x)·exp(r⋆(x,y)/β); when r⋆ differences are linear in ϕ (realisability,
    Assumption 1.1) this equals π_{θ⋆}.
    """

    base: LinearSoftmaxModel
    """The base model π_ref with its features ϕ and β."""
    reward: TableReward
    """The mean reward r⋆(x, y)."""
    theta_star: torch.Tensor
    """θ⋆ with π⋆_β = π_{θ⋆}."""
    prompt_weights: torch.Tensor
    """The prompt law ρ over [X]."""
    r_max: float
    """R_max: rewards (and reward differences) lie in [0, R_max]."""
    B: float
    """Radius of the parameter set Θ."""
    theta_set: str = "l2"
    """Θ = {‖θ‖₂ ≤ B} ("l2") or {‖θ‖_∞ ≤ B} ("linf", the ETH instance of App. H)."""
    noise: RewardNoise = field(default_factory=RewardNoise)
    """Noise of the reward oracle."""
    name: str = "instance"
    meta: dict = field(default_factory=dict)

    beta = forwarded("base")
    num_prompts = forwarded("base")

    @cached_property
    def _optimal(self) -> torch.Tensor:
        return self.base.log_tilt(self.reward.table.to(self.base.dtype))

    def optimal_log_policy(self) -> torch.Tensor:
        """log π⋆_β(y|x) as an [X, Y] table (computed from r⋆, not from θ⋆)."""
        return self._optimal

    def project(self, theta: torch.Tensor) -> torch.Tensor:
        """Euclidean projection onto Θ."""
        if self.theta_set == "linf":
            return theta.clamp(-self.B, self.B)
        norm = theta.norm(dim=-1, keepdim=True)
        return theta * torch.clamp(self.B / norm.clamp_min(1e-300), max=1.0)

    def oracles(self, budget: Budget | None = None, reveal=None) -> SimpleNamespace:
        """Fresh oracles sharing one ledger: ``prompts``, ``weak``, ``strong``, ``reward`` and ``ledger``."""
        ledger = Ledger(budget)
        return SimpleNamespace(
            ledger=ledger,
            prompts=PromptSource(self.prompt_weights, ledger),
            weak=WeakSampler(self.base, ledger, reveal=reveal),
            strong=StrongSampler(self.base, ledger, reveal=reveal),
            reward=RewardOracle(self.reward, ledger, self.noise),
        )

    def describe(self) -> dict:
        from ..diagnostics.coverage import log_coverage_coefficient

        return {
            "name": self.name, "num_prompts": self.num_prompts, "num_responses": self.base.num_responses,
            "d": self.base.feature_dim, "beta": self.beta, "r_max": self.r_max, "B": self.B,
            "coverage": math.exp(log_coverage_coefficient(self.optimal_log_policy(), self.base.log_ref,
                                                          self.prompt_weights)),
            **self.meta,
        }
