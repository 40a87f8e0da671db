"""Exact mean and variance of sample KL estimators on finite laws (the value half of the estimator lab).

For y ~ q and r = p(y)/q(y) (log r = log p − log q), the estimators of KL(q‖p) are those of
:func:`oraclerl.posttrain.kl_penalty.kl_estimate` (Schulman 2020, "Approximating KL divergence"):

    k1 = −log r,     k2 = ½ (log r)²,     k3 = (r − 1) − log r,

and their importance-corrected variants estimate the *other* direction KL(p‖q) = E_q[r log r] from the
same samples of q: ``kX_is`` = r · kX(with the roles of p and q swapped), i.e.

    k1_is = r log r,     k2_is = ½ r (log r)²,     k3_is = r log r − (r − 1).

Closed forms (all expectations under q, sums over supp q; checked against brute force and Monte Carlo in
``tests/test_estimators_kl_values.py``):

* E k1 = KL(q‖p); Var k1 = E(log r)² − KL(q‖p)².
* E k2 = ½ E(log r)² = ½ (Var k1 + KL(q‖p)²): biased, bias = ½(Var k1 + KL²) − KL.
* E k3 = KL(q‖p) + p(supp q) − 1: unbiased iff p puts no mass outside supp q.
* E k1_is = Σ_{supp q} p log(p/q) and E k3_is = E k1_is + 1 − p(supp q): both equal KL(p‖q) when
  supp p ⊆ supp q (otherwise KL(p‖q) = ∞ and they are finite: the samples never see the missing mass).

Zero mass: responses with q = 0 are never sampled and contribute nothing; where p = 0 < q, log r = −∞ and
k1, k2, k3 are +∞ (so are their means), while r·f(r) → 0 (k1_is, k2_is) and 1 (k3_is).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ...errors import ConfigError
from ...posttrain.kl_penalty import KL_ESTIMATORS, kl_estimate
from ..divergences import kl_divergence

VALUE_ESTIMATORS = KL_ESTIMATORS + tuple(f"{k}_is" for k in KL_ESTIMATORS)
"""Names of the value estimators: ``k1, k2, k3`` (of KL(q‖p)) and ``k1_is, k2_is, k3_is`` (of KL(p‖q))."""

_IS_LIMIT = {"k1": 0.0, "k2": 0.0, "k3": 1.0}  # lim_{r→0} r·kX(1/r) (the p = 0 < q entries)


def target_of(name: str) -> str:
    """``"kl_qp"`` for k1, k2, k3 (they estimate KL(q‖p)), ``"kl_pq"`` for the ``_is`` variants."""
    if name not in VALUE_ESTIMATORS:
        raise ConfigError("estimator", f"must be one of {list(VALUE_ESTIMATORS)}, got {name!r}")
    return "kl_pq" if name.endswith("_is") else "kl_qp"


def kl_value_estimates(log_q: torch.Tensor, log_p: torch.Tensor, name: str) -> torch.Tensor:
    """The estimator ``name`` evaluated at every response: a table of the shape of ``log_q`` (samples y ~ q).

    k1..k3 run :func:`~oraclerl.posttrain.kl_penalty.kl_estimate` unchanged (policy = q, reference = p);
    the ``_is`` variants are r·kl_estimate(log p, log q, kX).
    """
    target_of(name)
    if not name.endswith("_is"):
        return kl_estimate(log_q, log_p, name)
    base = name[:-3]
    log_r = log_p - log_q
    val = torch.exp(log_r) * kl_estimate(log_p, log_q, base)
    return torch.where(log_r == -math.inf, torch.full_like(val, _IS_LIMIT[base]), val)


@dataclass
class KLMoments:
    """Exact moments of every value estimator under q, next to the two true divergences (shapes [...])."""

    kl_qp: torch.Tensor
    """KL(q‖p) per prompt."""
    kl_pq: torch.Tensor
    """KL(p‖q) per prompt."""
    mean: dict[str, torch.Tensor] = field(default_factory=dict)
    """E_q[estimator] per prompt, for each name of :data:`VALUE_ESTIMATORS`."""
    var: dict[str, torch.Tensor] = field(default_factory=dict)
    """Var_q[estimator] of one sample, per prompt."""

    def target(self, name: str) -> torch.Tensor:
        """The divergence ``name`` estimates (KL(q‖p) or KL(p‖q))."""
        return getattr(self, target_of(name))

    def bias(self, name: str) -> torch.Tensor:
        """E[estimator] − the divergence it estimates."""
        return self.mean[name] - self.target(name)


def _wsum(v: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Σ_y q·v per row as a batched dot product (no [rows, Y] temporary)."""
    return (v.unsqueeze(-2) @ q.unsqueeze(-1))[..., 0, 0]


def _moments_rows(lq: torch.Tensor, lp: torch.Tensor, names) -> tuple:
    q = torch.exp(lq)
    full = bool((q > 0).all()) and bool(torch.isfinite(lp).all())   # no zero mass: skip the masking passes
    on = None if full else q > 0
    kl_qp = kl_divergence(lq, lp)
    kl_pq = kl_divergence(lp, lq)
    means, vars_ = {}, {}
    for name in names:
        v = kl_value_estimates(lq, lp, name)
        if on is not None:
            v = torch.where(on, v, torch.zeros_like(v))
        m = _wsum(v, q)
        dev = v - m[..., None]                                        # two-pass variance (no cancellation)
        if on is not None:
            dev = torch.where(on, dev, torch.zeros_like(dev))
        var = _wsum(dev * dev, q)
        means[name] = m
        vars_[name] = torch.where(torch.isinf(m), torch.full_like(var, math.inf), var)
    return kl_qp, kl_pq, means, vars_


def kl_estimator_moments(log_q: torch.Tensor, log_p: torch.Tensor, estimators=VALUE_ESTIMATORS,
                         chunk_elements: int = 1 << 18) -> KLMoments:
    """Exact E_q and Var_q of each KL value estimator, batched over prompts.

    Args:
        log_q: [..., Y] normalised log-probabilities of the sampling law q (``-inf`` = zero mass).
        log_p: [..., Y] normalised log-probabilities of the other law p (same shape).
        estimators: names from :data:`VALUE_ESTIMATORS`.
        chunk_elements: rows are processed in blocks of about this many entries (bounds the working memory
            to a few times ``chunk_elements`` numbers; the outputs are [...]).

    Returns:
        :class:`KLMoments` with per-prompt tensors of shape ``log_q.shape[:-1]``.
    """
    log_q, log_p = torch.as_tensor(log_q), torch.as_tensor(log_p)
    if log_q.shape != log_p.shape or log_q.dim() < 1:
        raise ConfigError(
            "log_p", f"must have the shape of log_q {tuple(log_q.shape)} (..., Y), got {tuple(log_p.shape)}"
        )
    for name in estimators:
        target_of(name)
    if not chunk_elements >= 1:
        raise ConfigError("chunk_elements", f"must be >= 1, got {chunk_elements!r}")
    lead, Y = log_q.shape[:-1], log_q.shape[-1]
    lq, lp = log_q.reshape(-1, Y), log_p.reshape(-1, Y)
    N = lq.shape[0]
    rows = max(1, chunk_elements // max(Y, 1))
    kl_qp = torch.empty(N, dtype=lq.dtype, device=lq.device)
    kl_pq = torch.empty_like(kl_qp)
    mean = {k: torch.empty_like(kl_qp) for k in estimators}
    var = {k: torch.empty_like(kl_qp) for k in estimators}
    for s in range(0, N, rows):  # blocks of prompts, each fully vectorised
        a, b, m, v = _moments_rows(lq[s:s + rows], lp[s:s + rows], estimators)
        kl_qp[s:s + rows], kl_pq[s:s + rows] = a, b
        for k in estimators:
            mean[k][s:s + rows], var[k][s:s + rows] = m[k], v[k]
    shape = lambda t: t.reshape(lead)  # noqa: E731
    return KLMoments(shape(kl_qp), shape(kl_pq), {k: shape(t) for k, t in mean.items()},
                     {k: shape(t) for k, t in var.items()})
