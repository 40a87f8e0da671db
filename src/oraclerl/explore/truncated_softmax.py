"""Truncated softmax policies and the improper output of SpannerSampling (Foster et al. 2025, Eq. 9, App.
G.3).

For Σ ≻ 0, ν > 0 and θ, the truncated softmax policy is the joint law over (y, y′)::

    y′ ~ π_ref(·|x),   π̄_θ(y | x, y′) ∝ π_ref(y|x)·exp(β⁻¹⟨θ, φ(x, y, y′)⟩·1{‖φ(x, y, y′)‖_{Σ⁻¹} ≤ ν})

with φ(x, y, y′) = ϕ(x, y) − ϕ(x, y′), and its marginal π̄_θ(y|x) = Σ_{y′} π_ref(y′|x)·π̄_θ(y|x, y′).
:class:`SpannerSamplingPolicy` holds the T_exp parameters θ^1..θ^T of Algorithm 3 with the frozen Σ_span⁻¹ and
ν; it is the uniform mixture π̂ ~ Unif(π̂^1..π̂^T) (line 21):

* :meth:`SpannerSamplingPolicy.sample` samples it for new prompts through the weak oracle only (t ~ Unif[T],
  y′ ~ π_ref, y ~ SoftmaxSampler_{β,M_rej,δ_rej}(r^t(x, ·, y′))), counting every draw in the oracle's ledger;
  this is the inference-time cost Õ(C_cov) per prompt of Theorem 3.1.
* :meth:`SpannerSamplingPolicy.log_prob_table` gives, on an exact instance (evaluation code: it reads the
  whole
  feature table), the exact law of the mixture over **every** component. ``law="sampler"`` (default, issue 16
  §1) is the law :meth:`~SpannerSamplingPolicy.sample` really draws: per component and y′ ~ π_ref, the law of
  SoftmaxSampler_{β,M_rej,δ_rej} with its envelope clipping at M_rej and its failure branch
  (:func:`truncated_sampler_log_marginal`, with Ẑ = Z by default, or averaged exactly over the sampler's own Ẑ
  with ``normaliser="estimated"`` on tiny instances); ``law="ideal"`` is the mixture of the ideal marginals
  π̄_{θ^t} (:func:`truncated_log_marginal`, BLAS matrix products with the truncation mask). Both exact laws
  process the pair axis (y, y′) in [b, b] blocks whose temporaries stay within ``block_bytes`` (default
  :data:`BLOCK_BYTES` = 256 MiB), as float64 matrix products (:func:`_exact_laws`; issue 15 item 4: 64 prompts
  × 16,384 responses at d = 64 in ≤ 256 MiB of temporaries instead of several 2 GiB [Y, Y] tensors).
* :meth:`SpannerSamplingPolicy.average_regret` is the quantity bounded by Theorem 3.1,
  E_{t~Unif[T]}[J_β(π⋆_β) − J_β(π̂^t)], exact on an exact instance, for either law.

The real sampler's law equals π̄_{θ^t} on the good event of the SoftmaxSampler (Theorem F.2 with
M_rej ≥ 4·‖π̄_θ(·|x,y′)/π_ref‖_∞, Lemma G.6); below that envelope the two laws differ, and the regret
reported is that of the sampler. The test-suite checks :meth:`sample` against the sampler law by chi-square.
"""

from __future__ import annotations

import math

import torch

from ..common.validation import check_int
from ..diagnostics.regret import regret
from ..errors import ConfigError
from ..inference.softmax_sampler import num_normaliser_draws, sampler_log_law, softmax_sampler, weak_draw
from ..oracles.samplers import Samples


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


BLOCK_BYTES = 1 << 28
"""Default memory budget (bytes) of the exact evaluation's temporaries: the [b, b] blocks of the pair axis
(three float64 buffers) plus, when it fits in the same budget, the prompt's boolean truncation mask (upper
block triangle, reused by the second pass instead of recomputing the distances)."""


BLOCK_SIDE = 512
"""Largest side of the [b, b] pair blocks: a float64 block of 2 MiB stays in a core's L2 cache, where the
block products run ≈ 2× faster per pair than with blocks of 2048 (measured on the 2-core development
machine)."""


SPARSE = 0.01
"""A block's K (or K̄) with at most this fraction of its entries is applied entry by entry instead of as a
product (at d = 64 with ν = 0.5, 99.9% of the pairs are kept and K̄ is almost empty)."""


def _block_plan(Y: int, block_bytes: int) -> tuple[int, bool]:
    """(side b of the square [b, b] pair blocks, whether the boolean mask is stored between the two passes).

    Three float64 [b, b] buffers (distances, K, K̄) take 24·b² bytes; the stored mask of the upper block
    triangle takes ≤ (Y² + Y·b)/2 bytes. The mask is stored when both fit in ``block_bytes`` with b ≥
    min(Y, 64) (the largest such b ≤ :data:`BLOCK_SIDE`), else b = min(⌊√(block_bytes/24)⌋, BLOCK_SIDE) and
    the distances are recomputed in the second pass."""
    full = max(1, min(Y, BLOCK_SIDE, int((block_bytes / 24) ** 0.5)))
    room = block_bytes - Y * Y / 2                                  # 24·b² + Y·b/2 ≤ room
    if room > 0:
        b = min(Y, BLOCK_SIDE, int((-Y / 2 + math.sqrt(Y * Y / 4 + 96 * room)) / 48))
        if b >= min(Y, 64):
            return b, True
    return full, False


def _exact_laws(
    log_ref: torch.Tensor,
    phi: torch.Tensor,
    thetas: torch.Tensor,
    sigma_inv: torch.Tensor,
    nu: float,
    beta: float,
    ideal: bool,
    sampler: tuple[float, float] | None,
    block_bytes: int = BLOCK_BYTES,
) -> dict[str, torch.Tensor]:
    """The exact laws [K, X, Y] of the truncated softmax policies: ``"ideal"`` (π̄_θ) and/or ``"sampler"``
    (the law of SoftmaxSampler_{β,M,δ} with Ẑ = Z, ``sampler = (M, δ)``), in bounded memory.

    The pair axis (y, y′) is processed in square blocks [b, b] of the upper block triangle (the truncation
    mask is symmetric: block (j, i) is block (i, j) transposed), two passes per prompt: pass 1 builds the
    normalisers Z(y′) (a sum over y), pass 2 the marginals (a sum over y′). Distances come from one matrix
    product per block, ‖ϕ_y − ϕ_y′‖²_{Σ⁻¹} = [−2ϕ_yᵀΣ⁻¹, q_y, 1]·[ϕ_y′, 1, q_y′] with q = ϕᵀΣ⁻¹ϕ; the boolean
    mask of pass 1 is kept for pass 2 when it fits in ``block_bytes`` (else recomputed, bit for bit the same).
    Every sum over the pair axis is a float64 matrix product of a {0, 1} block with per-column max-shifted
    exponentials.

    The sampler's acceptance min{1, e^{f/β}/(ZM)} is not a product form on rows y′ where clipping occurs. A
    row y′ can clip only if max_{y kept} a_y > c(y′) = a_y′ + log Z(y′) + log M (a = ⟨θ, ϕ⟩/β); with the two
    upper bounds max_y a_y and a_y′ + ν‖θ‖_Σ/β (Cauchy–Schwarz on kept pairs) rows below both are exact as
    products, and the others (the "clip rows", listed per component) are evaluated elementwise over their
    whole mask row, exactly as :func:`~oraclerl.inference.softmax_sampler.sampler_log_law` does.
    """
    X, Y, d = phi.shape
    K = thetas.shape[0]
    dt = phi.dtype
    thetas = thetas.to(dt)
    S = sigma_inv.to(dt)
    nu2 = nu * nu
    b, store = _block_plan(Y, block_bytes)
    span = [(s0, min(Y, s0 + b)) for s0 in range(0, Y, b)]
    out = {}
    if ideal:
        out["ideal"] = torch.empty(K, X, Y, dtype=dt, device=phi.device)
    if sampler is not None:
        out["sampler"] = torch.empty(K, X, Y, dtype=dt, device=phi.device)
        M, delta = sampler
        log_m, N = math.log(M), num_normaliser_draws(M, delta)
        theta_norm = torch.linalg.solve(S, thetas.T).mul(thetas.T).sum(0).clamp(min=0).sqrt()   # ‖θ‖_Σ, [K]
    buf = torch.empty(3, b * b, dtype=dt, device=phi.device)

    def shift(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = v.max(0, keepdim=True).values
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
        return torch.exp(v - m), m

    for x in range(X):
        ph, lr = phi[x], log_ref[x]                                             # [Y, d], [Y]
        pS = ph @ S
        q = (pS * ph).sum(-1, keepdim=True)
        one = torch.ones_like(q)
        pb = _PairBlocks(torch.cat([-2.0 * pS, q, one], 1), torch.cat([ph, one, q], 1), nu2, span, store, buf)
        a = (ph @ thetas.T) / beta                                              # [Y, K]
        u = lr[:, None] + a
        eu, mu = shift(u)
        ep, mp = shift(lr[:, None])
        s1, s0 = pb.accumulate(eu, ep)                                          # pass 1
        log_s1, log_s0 = torch.log(s1) + mu, torch.log(s0) + mp                 # [Y, K], [Y, 1]
        log_z = torch.logaddexp(log_s1 - a, log_s0)                             # log Z(y′)
        vks, vbs = [], []
        if ideal:
            ek, mk = shift(lr[:, None] - a - log_z)
            eb, mb = shift(lr[:, None] - log_z)
            vks.append(ek)
            vbs.append(eb)
        if sampler is not None:
            c = a + log_z + log_m                                               # clipping threshold on a_y
            log_alpha = (-log_z - log_m).clamp(max=0.0)                         # acceptance off the mask
            # acceptance prob., no clipping
            log_p = torch.logaddexp(log_s1 - c, log_alpha + log_s0)
            top = a.max(0).values                                               # [K]
            reach = theta_norm * math.sqrt(nu2 * (1 + 1e-9) + 1e-12 * float(q.max())) / beta
            bound = torch.minimum(top[None, :], a + reach[None, :]) + 1e-9 * (1 + a.abs().max(0).values)
            clip = bound > c                                                    # [Y, K]: rows that may clip
            contrib = torch.full((Y, K), -math.inf, dtype=dt, device=phi.device)
            rows = clip.any(1).nonzero().squeeze(1)
            if rows.numel():                                                    # clip rows, elementwise
                _clip_rows(pb, rows, clip, a, c, log_alpha, lr, log_p, contrib, N)
            log_fail = N * torch.log1p(-log_p.exp().clamp(max=1.0))
            log_ok = torch.log(-torch.expm1(log_fail))
            log_w = lr[:, None] + log_ok - log_p
            ninf = torch.full_like(log_w, -math.inf)
            e1, m1 = shift(torch.where(clip, ninf, log_w - c))
            e2, m2 = shift(torch.where(clip, ninf, log_w + log_alpha))
            vks.append(e1)
            vbs.append(e2)
            log_f = torch.logsumexp(lr[:, None] + log_fail, 0, keepdim=True)   # [1, K]: failure branch
        tk, tb = pb.accumulate(torch.cat(vks, 1), torch.cat(vbs, 1))           # pass 2
        log_tk, log_tb = torch.log(tk), torch.log(tb)
        if ideal:
            out["ideal"][:, x] = torch.logaddexp(u + log_tk[:, :K] + mk, lr[:, None] + log_tb[:, :K] + mb).T
            log_tk, log_tb = log_tk[:, K:], log_tb[:, K:]
        if sampler is not None:
            terms = torch.stack([a + log_tk + m1, log_tb + m2, contrib, log_f.expand(Y, K)])
            out["sampler"][:, x] = (lr[:, None] + torch.logsumexp(terms, 0)).T
        pb.masks.clear()                                   # free this prompt's mask before the next one's
    return out


class _PairBlocks:
    """The truncation mask of one prompt as [b, b] blocks of its upper block triangle (block (j, i) is
    block (i, j) transposed): distances lhs_i·rhs_jᵀ ≤ ν², the boolean block kept in ``masks`` when
    ``store``, else recomputed (the same product, so the same bits)."""

    def __init__(self, lhs, rhs, nu2, span, store, buf):
        self.lhs, self.rhs, self.nu2, self.span, self.store, self.buf = lhs, rhs, nu2, span, store, buf
        self.masks: dict[tuple[int, int], torch.Tensor] = {}
        self.counts: dict[tuple[int, int], int] = {}

    def keep(self, i: int, j: int) -> torch.Tensor:
        """Boolean block (i, j), i ≤ j: rows span[i], columns span[j]."""
        blk = self.masks.get((i, j))
        if blk is None:
            (i0, i1), (j0, j1) = self.span[i], self.span[j]
            dist = torch.matmul(self.lhs[i0:i1], self.rhs[j0:j1].T,
                                out=self.buf[2, :(i1 - i0) * (j1 - j0)].view(i1 - i0, j1 - j0))
            blk = dist <= self.nu2
            if self.store:
                self.masks[(i, j)] = blk
        return blk

    def _add(self, t: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, dense: torch.Tensor | None,
             i: int, j: int) -> None:
        """t[y] += Σ_y′ mask[y, y′]·v[y′] over block (i, j) and, off the diagonal, its transpose: a float64
        product with the {0, 1} block ``dense``, or index additions over the entries of a sparse boolean
        ``mask``."""
        (i0, i1), (j0, j1) = self.span[i], self.span[j]
        if dense is not None:
            t[i0:i1] += dense @ v[j0:j1]
            if j != i:                                      # block (j, i) = (i, j)ᵀ, as (vᵀ·K)ᵀ (faster)
                t[j0:j1] += (v[i0:i1].T @ dense).T
            return
        r, c = mask.nonzero(as_tuple=True)
        if r.numel():
            t[i0:i1].index_add_(0, r, v[j0:j1][c])
            if j != i:
                t[j0:j1].index_add_(0, c, v[i0:i1][r])

    def accumulate(self, vk: torch.Tensor, vb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Σ_y′ K[y, y′]·vk[y′], Σ_y′ K̄[y, y′]·vb[y′]) for every y, block by block: float64 products with the
        {0, 1} blocks, except for a mask (K or K̄) with at most :data:`SPARSE` of its block's entries, added
        entry by entry (its product would multiply mostly zeros)."""
        tk, tb = vk.new_zeros(vk.shape), vb.new_zeros(vb.shape)
        n = len(self.span)
        for i in range(n):
            for j in range(i, n):
                keep = self.keep(i, j)
                kept, size = self.kept(i, j, keep), keep.numel()
                (i0, i1), (j0, j1) = self.span[i], self.span[j]
                shape, m = (i1 - i0, j1 - j0), keep.numel()
                if kept <= SPARSE * size:
                    self._add(tk, vk, keep, None, i, j)
                else:
                    self._add(tk, vk, None, self.buf[0, :m].view(shape).copy_(keep), i, j)
                if size - kept <= SPARSE * size:
                    self._add(tb, vb, ~keep, None, i, j)
                else:
                    self._add(tb, vb, None, torch.logical_not(keep, out=self.buf[1, :m].view(shape)), i, j)
        return tk, tb

    def kept(self, i: int, j: int, keep: torch.Tensor) -> int:
        """Number of kept pairs in block (i, j) (cached: it decides the dense or sparse form of each
        product)."""
        n = self.counts.get((i, j))
        if n is None:
            n = self.counts[(i, j)] = int(keep.sum())
        return n

    def rows(self, i: int, sel: torch.Tensor) -> torch.Tensor:
        """Boolean mask rows ``sel`` (global indices inside span[i]) over every column: [len(sel), Y]."""
        Y = self.lhs.shape[0]
        i0 = self.span[i][0]
        out = torch.empty(sel.numel(), Y, dtype=torch.bool, device=self.lhs.device)
        for j, (j0, j1) in enumerate(self.span):
            out[:, j0:j1] = self.keep(i, j)[sel - i0] if j >= i else self.keep(j, i)[:, sel - i0].T
        return out


def _clip_rows(pb: _PairBlocks, rows, clip, a, c, log_alpha, lr, log_p, contrib, N) -> None:
    """Exact acceptance probability ``log_p`` and contribution Σ_{y′} w(y′)·acc(y′, y) (``contrib``) of the
    clip rows, elementwise over their mask rows, written in place: acc = min{1, e^{a_y − c(y′)}} on the
    mask, α(y′) = min{1, 1/(Z M)} off it, w = π_ref(y′)·(1 − (1 − P)^N)/P."""
    for i, (i0, i1) in enumerate(pb.span):
        sel = rows[(rows >= i0) & (rows < i1)]
        if not sel.numel():
            continue
        keep = pb.rows(i, sel)
        for k in clip[sel].any(0).nonzero().squeeze(1).tolist():
            ks = clip[sel, k]
            r = sel[ks]
            log_acc = torch.where(keep[ks], (a[None, :, k] - c[r, k][:, None]).clamp(max=0.0),
                                  log_alpha[r, k][:, None])                         # [r, Y]
            lp = torch.logsumexp(lr[None, :] + log_acc, 1)
            log_p[r, k] = lp
            log_fail = N * torch.log1p(-lp.exp().clamp(max=1.0))
            log_w = lr[r] + torch.log(-torch.expm1(log_fail)) - lp
            contrib[:, k] = torch.logaddexp(contrib[:, k], torch.logsumexp(log_w[:, None] + log_acc, 0))


def truncated_log_marginal(log_ref: torch.Tensor, phi: torch.Tensor, thetas: torch.Tensor,
                           sigma_inv: torch.Tensor, nu: float, beta: float,
                           block_bytes: int = BLOCK_BYTES) -> torch.Tensor:
    """log π̄_θ(y|x) for every θ in ``thetas`` [K, d], every prompt and response: [K, X, Y].

    Exact, as matrix products with the symmetric truncation mask K[y, y′] = 1{‖ϕ_y − ϕ_{y′}‖_{Σ⁻¹} ≤ ν}
    (‖ϕ_y − ϕ_{y′}‖²_{Σ⁻¹} = q_y + q_{y′} − 2ϕ_yᵀΣ⁻¹ϕ_{y′}) and K̄ = 1 − K. With a_y = ⟨θ, ϕ_y⟩, p = π_ref,
    u_y = log p_y + a_y/β:

        Z(y′) = e^{−a_{y′}/β}·Σ_y K[y′, y] e^{u_y} + Σ_y K̄[y′, y] p_y          (normaliser of π̄_θ(·|x, y′))
        π̄_θ(y) = e^{u_y}·Σ_{y′} K[y, y′] p_{y′} e^{−a_{y′}/β}/Z(y′) + p_y·Σ_{y′} K̄[y, y′] p_{y′}/Z(y′)

    Each sum is a [Y, Y] × [Y, K] product evaluated with a max-shift per column (log-sum-exp style), so the
    O(|Y|²) work per prompt runs as BLAS matrix products, in [b, b] blocks of the pair axis whose temporaries
    stay within ``block_bytes`` (see :func:`_exact_laws`); terms below e^{−745} of their column's maximum
    underflow to 0 (negligible unless R_max/β is in the hundreds).
    """
    return _exact_laws(log_ref, phi, thetas, sigma_inv, nu, beta, True, None, block_bytes)["ideal"]


def _dense_sampler_log_marginal(log_ref, phi, thetas, sigma_inv, nu, beta, M, delta, normaliser, max_cells):
    """The sampler law by a dense [k, y′, y] score tensor per prompt (any normaliser; O(K·Y²) memory in
    chunks)."""
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
            # [k, y′, y]
            f = torch.where(keep, ak[:, None, :] - ak[:, :, None], torch.zeros((), dtype=ph.dtype))
            law = sampler_log_law(lr, f, beta, M, delta, normaliser)
            out[k0:k0 + step, x] = torch.logsumexp(lr[None, :, None] + law, dim=1)
    return out


def truncated_sampler_log_marginal(log_ref: torch.Tensor, phi: torch.Tensor, thetas: torch.Tensor,
                                   sigma_inv: torch.Tensor, nu: float, beta: float, M: float, delta: float,
                                   normaliser: str = "exact", max_cells: int = 1 << 22,
                                   block_bytes: int = BLOCK_BYTES) -> torch.Tensor:
    """log P(y|x) [K, X, Y] of the sampler SpannerSamplingPolicy.sample runs for each θ in ``thetas`` [K, d]:
    y′ ~ π_ref(x), then y ~ SoftmaxSampler_{β,M,δ}(r_θ(x, ·, y′)) with r_θ the truncated score (Eq. 50), i.e.
    Σ_{y′} π_ref(y′|x)·:func:`~oraclerl.inference.softmax_sampler.sampler_log_law` (clipping at M, failure
    branch; ``normaliser`` as there).

    ``normaliser="exact"`` (Ẑ = Z): matrix products over [b, b] blocks of the pair axis within
    ``block_bytes``, elementwise only on the rows y′ where the envelope may clip (:func:`_exact_laws`).
    ``"estimated"``: a dense [k, y′, y] score tensor per prompt in chunks of at most ``max_cells`` entries
    (tiny instances only)."""
    if normaliser == "exact":
        return _exact_laws(log_ref, phi, thetas, sigma_inv, nu, beta, False, (M, delta), block_bytes)[
            "sampler"
        ]
    return _dense_sampler_log_marginal(
        log_ref, phi, thetas, sigma_inv, nu, beta, M, delta, normaliser, max_cells
    )


LAWS = ("sampler", "ideal")


class SpannerSamplingPolicy:
    """The improper output π̂ ~ Unif(π̂^1..π̂^T) of SpannerSampling (Alg. 3, line 21). See the module
    docstring."""

    def __init__(self, thetas: torch.Tensor, sigma_inv: torch.Tensor, nu: float, beta: float, M_rej: float,
                 delta_rej: float, weak=None, prompt_source=None, chunk: int | None = None):
        if thetas.dim() != 2 or thetas.shape[1] != sigma_inv.shape[0]:
            raise ConfigError(
                "thetas", f"must have shape (T, {sigma_inv.shape[0]}), got {tuple(thetas.shape)}"
            )
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

    def sample_prompts(
        self, num: int, generator: torch.Generator | None = None, prompt_source=None
    ) -> Samples:
        """Draw ``num`` new prompts x ~ ρ and one response each from π̂."""
        src = prompt_source or self.prompt_source
        if src is None:
            raise ConfigError("prompt_source", "needs a PromptSource to draw new prompts")
        return self.sample(src.draw(num, generator), 1, generator)

    # -- exact evaluation (evaluation code: reads the instance)
    # ------------------------------------------------
    def _component_tables(self, instance, thetas: torch.Tensor, law: str) -> torch.Tensor:
        """Exact log-law [K, X, Y] of the components with parameters ``thetas`` under ``law`` (see
        :data:`LAWS`)."""
        if law not in LAWS:
            raise ConfigError("law", f"must be one of {LAWS}, got {law!r}")
        base = instance.base
        if law == "ideal":
            return truncated_log_marginal(base.log_ref, base.phi, thetas, self.sigma_inv, self.nu, base.beta)
        return truncated_sampler_log_marginal(
            base.log_ref, base.phi, thetas, self.sigma_inv, self.nu, self.beta, self.M_rej, self.delta_rej
        )

    def _tables(self, instance, components, law: str = "sampler") -> tuple[torch.Tensor, torch.Tensor]:
        key = (id(instance), components, law)
        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0] == key:       # the last evaluation is reused (same instance)
            return cached[1], cached[2]
        if components is None:
            thetas, w = self.distinct_components()
        else:
            components = check_int("components", components, low=1)
            idx = (
                torch.linspace(0, self.num_components - 1, min(components, self.num_components))
                .round()
                .long()
            )
            thetas, w = self.thetas[idx], torch.ones(idx.numel(), dtype=torch.long)
        tab = self._component_tables(instance, thetas, law)
        self._cache = (key, tab, w.to(tab.dtype))
        return tab, w.to(tab.dtype)

    def log_prob_table(self, instance, components: int | None = None, law: str = "sampler") -> torch.Tensor:
        """Exact log π̂(y|x) [X, Y] of the uniform mixture over the components.

        ``law="sampler"``: the law :meth:`sample` draws (clipping at M_rej, failure branch, Ẑ = Z);
        ``law="ideal"``: the mixture of the ideal marginals π̄_{θ^t}. ``components=None`` uses every component
        exactly (deduplicated θ's, weighted by multiplicity); an int uses that many evenly spaced components
        (a systematic subsample, for large T).
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
        """Exact regrets of the components t = 0, stride, 2·stride, ... in round order (θ is constant
        within an ``exp_batch``, so ``stride = exp_batch`` gives every distinct component once), under
        ``law``."""
        stride = check_int("stride", stride, low=1)
        tab = self._component_tables(instance, self.thetas[::stride], law)
        return torch.tensor([regret(tab[k], instance) for k in range(tab.shape[0])], dtype=tab.dtype)

    def average_regret(self, instance, components: int | None = None, law: str = "sampler") -> float:
        """E_{t~Unif[T]}[J_β(π⋆_β) − J_β(π̂^t)], the quantity of Theorem 3.1 (≥ the mixture's regret),
        under ``law`` (``"ideal"``: π̂^t = π̄_{θ^t}, the theorem's own quantity; ``"sampler"``: what is
        drawn)."""
        regs, w = self.component_regrets(instance, components, law)
        return float((regs * w).sum() / w.sum())

    def __repr__(self) -> str:
        return (
            f"SpannerSamplingPolicy(T={self.num_components}, d={self.sigma_inv.shape[0]}, ν={self.nu:.3g}, "
            f"β={self.beta:g}, M_rej={self.M_rej:.3g}, δ_rej={self.delta_rej:.3g})"
        )
