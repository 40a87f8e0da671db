"""Policy gradient with outcome (ORM) or process (PRM) rewards (Mousavi-Hosseini & Erdogdu 2026, §3-§4, §6).

One step (docs/papers/mousavi2026_pg_barrier.md §3.5, exact for the experiments):

    x_1..x_B ∼ ρ                                  (prompt source: counts prompts)
    y_b ∼ p_w(·|x_b)                               (the learner's sampler: counts T_comp)
    ORM: r_b = R(x_b, y_b)          [B, n]         (reward oracle: B·n queries)
    PRM: r_{b,i} = R(x_b, y_{b,1:i}) [B, n, N]     (reward oracle: B·n·N queries, one per prefix)
    A = advantages(r, advantage)                   (posttrain.advantages)
    loss = −normalise Σ_{b,i} A_{b(,i)} log p_w(y_{b,i} | x_b, y_{b,<i})
    w ← optimiser step on the closed-form ∇loss

Figure 1 uses ±1 rewards, Adagrad lr 0.1 (fresh state), B = 1024, token-mean loss; ORM with the batch-mean
baseline (the ``baseline: fasle`` typo, docs/papers/mousavi2026_pg_barrier.md §5.7), PRM without baseline. The
theory (Algorithms 1-2) uses {0,1} rewards, no baseline, the adaptive step on the sequence-sum loss, best-of-m
exploration (``behaviour="best_of_m"``) and a random-iterate output. The PRM counts one query per prefix for
all N prefixes of an on-policy response (what the authors' code evaluates), not only up to the first mistake.

PG draws only through oracles that the caller builds (:func:`pg_oracles`, on the reward oracle's ledger) and
hands over as :class:`PGOracles`: the prompt source over the contexts, the learner's sampler over p_w and q₀'s
samplers; q₀ itself never reaches the algorithm (issue 16 §5). Shape:
``PolicyGradient(PGConfig(...)).run(policy, contexts, reward, oracles, generator) -> PGResult``; the knobs it
shares with the LM trainer have the same names there (``batch_size``, ``group_size``, ``advantage``,
``optimizer``, ``lr``, ``steps``; :mod:`oraclerl.posttrain.lm_pg`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..common.config import param
from ..errors import ConfigError
from ..models.linear_ar import LinearARModel, PromptBoundPolicy
from ..oracles.samplers import AutoregressiveSampler, PromptSource, WeakSampler
from .advantages import ESTIMATORS, advantages
from .behaviour import explore_outcome, explore_process
from .optim import RandomIterate, TrainingConfig, ascent_step, make_optimizer


@dataclass
class PGConfig(TrainingConfig):
    """Policy-gradient hyper-parameters (defaults: the paper's Figure-1 ORM run); the optimiser knobs are
    :class:`~oraclerl.posttrain.optim.TrainingConfig`'s."""

    steps: int = param(4000, "PG iterations (paper: 4000)", low=1)
    batch_size: int = param(1024, "fresh contexts per iteration (paper: 1024; theory: 1)", low=1)
    group_size: int = param(1, "on-policy responses per context n (paper: 1)", low=1)
    reward: str = param("outcome", "outcome (ORM) | process (PRM)", choices=("outcome", "process"))
    reward_form: str = param("signed", "signed ±1 (experiments) | binary {0,1} (theory)",
                             choices=("signed", "binary"))
    advantage: str = param("batch_mean", "advantage estimator (paper: batch_mean for ORM, none for PRM)",
                           choices=ESTIMATORS)
    behaviour: str = param(
        "on_policy",
        "on_policy (experiments) | best_of_m (Algorithm 1 for ORM, 2 for PRM)",
        choices=("on_policy", "best_of_m"),
    )
    m: int = param(
        10, "exploration attempts per wrong response/token (theory: ⌈1/LQ⌉ ∧ k^N, resp. ∧ k)", low=1
    )
    explore_mix: float = param(0.5, "weight of q₀ in the exploration law mix·q₀ + (1−mix)·Unif (theory: ½)",
                               low=0.0, high=1.0)


@dataclass
class PGResult:
    policy: LinearARModel
    """The final policy p_{w_T}."""
    iterate: LinearARModel | None
    """p_{w_τ} when ``random_iterate``, else None."""
    ledger: dict
    """Oracle counters (prompts, t_comp, t_comp_token, t_data) after training."""
    mean_reward: list[float] = field(default_factory=list)
    """Mean on-policy reward per iteration (before exploration)."""


@dataclass(frozen=True)
class PGOracles:
    """The sampling oracles PG draws through, built by the caller (issue 16 §5): algorithm code never wraps a
    model in a sampler itself, so it cannot make a model's draws acceptable to the reward oracle, and the base
    model q₀ stays behind its oracles. Build them with :func:`pg_oracles`."""

    sampler: WeakSampler
    """The learner's weak sampler over p_w (follows the in-place updates of ``policy.w``); counts T_comp."""
    prompts: PromptSource
    """The prompt source over the contexts x ∼ ρ (e.g. a teacher task's TeacherContexts); counts prompts."""
    base_sequences: WeakSampler | None = None
    """q₀'s sequence sampler (ORM ``best_of_m`` exploration, counts T_comp), or None."""
    base_tokens: AutoregressiveSampler | None = None
    """q₀'s next-token sampler (PRM ``best_of_m`` exploration, counts T_comp_token), or None."""


def pg_oracles(policy: LinearARModel, contexts, reward, base: LinearARModel | None = None) -> PGOracles:
    """The caller's side: PG's sampling oracles on the reward oracle's ledger, so the reward oracle accepts
    their draws. ``policy``: the model PG will train in place; ``base``: q₀ for ``best_of_m``, or None."""
    ledger = reward.ledger
    sampler = WeakSampler(PromptBoundPolicy(policy, contexts), ledger, reveal=())
    prompts = PromptSource(contexts, ledger)
    if base is None:
        return PGOracles(sampler, prompts)
    bound = PromptBoundPolicy(base, contexts)
    return PGOracles(sampler, prompts, WeakSampler(bound, ledger, reveal=()),
                     AutoregressiveSampler(bound, ledger, reveal=()))


class PolicyGradient:
    """``PolicyGradient(PGConfig(...)).run(policy, contexts, reward, oracles, generator)`` ->
    :class:`PGResult`."""

    def __init__(self, config: PGConfig | None = None):
        self.config = config if config is not None else PGConfig()

    def run(self, policy: LinearARModel, contexts, reward, oracles: PGOracles,
            generator: torch.Generator | None = None, *,
            track: Callable[[int, LinearARModel], bool | None] | None = None) -> PGResult:
        """Train ``policy.w`` in place with PG.

        Args:
            policy: the learner's model (its own weights: the learner may evaluate and differentiate it).
            contexts: ``lookup(ids) -> x`` of the drawn prompt ids (the learner's own input; e.g.
            TeacherContexts). reward: a :class:`~oraclerl.oracles.RewardOracle` on an outcome or process
            reward; its ledger counts
                every query and also receives the sampling counts.
            oracles: the oracles, built by the caller with :func:`pg_oracles` on ``reward``'s ledger: the
            prompt
                source, the learner's sampler over ``policy`` and, for ``best_of_m``, q₀'s sequence and token
                samplers.
            track: ``track(t, policy)`` after every iteration (and at t = 0), for evaluation; returning True
                stops training early (e.g. "until the likelihood reaches 1 − ε").
        """
        cfg = self.config
        if cfg.reward == "process" and not reward.has_process:
            raise ConfigError("reward", "reward='process' needs a reward oracle with process rewards")
        base_seq, base_tok = oracles.base_sequences, oracles.base_tokens
        if cfg.behaviour == "best_of_m" and (base_tok if cfg.reward == "process" else base_seq) is None:
            raise ConfigError("oracles",
                              "behaviour='best_of_m' needs q₀'s sampling oracles: pg_oracles(..., base=q₀)")
        ledger = reward.ledger
        sampler = oracles.sampler
        failure = -1.0 if cfg.reward_form == "signed" else 0.0
        w = policy.w
        opt = make_optimizer(cfg.optimizer, [w], cfg.lr)
        rnd = RandomIterate(cfg.steps, generator, cfg.random_iterate)
        N, n = policy.horizon, cfg.group_size
        scale = cfg.loss_scale(cfg.batch_size * n, N)
        history = []
        stop = bool(track(0, policy)) if track is not None else False
        for t in range(0 if stop else cfg.steps):
            rnd.observe(t, w)
            ids = oracles.prompts.draw(cfg.batch_size, generator)
            x = contexts.lookup(ids)
            y = sampler.sample(ids, n, generator).responses                      # [B, n, N]
            if cfg.reward == "outcome":
                r = reward.outcome(ids, y, generator)                             # [B, n]
                history.append(float(r.mean()))
                if cfg.behaviour == "best_of_m":
                    y, r = explore_outcome(ids, y, r, reward, base_seq, policy.num_actions, cfg.m,
                                           cfg.explore_mix, generator)
            else:
                r = reward.process(ids, y, generator)                             # [B, n, N]
                history.append(float(r[..., -1].mean()))
                if cfg.behaviour == "best_of_m":
                    y, r = explore_process(ids, y, r, reward, base_tok, cfg.m, cfg.explore_mix, failure,
                                           generator)
            A = advantages(r, cfg.advantage)
            ascent_step(opt, w, policy.grad_log_likelihood(x, y, A) * scale)
            if track is not None and track(t + 1, policy):
                break
        return PGResult(policy, policy.copy(rnd.w) if rnd.w is not None else None, ledger.snapshot(), history)
