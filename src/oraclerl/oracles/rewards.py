"""Reward oracles: outcome rewards, process rewards, noisy rewards and Bradley–Terry preferences.

A reward *function* is a :class:`~oraclerl.oracles.protocols.RewardFunction`: ``mean(prompts, responses) ->
Tensor[B, n]`` (the expected reward r⋆(x, y)) and ``r_max`` (None when unknown); a
:class:`~oraclerl.oracles.protocols.ProcessRewardFunction` also has ``process_mean(prompts, responses) ->
Tensor[B, n, H]`` (one value per prefix y_{1:i}). The oracle adds the configured noise and counts every query
in T_data: one per (prompt, response) for outcome rewards, one per (prompt, prefix) for process rewards
(Mousavi-Hosseini & Erdogdu 2026 count a reward query per verifier call), one per pair for preferences (Foster
et al. Eq. 14).

Provenance (issue 16 §5): an oracle scores only (prompt, response) pairs that a sampler on the *same ledger*
returned (:class:`~oraclerl.oracles.ledger.Provenance`), or pairs the caller granted with
:meth:`RewardOracle.grant` (counted in ``t_grant``). A process-reward query is checked on the whole response
(it scores that response's prefixes); a prefix of a drawn sequence queried *alone* counts as drawn only if a
sampler returned it as such (a state of the autoregressive oracle) — otherwise grant it (the exploration of
Algorithm 2 does). Anything else raises :class:`~oraclerl.oracles.ledger.ProvenanceError` before any work.
``grant_all=True`` grants every unknown pair as it is queried (still counted): for evaluation code that
legitimately scores arbitrary responses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.validation import check_choice, check_nonneg, check_positive
from ..errors import ConfigError
from .ledger import Ledger, ProvenanceError, response_keys
from .protocols import ProcessRewardFunction, RewardFunction, require


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
            return mean + self.scale * torch.randn(
                mean.shape, generator=generator, dtype=mean.dtype, device=mean.device
            )
        if r_max is None:
            raise ConfigError("noise.kind", "bernoulli noise needs a reward function with a known r_max")
        p = mean / r_max
        if (p < -1e-9).any() or (p > 1 + 1e-9).any():
            raise ConfigError("reward", f"bernoulli noise needs rewards in [0, {r_max}]")
        u = torch.rand(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return (u < p.clamp(0, 1)).to(mean.dtype) * r_max


def _check_finite_rewards(r: torch.Tensor, what: str) -> torch.Tensor:
    # a NaN makes the sum NaN: one cheap pass first
    if bool(torch.isnan(r.sum())) and bool(torch.isnan(r).any()):
        raise ConfigError("reward", f"{what} returned NaN")
    return r


def _grant(ledger: Ledger, prompts, responses) -> int:
    """Register the pairs no sampler on ``ledger`` drew, charging ``t_grant`` once per new pair; returns
    it."""
    prov = ledger.provenance
    keys = response_keys(prompts, responses)
    known = prov.contains_keys(keys)
    new = int(torch.unique(keys[~known]).numel())
    ledger.charge("t_grant", new)
    if new:
        rows, cols = (~known).nonzero(as_tuple=True)
        prov.add_keys(keys[rows, cols])
    return new


def _require_drawn(ledger: Ledger, prompts, responses, grant_all: bool, who: str) -> None:
    if grant_all:
        _grant(ledger, prompts, responses)
        return
    known = ledger.provenance.contains(prompts, responses)
    if not bool(known.all()):
        b, j = (~known).nonzero()[0].tolist()
        raise ProvenanceError(
            f"{who}: response [{b}, {j}] of prompt {int(prompts[b])} was not drawn by a sampler on this "
            "ledger; score only sampled responses, or grant it explicitly (RewardOracle.grant(prompts, "
            "responses), counted in t_grant)")


class RewardOracle:
    """Counts and answers reward queries on responses the learner has sampled (T_data).

    ``grant_all=True`` accepts responses no sampler on the ledger drew, counting each new one in ``t_grant``
    (see the module docstring); ``False`` makes them raise :class:`~oraclerl.oracles.ledger.ProvenanceError`.
    The default is ``False`` on a given ledger and ``True`` on the private ledger made when none is given (no
    sampler can share it, so such an oracle only serves evaluation code; its grants are still counted).
    """

    def __init__(self, reward: RewardFunction, ledger: Ledger | None = None, noise: RewardNoise | None = None,
                 grant_all: bool | None = None):
        require(reward, RewardFunction, "reward")
        self.__reward = reward
        self.ledger = ledger if ledger is not None else Ledger()
        self.noise = noise or RewardNoise()
        self.grant_all = (ledger is None) if grant_all is None else bool(grant_all)

    @property
    def r_max(self) -> float | None:
        return self.__reward.r_max

    @property
    def has_process(self) -> bool:
        return isinstance(self.__reward, ProcessRewardFunction)

    @property
    def reward_name(self) -> str:
        """The class name of the reward function behind the oracle (for error messages)."""
        return type(self.__reward).__name__

    def grant(self, prompts, responses) -> int:
        """Allow this ledger's reward oracles to score ``responses`` [B, n, ...] of ``prompts`` [B]
        although no sampler drew them (e.g. a learner's own samples, evaluation code); counts each pair not
        already known in ``t_grant`` and returns that number."""
        prompts = torch.as_tensor(prompts, dtype=torch.long)
        self._check_shape(prompts, responses)
        return _grant(self.ledger, prompts, responses)

    @staticmethod
    def _check_shape(prompts, responses):
        if responses.dim() < 2 or responses.shape[0] != prompts.numel():
            raise ConfigError(
                "responses",
                f"must be [B, n, ...] with B = {prompts.numel()} prompts, got {tuple(responses.shape)}",
            )

    def outcome(self, prompts, responses, generator: torch.Generator | None = None) -> torch.Tensor:
        """Outcome rewards for ``responses`` [B, n, ...] of ``prompts`` [B]: shape [B, n]."""
        prompts = torch.as_tensor(prompts, dtype=torch.long)
        if responses.dim() < 2:
            raise ConfigError("responses", f"must be [B, n, ...], got {tuple(responses.shape)}")
        if responses.shape[0] != prompts.numel():
            raise ConfigError(
                "responses", f"first dim must match prompts ({prompts.numel()}), got {tuple(responses.shape)}"
            )
        self.ledger.check("t_data", responses.shape[0] * responses.shape[1])
        _require_drawn(self.ledger, prompts, responses, self.grant_all, "RewardOracle.outcome")
        self.ledger.charge("t_data", responses.shape[0] * responses.shape[1])
        mean = _check_finite_rewards(self.__reward.mean(prompts, responses), "reward.mean")
        return self.noise.apply(mean, self.r_max, generator)

    __call__ = outcome

    def process(self, prompts, responses, generator: torch.Generator | None = None) -> torch.Tensor:
        """Process rewards, one per prefix: shape [B, n, H]; counts B·n·H queries."""
        if not self.has_process:
            raise ConfigError("reward", f"{self.reward_name} has no process rewards (process_mean)")
        prompts = torch.as_tensor(prompts, dtype=torch.long)
        self._check_shape(prompts, responses)
        # one query per prefix; the budget is checked before any work or grant (the Ledger contract)
        self.ledger.check(
            "t_data",
            responses.shape[0] * responses.shape[1] * (responses.shape[2] if responses.dim() > 2 else 1),
        )
        _require_drawn(self.ledger, prompts, responses, self.grant_all, "RewardOracle.process")
        mean = _check_finite_rewards(self.__reward.process_mean(prompts, responses), "reward.process_mean")
        self.ledger.charge("t_data", mean.numel())
        return self.noise.apply(mean, self.r_max, generator)


class PreferenceOracle:
    """Bradley–Terry preference oracle (Foster et al. Eq. 14): P(y₁ ≻ y₂ | x) = σ((r⋆(x,y₁) − r⋆(x,y₂))/τ)."""

    def __init__(self, reward: RewardFunction, ledger: Ledger | None = None, temperature: float = 1.0,
                 grant_all: bool | None = None):
        require(reward, RewardFunction, "reward")
        self.__reward = reward
        self.ledger = ledger if ledger is not None else Ledger()
        self.temperature = check_positive("temperature", temperature)
        self.grant_all = (ledger is None) if grant_all is None else bool(grant_all)

    def compare(self, prompts, first: torch.Tensor, second: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Return a {0,1} tensor [B, n]: 1 where ``first`` is preferred. Counts one query per pair."""
        prompts = torch.as_tensor(prompts, dtype=torch.long)
        if first.shape != second.shape:
            raise ConfigError(
                "second", f"must have the shape of first {tuple(first.shape)}, got {tuple(second.shape)}"
            )
        RewardOracle._check_shape(prompts, first)
        self.ledger.check("t_data", first.shape[0] * first.shape[1])
        for resp in (first, second):
            _require_drawn(self.ledger, prompts, resp, self.grant_all, "PreferenceOracle.compare")
        self.ledger.charge("t_data", first.shape[0] * first.shape[1])
        diff = self.__reward.mean(prompts, first) - self.__reward.mean(prompts, second)
        p = torch.sigmoid(diff / self.temperature)
        u = torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device)
        return (u < p).to(p.dtype)
