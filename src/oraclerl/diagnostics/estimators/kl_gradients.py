"""Exact expected gradient and variance of every way practitioners put a KL estimator into a policy gradient.

Setting: samples s ~ q_θ(·|x) from the policy, a reference p, a :class:`~.score_tables.ScoreTable`. The
penalty (to be *minimised*, i.e. β·penalty is added to the loss) uses an estimator k ∈ {k1, k2, k3} of
:func:`oraclerl.posttrain.kl_penalty.kl_estimate`, evaluated on sequence log-probs (``sequence``) or on each
token's log-probs and summed over tokens (``token``). Per sample, with σ_i = ∇_θ log q_θ(s_i|x, s_{<i}) and σ
= Σ_i σ_i:

* ``reward/sequence/k``: g = k(log q(s), log p(s)) · σ   (estimate in the reward, stop-gradient on it: the
  score-function term of REINFORCE with reward −β·k);
* ``reward/token/k``:    g = (Σ_i k(log q_i, log p_i)) · σ;
* ``loss/sequence/k``:   g = ∂k/∂log q (log q(s), log p(s)) · σ   (k differentiated through log q_θ of the
  sampled sequence, no score term);
* ``loss/token/k``:      g = Σ_i ∂k/∂log q (log q_i, log p_i) · σ_i   (what GRPO-style trainers do, e.g.
  :class:`oraclerl.posttrain.lm_pg.LMPolicyGradient` with ``kl_coef > 0``).

∂k/∂log q is taken by autograd through ``kl_estimate`` itself (so the lab checks the code that trains):
1 for k1, (log q − log p) for k2, 1 − p/q for k3. The true gradients are

    ∇KL(q‖p) = E_q[(log q − log p)·σ],      ∇KL(p‖q) = −E_p[σ].

Exact identities this implies (checked in ``tests/test_estimators_kl_gradients.py``):

* reward/·/k1 → ∇KL(q‖p) (sequence and token: E[k1_j σ_i] = 0 for j < i by causality);
* loss/·/k1 → 0 (E_q σ = 0): k1 in the loss has no expected gradient;
* loss/sequence/k2 → ∇KL(q‖p); loss/sequence/k3 → ∇KL(p‖q) (the forward KL!);
* reward/sequence/k3 → ∇KL(q‖p) − ∇KL(p‖q) (since E_q[(p/q)σ] = −∇KL(p‖q));
* H = 1 (one token per response): token = sequence. For H > 1, loss/token/k2 and loss/token/k3 follow
  Σ_i E_{s_{<i}∼q}∇_θ KL_i with the prefix law held fixed, which is neither true gradient in general.

Variance is the trace of the covariance of one sample's g (x uniform over prompts, s ~ q_θ(·|x)):
E‖g‖² − ‖E g‖².
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...errors import ConfigError
from ...posttrain.kl_penalty import KL_ESTIMATORS, kl_estimate
from .score_tables import ScoreTable

PLACEMENTS = ("reward", "loss")
"""Where the estimate enters: the reward (stop-gradient, score-function term) or the loss (differentiated)."""

GRANULARITIES = ("sequence", "token")
"""Estimate on whole-sequence log-probs or per token (summed over tokens)."""

VARIANTS = tuple(f"{pl}/{gr}/{k}" for pl in PLACEMENTS for gr in GRANULARITIES for k in KL_ESTIMATORS)
"""All placement/granularity/estimator combinations, e.g. ``"loss/token/k3"``."""


def _derivative(logq: torch.Tensor, logp: torch.Tensor, estimator: str) -> torch.Tensor:
    """∂ kl_estimate(logq, logp) / ∂ logq elementwise, by autograd through the trainer's own code."""
    lq = logq.detach().clone().requires_grad_(True)
    (d,) = torch.autograd.grad(kl_estimate(lq, logp.detach(), estimator).sum(), lq)
    return d


def per_sample_gradients(table: ScoreTable, variant: str) -> torch.Tensor:
    """g(x, s) of ``variant`` for every prompt and response: [X, S, D] (see the module doc)."""
    if variant not in VARIANTS:
        raise ConfigError("variant", f"must be one of {list(VARIANTS)}, got {variant!r}")
    placement, gran, k = variant.split("/")
    if placement == "reward":
        if gran == "sequence":
            w = kl_estimate(table.seq_log_q, table.seq_log_p, k)
        else:
            w = kl_estimate(table.log_q, table.log_p, k).sum(-1)
        return w.detach()[..., None] * table.seq_score
    if gran == "sequence":
        return _derivative(table.seq_log_q, table.seq_log_p, k)[..., None] * table.seq_score
    return torch.einsum("xsh,xshd->xsd", _derivative(table.log_q, table.log_p, k), table.score)


@dataclass
class GradientMoments:
    """Expected per-sample gradient, its variance, and the two true KL gradients."""

    grad_kl_qp: torch.Tensor
    """∇_θ E_x KL(q_θ(·|x) ‖ p(·|x)): [D]."""
    grad_kl_pq: torch.Tensor
    """∇_θ E_x KL(p(·|x) ‖ q_θ(·|x)): [D]."""
    mean: dict[str, torch.Tensor] = field(default_factory=dict)
    """E[g] per variant: [D]."""
    var: dict[str, float] = field(default_factory=dict)
    """tr Cov(g) of one sample per variant."""

    def cosine(self, variant: str, target: str) -> float:
        """cos(E g, ∇KL) with ``target`` in {"kl_qp", "kl_pq"}; 0 where E g vanishes (‖E g‖ ≤ 1e-9·‖∇KL‖,
        rounding: the loss/·/k1 variants)."""
        t = getattr(self, f"grad_{target}")
        m = self.mean[variant]
        if torch.linalg.vector_norm(m) <= 1e-9 * torch.linalg.vector_norm(t):
            return 0.0
        return cosine(m, t)

    def relative_bias(self, variant: str, target: str) -> float:
        """‖E g − ∇KL‖ / ‖∇KL‖."""
        t = getattr(self, f"grad_{target}")
        return float(torch.linalg.vector_norm(self.mean[variant] - t) / torch.linalg.vector_norm(t))


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """cos(a, b); 0 when either is the zero vector."""
    na, nb = torch.linalg.vector_norm(a), torch.linalg.vector_norm(b)
    if na == 0 or nb == 0:
        return 0.0
    return float(a @ b / (na * nb))


def _expect(q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """E_x E_{s~q} g for q [X, S] and g [X, S, ...] (zero-mass entries ignored)."""
    g = torch.where((q > 0).reshape(q.shape + (1,) * (g.dim() - 2)), g, torch.zeros_like(g))
    return torch.einsum("xs,xs...->...", q, g) / q.shape[0]


def true_kl_gradients(table: ScoreTable) -> tuple[torch.Tensor, torch.Tensor]:
    """(∇KL(q‖p), ∇KL(p‖q)) averaged over prompts, in closed form (module doc)."""
    q, p = torch.exp(table.seq_log_q), torch.exp(table.seq_log_p)
    log_ratio = torch.where(q > 0, table.seq_log_q - table.seq_log_p, torch.zeros_like(q))
    g_qp = _expect(q, log_ratio[..., None] * table.seq_score)
    g_pq = -_expect(p, table.seq_score)
    return g_qp, g_pq


def kl_gradient_moments(table: ScoreTable, variants=VARIANTS) -> GradientMoments:
    """Exact E[g] and tr Cov(g) of each variant, and both true KL gradients, for one enumerated model."""
    g_qp, g_pq = true_kl_gradients(table)
    out = GradientMoments(g_qp, g_pq)
    q = torch.exp(table.seq_log_q)
    for v in variants:
        g = per_sample_gradients(table, v)
        m = _expect(q, g)
        out.mean[v] = m
        out.var[v] = float(_expect(q, (g * g).sum(-1)) - m @ m)
    return out
