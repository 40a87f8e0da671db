"""Sample estimators of KL(π_θ ‖ π_ref) from the log-probabilities of sampled tokens or sequences.

For y ~ π_θ (the policy) with ratio r = π_ref(y) / π_θ(y), i.e. log r = ``logp_ref − logp``
(Schulman 2020, "Approximating KL divergence", http://joschu.net/blog/kl-approx.html):

* ``"k1"``: −log r = logp − logp_ref. Unbiased for KL(π_θ‖π_ref); can be negative; high variance.
* ``"k2"``: ½ (log r)². Biased (its mean is ½ E(log r)², a second-order approximation of the KL); ≥ 0.
* ``"k3"``: (r − 1) − log r. Unbiased for KL(π_θ‖π_ref) when π_ref ≪ π_θ (then E_{π_θ} r = 1); ≥ 0.

The function is elementwise: pass per-token log-probs ``[..., H]`` for a per-token estimate (sum over the
tokens for the sequence estimate of k1 only: k2 and k3 are not additive over tokens) or per-sequence
log-probs ``[...]`` for a per-sequence estimate. Gradients flow through both arguments; where the estimate
goes decides which gradient the update follows:

* **in the reward**: ``r_b − β · kl_estimate(logp.detach(), logp_ref, k)`` enters the advantage, so its
  gradient is a score-function term ``E[k · ∇ log π_θ]``;
* **in the loss**: ``loss += β · kl_estimate(logp, logp_ref, k).mean()`` is differentiated through
  ``logp`` of on-policy samples (no score term).

Which true gradient (∇KL(π_θ‖π_ref), ∇KL(π_ref‖π_θ), or neither) each placement follows in expectation is
computed exactly by :mod:`oraclerl.diagnostics.estimators`.

Example::

    kl_tok = kl_estimate(token_logp, ref_token_logp, "k3")     # [B, n, H]
    loss = pg_loss + beta * (kl_tok * mask).sum() / mask.sum()
"""

from __future__ import annotations

import torch

from ..errors import ConfigError

KL_ESTIMATORS = ("k1", "k2", "k3")
"""Names accepted by :func:`kl_estimate`."""


def check_kl_estimator(estimator: str) -> str:
    """Return ``estimator`` if it is one of :data:`KL_ESTIMATORS`, else raise :class:`ConfigError`."""
    if estimator not in KL_ESTIMATORS:
        raise ConfigError("estimator", f"must be one of {list(KL_ESTIMATORS)}, got {estimator!r}")
    return estimator


def kl_estimate(logp: torch.Tensor, logp_ref: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Elementwise sample estimate of KL(π_θ‖π_ref) (see the module doc for the formulas).

    Args:
        logp: log-probabilities of the sampled tokens (or sequences) under the policy π_θ (the sampling law).
        logp_ref: the same under the reference π_ref; must broadcast with ``logp``.
        estimator: ``"k1"``, ``"k2"`` or ``"k3"``.

    Returns:
        A tensor of the broadcast shape of the two inputs (differentiable in both).
    """
    check_kl_estimator(estimator)
    logp = torch.as_tensor(logp)
    logp_ref = torch.as_tensor(logp_ref, device=logp.device)
    try:
        torch.broadcast_shapes(logp.shape, logp_ref.shape)
    except RuntimeError:
        raise ConfigError("logp_ref", f"shape {tuple(logp_ref.shape)} does not broadcast with logp "
                                      f"{tuple(logp.shape)}") from None
    log_r = logp_ref - logp
    if estimator == "k1":
        return -log_r
    if estimator == "k2":
        return 0.5 * log_r ** 2
    return torch.expm1(log_r) - log_r
