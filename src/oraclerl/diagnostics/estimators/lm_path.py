"""A test oracle for the language-model code path: run the transformers backend's policy-gradient step
(:meth:`oraclerl.posttrain.lm_pg.LMPolicyGradient.step`, with its advantages and KL penalty) *unchanged* on an
exact linear autoregressive model, and compare its Monte Carlo expected gradient with the exact one.

:class:`ExactLMPolicy` presents a :class:`~oraclerl.models.linear_ar.LinearARModel` with the part of the
:class:`~oraclerl.models.hf.causal_lm.CausalLM` interface the step uses (``sample``, ``token_log_probs(...,
processed, grad)``, ``response_mask``, ``model.parameters()``, ``trainable_copy``); every response has the
full length H, so the step's token mean divides by B·n·H. :class:`SequenceTableReward` gives outcome / process
rewards from tables over the enumerated sequences. :func:`step_gradients` records ∇loss of T independent steps
(a recording optimiser, no update), and :func:`exact_step_gradient` is its exact expectation:

    E ∇loss = ( −E ĝ_advantage + β · E g_{loss/token/k} ) / H

with ĝ from :func:`~.groups.group_gradient_moments` and g from :func:`~.kl_gradients.kl_gradient_moments`
(the step puts the per-token estimate in the loss). A user checks a new estimator the same way: put it in the
step (or pass a callable to the exact functions) and compare the two with a z-test.
"""

from __future__ import annotations

import torch

from ...errors import ConfigError
from ...models.linear_ar import LinearARModel
from .groups import group_gradient_moments
from .kl_gradients import kl_gradient_moments
from .score_tables import ScoreTable, linear_ar_table


class ExactLMPolicy:
    """A :class:`LinearARModel` (float64) behind the CausalLM methods that ``LMPolicyGradient.step`` calls.

    Prompt ids index ``contexts`` [X, d]. ``model`` is a ``torch.nn.Module`` whose only parameter is w.
    """

    def __init__(self, ar: LinearARModel, contexts: torch.Tensor):
        self.feature_map, self.horizon = ar.feature_map, ar.horizon
        self.contexts = torch.as_tensor(contexts, dtype=torch.float64)
        if self.contexts.dim() != 2 or self.contexts.shape[1] != ar.context_dim:
            raise ConfigError("contexts", f"must be [X, {ar.context_dim}], got {tuple(self.contexts.shape)}")
        self.model = torch.nn.Module()
        self.model.w = torch.nn.Parameter(ar.w.detach().to(torch.float64).clone())

    num_prompts = property(lambda self: self.contexts.shape[0])
    device = property(lambda self: torch.device("cpu"))
    feature_dim = beta = default_reveal = None       # a BaseModel without features (oracles.protocols)

    def ar(self) -> LinearARModel:
        """The current policy as a LinearARModel (differentiable in ``model.w``)."""
        return LinearARModel(self.feature_map, self.horizon, self.model.w, torch.float64)

    def trainable_copy(self) -> ExactLMPolicy:
        return ExactLMPolicy(self.ar(), self.contexts)

    def sample(self, prompts, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            return self.ar().sample(self.contexts[prompts], n, generator)

    def token_log_probs(self, prompts, responses, processed: bool = True, grad: bool = False) -> torch.Tensor:
        with torch.enable_grad() if grad else torch.no_grad():
            return self.ar().token_log_probs(self.contexts[prompts], responses)

    def ref_log_prob(self, prompts, responses) -> torch.Tensor:
        return self.token_log_probs(prompts, responses).sum(-1)

    def response_mask(self, responses: torch.Tensor) -> torch.Tensor:
        return torch.ones(responses.shape, dtype=torch.bool)


def sequence_codes(responses: torch.Tensor, num_actions: int) -> torch.Tensor:
    """Index of each sequence in :func:`~.score_tables.all_sequences` order (token 1 most significant)."""
    H = responses.shape[-1]
    powers = num_actions ** torch.arange(H - 1, -1, -1, device=responses.device)
    return (responses * powers).sum(-1)


class SequenceTableReward:
    """Outcome rewards ``outcome`` [X, S] and optional process rewards ``process`` [X, S, H] over the k^H
    enumerated sequences (a ground-truth reward for :class:`~oraclerl.oracles.RewardOracle`)."""

    def __init__(self, outcome: torch.Tensor, num_actions: int, process: torch.Tensor | None = None):
        self.table = torch.as_tensor(outcome, dtype=torch.float64)
        self.num_actions = num_actions
        self.r_max = float(self.table.max())
        if process is not None:
            self.prefix_table = torch.as_tensor(process, dtype=torch.float64)
            self.process_mean = self._process

    def mean(self, prompts, responses):
        return self.table[prompts[:, None], sequence_codes(responses, self.num_actions)]

    def _process(self, prompts, responses):
        return self.prefix_table[prompts[:, None], sequence_codes(responses, self.num_actions)]


class _Recorder:
    """An optimiser stand-in: keeps ∇loss of each step and leaves the weights alone."""

    def __init__(self, params):
        self.params = list(params)
        self.grads: list[torch.Tensor] = []

    def zero_grad(self, set_to_none: bool = True):
        for p in self.params:
            p.grad = None

    def step(self):
        self.grads.append(torch.cat([p.grad.detach().reshape(-1).clone() for p in self.params]))


def step_gradients(
    trainer,
    policy: ExactLMPolicy,
    sampler,
    reward,
    prompts,
    steps: int,
    generator: torch.Generator | None = None,
    reference: ExactLMPolicy | None = None,
) -> torch.Tensor:
    """∇loss of ``steps`` independent calls of ``trainer.step`` at the same weights: [steps, D]."""
    rec = _Recorder(policy.model.parameters())
    for _ in range(steps):
        trainer.step(policy, sampler, reward, prompts, rec, generator, reference=reference)
    return torch.stack(rec.grads)


def exact_step_gradient(
    table: ScoreTable,
    outcome: torch.Tensor,
    n: int,
    advantage,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
    process: torch.Tensor | None = None,
    **advantage_kw,
) -> torch.Tensor:
    """The exact E ∇loss of one ``LMPolicyGradient.step`` (module doc) on an enumerated model: [D].

    ``advantage`` is a name or callable as in :func:`~.groups.group_gradient_moments`; ``process`` [X, S, H]
    switches to process rewards (per-token scores)."""
    H = table.log_q.shape[-1]
    if process is None:
        g = group_gradient_moments(
            table.seq_log_q, outcome, table.seq_score, n, advantage, **advantage_kw
        ).mean
    else:
        g = group_gradient_moments(table.seq_log_q, process, table.score, n, advantage, **advantage_kw).mean
    out = -g
    if kl_coef:
        v = f"loss/token/{kl_estimator}"
        out = out + kl_coef * kl_gradient_moments(table, (v,)).mean[v]
    return out / H


def exact_table(policy: ExactLMPolicy, reference: ExactLMPolicy) -> ScoreTable:
    """The :class:`ScoreTable` of the policy (q) against the reference (p) over all prompts' contexts."""
    with torch.no_grad():
        return linear_ar_table(policy.ar(), reference.ar(), policy.contexts)
