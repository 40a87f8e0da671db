"""What the oracle layer needs from the objects behind it, written down as :class:`typing.Protocol` s.

The oracles of Foster et al. 2025 (arXiv:2503.07453; docs/papers/foster2025_exploration.md §2) are queries to
a base model π_ref, to a reward r⋆ and to the prompt law ρ. Each protocol below is the interface one oracle of
:mod:`oraclerl.oracles` calls, so a class is a base model, an autoregressive model, a reward function or a
prompt law exactly when it provides these members; every one is ``runtime_checkable``, so ``isinstance``
checks them (by presence of the members, not their signatures). A model *declares* every attribute its
protocol names, with ``None`` where it has no such thing (a memoryless model has no features, a prompt-bound
policy no β), so oracle code reads them directly and an optional capability is a declared value or a protocol
of its own, never a guess.

* :class:`ModelInfo` — the declared attributes an oracle reads once and re-exposes (its ``num_prompts``,
  ``beta``, ``device``, and ``feature_dim`` when it reveals features).
* :class:`BaseModel` — π_ref behind :class:`~oraclerl.oracles.WeakSampler` (weak oracle, Def. 2.1);
  :class:`FeatureModel` adds ϕ(x, y) (the linear-softmax class of Def. 1.1); :class:`TiltedModel` adds π_θ
  (strong oracle, Def. 2.1) for :class:`~oraclerl.oracles.StrongSampler`.
* :class:`AutoregressiveModel` — π_{h,ref} and ϕ_h behind :class:`~oraclerl.oracles.AutoregressiveSampler`
  (Def. 5.1; the MDP oracle of Def. I.3).
* :class:`RewardFunction` / :class:`ProcessRewardFunction` — r⋆ behind
  :class:`~oraclerl.oracles.RewardOracle`;
  :class:`RewardQueries` — what an algorithm asks of that oracle.
* :class:`PromptDistribution` — ρ behind :class:`~oraclerl.oracles.PromptSource` (a finite law over [X], or
  the
  unbounded context law of a teacher task).
* :class:`OutputPolicy`, :class:`ExactPolicy`, :class:`ExactTokenPolicy` — what evaluation code needs from a
  learned policy π̂: sampling through the oracles, and its exact law where it is known (Def. 2.2's regret).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ..errors import ConfigError


@runtime_checkable
class ModelInfo(Protocol):
    """Declared attributes of any model behind a sampling oracle (``None``: the model has no such thing)."""

    num_prompts: int | None
    """|X| when prompt ids are a finite range [0, X) (ids are then range-checked), else None."""
    feature_dim: int | None
    """d of ϕ (per step for an autoregressive model), or None: the oracle can reveal no features."""
    beta: float | None
    """β of the class π_θ ∝ π_ref·exp(⟨θ, ϕ⟩/β), or None."""
    device: torch.device
    """Where prompt ids are sent."""
    default_reveal: frozenset[str] | None
    """What an oracle reveals unless told (None: features where the model has them); a model whose features
    cost a pass of their own (a causal LM) lowers it to the empty set."""


@runtime_checkable
class BaseModel(ModelInfo, Protocol):
    """π_ref of the weak oracle (Def. 2.1: x ↦ y ∼ π_ref(·|x)): responses [B, n, ...] and their log π_ref."""

    def sample(self, prompts: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor: ...

    def ref_log_prob(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class FeatureModel(BaseModel, Protocol):
    """A base model with features ϕ(x, y) ∈ ℝ^d, ‖ϕ‖ ≤ 1 (Def. 1.1, Assumption 2.1): [B, n, d]."""

    def features(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class TiltedModel(FeatureModel, Protocol):
    """The strong oracle's model (Def. 2.1: (x, θ) ↦ y ∼ π_θ(·|x) ∝ π_ref·exp(⟨θ, ϕ⟩/β))."""

    def sample_tilted(self, prompts: torch.Tensor, theta: torch.Tensor, n: int,
                      generator: torch.Generator | None) -> torch.Tensor: ...

    def tilted_log_prob(
        self, prompts: torch.Tensor, responses: torch.Tensor, theta: torch.Tensor
    ) -> torch.Tensor: ...


@runtime_checkable
class AutoregressiveModel(ModelInfo, Protocol):
    """The autoregressive oracle's model (Def. 5.1): a_h ∼ π_{h,ref}(·|x, a_{1:h−1}) (or π^auto_{h,θ}, Eq.
    11, when θ_h is given), the step features ϕ_h(x, a_{1:h}) [B, n, d] and log π_h of given tokens [B, n]."""

    horizon: int
    """H: responses are a_{1:H}."""
    num_actions: int
    """|A|."""

    def sample_next(
        self,
        prompts: torch.Tensor,
        prefixes: torch.Tensor,
        n: int,
        generator: torch.Generator | None,
        theta: torch.Tensor | None,
    ) -> torch.Tensor: ...

    def step_features(
        self, prompts: torch.Tensor, prefixes: torch.Tensor, tokens: torch.Tensor
    ) -> torch.Tensor: ...

    def next_log_prob(self, prompts: torch.Tensor, prefixes: torch.Tensor, tokens: torch.Tensor,
                      theta: torch.Tensor | None) -> torch.Tensor: ...


@runtime_checkable
class RewardFunction(Protocol):
    """r⋆ behind a reward oracle: the mean reward E[r | x, y] [B, n] and its bound (None when unknown)."""

    r_max: float | None

    def mean(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class ProcessRewardFunction(RewardFunction, Protocol):
    """A reward function with process rewards r⋆(x, y_{1:i}), one per prefix: [B, n, H]."""

    def process_mean(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class RewardQueries(Protocol):
    """What an algorithm asks of a reward oracle (a :class:`~oraclerl.oracles.RewardOracle` or a view of one):
    outcome and process queries, whether process rewards exist, and the ledger they are counted in."""

    ledger: object
    has_process: bool

    def outcome(self, prompts: torch.Tensor, responses: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor: ...

    def process(self, prompts: torch.Tensor, responses: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor: ...


@runtime_checkable
class PromptDistribution(Protocol):
    """The prompt law ρ (x ∼ ρ, Foster et al. §2): ``sample`` draws n prompt ids i.i.d. (uncounted: the
    :class:`~oraclerl.oracles.PromptSource` serving it counts them)."""

    num_prompts: int | None
    """|X| of a finite law over [X], or None (e.g. fresh contexts of a teacher task, ids a running
    counter)."""

    def sample(self, n: int, generator: torch.Generator | None) -> torch.Tensor: ...


@runtime_checkable
class OutputPolicy(Protocol):
    """A learned policy π̂ served through the oracles: n responses per prompt
    (:class:`~oraclerl.oracles.Samples`)."""

    def sample(self, prompts: torch.Tensor, n: int, generator: torch.Generator | None): ...


@runtime_checkable
class ExactPolicy(Protocol):
    """A policy whose exact law on a finite instance is known: log π̂(y|x) [X, Y] (evaluation code, Def.
    2.2)."""

    def log_prob_table(self, instance) -> torch.Tensor: ...


@runtime_checkable
class ExactTokenPolicy(Protocol):
    """A token-level policy whose exact law is known: log π̂_h(a|s) per automaton state, all layers
    (``log_prob_tables``) or a block of states of one layer (``log_prob_rows``); evaluation code (App. I)."""

    def log_prob_tables(self, model, law: str = "sampler") -> list: ...

    def log_prob_rows(
        self, layer: int, log_ref: torch.Tensor, phi: torch.Tensor, law: str = "sampler"
    ) -> torch.Tensor:
        ...


def members(protocol: type) -> list[str]:
    """The members a protocol names (declared attributes and methods, its own and its bases'), sorted."""
    names = set()
    for base in protocol.__mro__:
        if base.__module__ == __name__ and base is not Protocol:
            names |= set(vars(base).get("__annotations__", {}))
            names |= {k for k, v in vars(base).items() if callable(v) and not k.startswith("_")}
    return sorted(names)


def require(obj, protocol: type, field: str) -> None:
    """Raise ``ConfigError(field, ...)`` naming the members ``obj`` lacks unless it provides ``protocol``."""
    if isinstance(obj, protocol):
        return
    missing = [m for m in members(protocol) if not hasattr(obj, m)]
    raise ConfigError(field, f"{type(obj).__name__} does not provide {protocol.__name__} "
                             f"(missing {', '.join(missing)})")
