"""Sequential kernels of the exact bigram models, with an optional numba accelerator (issue 15).

Each kernel is *defined* by its pure-torch implementation (what runs on CUDA, without numba, or with
``ORACLERL_NO_NUMBA=1``). The numba version, used for CPU tensors when the optional ``numba`` package is
installed (extra ``[fast]``), makes the same floating-point operations and comparisons on the same inputs, in
the same order, so its outputs are bit-identical (``tests/test_linear_ar.py`` checks both paths against each
other and against brute force). A run therefore gives the same results with or without the accelerator.

* :func:`cdf_walk`: the inverse-CDF walk of a per-context Markov chain over token tables. Autoregressive
  sampling is sequential in the position, so torch needs one ``index_select`` + ``searchsorted`` dispatch
  per position (≈ 75 µs at [1024, 32]); the compiled loop counts the ≤ 32 row entries below u with vector
  compares, eight sequences at a time so that their dependency chains overlap (docs/benchmarks.md, "Floors").
* :func:`greedy_table`: ``argmax_j (s[b, j] + t[p, j])`` for every (b, p) without materialising the
  [B, P, k] table (torch's CPU ``argmax`` over a last dimension of 32 costs ≈ 3 ms at [1024, 33, 32]), and
  :func:`greedy_walk`, the walk of that map (the teacher's y*(x)).
"""

from __future__ import annotations

import os

import torch

_NUMBA = None          # None: not tried yet; False: unavailable/disabled; else the compiled kernels


def _compiled():
    """The numba kernels, compiled on first use (cached on disk), or False when numba is unavailable."""
    global _NUMBA
    if _NUMBA is None:
        _NUMBA = False
        if os.environ.get("ORACLERL_NO_NUMBA", "") not in ("1", "true", "yes"):
            try:
                from . import _numba_kernels
                _NUMBA = _numba_kernels
            except ImportError:
                _NUMBA = False
    return _NUMBA


def accelerated(*tensors: torch.Tensor) -> bool:
    """True when the numba path will serve these tensors (all on the CPU and numba available)."""
    return all(t.device.type == "cpu" for t in tensors) and bool(_compiled())


def cdf_walk(cdf: torch.Tensor, base: torch.Tensor, u: torch.Tensor, start: int) -> torch.Tensor:
    """Inverse-CDF walk: tokens long [M, L] with tok[m, i] = searchsorted(cdf[base[m] + prev], u[m, i],
    right).

    Args:
        cdf: [R, k] row CDFs (float), each row nondecreasing (e.g. a ``cumsum`` of probabilities, which is
            monotone under rounding) with a last entry above every uniform (e.g. 2.0); the answer is then
            the count of entries ≤ u, whatever the search.
        base: long [M], the first table row of sequence m's context; row ``base + p`` follows token p.
        u: [M, L] uniforms in [0, 1) of cdf's dtype (sequence m, position i).
        start: the table row offset of the first position (prev = ``start`` at i = 0).
    """
    M, L = u.shape
    if accelerated(cdf, base, u):
        out = torch.empty((M, L), dtype=torch.long)
        _compiled().cdf_walk(cdf.contiguous().numpy(), base.contiguous().numpy(), u.contiguous().numpy(),
                             int(start), out.numpy())
        return out
    prev = torch.full((M,), start, dtype=torch.long, device=u.device)
    uT = u.T.contiguous()[:, :, None]                     # [L, M, 1]: searchsorted wants contiguous values
    toks = []
    for i in range(L):  # one vectorised inverse-CDF step per position for all M sequences
        prev = torch.searchsorted(cdf.index_select(0, base + prev), uT[i], right=True).view(-1)
        toks.append(prev)
    return torch.stack(toks, 1)


def greedy_table(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """nxt[b, p] = argmax_j (s[b, j] + t[p, j]) (first maximum; NaN counts as the maximum, as torch.argmax).

    Args:
        s: [B, k] per-context scores; t: [P, k] per-row scores (same dtype). Returns long [B, P].
    """
    if (
        accelerated(s, t)
        and s.dtype == t.dtype
        and bool(torch.isfinite(s).all())
        and bool(torch.isfinite(t).all())
    ):
        out = torch.empty((s.shape[0], t.shape[0]), dtype=torch.long)
        _compiled().greedy_table(s.contiguous().numpy(), t.T.contiguous().numpy(), out.numpy())
        return out
    return (s[:, None, :] + t[None, :, :]).argmax(-1)


def bigram_walk(E1: torch.Tensor, E2: torch.Tensor, u: torch.Tensor, n: int) -> torch.Tensor:
    """Autoregressive samples of a factorised bigram law: tokens long [B·n, L].

    The law of the token after row p in context b is q(j | b, p) = E1[b, j]·E2[p, j] / Σ_j' E1[b, j']·E2[p,
    j'] (row P−1 is the first position); sequence m = b·n + r walks it with the uniforms u[m]. Definition: the
    table cdf[b, p] = cumsum(E1[b]·E2[p]) / total in float64, rounded to u's dtype (last entry 2.0), and
    :func:`cdf_walk`.

    Args:
        E1: [B, k] nonnegative float64 factors; E2: [P, k] nonnegative float64 factors (every row of E1E2ᵀ >
        0). u: [B·n, L] uniforms in [0, 1); n: sequences per context.
    """
    B, k = E1.shape
    P = E2.shape[0]
    if accelerated(E1, E2, u):
        out = torch.empty(u.shape, dtype=torch.long)
        _compiled().bigram_walk(
            E1.contiguous().numpy(), E2.contiguous().numpy(), u.contiguous().numpy(), int(n), out.numpy()
        )
        return out
    W = torch.cumsum(E1[:, :, None] * E2.T[None, :, :], 1)                # [B, k, P]: running sums, in order
    W.div_(W[:, -1:, :].clone())
    # rounding: still monotone
    cdf = torch.empty((B, P, k), dtype=u.dtype, device=u.device).copy_(W.transpose(1, 2))
    cdf[..., -1] = 2.0
    base = (torch.arange(B, device=u.device) * P).repeat_interleave(n)
    return cdf_walk(cdf.view(B * P, k), base, u, P - 1)


def greedy_walk(s: torch.Tensor, t: torch.Tensor, N: int) -> torch.Tensor:
    """The greedy walk y_1 = nxt[b, P−1], y_i = nxt[b, y_{i−1}] of :func:`greedy_table`'s map: long [B, N].

    Definition: pointer doubling, from y_{1:L} and nxt^L, y_{L+1:2L} = nxt^L(y_{1:L}) and nxt^{2L} = nxt^L ∘
    nxt^L (⌈log₂ N⌉ rounds of gathers instead of N steps); compiled: the N steps per context, nxt[b, p]
    computed only for the rows p the walk visits (it cycles after a few), with greedy_table's sums and first
    maximum.
    """
    P = t.shape[0]
    if (
        accelerated(s, t)
        and s.dtype == t.dtype
        and bool(torch.isfinite(s).all())
        and bool(torch.isfinite(t).all())
    ):
        out = torch.empty((s.shape[0], N), dtype=torch.long)
        _compiled().greedy_walk(s.contiguous().numpy(), t.contiguous().numpy(), out.numpy())
        return out
    nxt = greedy_table(s, t)                                     # [B, P]; column P−1 = first position
    y = nxt[:, P - 1:]                                           # y_1, [B, 1]
    T = nxt
    while y.shape[1] < N:
        y = torch.cat([y, T.gather(1, y)], 1)                    # y_{L+1..2L}
        T = T.gather(1, T)                                       # nxt^{2L}
    return y[:, :N].contiguous()


def bigram_counts(y: torch.Tensor, a: torch.Tensor, k: int):
    """Weighted visit and transition counts of token sequences, the sufficient statistics of the bigram
    gradient.

    Args:
        y: long [B, n, L] tokens in [0, k); a: float32 or float64 weights [B, n, L], or [B, n, 1] (or expanded
            from it) for one weight per response; prev of position 1 is row k.
    Returns:
        (c [B, k+1], obs1 [B, k], obs2 [k, k+1]) float64: c[b, p] = Σ a·1[prev = p], obs1[b, j] = Σ a·1[y =
        j], obs2[j, p] = Σ a·1[y = j, prev = p]. Definition: ``a.to(float64)`` broadcast to [B, n, L], then
        three ``scatter_add_`` (sums in index order); the compiled pass converts each weight and adds in the
        same order (per-response weights are read once per response, never materialised per token).
    """
    B, n, L = y.shape
    f64 = torch.float64
    if accelerated(y, a) and a.dtype in (f64, torch.float32) and a.dim() == 3 and a.shape[:2] == (B, n) \
            and a.shape[2] in (1, L):
        if a.shape[2] == 1 or a.stride(2) == 0:
            a = a[..., :1]                                           # one weight per response
        c = torch.zeros(B, k + 1, dtype=f64)
        obs1 = torch.zeros(B, k, dtype=f64)
        obs2 = torch.zeros(k, k + 1, dtype=f64)
        _compiled().bigram_counts(y.contiguous().numpy(), a.contiguous().numpy(), c.numpy(), obs1.numpy(),
                                  obs2.numpy())
        return c, obs1, obs2
    prev = torch.cat([torch.full_like(y[..., :1], k), y[..., :-1]], dim=-1).reshape(B, n * L)
    tok = y.reshape(B, n * L)
    af = a.to(f64).expand(B, n, L).reshape(B, n * L)
    c = torch.zeros(B, k + 1, dtype=f64, device=y.device).scatter_add_(1, prev, af)
    obs1 = torch.zeros(B, k, dtype=f64, device=y.device).scatter_add_(1, tok, af)
    obs2 = torch.zeros(k * (k + 1), dtype=f64, device=y.device).scatter_add_(
        0, (tok * (k + 1) + prev).reshape(-1), af.reshape(-1)).view(k, k + 1)           # [j, prev]
    return c, obs1, obs2
