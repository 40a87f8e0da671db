"""Enumerated exact models for the estimator lab: every response of every prompt with its per-token
log-probabilities under the policy q_θ and a reference p, and the closed-form score ∇_θ log q_θ per token.

A :class:`ScoreTable` holds, for prompts x ∈ [X] and responses s ∈ [S] of H tokens,

    log_q[x, s, i] = log q_θ(s_i | x, s_{<i}),   log_p[x, s, i] = log p(s_i | x, s_{<i}),
    score[x, s, i] = ∇_θ log q_θ(s_i | x, s_{<i})  ∈ R^D,

with prompts weighted uniformly. Builders:

* :func:`linear_softmax_table` (H = 1): q_θ = π_θ ∝ π_ref·exp(⟨θ, ϕ⟩/β) (Foster et al. 2025, Eq. 2), whose
  score is (ϕ(x, y) − E_{π_θ}ϕ(x, ·))/β.
* :func:`linear_ar_table`: q_w the linear autoregressive model (Mousavi-Hosseini & Erdogdu 2026, Eq. 1) over
  all k^H sequences; the score of a token is ϕ(x, y_{<i}, y_i) − E_{y'∼q_w(·|x, y_{<i})} ϕ(x, y_{<i}, y').

Both closed forms are checked against autograd in ``tests/test_estimators_kl_gradients.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import ConfigError


@dataclass
class ScoreTable:
    """An enumerated policy/reference pair with closed-form per-token scores (see the module doc)."""

    log_q: torch.Tensor
    """[X, S, H] per-token log-probabilities of the policy q_θ (the sampling law)."""
    log_p: torch.Tensor
    """[X, S, H] per-token log-probabilities of the reference p."""
    score: torch.Tensor
    """[X, S, H, D] ∇_θ log q_θ(s_i | x, s_{<i})."""
    sequences: torch.Tensor | None = None
    """[S, H] token ids of the enumerated responses (None for a single-step model: response s is id s)."""

    def __post_init__(self):
        X, S, H = self.log_q.shape
        if self.log_p.shape != (X, S, H) or self.score.shape[:3] != (X, S, H) or self.score.dim() != 4:
            raise ConfigError(
                "score",
                f"log_q {tuple(self.log_q.shape)}, log_p {tuple(self.log_p.shape)} and "
                f"score {tuple(self.score.shape)} must be [X, S, H] and [X, S, H, D]",
            )

    @property
    def seq_log_q(self) -> torch.Tensor:
        """log q_θ(s | x): [X, S]."""
        return self.log_q.sum(-1)

    @property
    def seq_log_p(self) -> torch.Tensor:
        """log p(s | x): [X, S]."""
        return self.log_p.sum(-1)

    @property
    def seq_score(self) -> torch.Tensor:
        """∇_θ log q_θ(s | x) = Σ_i score[x, s, i]: [X, S, D]."""
        return self.score.sum(2)


def linear_softmax_table(model, theta: torch.Tensor, log_p: torch.Tensor | None = None) -> ScoreTable:
    """q_θ = π_θ of a :class:`~oraclerl.models.linear_softmax.LinearSoftmaxModel`; p = π_ref unless ``log_p``
    ([X, Y]) is given. One token per response (H = 1)."""
    theta = torch.as_tensor(theta, dtype=model.dtype)
    if theta.shape != (model.feature_dim,):
        raise ConfigError("theta", f"must have shape ({model.feature_dim},), got {tuple(theta.shape)}")
    lq = model.log_policy(theta)
    lp = model.log_ref if log_p is None else torch.as_tensor(log_p, dtype=model.dtype)
    if lp.shape != lq.shape:
        raise ConfigError("log_p", f"must have shape {tuple(lq.shape)}, got {tuple(lp.shape)}")
    q = torch.exp(lq)
    mean_phi = torch.einsum("xy,xyd->xd", q, model.phi)
    score = (model.phi - mean_phi[:, None, :]) / model.beta
    return ScoreTable(lq[..., None], lp[..., None], score[:, :, None, :])


def all_sequences(num_actions: int, horizon: int, device=None) -> torch.Tensor:
    """All num_actions^horizon token sequences, [S, H] long, in base-k order (token 1 most significant)."""
    S = num_actions ** horizon
    codes = torch.arange(S, device=device)
    powers = num_actions ** torch.arange(horizon - 1, -1, -1, device=device)
    return (codes[:, None] // powers) % num_actions


def linear_ar_table(policy, reference, x: torch.Tensor, max_sequences: int = 1 << 16) -> ScoreTable:
    """Enumerate all k^H sequences of two :class:`~oraclerl.models.linear_ar.LinearARModel` s (same feature
    map and horizon) for contexts ``x`` [X, d]; q = ``policy``, p = ``reference``; float64."""
    if policy.feature_map is not reference.feature_map or policy.horizon != reference.horizon:
        raise ConfigError("reference", "must share the policy's feature map and horizon")
    k, H = policy.num_actions, policy.horizon
    if k ** H > max_sequences:
        raise ConfigError("policy", f"k^H = {k}^{H} sequences exceed max_sequences={max_sequences}")
    pol, ref = (type(m)(m.feature_map, H, m.w, torch.float64, m.device) for m in (policy, reference))
    x = torch.as_tensor(x, dtype=torch.float64, device=pol.device)
    X = x.shape[0]
    seqs = all_sequences(k, H, device=pol.device)
    S = seqs.shape[0]
    y = seqs[None].expand(X, S, H)
    lq = pol.token_log_probs(x, y)
    lp = ref.token_log_probs(x, y)
    xs = x.repeat_interleave(S, 0)
    yf = y.reshape(X * S, H)
    rows = torch.arange(X * S, device=pol.device)
    cols = []
    for i in range(H):  # one vectorised feature evaluation per position
        phi = pol.feature_map(xs, yf[:, :i]).double()                          # [XS, k, D]
        prob = torch.softmax(phi @ pol.w, -1)
        cols.append(phi[rows, yf[:, i]] - (prob[..., None] * phi).sum(1))
    score = torch.stack(cols, 1).reshape(X, S, H, -1)
    return ScoreTable(lq, lp, score, seqs)
