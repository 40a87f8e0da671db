"""Random instances for the estimator lab, each drawn from one generator in a fixed order (so a seed gives
one instance): a family of finite laws whose divergence grows with a scale, a linear autoregressive
policy/reference pair, and a linear-softmax instance whose prompts have prescribed base success probabilities.

* :func:`tilted_laws`: p(·|x) = softmax of N(0, 1) logits and q_t(·|x) ∝ p·exp(t·z(x, ·)) with
  z ~ N(0, 1), for the KL value estimators k1, k2, k3 (Schulman 2020, "Approximating KL divergence").
* :func:`linear_ar_pair`: policy q_{s·u} and reference p_{s·v} of the linear autoregressive model
  (Mousavi-Hosseini & Erdogdu 2026, Eq. 1) on context-bigram features, u, v ~ N(0, I); the same directions at
  every scale s, so the divergence grows with s.
* :func:`success_instance`: π_ref(·|x) puts mass p_x uniformly on the first ⌊|Y|/2⌋ responses (reward 1) and
  1 − p_x on the rest (reward 0); features ϕ(x, y) ~ N(0, I), θ = 0.3·N(0, I) (the linear-softmax policy of
  Foster et al. 2025, Eq. 2, with β = 1), for group advantage estimators across p_x from almost 0 to almost 1.
"""

from __future__ import annotations

import torch

from ...models.linear_ar import ContextBigramFeatures, LinearARModel
from ...models.linear_softmax import LinearSoftmaxModel

F64 = torch.float64


def tilted_laws(num_prompts: int, num_responses: int, scales, generator: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log_q [T, X, Y], log_p [X, Y])``: the laws q_t ∝ p·exp(t·z), t in ``scales``, and p."""
    X, Y = num_prompts, num_responses
    lp = torch.log_softmax(torch.randn(X, Y, generator=generator, dtype=F64), -1)
    z = torch.randn(X, Y, generator=generator, dtype=F64)
    t = torch.tensor(scales, dtype=F64)
    return torch.log_softmax(lp[None] + t[:, None, None] * z[None], -1), lp


def linear_ar_pair(context_dim: int, num_actions: int, horizon: int, num_prompts: int, scale: float,
                   generator: torch.Generator) -> tuple[LinearARModel, LinearARModel, torch.Tensor]:
    """``(policy, reference, contexts [X, d])``: linear AR models with weights ``scale``·u, ``scale``·v."""
    fm = ContextBigramFeatures(context_dim, num_actions)
    u = torch.randn(fm.dim, generator=generator, dtype=F64)
    v = torch.randn(fm.dim, generator=generator, dtype=F64)
    x = torch.randn(num_prompts, context_dim, generator=generator, dtype=F64)
    policy = LinearARModel(fm, horizon, scale * u, dtype=F64)
    return policy, LinearARModel(fm, horizon, scale * v, dtype=F64), x


def success_instance(success_probs, num_responses: int, num_features: int, generator: torch.Generator
                     ) -> tuple[LinearSoftmaxModel, torch.Tensor, torch.Tensor]:
    """``(model, theta [d], rewards [X, Y])``: prompt x has base success probability ``success_probs[x]``."""
    X, Y, d = len(success_probs), num_responses, num_features
    half = Y // 2
    p = torch.tensor(success_probs, dtype=F64)
    ref = torch.cat([(p[:, None] / half).expand(X, half),
                     ((1 - p[:, None]) / (Y - half)).expand(X, Y - half)], 1)
    R = torch.cat([torch.ones(X, half), torch.zeros(X, Y - half)], 1).to(F64)
    model = LinearSoftmaxModel(ref.log(), torch.randn(X, Y, d, generator=generator, dtype=F64), 1.0)
    theta = 0.3 * torch.randn(d, generator=generator, dtype=F64)
    return model, theta, R
