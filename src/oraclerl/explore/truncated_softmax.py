"""Truncated softmax policies and the improper output of SpannerSampling (Foster et al. 2025, Eq. 9, App. G.3).

For Σ ≻ 0, ν > 0 and θ, the truncated softmax policy is the joint law over (y, y′)::

    y′ ~ π_ref(·|x),   π̄_θ(y | x, y′) ∝ π_ref(y|x)·exp(β⁻¹⟨θ, φ(x, y, y′)⟩·1{‖φ(x, y, y′)‖_{Σ⁻¹} ≤ ν})

with φ(x, y, y′) = ϕ(x, y) − ϕ(x, y′), and its marginal π̄_θ(y|x) = Σ_{y′} π_ref(y′|x)·π̄_θ(y|x, y′).
:class:`SpannerSamplingPolicy` holds the T_exp parameters θ^1..θ^T of Algorithm 3 with the frozen Σ_span⁻¹ and
ν; it is the uniform mixture π̂ ~ Unif(π̂^1..π̂^T) (line 21):

* :meth:`SpannerSamplingPolicy.sample` samples it for new prompts through the weak oracle only (t ~ Unif[T],
  y′ ~ π_ref, y ~ SoftmaxSampler_{β,M_rej,δ_rej}(r^t(x, ·, y′))), counting every draw in the oracle's ledger;
  this is the inference-time cost Õ(C_cov) per prompt of Theorem 3.1.
* :meth:`SpannerSamplingPolicy.log_prob_table` gives, on an exact instance (evaluation code: it reads the whole
  feature table), the exact law of the mixture over **every** component. ``law="sampler"`` (default, issue 16
  §1) is the law :meth:`~SpannerSamplingPolicy.sample` really draws: per component and y′ ~ π_ref, the law of
  SoftmaxSampler_{β,M_rej,δ_rej} with its envelope clipping at M_rej and its failure branch
  (:func:`truncated_sampler_log_marginal`, with Ẑ = Z by default, or averaged exactly over the sampler's own
  Ẑ with ``normaliser="estimated"`` on tiny instances); ``law="ideal"`` is the mixture of the ideal marginals
  π̄_{θ^t} (:func:`truncated_log_marginal`, BLAS matrix products with the truncation mask).
* :meth:`SpannerSamplingPolicy.average_regret` is the quantity bounded by Theorem 3.1,
  E_{t~Unif[T]}[J_β(π⋆_β) − J_β(π̂^t)], exact on an exact instance, for either law.

The real sampler's law equals π̄_{θ^t} on the good event of the SoftmaxSampler (Theorem F.2 with
M_rej ≥ 4·‖π̄_θ(·|x,y′)/π_ref‖_∞, Lemma G.6); below that envelope the two laws differ, and the regret
reported is that of the sampler. The test-suite checks :meth:`sample` against the sampler law by chi-square.
"""

from __future__ import annotations

import torch

from ..diagnostics.regret import regret
from ..errors import ConfigError
from ..inference.softmax_sampler import sampler_log_law, softmax_sampler, weak_draw
from ..oracles.samplers import Samples
from ..validation import check_int


def truncated_score(theta: torch.Tensor, sigma_inv: torch.Tensor, nu: float, phi: torch.Tensor,
                    phi_ref: torch.Tensor) -> torch.Tensor:
    """r(x, y, y′) = ⟨θ, φ⟩·1{‖φ‖_{Σ⁻¹} ≤ ν} with φ = ϕ(x, y) − ϕ(x, y′) (Eq. 50).

    ``phi`` [B, n, d] are the candidates' features, ``phi_ref`` [B, d] the reference response's, ``theta``
    [d] or [B, d]. Returns [B, n].
    """
    rel = phi - phi_ref[:, None, :]
    sq = torch.einsum("bni,ij,bnj->bn", rel, sigma_inv.to(rel), rel)
    th = theta.to(rel)
    lin = rel @ th if th.dim() == 1 else torch.einsum("bnd,bd->bn", rel, th)
    return torch.where(sq <= nu * nu, lin, torch.zeros_like(lin))


def truncated_log_marginal(log_ref: torch.Tensor, phi: torch.Tensor, thetas: torch.Tensor,
                           sigma_inv: torch.Tensor, nu: float, beta: float) -> torch.Tensor:
    """log π̄_θ(y|x) for every θ in ``thetas`` [K, d], every prompt and response: [K, X, Y].

    Exact, as matrix products with the symmetric truncation mask K[y, y′] = 1{‖ϕ_y − ϕ_{y′}‖_{Σ⁻¹} ≤ ν}
    (‖ϕ_y − ϕ_{y′}‖²_{Σ⁻¹} = q_y + q_{y′} − 2ϕ_yᵀΣ⁻¹ϕ_{y′}) and K̄ = 1 − K. With a_y = ⟨θ, ϕ_y⟩, p = π_ref,
    u_y = log p_y + a_y/β:

        Z(y′) = e^{−a_{y′}/β}·Σ_y K[y′, y] e^{u_y} + Σ_y K̄[y′, y] p_y          (normaliser of π̄_θ(·|x, y′))
        π̄_θ(y) = e^{u_y}·Σ_{y′} K[y, y′] p_{y′} e^{−a_{y′}/β}/Z(y′) + p_y·Σ_{y′} K̄[y, y′] p_{y′}/Z(y′)

    Each sum is a [Y, Y] × [Y, K] product evaluated with a max-shift per column (log-sum-exp style), so the
    O(|Y|²) work per prompt runs as BLAS matrix products; terms below e^{−745} of their column's maximum
    underflow to 0 (negligible unless R_max/β is in the hundreds).
    """
    X, Y, d = phi.shape
    K = thetas.shape[0]
    thetas = thetas.to(phi.dtype)
    S = sigma_inv.to(phi.dtype)
    out = torch.empty(K, X, Y, dtype=phi.dtype, device=phi.device)
    nu2 = nu * nu

    def log_matmul(mask: torch.Tensor, logv: torch.Tensor) -> torch.Tensor:
        """log(mask @ exp(logv)) for mask [Y, Y] and logv [Y, K], shifted per column."""
        m = logv.max(0, keepdim=True).values
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
        return torch.log(mask @ torch.exp(logv - m)) + m

    for x in range(X):
        ph, lr = phi[x], log_ref[x]                                   # [Y, d], [Y]
        pS = ph @ S
        q = (pS * ph).sum(-1)
        keep = (q[:, None] + q[None, :] - 2.0 * pS @ ph.T) <= nu2      # [Y, Y], symmetric
        Km, Kbar = keep.to(ph.dtype), (~keep).to(ph.dtype)
        del keep, pS
        a = (ph @ thetas.T) / beta                                    # [Y, K]
        u = lr[:, None] + a
        log_z = torch.logaddexp(log_matmul(Km, u) - a, log_matmul(Kbar, lr[:, None].expand(Y, K)))
        g = lr[:, None] - a - log_z
        h = lr[:, None] - log_z
        out[:, x] = torch.logaddexp(u + log_matmul(Km, g), lr[:, None] + log_matmul(Kbar, h)).T
    return out


def truncated_sampler_log_marginal(log_ref: torch.Tensor, phi: torch.Tensor, thetas: torch.Tensor,
                                   sigma_inv: torch.Tensor, nu: float, beta: float, M: float, delta: float,
                                   normaliser: str = "exact", max_cells: int = 1 << 22) -> torch.Tensor:
    """log P(y|x) [K, X, Y] of the sampler SpannerSamplingPolicy.sample runs for each θ in ``thetas`` [K, d]:
    y′ ~ π_ref(x), then y ~ SoftmaxSampler_{β,M,δ}(r_θ(x, ·, y′)) with r_θ the truncated score (Eq. 50), i.e.
    Σ_{y′} π_ref(y′|x)·:func:`~oraclerl.inference.softmax_sampler.sampler_log_law` (clipping at M, failure branch;
    ``normaliser`` as there). O(K·Y²) per prompt, in blocks of at most ``max_cells`` entries."""
    X, Y, d = phi.shape
    K = thetas.shape[0]
    thetas = thetas.to(phi.dtype)
    S = sigma_inv.to(phi.dtype)
    out = torch.empty(K, X, Y, dtype=phi.dtype, device=phi.device)
    step = max(1, max_cells // (Y * Y))
    for x in range(X):
        ph, lr = phi[x], log_ref[x]
        pS = ph @ S
        q = (pS * ph).sum(-1)
        keep = (q[:, None] + q[None, :] - 2.0 * pS @ ph.T) <= nu * nu          # [y′, y]
        a = (ph @ thetas.T).T                                                  # [K, Y]: ⟨θ, ϕ_y⟩
        for k0 in range(0, K, step):
            ak = a[k0:k0 + step]
            f = torch.where(keep, ak[:, None, :] - ak[:, :, None], torch.zeros((), dtype=ph.dtype))  # [k, y′, y]
            law = sampler_log_law(lr, f, beta, M, delta, normaliser)
            out[k0:k0 + step, x] = torch.logsumexp(lr[None, :, None] + law, dim=1)
    return out


LAWS = ("sampler", "ideal")


class SpannerSamplingPolicy:
    """The improper output π̂ ~ Unif(π̂^1..π̂^T) of SpannerSampling (Alg. 3, line 21). See the module docstring."""

    def __init__(self, thetas: torch.Tensor, sigma_inv: torch.Tensor, nu: float, beta: float, M_rej: float,
                 delta_rej: float, weak=None, prompt_source=None, chunk: int | None = None):
        if thetas.dim() != 2 or thetas.shape[1] != sigma_inv.shape[0]:
            raise ConfigError("thetas", f"must have shape (T, {sigma_inv.shape[0]}), got {tuple(thetas.shape)}")
        self.thetas, self.sigma_inv = thetas, sigma_inv
        self.nu, self.beta, self.M_rej, self.delta_rej = nu, beta, M_rej, delta_rej
        self.weak, self.prompt_source, self.chunk = weak, prompt_source, chunk

    @property
    def num_components(self) -> int:
        return self.thetas.shape[0]

    def component(self, t: int) -> SpannerSamplingPolicy:
        """The single policy π̂^t (0-based t)."""
        t = check_int("t", t, low=0, high=self.num_components - 1)
        return SpannerSamplingPolicy(self.thetas[t:t + 1], self.sigma_inv, self.nu, self.beta, self.M_rej,
                                     self.delta_rej, self.weak, self.prompt_source, self.chunk)

    def distinct_components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(distinct θ's [K, d], how many of the T components use each [K]) — θ repeats within a batch."""
        uniq, counts = torch.unique(self.thetas, dim=0, return_counts=True)
        return uniq, counts

    # -- sampling through the weak oracle ------------------------------------------------------------------
    def sample(self, prompts, n: int = 1, generator: torch.Generator | None = None, weak=None) -> Samples:
        """n responses per prompt from π̂ via the weak oracle (default: the one used in training)."""
        weak = weak or self.weak
        if weak is None:
            raise ConfigError("weak", "SpannerSamplingPolicy.sample needs a weak sampling oracle")
        n = check_int("n", n, low=1)
        prompts = torch.as_tensor(prompts, dtype=torch.long).reshape(-1)
        rows = prompts.repeat_interleave(n)
        t = torch.randint(self.num_components, (rows.numel(),), generator=generator)
        theta = self.thetas[t]
        ref = weak.sample(rows, 1, generator)                  # y′ ~ π_ref
        phi_ref = ref.features[:, 0]

        def score(s: Samples, idx=None):
            sel = slice(None) if idx is None else idx
            return truncated_score(theta[sel], self.sigma_inv, self.nu, s.features, phi_ref[sel])

        out = softmax_sampler(weak_draw(weak, rows, generator), score, self.beta, self.M_rej, self.delta_rej,
                              generator=generator, chunk=self.chunk)
        s = out.samples
        resp = s.responses.reshape(prompts.numel(), n, *s.responses.shape[2:])
        feats = s.features.reshape(prompts.numel(), n, -1)
        return Samples(prompts, resp, feats, None, frozenset({"features"}), "SpannerSamplingPolicy")

    def sample_prompts(self, num: int, generator: torch.Generator | None = None, prompt_source=None) -> Samples:
        """Draw ``num`` new prompts x ~ ρ and one response each from π̂."""
        src = prompt_source or self.prompt_source
        if src is None:
            raise ConfigError("prompt_source", "needs a PromptSource to draw new prompts")
        return self.sample(src.draw(num, generator), 1, generator)

    # -- exact evaluation (evaluation code: reads the instance) ------------------------------------------------
    def _component_tables(self, instance, thetas: torch.Tensor, law: str) -> torch.Tensor:
        """Exact log-law [K, X, Y] of the components with parameters ``thetas`` under ``law`` (see :data:`LAWS`)."""
        if law not in LAWS:
            raise ConfigError("law", f"must be one of {LAWS}, got {law!r}")
        base = instance.base
        if law == "ideal":
            return truncated_log_marginal(base.log_ref, base.phi, thetas, self.sigma_inv, self.nu, base.beta)
        return truncated_sampler_log_marginal(base.log_ref, base.phi, thetas, self.sigma_inv, self.nu, self.beta,
                                              self.M_rej, self.delta_rej)

    def _tables(self, instance, components, law: str = "sampler") -> tuple[torch.Tensor, torch.Tensor]:
        key = (id(instance), components, law)
        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0] == key:       # the last evaluation is reused (same instance)
            return cached[1], cached[2]
        if components is None:
            thetas, w = self.distinct_components()
        else:
            components = check_int("components", components, low=1)
            idx = torch.linspace(0, self.num_components - 1, min(components, self.num_components)).round().long()
            thetas, w = self.thetas[idx], torch.ones(idx.numel(), dtype=torch.long)
        tab = self._component_tables(instance, thetas, law)
        self._cache = (key, tab, w.to(tab.dtype))
        return tab, w.to(tab.dtype)

    def log_prob_table(self, instance, components: int | None = None, law: str = "sampler") -> torch.Tensor:
        """Exact log π̂(y|x) [X, Y] of the uniform mixture over the components.

        ``law="sampler"``: the law :meth:`sample` draws (clipping at M_rej, failure branch, Ẑ = Z);
        ``law="ideal"``: the mixture of the ideal marginals π̄_{θ^t}. ``components=None`` uses every component
        exactly (deduplicated θ's, weighted by multiplicity); an int uses that many evenly spaced components (a
        systematic subsample, for large T).
        """
        tab, w = self._tables(instance, components, law)
        return torch.logsumexp(tab + torch.log(w / w.sum())[:, None, None], dim=0)

    def component_regrets(self, instance, components: int | None = None,
                          law: str = "sampler") -> tuple[torch.Tensor, torch.Tensor]:
        """(regret of each distinct/subsampled component [K], weights [K]); exact, under ``law``."""
        tab, w = self._tables(instance, components, law)
        regs = torch.tensor([regret(tab[k], instance) for k in range(tab.shape[0])], dtype=tab.dtype)
        return regs, w

    def regret_curve(self, instance, stride: int = 1, law: str = "sampler") -> torch.Tensor:
        """Exact regrets of the components t = 0, stride, 2·stride, ... in round order (θ is constant within an
        ``exp_batch``, so ``stride = exp_batch`` gives every distinct component once), under ``law``."""
        stride = check_int("stride", stride, low=1)
        tab = self._component_tables(instance, self.thetas[::stride], law)
        return torch.tensor([regret(tab[k], instance) for k in range(tab.shape[0])], dtype=tab.dtype)

    def average_regret(self, instance, components: int | None = None, law: str = "sampler") -> float:
        """E_{t~Unif[T]}[J_β(π⋆_β) − J_β(π̂^t)], the quantity of Theorem 3.1 (≥ the mixture's regret), under ``law``
        (``"ideal"``: π̂^t = π̄_{θ^t}, the theorem's own quantity; ``"sampler"``: what is drawn)."""
        regs, w = self.component_regrets(instance, components, law)
        return float((regs * w).sum() / w.sum())

    def __repr__(self) -> str:
        return (f"SpannerSamplingPolicy(T={self.num_components}, d={self.sigma_inv.shape[0]}, ν={self.nu:.3g}, "
                f"β={self.beta:g}, M_rej={self.M_rej:.3g}, δ_rej={self.delta_rej:.3g})")
