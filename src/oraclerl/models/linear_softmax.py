"""Exact finite linear-softmax models (Foster et al. 2025, Definition 1.1, Eq. 2).

    π_θ(y|x) ∝ π_ref(y|x) · exp(⟨θ, ϕ(x, y)⟩ / β),   x ∈ [X], y ∈ [Y], ϕ ∈ ℝ^d, ‖ϕ‖ ≤ 1.

Everything is a batched tensor over (prompt, response): log-probabilities are a single
``log_softmax`` over the response axis, sampling is inverse-CDF with ``searchsorted`` (no Python loops
over responses), and all quantities stay in log space (π_ref may put zero mass on responses: their
log-probability is ``-inf``).
"""

from __future__ import annotations

import torch

from ..common.validation import check_log_probabilities, check_positive, check_shape
from ..errors import ConfigError


def sample_from_log_probs(log_probs: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """Draw ``n`` i.i.d. indices per row of ``log_probs`` [B, Y] by inverse CDF; returns [B, n]."""
    probs = torch.exp(log_probs - log_probs.max(dim=-1, keepdim=True).values)
    cdf = torch.cumsum(probs, dim=-1)
    total = cdf[:, -1:]
    u = torch.rand((log_probs.shape[0], n), generator=generator, dtype=cdf.dtype, device=cdf.device) * total
    idx = torch.searchsorted(cdf, u, right=True)
    return idx.clamp_(max=log_probs.shape[-1] - 1)


class LinearSoftmaxModel:
    """A finite base model π_ref with features ϕ, and the linear-softmax class {π_θ} around it.

    Parameters
    ----------
    log_ref:
        [X, Y] normalised log π_ref(y|x) (``-inf`` allowed for zero mass).
    phi:
        [X, Y, d] feature map ϕ(x, y).
    beta:
        KL-regularisation / temperature β > 0.

    A :class:`~oraclerl.oracles.protocols.TiltedModel` (weak and strong oracles).
    """

    default_reveal = None

    def __init__(self, log_ref: torch.Tensor, phi: torch.Tensor, beta: float, validate: bool = True):
        self.beta = check_positive("beta", beta)
        log_ref = torch.as_tensor(log_ref)
        phi = torch.as_tensor(phi)
        if log_ref.dim() != 2:
            raise ConfigError("log_ref", f"must have shape (X, Y), got {tuple(log_ref.shape)}")
        check_shape("phi", phi, (log_ref.shape[0], log_ref.shape[1], None))
        if validate:
            check_log_probabilities("log_ref", log_ref, dim=-1)
            if not torch.isfinite(phi).all():
                raise ConfigError("phi", "features must be finite")
        self.log_ref = log_ref
        self.phi = phi.to(log_ref.dtype)

    # -- shapes -------------------------------------------------------------------------------------
    @property
    def num_prompts(self) -> int:
        return self.log_ref.shape[0]

    @property
    def num_responses(self) -> int:
        return self.log_ref.shape[1]

    @property
    def feature_dim(self) -> int:
        return self.phi.shape[-1]

    @property
    def device(self) -> torch.device:
        return self.log_ref.device

    @property
    def dtype(self) -> torch.dtype:
        return self.log_ref.dtype

    def to(self, device) -> LinearSoftmaxModel:
        return LinearSoftmaxModel(self.log_ref.to(device), self.phi.to(device), self.beta, validate=False)

    # -- exact laws ---------------------------------------------------------------------------------
    def _theta(self, theta: torch.Tensor) -> torch.Tensor:
        theta = torch.as_tensor(theta, dtype=self.dtype, device=self.device)
        if theta.shape[-1] != self.feature_dim or theta.dim() not in (1, 2):
            raise ConfigError(
                "theta",
                f"must have shape ({self.feature_dim},) or (B, {self.feature_dim}), got {tuple(theta.shape)}",
            )
        return theta

    def scores(self, theta: torch.Tensor, prompts: torch.Tensor | None = None) -> torch.Tensor:
        """⟨θ, ϕ(x, y)⟩ for all y: [X, Y] (or [B, Y] for the given prompts; θ may be [B, d])."""
        theta = self._theta(theta)
        if prompts is None:
            return self.phi @ theta if theta.dim() == 1 else torch.einsum("xyd,xd->xy", self.phi, theta)
        if theta.dim() == 1:
            if 4 * prompts.numel() >= self.num_prompts:  # cheaper than copying ϕ[prompts]
                return (self.phi @ theta)[prompts]
            return self.phi[prompts] @ theta
        # Per-prompt θ: avoid materialising ϕ[prompts] ([B, Y, d]) when few distinct prompts repeat.
        uniq, inv = torch.unique(prompts, return_inverse=True)
        if uniq.numel() * theta.shape[0] < prompts.numel() * self.feature_dim:
            s = torch.einsum("uyd,bd->uby", self.phi[uniq], theta)  # [U, B, Y]
            return s[inv, torch.arange(prompts.numel(), device=prompts.device)]
        return torch.einsum("byd,bd->by", self.phi[prompts], theta)

    def log_policy(
        self, theta: torch.Tensor | None = None, prompts: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log π_θ(·|x) for all responses: [X, Y] (or [B, Y]). ``theta=None`` gives π_ref."""
        log_ref = self.log_ref if prompts is None else self.log_ref[prompts]
        if theta is None:
            return log_ref
        return torch.log_softmax(log_ref + self.scores(theta, prompts) / self.beta, dim=-1)

    def log_tilt(self, f: torch.Tensor, prompts: torch.Tensor | None = None) -> torch.Tensor:
        """log π_f(·|x) ∝ π_ref·exp(f/β) for an arbitrary score table ``f`` ([X, Y] or [B, Y])."""
        log_ref = self.log_ref if prompts is None else self.log_ref[prompts]
        return torch.log_softmax(log_ref + f / self.beta, dim=-1)

    # -- oracle back-end ------------------------------------------------------------------------------
    def sample(self, prompts: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """y ~ π_ref(·|x): [B, n] response ids."""
        return sample_from_log_probs(self.log_ref[prompts], n, generator)

    def sample_tilted(self, prompts: torch.Tensor, theta: torch.Tensor, n: int,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """y ~ π_θ(·|x): [B, n] response ids (exact, by inverse CDF on the exact law)."""
        return sample_from_log_probs(self.log_policy(theta, prompts), n, generator)

    def features(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        """ϕ(x, y): [B, n, d]."""
        return self.phi[prompts[:, None], responses]

    def ref_log_prob(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        """log π_ref(y|x): [B, n]."""
        return self.log_ref[prompts[:, None], responses]

    def tilted_log_prob(
        self, prompts: torch.Tensor, responses: torch.Tensor, theta: torch.Tensor
    ) -> torch.Tensor:
        """log π_θ(y|x): [B, n]."""
        return self.log_policy(theta, prompts).gather(1, responses)
