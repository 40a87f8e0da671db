"""Memoryless language models with additive rewards (Yang et al. 2024, §3 of docs/papers/bon_vs_kl_rl.md).

A response is y = (y₁..y_m) ∈ 𝒱^m with i.i.d. tokens y_i ~ p and reward r(y) = Σ_i r(y_i). Every policy
compared here (p^{⊗m}, the tilt φ_Δ, best-of-N with uniform tie-breaking) has the form p(y)·g(r(y)), so
KLs, expected rewards and win rates reduce exactly to the law of the total reward R (recipe §4.1).

API:

* :class:`MemorylessModel` ``(p, length)``: base model behind :class:`~oraclerl.oracles.WeakSampler`
  (``sample(prompts, n, gen) -> tokens [B, n, m]``, ``ref_log_prob``, ``num_prompts = 1``,
  ``feature_dim = None``); :class:`AdditiveReward` ``(r, length)`` with ``mean``, ``process_mean``, ``r_max``.
* :func:`reward_distribution` ``(p, r, length, method="auto"|"types"|"lattice")`` ->
  :class:`RewardDistribution`
  (values ascending, log-probabilities): type enumeration (counts c with Σc = m; any real rewards) or
  log-space lattice convolution (integer rewards; keeps the table for backward sampling).
* :func:`memoryless_alignment` ``(p, r, length, delta, log_n=None)`` -> :class:`MemorylessAlignment`: the
  factorised tilt φ_Δ = φ_λ^{⊗m} (Δ = mδ), best-of-N with N = e^{mδ} (or ``log_n``), per-token reward
  and KL of both, KL(BoN ‖ tilt).
* :func:`sample_bon_sequences` exact BoN winner sequences [S, m] without drawing N candidates: V = U^{1/N}
  picks the reward level, then a type ∝ its probability and a uniform arrangement (types), or backward
  sampling token by token through the convolution table (lattice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..common.validation import check_int
from ..errors import ConfigError
from ..inference.best_of_n import SelectionLaw, as_log_n, bon_log_G, levels, sample_best_of_n, selection_law
from ..inference.tilt import reference_inputs, tilt

_NEG_INF = -math.inf


def _token_inputs(p, r):
    log_p, r = reference_inputs(p, r)
    if log_p.dim() != 1:
        raise ConfigError("p", f"must be one token law [V], got shape {tuple(log_p.shape)}")
    return log_p, r


class MemorylessModel:
    """p^{⊗m}: m i.i.d. tokens from p over a vocabulary of size V (one prompt); a
    :class:`~oraclerl.oracles.protocols.BaseModel` without features."""

    num_prompts = 1
    feature_dim = None
    beta = None
    default_reveal = None

    def __init__(self, p, length: int, device: str | torch.device = "cpu"):
        self.log_p = _token_inputs(p, torch.zeros(torch.as_tensor(p).shape[-1]))[0].to(device)
        self.length = check_int("length", length, low=1)
        self.device = torch.device(device)

    @property
    def vocab_size(self) -> int:
        return self.log_p.numel()

    def sample(self, prompts: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Token sequences [B, n, m] (inverse CDF on shared uniforms; fully vectorised)."""
        B = torch.as_tensor(prompts).numel()
        u = torch.rand((B, n, self.length), generator=generator, dtype=torch.float64).to(self.device)
        cdf = torch.cumsum(torch.exp(self.log_p), 0)
        return torch.searchsorted(cdf / cdf[-1], u, right=True).clamp_max(self.vocab_size - 1)

    def ref_log_prob(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        """log p^{⊗m}(y) = Σ_i log p(y_i): [B, n]."""
        return self.log_p[responses].sum(-1)


class AdditiveReward:
    """r(y) = Σ_i r(y_i) (linear reward of Yang et al.); ``process_mean`` gives the prefix sums."""

    def __init__(self, r, length: int):
        self.r = torch.as_tensor(r, dtype=torch.float64)
        if self.r.dim() != 1 or torch.isnan(self.r).any() or torch.isinf(self.r).any():
            raise ConfigError("r", "must be a finite 1-D token reward vector [V]")
        self.length = check_int("length", length, low=1)
        self.r_max = float(self.length * self.r.max())

    def mean(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        return self.r.to(responses.device)[responses].sum(-1)

    def process_mean(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(self.r.to(responses.device)[responses], -1)


@dataclass
class RewardDistribution:
    """Law of R = Σ_i r(y_i) under p^{⊗m}: distinct ``values`` ascending with ``log_probs`` (log space)."""

    values: torch.Tensor
    log_probs: torch.Tensor
    length: int
    method: str
    log_p: torch.Tensor
    """Token log-probabilities [V]."""
    r: torch.Tensor
    """Token rewards [V]."""
    types: tuple | None = None
    """types: (counts [T, k] over the k tokens with mass, support mask [V]), sorted by reward."""
    type_log_probs: torch.Tensor | None = None
    """types: log-probability of each type [T], sorted by reward."""
    type_level: torch.Tensor | None = None
    """types: index into ``values`` of each type [T], sorted by reward."""
    focus: tuple | None = None
    """(log N, λ, tol) when types negligible for both BoN_N and the tilt φ_λ were folded into one bottom
    pseudo-level (see :func:`reward_distribution`); None: the law is complete."""
    table: torch.Tensor | None = None
    """lattice: log P(R_k = k·r_min + j) [m+1, L] (prefix sums of k tokens)."""

    def type_counts(self, index: torch.Tensor) -> torch.Tensor:
        """Counts [len(index), V] of the types at sorted positions ``index`` (zero-mass tokens get 0)."""
        c, sup = self.types
        out = torch.zeros(index.numel(), self.log_p.numel(), dtype=torch.long)
        out[:, sup] = c[index]
        return out


def _enumerate_types(length: int, log_p: torch.Tensor, r: torch.Tensor):
    """All count vectors c ∈ ℕ^k with Σc = length (vectorised stars and bars), with log P(c) and Σ c_v r_v
    accumulated coordinate by coordinate (no [T, k] gathers): returns (counts [T, k], log P [T], reward
    [T])."""
    k = log_p.numel()
    ar = torch.arange(length + 1, dtype=torch.float64)
    # per-coordinate term of log P(c): −log c! + c·log p_v  (0·log p = 0 for the zero-count case)
    table = -torch.lgamma(ar + 1)[:, None] + ar[:, None] * log_p[None, :]
    rem = torch.tensor([length], dtype=torch.long)
    lp = torch.tensor([math.lgamma(length + 1)], dtype=torch.float64)
    val = torch.zeros(1, dtype=torch.float64)
    cols = []
    for j in range(k - 1):
        sizes = rem + 1
        rows = torch.repeat_interleave(torch.arange(rem.numel()), sizes)
        starts = torch.repeat_interleave(torch.cumsum(sizes, 0) - sizes, sizes)
        c = torch.arange(int(sizes.sum())) - starts
        cols = [col[rows] for col in cols] + [c]
        lp = lp[rows] + table[c, j]
        val = val[rows] + c.double() * r[j]
        rem = rem[rows] - c
    lp = lp + table[rem, k - 1]
    val = val + rem.double() * r[k - 1]
    return torch.stack(cols + [rem], 1), lp, val


def _merge_levels(values: torch.Tensor, log_probs: torch.Tensor, tol: float):
    """Sort, merge values within ``tol`` (float noise of equal sums) and log-sum-exp their masses."""
    v, order = torch.sort(values)
    lp = log_probs[order]
    new = torch.ones_like(v, dtype=torch.bool)
    new[1:] = (v[1:] - v[:-1]) > tol
    if bool(new.all()):  # nothing to merge (the usual non-lattice case)
        return v, lp, order, torch.arange(v.numel())
    level = torch.cumsum(new.to(torch.long), 0) - 1
    K = int(level[-1]) + 1
    mx = torch.full((K,), _NEG_INF, dtype=lp.dtype).scatter_reduce(0, level, lp, "amax")
    tot = torch.zeros(K, dtype=lp.dtype).scatter_add(0, level, torch.exp(lp - mx[level]))
    return v[new], mx + torch.log(tot), order, level


def _focus_mask(vals: torch.Tensor, lp: torch.Tensor, log_n: float, lam: float, tol: float) -> torch.Tensor:
    """Types that matter for best-of-N (N = e^{log_n}) or for the tilt φ_λ (see reward_distribution)."""
    z = lp + lam * vals
    tilt_keep = z - torch.logsumexp(z, 0) >= -tol
    # v₀: the highest histogram edge with P(R > v₀) ≥ tol/N (per-bin log-sum-exp, O(T))
    lo, hi = float(vals.min()), float(vals.max())
    width = max(hi - lo, 1e-300) / 4096
    edges = lo + width * torch.arange(4097, dtype=torch.float64)
    b = ((vals - lo) / width).floor().clamp(0, 4095).long()  # bin i ≈ [edges[i], edges[i+1]) up to rounding
    mx = torch.full((4096,), _NEG_INF, dtype=torch.float64).scatter_reduce(0, b, lp, "amax")
    tot = torch.zeros(4096, dtype=torch.float64).scatter_add(0, b, torch.exp(lp - mx[b]))
    log_bin = mx + torch.log(tot)
    above = torch.logcumsumexp(log_bin.flip(0), 0).flip(0)  # log P(R ≥ edges[i]) ≥ log P(R > edges[i−1]·)
    # bins ≥ j+1 hold values ≥ edges[j+1] − rounding > edges[j] − width, so P(R > edges[j] − width) ≥ tol/N
    ok = torch.nonzero(above[1:] >= math.log(tol) - log_n)
    v0 = float(edges[int(ok[-1])]) - width if ok.numel() else -math.inf
    bon_keep = (vals > v0) & (lp + log_n >= -tol)
    return tilt_keep | bon_keep


def reward_distribution(p, r, length: int, method: str = "auto", max_types: int = 20_000_000,
                        max_lattice: int = 2_000_000, focus: tuple[float, float] | None = None,
                        focus_tol: float = 60.0) -> RewardDistribution:
    """Exact law of the total reward R under p^{⊗m}, in log space.

    ``types``: enumerate the C(m+k−1, k−1) types of the k tokens with positive mass, log P(c) =
    log m! − Σ log c_v! + Σ c_v log p_v, reward Σ c_v r_v; equal sums (up to float noise) are merged.
    ``lattice`` (integer rewards): m log-space convolutions of the token law, O(m·k·(m·span+1)).
    ``auto`` picks the lattice for integer rewards when its table has ≤ 4e6 cells, else types when they
    number ≤ ``max_types``, else the lattice.

    ``focus=(log N, λ)`` (types only) keeps the levels that matter for best-of-N and for the tilt φ_λ and
    folds the others into one pseudo-level below all rewards: a type is dropped when its tilt mass is
    < e^{−tol} and either N·P(c) < e^{−tol} (so its BoN mass, ≤ N·P, is negligible) or its reward is below
    a threshold v₀ with P(R > v₀) ≥ tol/N (so F(v)^N ≤ e^{−tol} there). Every quantity of
    :func:`memoryless_alignment` then changes by at most ~T·e^{−tol} (T = number of types; ≈ 2e-20 for
    tol = 60, m = 2000) — exact to float64 precision, 5–10× faster for long sequences.
    """
    log_p, r = _token_inputs(p, r)
    length = check_int("length", length, low=1)
    if method not in ("auto", "types", "lattice"):
        raise ConfigError("method", f"must be one of ['auto', 'types', 'lattice'], got {method!r}")
    sup = log_p > _NEG_INF
    k = int(sup.sum())
    n_types = math.comb(length + k - 1, k - 1)
    integer = bool(torch.all(r[sup] == torch.round(r[sup])))
    if method == "auto":  # a small lattice has far fewer levels than types; otherwise enumerate types
        span = int(r[sup].max() - r[sup].min()) if integer else 0
        small_lattice = integer and (length + 1) * (length * span + 1) <= 4_000_000
        method = "lattice" if small_lattice or (integer and n_types > max_types) else "types"
    if method == "types":
        if n_types > max_types:
            raise ConfigError("length", f"{n_types} types exceed max_types={max_types}; use method='lattice' "
                                        "(integer rewards) or a shorter length")
        rs = r[sup]
        # log P(c) = log m! − Σ log c_v! + Σ c_v log p_v; reward Σ c_v r_v
        c, lp, vals = _enumerate_types(length, log_p[sup], rs)
        pseudo = None
        if focus is not None:
            keep = _focus_mask(vals, lp, float(focus[0]), float(focus[1]), focus_tol)
            if not keep.all():
                pseudo = (float(vals.min()) - 1.0, float(torch.logsumexp(lp[~keep], 0)))
                c, lp, vals = c[keep], lp[keep], vals[keep]
        tol = 64 * torch.finfo(torch.float64).eps * length * float(rs.abs().max().clamp_min(1.0))
        values, level_lp, order, level = _merge_levels(vals, lp, tol)
        if pseudo is not None:
            values = torch.cat([torch.tensor([pseudo[0]], dtype=torch.float64), values])
            level_lp = torch.cat([torch.tensor([pseudo[1]], dtype=torch.float64), level_lp])
            level = level + 1
        return RewardDistribution(
            values,
            level_lp,
            length,
            "types",
            log_p,
            r,
            (c[order], sup),
            lp[order],
            level,
            None if pseudo is None else (float(focus[0]), float(focus[1]), focus_tol),
        )
    if not integer:
        raise ConfigError(
            "method", "lattice needs integer token rewards (on the support); use method='types'"
        )
    rs = r[sup].long()
    low, span = int(rs.min()), int(rs.max() - rs.min())
    L = length * span + 1
    if (length + 1) * L > max_lattice * 64:
        raise ConfigError("length", f"lattice table of {(length + 1) * L} cells exceeds {max_lattice * 64} "
                                    "(raise max_lattice or use method='types')")
    shift = rs - low
    table = torch.full((length + 1, L), _NEG_INF, dtype=torch.float64)
    table[0, 0] = 0.0
    lps = log_p[sup]
    for i in range(1, length + 1):  # loop over positions (not outcomes): R_i = R_{i−1} + r(y_i)
        w = (i - 1) * span + 1  # support of R_{i−1} − (i−1)·r_min is [0, (i−1)·span]
        prev, row = table[i - 1, :w], table[i]
        for a in range(k):
            s = int(shift[a])
            row[s:s + w] = torch.logaddexp(row[s:s + w], prev + lps[a])
    last = table[length]
    keep = last > _NEG_INF
    values = (torch.arange(L, dtype=torch.float64) + length * low)[keep]
    return RewardDistribution(values, last[keep], length, "lattice", log_p, r, table=table)


@dataclass
class MemorylessAlignment:
    """Best-of-N vs the KL-constrained optimum on a memoryless model (Yang et al. 2024, §3.5)."""

    length: int
    delta: float
    """Per-token KL budget δ (Δ = mδ)."""
    log_n: float
    """log N (default mδ)."""
    lam: float
    """Token-level tilt parameter λ_δ (inf when δ ≥ δ_max)."""
    bon_reward: float
    """(1/m)·E_{π_N} R."""
    bon_kl: float
    """(1/m)·KL(π_N ‖ p^{⊗m})."""
    tilt_reward: float
    """(1/m)·E_{φ_Δ} R = Λ'(λ)."""
    tilt_kl: float
    """(1/m)·KL(φ_Δ ‖ p^{⊗m}) = min(δ, δ_max)."""
    kl_bon_tilt: float
    """KL(π_N ‖ φ_Δ) (total, not per token; inf if π_N leaves the support of a saturated tilt)."""
    bon_win_rate: float
    bon_law: SelectionLaw
    tilt_log_probs: torch.Tensor
    """log P_{φ_Δ}(R = v) on ``dist.values``."""
    dist: RewardDistribution


def memoryless_alignment(p=None, r=None, length: int | None = None, delta: float | None = None, *,
                         log_n=None, dist: RewardDistribution | None = None) -> MemorylessAlignment:
    """Exact per-token reward and KL of best-of-N (N = e^{mδ}, or ``log_n``) and of the factorised tilt
    φ_Δ = φ_λ^{⊗m} with D(φ_λ‖p) = δ, plus KL(π_N ‖ φ_Δ), all on the law of R (log space)."""
    if delta is None or isinstance(delta, bool) or not math.isfinite(float(delta)) or float(delta) < 0:
        raise ConfigError("delta", f"must be a finite per-token KL budget >= 0, got {delta!r}")
    delta = float(delta)
    if dist is None:
        if length is None:
            raise ConfigError("length", "pass length (or a precomputed dist)")
        length = check_int("length", length, low=1)
        ln = as_log_n(log_n=length * delta if log_n is None else log_n)
        tok = tilt(p, r, kl=delta)
        lam = float(tok.lam)
        focus = None if math.isinf(lam) else (float(ln), lam)  # fold negligible types (exact to ~e^{-60})
        dist = reward_distribution(p, r, length, focus=focus)
    else:
        tok = tilt(log_p=dist.log_p, r=dist.r, kl=delta)
        lam = float(tok.lam)
    m = dist.length
    ln = as_log_n(log_n=m * delta if log_n is None else log_n)
    if dist.focus is not None and (dist.focus[0] != float(ln) or dist.focus[1] != lam):
        raise ConfigError(
            "dist", "was built with focus=(log N, λ) for another N or δ; rebuild it without focus"
        )
    v, lp = dist.values, dist.log_probs
    if math.isinf(lam):
        tilt_lp = torch.where(v == v.max(), 0.0, _NEG_INF).double()
    else:  # log φ_Δ(R = v) = log P(v) + λv − mΛ(λ), with the exact token-level Λ (valid for a focused dist)
        r_top = float(dist.r[dist.log_p > _NEG_INF].max())
        tilt_lp = lp + lam * v - m * (float(tok.log_mgf_shifted) + lam * r_top)
    law = selection_law(levels(lp, v, presorted=True), bon_log_G(ln))  # values are distinct and ascending
    b = law.probs
    diff = torch.where(b > 0, law.log_probs - tilt_lp, 0.0)
    kl_bt = float(torch.where(b > 0, b * diff, 0.0).sum())
    return MemorylessAlignment(m, delta, float(ln), lam, float(law.expected_reward) / m, float(law.kl) / m,
                               float(tok.reward), float(tok.kl), max(kl_bt, 0.0), float(law.win_rate), law,
                               tilt_lp, dist)


def sample_bon_sequences(
    dist: RewardDistribution,
    num_samples: int,
    generator: torch.Generator | None = None,
    *,
    n=None,
    log_n=None,
) -> torch.Tensor:
    """Exact best-of-N winner sequences [S, m] (token ids) without drawing N candidates."""
    num_samples = check_int("num_samples", num_samples, low=1)
    ln = as_log_n(n, log_n)
    m = dist.length
    if dist.method == "types":
        # reward level by V = U^{1/N} on the level law (with its pseudo-level, if focused), then a type
        # of that level ∝ its probability (types are sorted by reward, levels are contiguous)
        lev = sample_best_of_n(log_p=dist.log_probs, r=dist.values, log_n=ln, num_samples=num_samples,
                               generator=generator)
        rel = torch.exp(dist.type_log_probs - dist.log_probs[dist.type_level])  # within-level shares
        cum = torch.cumsum(rel, 0)
        first = torch.searchsorted(dist.type_level, lev)
        last = torch.searchsorted(dist.type_level, lev, right=True) - 1
        if bool((last < first).any()):  # the folded pseudo-level (BoN mass < e^{-tol}) was drawn
            raise ConfigError(
                "dist", "drew the folded pseudo-level of a focused distribution; use focus=None"
            )
        base = torch.where(first > 0, cum[(first - 1).clamp_min(0)], 0.0)
        u = torch.rand(num_samples, generator=generator, dtype=torch.float64)
        t = torch.searchsorted(cum, base + u * (cum[last] - base)).clamp(first, last)
        t = torch.minimum(torch.maximum(t, first), last)
        counts = dist.type_counts(t)  # [S, V]
        cum = torch.cumsum(counts, 1)
        pos = torch.arange(m).expand(num_samples, m).contiguous()
        tokens = torch.searchsorted(cum, pos, right=True)
        perm = torch.argsort(torch.rand(num_samples, m, generator=generator), 1)
        return tokens.gather(1, perm)
    sup = torch.nonzero(dist.log_p > _NEG_INF)[:, 0]
    rs = dist.r[sup].long()
    low = int(rs.min())
    lev = sample_best_of_n(log_p=dist.log_probs, r=dist.values, log_n=ln, num_samples=num_samples,
                           generator=generator)
    j = (dist.values[lev].long() - m * low)  # lattice index of R_m
    shift = rs - low
    tokens = torch.empty(num_samples, m, dtype=torch.long)
    lps = dist.log_p[sup]
    for i in range(m, 0, -1):  # backward: P(y_i = a | R_i = j) ∝ p(a)·P(R_{i−1} = j − shift(a))
        prev_j = j[:, None] - shift[None, :]
        ok = prev_j >= 0
        logits = torch.where(ok, dist.table[i - 1][prev_j.clamp_min(0)] + lps[None, :], _NEG_INF)
        g = -torch.log(
            -torch.log(torch.rand(logits.shape, generator=generator, dtype=torch.float64).clamp_min(1e-300))
        )
        a = (logits + g).argmax(1)
        tokens[:, i - 1] = sup[a]
        j = j - shift[a]
    return tokens


def sample_tilted_sequences(p, r, length: int, delta: float, num_samples: int,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """Exact draws from φ_Δ = φ_λ^{⊗m} (i.i.d. tokens from the token-level tilt): [S, m]."""
    tok = tilt(p, r, kl=delta)
    model = MemorylessModel(tok.probs, length)
    return model.sample(
        torch.zeros(1, dtype=torch.long), check_int("num_samples", num_samples, low=1), generator
    )[0]
