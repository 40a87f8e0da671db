"""Sampling oracles (Foster et al. 2025, Definition 2.1, Definition 5.1 and Definition I.3).

* :class:`WeakSampler`: query x -> y ~ π_ref(·|x), with ϕ(x, y) where the model has features.
* :class:`StrongSampler`: query (x, θ) -> y ~ π_θ(·|x) ∝ π_ref·exp(⟨θ, ϕ⟩/β), with ϕ(x, y).
* :class:`AutoregressiveSampler`: query (x, prefix) -> next token a_h ~ π_{h,ref}(·|x, a_{1:h-1})
  (weak) or ~ π^auto_{h,θ} (strong), with the step feature ϕ_h(x, a_{1:h}).
* :class:`PromptSource`: draws prompts x ~ ρ (any :class:`~oraclerl.oracles.protocols.PromptDistribution`,
  e.g. :class:`CategoricalPrompts` over [X] or a teacher task's contexts) and counts them.

What each oracle needs from its model is a protocol of :mod:`oraclerl.oracles.protocols` (checked when the
oracle is built); the oracle reads the model's declared :class:`~oraclerl.oracles.protocols.ModelInfo` once
and re-exposes it (:class:`_Declared`), ``feature_dim`` only when it reveals features.

What an oracle reveals is explicit. ``reveal`` is a subset of ``{"features", "log_probs"}``; the paper's
oracles reveal features but no log-probabilities (the "generalised" oracle of Definition C.1 reveals
log-probabilities too). A model may lower the default with its ``default_reveal`` (a real LM reveals nothing
unless asked, since its features cost a forward pass). Reading an unrevealed field of :class:`Samples` raises
:class:`~oraclerl.errors.RevealError`. Algorithms never get a handle on the model itself: it is held in a
name-mangled attribute, read only through this module's ``_model_of``.

Provenance (issue 16 §5): every response a sampler returns is remembered by its ledger
(:class:`~oraclerl.oracles.ledger.Provenance`: one key per whole response of a sequence-level sampler, its
prefixes not included; one per state x∘a_{1:h} the autoregressive oracle returns), so the reward oracle on the
same ledger scores only what was drawn, and the autoregressive oracle continues only from visited prefixes.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ..common.validation import check_int
from ..errors import ConfigError, RevealError
from .ledger import Ledger, ProvenanceError
from .protocols import AutoregressiveModel, BaseModel, ModelInfo, PromptDistribution, TiltedModel, require

REVEALABLE = frozenset({"features", "log_probs"})


def _reveal_set(reveal: Iterable[str] | None, default: Iterable[str]) -> frozenset[str]:
    out = frozenset(default if reveal is None else reveal)
    bad = out - REVEALABLE
    if bad:
        raise ConfigError("reveal", f"must be a subset of {sorted(REVEALABLE)}, got unknown {sorted(bad)}")
    return out


class Samples:
    """Responses returned by a sampling oracle.

    ``prompts`` has shape [B]; ``responses`` has shape [B, n, ...]; ``features`` [B, n, d] and
    ``log_probs`` [B, n] (log-probability under the law that was sampled) are only readable when the
    oracle reveals them.
    """

    __slots__ = ("prompts", "responses", "_features", "_log_probs", "_reveal", "_oracle")

    def __init__(self, prompts, responses, features, log_probs, reveal, oracle: str):
        self.prompts = prompts
        self.responses = responses
        self._features = features
        self._log_probs = log_probs
        self._reveal = reveal
        self._oracle = oracle

    @property
    def features(self) -> torch.Tensor:
        if "features" not in self._reveal or self._features is None:
            raise RevealError(f"{self._oracle} does not reveal features (reveal={sorted(self._reveal)})")
        return self._features

    @property
    def log_probs(self) -> torch.Tensor:
        if "log_probs" not in self._reveal or self._log_probs is None:
            raise RevealError(
                f"{self._oracle} does not reveal log-probabilities (reveal={sorted(self._reveal)}); "
                "construct it with reveal={'features', 'log_probs'} (the generalised oracle, Def. C.1)"
            )
        return self._log_probs

    @property
    def n(self) -> int:
        return self.responses.shape[1]

    def __len__(self) -> int:
        return self.responses.shape[0]


def _as_prompts(prompts, model: ModelInfo) -> torch.Tensor:
    p = torch.as_tensor(prompts, dtype=torch.long)
    if p.dim() == 0:
        p = p.reshape(1)
    if p.dim() != 1:
        raise ConfigError("prompts", f"must be a 1-D tensor of prompt ids, got shape {tuple(p.shape)}")
    num = model.num_prompts
    if num is not None and p.numel() and (p.min() < 0 or p.max() >= num):
        raise ConfigError(
            "prompts", f"ids must be in [0, {num - 1}], got range [{p.min().item()}, {p.max().item()}]"
        )
    return p.to(model.device)


def _model_of(oracle: _Oracle):
    """The model behind an oracle (oracle code only; algorithms have no handle on it)."""
    return oracle._Oracle__model


class _Declared:
    """A read-only oracle attribute: the model's declared value of the same name, read once when the oracle is
    built (the one place where an oracle re-exposes what its model declares)."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, oracle, owner=None):
        return self if oracle is None else oracle._Oracle__declared[self.name]


class _Oracle:
    # : The model's declared attributes that the oracle reveals (``feature_dim``: None unless it reveals
    # features).
    num_prompts = _Declared()
    beta = _Declared()
    device = _Declared()
    feature_dim = _Declared()

    def __init__(self, model, protocol: type, ledger: Ledger | None, reveal, names=()):
        require(model, protocol, "model")
        self.__model = model
        self.ledger = ledger if ledger is not None else Ledger()
        has_features = model.feature_dim is not None
        # A model whose features cost a pass of their own (CausalLM: a teacher-forced forward) sets
        # ``default_reveal`` so that nothing is computed unless the caller asks for it in ``reveal``.
        default_reveal = {"features"} if model.default_reveal is None else model.default_reveal
        self.reveal = _reveal_set(reveal, default_reveal if has_features else set())
        if "features" in self.reveal and not has_features:
            raise ConfigError("reveal", f"{type(model).__name__} has no features to reveal")
        self.__declared = {"num_prompts": model.num_prompts, "beta": model.beta, "device": model.device,
                           "feature_dim": model.feature_dim if "features" in self.reveal else None}
        self.__declared.update((k, getattr(model, k)) for k in names)

    def _package(self, prompts, responses, log_prob_fn, name):
        self.ledger.provenance.add(prompts, responses, remember=True)   # whole responses only (memory bound)
        feats = _model_of(self).features(prompts, responses) if "features" in self.reveal else None
        logp = log_prob_fn() if "log_probs" in self.reveal else None
        return Samples(prompts, responses, feats, logp, self.reveal, name)


class WeakSampler(_Oracle):
    """Weak sampling oracle (Setting II): x -> y ~ π_ref(·|x) and ϕ(x, y). Counts T_comp per response."""

    def __init__(self, model: BaseModel, ledger: Ledger | None = None, reveal: Iterable[str] | None = None):
        super().__init__(model, BaseModel, ledger, reveal)

    def sample(self, prompts, n: int = 1, generator: torch.Generator | None = None) -> Samples:
        """Draw ``n`` responses for each prompt in ``prompts`` ([B] ids) from π_ref."""
        n = check_int("n", n, low=1)
        prompts = _as_prompts(prompts, _model_of(self))
        self.ledger.charge("t_comp", prompts.numel() * n)
        responses = _model_of(self).sample(prompts, n, generator)
        return self._package(
            prompts, responses, lambda: _model_of(self).ref_log_prob(prompts, responses), "WeakSampler"
        )


class StrongSampler(_Oracle):
    """Strong sampling oracle (Setting I): (x, θ) -> y ~ π_θ(·|x) and ϕ(x, y). Counts T_comp."""

    def __init__(self, model: TiltedModel, ledger: Ledger | None = None, reveal: Iterable[str] | None = None):
        super().__init__(model, TiltedModel, ledger, reveal)

    def sample(
        self, prompts, theta: torch.Tensor, n: int = 1, generator: torch.Generator | None = None
    ) -> Samples:
        """Draw ``n`` responses per prompt from π_θ; ``theta`` is [d] or [B, d] (one per prompt)."""
        n = check_int("n", n, low=1)
        prompts = _as_prompts(prompts, _model_of(self))
        theta = torch.as_tensor(theta)
        d = _model_of(self).feature_dim
        if (
            theta.shape[-1:] != (d,)
            or theta.dim() not in (1, 2)
            or (theta.dim() == 2 and theta.shape[0] != prompts.numel())
        ):
            raise ConfigError(
                "theta", f"must have shape ({d},) or ({prompts.numel()}, {d}), got {tuple(theta.shape)}"
            )
        self.ledger.charge("t_comp", prompts.numel() * n)
        responses = _model_of(self).sample_tilted(prompts, theta, n, generator)
        return self._package(
            prompts,
            responses,
            lambda: _model_of(self).tilted_log_prob(prompts, responses, theta),
            "StrongSampler",
        )


class AutoregressiveSampler(_Oracle):
    """Autoregressive oracle (Definition 5.1, and the MDP oracle of Definition I.3).

    ``next_token(prompts, prefixes)`` draws a_h given the prefix a_{1:h-1} (resetting to any visited
    prefix is part of the query, as with an LM that is fed the prefix again), counting one
    ``t_comp_token`` per token. ``strong=True`` allows a θ_h per query (π^auto_{h,θ}). Feature queries
    for an action that was not sampled (the anchor 𝔞 of MTSS) go through :meth:`anchor_features` and are
    only allowed with ``allow_anchor_features=True``; they count ``t_feature``.

    Every returned state (x, a_{1:h}) — and (x, a_{1:h−1}∘𝔞) after an anchor query — is recorded in the
    ledger's provenance, so a reward oracle on the same ledger may score it. ``local_simulator=True`` (the MDP
    oracle of Definition I.3, default with ``allow_anchor_features``) also refuses queries at a non-empty
    prefix that was never visited, and restarts of a roll-out at a visited state are made by :meth:`reset`,
    which checks the state and counts ``t_reset``.
    """

    horizon = _Declared()
    num_actions = _Declared()

    def __init__(
        self,
        model: AutoregressiveModel,
        ledger: Ledger | None = None,
        reveal: Iterable[str] | None = None,
        strong: bool = False,
        allow_anchor_features: bool = False,
        local_simulator: bool | None = None,
    ):
        super().__init__(model, AutoregressiveModel, ledger, reveal, ("horizon", "num_actions"))
        self.strong = strong
        self.allow_anchor_features = allow_anchor_features
        self.local_simulator = allow_anchor_features if local_simulator is None else bool(local_simulator)

    def _require_visited(self, prompts: torch.Tensor, prefixes: torch.Tensor, what: str) -> None:
        if not self.local_simulator or prefixes.shape[1] == 0:
            return
        known = self.ledger.provenance.contains(prompts, prefixes[:, None, :])[:, 0]
        if not bool(known.all()):
            b = int((~known).nonzero()[0, 0])
            raise ProvenanceError(
                f"{what}: prefix {prefixes[b].tolist()} of prompt {int(prompts[b])} was never visited "
                "(the local simulator only continues or resets to visited states, Def. I.3)"
            )

    def reset(self, prompts, prefixes: torch.Tensor) -> None:
        """Restart roll-outs at the visited states (prompts [B], prefixes [B, l]): one ``t_reset`` per row."""
        prompts = _as_prompts(prompts, _model_of(self))
        prefixes = torch.as_tensor(prefixes, dtype=torch.long, device=prompts.device)
        if prefixes.dim() != 2 or prefixes.shape[0] != prompts.numel():
            raise ConfigError(
                "prefixes", f"must have shape ({prompts.numel()}, l), got {tuple(prefixes.shape)}"
            )
        self.ledger.check("t_reset", prompts.numel())
        if prefixes.shape[1]:
            known = self.ledger.provenance.contains(prompts, prefixes[:, None, :])[:, 0]
            if not bool(known.all()):
                b = int((~known).nonzero()[0, 0])
                raise ProvenanceError(f"AutoregressiveSampler.reset: prefix {prefixes[b].tolist()} of prompt "
                                      f"{int(prompts[b])} was never visited")
        self.ledger.charge("t_reset", prompts.numel())

    def next_token(self, prompts, prefixes: torch.Tensor, n: int = 1, theta: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> Samples:
        """Sample ``n`` next tokens for each (prompt, prefix); ``prefixes`` is [B, h-1] (h-1 may be 0)."""
        n = check_int("n", n, low=1)
        prompts = _as_prompts(prompts, _model_of(self))
        prefixes = torch.as_tensor(prefixes, dtype=torch.long, device=prompts.device)
        if prefixes.dim() != 2 or prefixes.shape[0] != prompts.numel():
            raise ConfigError(
                "prefixes", f"must have shape ({prompts.numel()}, h-1), got {tuple(prefixes.shape)}"
            )
        if prefixes.shape[1] >= self.horizon:
            raise ConfigError("prefixes", f"length must be < horizon {self.horizon}, got {prefixes.shape[1]}")
        if theta is not None and not self.strong:
            raise RevealError(
                "this AutoregressiveSampler is weak: it samples π_ref only (pass strong=True for π_θ)"
            )
        self._require_visited(prompts, prefixes, "AutoregressiveSampler.next_token")
        self.ledger.charge("t_comp_token", prompts.numel() * n)
        tokens = _model_of(self).sample_next(prompts, prefixes, n, generator, theta)
        self._visit(prompts, prefixes, tokens)
        feats = (
            _model_of(self).step_features(prompts, prefixes, tokens) if "features" in self.reveal else None
        )
        logp = (_model_of(self).next_log_prob(prompts, prefixes, tokens, theta)
                if "log_probs" in self.reveal else None)
        return Samples(prompts, tokens, feats, logp, self.reveal, "AutoregressiveSampler")

    def anchor_features(self, prompts, prefixes: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """ϕ_h(x, a_{1:h-1}, a) for given (not sampled) actions, e.g. the anchor 𝔞 (Remark J.4)."""
        if not self.allow_anchor_features:
            raise RevealError(
                "feature queries for unsampled actions need allow_anchor_features=True (MDP oracle, Def. I.3)"
            )
        prompts = _as_prompts(prompts, _model_of(self))
        prefixes = torch.as_tensor(prefixes, dtype=torch.long, device=prompts.device)
        actions = torch.as_tensor(actions, dtype=torch.long, device=prompts.device)
        if actions.dim() == 1:
            actions = actions[:, None]
        self._require_visited(prompts, prefixes, "AutoregressiveSampler.anchor_features")
        self.ledger.charge("t_feature", actions.numel())
        self._visit(prompts, prefixes, actions)
        return _model_of(self).step_features(prompts, prefixes, actions)

    def _visit(self, prompts: torch.Tensor, prefixes: torch.Tensor, tokens: torch.Tensor) -> None:
        """Record the states prefix∘token ([B, n] tokens) in the ledger's provenance (whole states only)."""
        B, n = tokens.shape[:2]
        states = torch.cat(
            [prefixes[:, None, :].expand(B, n, prefixes.shape[1]), tokens.reshape(B, n, 1).to(prefixes)], 2
        )
        self.ledger.provenance.add(prompts, states)


class CategoricalPrompts:
    """A finite prompt law ρ over [X] given by its weights (an int X: uniform); a
    :class:`~oraclerl.oracles.protocols.PromptDistribution`."""

    def __init__(self, weights: torch.Tensor | int):
        if isinstance(weights, int):
            weights = torch.full(
                (check_int("num_prompts", weights, low=1),), 1.0 / weights, dtype=torch.float64
            )
        weights = torch.as_tensor(weights, dtype=torch.float64)
        if (
            weights.dim() != 1
            or (weights < 0).any()
            or not torch.isfinite(weights).all()
            or weights.sum() <= 0
        ):
            raise ConfigError(
                "weights", "must be a 1-D non-negative, finite, non-zero vector (the prompt law ρ)"
            )
        self.weights = weights / weights.sum()

    @property
    def num_prompts(self) -> int:
        return self.weights.numel()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` i.i.d. prompt ids from ρ."""
        return torch.multinomial(self.weights, n, replacement=True, generator=generator)


class PromptSource:
    """The prompt oracle: draws prompts x ~ ρ (i.i.d.) and counts them in the ledger's ``prompts`` counter.

    ``law`` is a :class:`~oraclerl.oracles.protocols.PromptDistribution` (e.g. a teacher task's
    :class:`~oraclerl.problems.teacher.TeacherContexts`), or the weights of a finite law over [X] (an int X:
    uniform), served as :class:`CategoricalPrompts`.
    """

    def __init__(self, law: PromptDistribution | torch.Tensor | int, ledger: Ledger | None = None):
        self.__law = law if isinstance(law, PromptDistribution) else CategoricalPrompts(law)
        self.ledger = ledger if ledger is not None else Ledger()

    @property
    def num_prompts(self) -> int | None:
        return self.__law.num_prompts

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` prompt ids from ρ."""
        n = check_int("n", n, low=1)
        self.ledger.charge("prompts", n)
        return self.__law.sample(n, generator)
