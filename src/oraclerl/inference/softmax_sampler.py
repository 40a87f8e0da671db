"""SoftmaxSampler (Algorithm 1) and SoftmaxSamplerDensity (Algorithm 2) of Foster, Mhammedi & Rohatgi (2025).

Target: the tilted law π_f(y|x) ∝ π_ref(y|x)·exp(f(x, y)/β), for a score function f, from draws of π_ref
only (a weak sampling oracle, Definition 2.1, or a weak autoregressive oracle, Definition 5.1)::

    N := ceil(4 M log(4/δ))
    y_1..y_N ~ π_ref(·|x);   Ẑ := (1/N) Σ_i exp(f(x, y_i)/β)            # normaliser estimate
    for i = 1..N:
        y ~ π_ref(·|x);   ξ ~ Bernoulli(min{1, exp(f(x, y)/β)/(Ẑ M)})
        if ξ = 1: return y                                               (and ρ = exp(f(x, y)/β)/Ẑ, Alg. 2)
    return a fresh y ~ π_ref(·|x)                                        # failure branch, prob. ≤ δ

Guarantees (App. F). With C_∞ := ‖π_f/π_ref‖_∞:

* Theorem F.2: if M ≥ 4·C_∞, the output is exactly π_f-distributed on an event of probability ≥ 1 − δ,
  and at most 2N + 1 = 8M log(4/δ) + 1 responses are drawn per row (with the ceiling on N, 2N + 1 ≤
  8M log(4/δ) + 3).
* Theorem F.1 (Alg. 2): if M ≥ 4·C_∞², |log ρ − log(π_f/π_ref)(y)| ≤ C_∞·√(2/M) on the good event; with
  |f| ≤ R_max, ρ ∈ [e^{−2R_max/β}, e^{2R_max/β}] always (also in the failure branch).

Implementation. Everything runs for B rows (prompts, or (prompt, prefix) pairs) at once, in log space:
log acceptance = min{0, f/β − log Ẑ − log M} with log Ẑ = logsumexp(f(y_i)/β) − log N. Candidates are
drawn in *chunks* of ``chunk`` responses per row, over the rows that are still active, so there is no
Python loop over responses, only over chunks. Every response drawn is charged to the oracle's ledger,
including the responses a chunk drew *after* the accepted one: with acceptance probability p ≈ 1/M the
expected overhead per row is at most ``chunk − 1`` responses (about ``chunk − 1/p·(1 − (1−p)^chunk)``), which
is small next to the N ≈ 4M log(4/δ) draws of the Ẑ estimate for the default ``chunk = ceil(M)``.
``chunk=1`` is the sequential algorithm and reproduces its call count exactly (N + index of the first
acceptance, + 1 in the failure branch).

Row-aware callables. ``draw(n)`` must return n proposals per row for *all* rows. If it also accepts a
second argument, ``draw(n, rows)`` (``rows`` a LongTensor of row indices, ``None`` meaning all rows), the
sampler draws only for active rows; otherwise it draws for all rows and those extra draws are charged too
(correct, but wasteful). Likewise ``score(samples)`` may accept ``score(samples, rows)``, needed when the
score depends on the row (e.g. per-row θ or a per-row reference response y′). :func:`weak_draw` and
:func:`autoregressive_draw` build row-aware draws from the oracles.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..common.validation import check_int, check_positive, check_range
from ..errors import ConfigError, RevealError
from ..oracles.samplers import Samples

__all__ = [
    "SoftmaxSample",
    "SoftmaxSamplerConfig",
    "SoftmaxSampler",
    "SoftmaxSamplerDensity",
    "softmax_sampler",
    "num_normaliser_draws",
    "max_draws",
    "weak_draw",
    "autoregressive_draw",
    "sampler_log_law",
]


@dataclass
class SoftmaxSample:
    """Output of :func:`softmax_sampler` for B rows."""

    samples: Samples
    """The chosen responses as a Samples object with n = 1: ``.responses`` [B, 1, ...], ``.features`` [B,
    1, d] when revealed."""
    log_density: torch.Tensor
    """[B] log ρ = f(x, y)/β − log Ẑ, the density-ratio estimate of π_f/π_ref at the output (Alg. 2)."""
    accepted: torch.Tensor
    """[B] bool, False where the failure branch (fresh y ~ π_ref) was taken."""
    draws: torch.Tensor
    """[B] long, proposals drawn from the oracle for this row (including the N draws of the Ẑ estimate).
    With a draw that is not row-aware, the ledger also counts the draws made for rows that had already
    finished."""


def num_normaliser_draws(M: float, delta: float) -> int:
    """N = ceil(4 M log(4/δ)) (Algorithm 1, line 1): draws for Ẑ, and the maximum number of candidates."""
    return int(math.ceil(4.0 * M * math.log(4.0 / delta)))


def max_draws(M: float, delta: float) -> int:
    """Worst-case proposals per row: 2N + 1 (Theorem F.2: ≤ 8 M log(4/δ) + 1, up to the ceiling on N)."""
    return 2 * num_normaliser_draws(M, delta) + 1


def _accepts_rows(fn: Callable) -> bool:
    try:
        inspect.signature(fn).bind(0, None)
    except TypeError:
        return False
    except ValueError:  # builtins without a signature
        return False
    return True


def _maybe(samples: Samples, field: str) -> torch.Tensor | None:
    try:
        return getattr(samples, field)
    except RevealError:
        return None


def _row_select(t: torch.Tensor | None, rows: torch.Tensor | None) -> torch.Tensor | None:
    return t if t is None or rows is None else t[rows]


def softmax_sampler(draw: Callable[..., Samples], score: Callable[..., torch.Tensor], beta: float,
                    M: float, delta: float, generator: torch.Generator | None = None,
                    chunk: int | None = None) -> SoftmaxSample:
    """Algorithms 1/2 of Foster et al.: sample π_f ∝ π_ref·exp(f/β) for B rows at once from weak-oracle draws.

    ``draw(n)`` returns n proposals per row from π_ref (e.g. ``lambda n: weak.sample(prompts, n, gen)`` or
    ``lambda n: auto.next_token(prompts, prefixes, n, generator=gen)``; see the module docstring for the
    row-aware form ``draw(n, rows)``); ``score(samples)`` returns f(x, y) for them, shape [B, n].
    N = ceil(4 M log(4/δ)); Ẑ from N draws; then up to N candidates with acceptance exp(f/β)/(Ẑ M) clipped
    at 1, in log space; the failure branch draws one fresh y. ``generator`` drives the Bernoulli coins
    (the draws use whatever generator ``draw`` closes over). ``chunk`` is the number of candidates drawn
    per active row per step (default ceil(M), capped at N; 1 = the sequential algorithm).
    """
    beta = check_positive("beta", beta)
    M = check_range("M", M, 1.0, None)
    delta = check_range("delta", delta, 0.0, 1.0, low_open=True, high_open=True)
    N = num_normaliser_draws(M, delta)
    chunk = min(N, max(1, math.ceil(M))) if chunk is None else min(N, check_int("chunk", chunk, low=1))
    draw_rows, score_rows = _accepts_rows(draw), _accepts_rows(score)

    def _draw(n: int, rows: torch.Tensor | None) -> tuple[Samples, torch.Tensor | None]:
        """Draw for ``rows``; returns the samples and the index of ``rows`` inside them (None = aligned)."""
        if rows is None or draw_rows:
            return (draw(n) if rows is None else draw(n, rows)), None
        return draw(n), rows

    def _score(s: Samples, rows: torch.Tensor | None, pick: torch.Tensor | None) -> torch.Tensor:
        if pick is not None:  # the draw covered all rows: score them all, then keep the active ones
            f = score(s, None) if score_rows else score(s)
            return f[pick]
        f = score(s, rows) if score_rows else score(s)
        return f

    # -- Ẑ from N draws (line 1) -----------------------------------------------------------------------
    first, _ = _draw(N, None)
    f0 = score(first, None) if score_rows else score(first)
    B = f0.shape[0]
    if f0.shape != (B, N):
        raise ConfigError("score", f"must return shape (B, n) = ({B}, {N}), got {tuple(f0.shape)}")
    dev = f0.device
    log_z = torch.logsumexp(f0.double() / beta, dim=1) - math.log(N)  # [B] log Ẑ
    log_m = math.log(M)
    draws = torch.full((B,), N, dtype=torch.long, device=dev)
    accepted = torch.zeros(B, dtype=torch.bool, device=dev)
    log_density = torch.empty(B, dtype=torch.float64, device=dev)

    resp0 = first.responses
    out_resp = torch.empty((B, 1, *resp0.shape[2:]), dtype=resp0.dtype, device=resp0.device)
    feat0, logp0 = _maybe(first, "features"), _maybe(first, "log_probs")
    out_feat = (
        None
        if feat0 is None
        else torch.empty((B, 1, feat0.shape[-1]), dtype=feat0.dtype, device=feat0.device)
    )
    out_logp = None if logp0 is None else torch.empty((B, 1), dtype=logp0.dtype, device=logp0.device)
    reveal = {k for k, v in (("features", feat0), ("log_probs", logp0)) if v is not None}

    def _store(rows: torch.Tensor, s: Samples, src: torch.Tensor, k: torch.Tensor, f_sel: torch.Tensor):
        """Write candidate k of sample-row ``src`` into output row ``rows`` (all [R])."""
        out_resp[rows] = s.responses[src, k][:, None]
        if out_feat is not None:
            out_feat[rows] = s.features[src, k][:, None]
        if out_logp is not None:
            out_logp[rows] = s.log_probs[src, k][:, None]
        log_density[rows] = f_sel.double() / beta - log_z[rows]

    # -- candidates, in chunks over active rows (lines 2-4) ---------------------------------------------
    active = torch.arange(B, device=dev)
    tried = 0
    while active.numel() and tried < N:
        c = min(chunk, N - tried)
        rows = None if active.numel() == B else active
        s, pick = _draw(c, rows)
        f = _score(s, rows, pick)  # [A, c]
        log_acc = (f.double() / beta - log_z[active, None] - log_m).clamp(max=0.0)
        u = torch.rand(f.shape, generator=generator, dtype=torch.float64, device=dev)
        xi = torch.log(u) < log_acc
        hit = xi.any(dim=1)
        draws[active] += c
        if hit.any():
            k = xi.to(torch.int8).argmax(dim=1)  # first accepted candidate in the chunk
            hrows = active[hit]
            pos = hit.nonzero().squeeze(1)  # position among the active rows
            _store(hrows, s, pos if pick is None else pick[pos], k[pos], f[pos, k[pos]])
            accepted[hrows] = True
        active = active[~hit]
        tried += c

    # -- failure branch: a fresh y ~ π_ref (line 5) -------------------------------------------------------
    if active.numel():
        rows = None if active.numel() == B else active
        s, pick = _draw(1, rows)
        f = _score(s, rows, pick)
        draws[active] += 1
        pos = torch.arange(active.numel(), device=dev)
        _store(active, s, pos if pick is None else pick, torch.zeros_like(pos), f[:, 0])

    samples = Samples(first.prompts, out_resp, out_feat, out_logp, frozenset(reveal), "SoftmaxSampler")
    return SoftmaxSample(samples=samples, log_density=log_density, accepted=accepted, draws=draws)


def _conditional_log_law(
    log_ref: torch.Tensor, log_w: torch.Tensor, log_zm: torch.Tensor, N: int
) -> torch.Tensor:
    """Law of the sampler's output given log(Ẑ·M) (broadcast against ``log_w`` [..., Y] without its last
    axis): candidates y ~ π_ref accepted w.p. a(y) = min{1, w(y)/(Ẑ M)}, N of them, then a fresh π_ref
    draw."""
    log_a = (log_w - log_zm[..., None]).clamp(max=0.0)
    log_p = torch.logsumexp(log_ref + log_a, dim=-1, keepdim=True)
    log_fail = N * torch.log1p(-log_p.exp().clamp(max=1.0))
    log_ok = torch.log(-torch.expm1(log_fail))
    return torch.logaddexp(log_ok + log_ref + log_a - log_p, log_fail + log_ref)


def _compositions(N: int, Y: int) -> torch.Tensor:
    """All count vectors c ∈ ℕ^Y with Σ c = N, as a long tensor [C(N+Y−1, Y−1), Y] (stars and bars)."""
    out = torch.zeros(1, 0, dtype=torch.long)
    rem = torch.full((1,), N, dtype=torch.long)
    for _ in range(Y - 1):
        reps = rem + 1
        idx = torch.repeat_interleave(torch.arange(out.shape[0]), reps)
        offs = torch.arange(int(reps.sum())) - torch.repeat_interleave(torch.cumsum(reps, 0) - reps, reps)
        out = torch.cat([out[idx], offs[:, None]], dim=1)
        rem = rem[idx] - offs
    return torch.cat([out, rem[:, None]], dim=1)


def sampler_log_law(log_ref: torch.Tensor, f: torch.Tensor, beta: float, M: float, delta: float,
                    normaliser: str = "exact", max_compositions: int = 200_000) -> torch.Tensor:
    """The law of SoftmaxSampler_{β,M,δ}(f) (Alg. 1) over the last axis (log-probabilities, shape of ``f``).

    Each of the N = ⌈4M log(4/δ)⌉ candidates y ~ π_ref is accepted with a(y) = min{1, e^{f(y)/β}/(Ẑ M)}, so
    given Ẑ the output is π_ref·a/p with probability 1 − (1 − p)^N (p = E_{π_ref} a) and a fresh π_ref draw
    otherwise. A small M clips the density ratio at M (the output is not π_f); with M ≥ 4‖π_f/π_ref‖_∞ it is
    π_f up to the failure branch and the fluctuation of Ẑ (Theorem F.2).

    ``normaliser="exact"``: Ẑ = Z = E_{π_ref} e^{f/β} (clipping and failure branch only; cheap, any size).
    ``normaliser="estimated"``: the law the sampler really draws, Ẑ = (1/N) Σ_{i≤N} e^{f(y_i)/β} over its own
    N draws, averaged exactly over the multinomial law of their counts (C(N+Y−1, Y−1) compositions, at most
    ``max_compositions``: tiny instances only). ``log_ref`` broadcasts against ``f`` ([..., Y]).
    """
    log_ref, f = torch.broadcast_tensors(
        torch.as_tensor(log_ref), torch.as_tensor(f).to(torch.as_tensor(log_ref).dtype)
    )
    N = num_normaliser_draws(M, delta)
    log_w = f / beta
    if normaliser == "exact":
        log_zm = torch.logsumexp(log_ref + log_w, dim=-1) + math.log(M)
        return _conditional_log_law(log_ref, log_w, log_zm, N)
    if normaliser != "estimated":
        raise ConfigError("normaliser", f"must be 'exact' or 'estimated', got {normaliser!r}")
    Y = f.shape[-1]
    if math.comb(N + Y - 1, Y - 1) > max_compositions:
        raise ConfigError(
            "normaliser",
            f"'estimated' enumerates C(N+Y-1, Y-1) = {math.comb(N + Y - 1, Y - 1)} count "
            f"vectors (N = {N}, Y = {Y}) > max_compositions = {max_compositions}; use 'exact'",
        )
    c = _compositions(N, Y).to(f.dtype)                                         # [C, Y]
    log_mult = math.lgamma(N + 1) - torch.lgamma(c + 1).sum(-1)                 # [C]
    lr, lw = log_ref[..., None, :], log_w[..., None, :]                         # [..., 1, Y]
    log_pc = log_mult + torch.where(c > 0, c * lr, c.new_zeros(())).sum(-1)     # [..., C] (0·log 0 = 0)
    log_z = torch.logsumexp(torch.log(c) + lw, dim=-1) - math.log(N)            # [..., C]
    cond = _conditional_log_law(lr, lw, log_z + math.log(M), N)                 # [..., C, Y]
    return torch.logsumexp(log_pc[..., None] + cond, dim=-2)


def weak_draw(
    weak, prompts: torch.Tensor, generator: torch.Generator | None = None
) -> Callable[..., Samples]:
    """A row-aware ``draw(n, rows=None)`` from a weak sampling oracle for the rows ``prompts`` [B]."""
    prompts = torch.as_tensor(prompts, dtype=torch.long)

    def draw(n: int, rows: torch.Tensor | None = None) -> Samples:
        return weak.sample(prompts if rows is None else prompts[rows.to(prompts.device)], n, generator)

    return draw


def autoregressive_draw(auto, prompts: torch.Tensor, prefixes: torch.Tensor,
                        generator: torch.Generator | None = None) -> Callable[..., Samples]:
    """A row-aware ``draw(n, rows=None)`` of next tokens from a weak autoregressive oracle (Def. 5.1)."""
    prompts = torch.as_tensor(prompts, dtype=torch.long)
    prefixes = torch.as_tensor(prefixes, dtype=torch.long)

    def draw(n: int, rows: torch.Tensor | None = None) -> Samples:
        if rows is None:
            return auto.next_token(prompts, prefixes, n, generator=generator)
        rows = rows.to(prompts.device)
        return auto.next_token(prompts[rows], prefixes[rows], n, generator=generator)

    return draw


@dataclass
class SoftmaxSamplerConfig:
    """Parameters of SoftmaxSampler_{β,M,δ} (Foster et al. App. F)."""

    M: float = 4.0
    """Envelope constant M ≥ 1. Theory: M ≥ 4·C_∞ with C_∞ = ‖π_f/π_ref‖_∞ for exact sampling (Thm F.2); M
    ≥ 4·C_∞² for the density estimate of Alg. 2 (Thm F.1); SpannerSampling uses M_rej = 8e²·C_cov (Alg. 3,
    line 3)."""
    delta: float = 0.05
    """Failure probability δ ∈ (0, 1) of the good event. Theory: δ_rej = 1/T_exp inside SpannerSampling
    (Alg. 3, line 3)."""
    chunk: int | None = None
    """Candidates drawn per active row per step; None = ceil(M) (capped at N); 1 = the sequential
    algorithm. Not in the paper (an implementation knob; it only changes the draw count, not the law)."""

    def __post_init__(self):
        check_range("M", self.M, 1.0, None)
        check_range("delta", self.delta, 0.0, 1.0, low_open=True, high_open=True)
        if self.chunk is not None:
            check_int("chunk", self.chunk, low=1)

    @property
    def N(self) -> int:
        """Draws for the normaliser estimate Ẑ and maximum number of candidates: ceil(4 M log(4/δ))."""
        return num_normaliser_draws(self.M, self.delta)

    @property
    def max_draws(self) -> int:
        """Worst-case proposals per row, 2N + 1 (Theorem F.2)."""
        return max_draws(self.M, self.delta)


class SoftmaxSampler:
    """Algorithm 1 (SoftmaxSampler_{β,M,δ}): y ~ π_f ∝ π_ref·exp(f/β) from weak-oracle draws only."""

    def __init__(self, config: SoftmaxSamplerConfig | None = None):
        self.config = config or SoftmaxSamplerConfig()

    def sample(self, draw: Callable[..., Samples], score: Callable[..., torch.Tensor], beta: float,
               generator: torch.Generator | None = None) -> SoftmaxSample:
        """Run :func:`softmax_sampler` with this configuration."""
        c = self.config
        return softmax_sampler(draw, score, beta, c.M, c.delta, generator=generator, chunk=c.chunk)

    __call__ = sample


class SoftmaxSamplerDensity(SoftmaxSampler):
    """Algorithm 2 (SoftmaxSamplerDensity): Algorithm 1 that also returns ρ = exp(f(x, y)/β)/Ẑ ≈ π_f/π_ref(y).

    The estimate is ``SoftmaxSample.log_density``; it is within C_∞·√(2/M) of log(π_f/π_ref)(y) on the good
    event when M ≥ 4·C_∞² (Theorem F.1).
    """

    def sample_density(self, draw, score, beta, generator=None) -> tuple[Samples, torch.Tensor]:
        """(samples, log ρ) as in the pseudo-code of Algorithm 2."""
        out = self.sample(draw, score, beta, generator)
        return out.samples, out.log_density
