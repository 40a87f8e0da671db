"""numba versions of :mod:`oraclerl.models.kernels` (imported only when numba is installed; extra ``[fast]``).

Each function gives exactly the torch definition's output: :func:`cdf_walk` counts the entries ≤ u of a
nondecreasing row, which is torch.searchsorted(right=True)'s answer on it; :func:`greedy_table` adds in the
inputs' dtype and keeps the first maximum (finite inputs only: the caller leaves NaN/inf to torch).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def cdf_walk(cdf, base, u, start, out):  # pragma: no cover - compiled
    # Rows are nondecreasing, so the upper bound is the count of entries <= v (a branch-free, vectorisable
    # 32-compare sum); 8 sequences advance together so that their dependency chains overlap.
    M, L = u.shape
    k = cdf.shape[1]
    G = 8
    rows = np.empty(G, np.int64)
    for m0 in range(0, M, G):
        g = min(M, m0 + G) - m0
        for j in range(g):
            rows[j] = base[m0 + j] + start
        for i in range(L):
            for j in range(g):
                v = u[m0 + j, i]
                r = rows[j]
                c = 0
                for q in range(k):
                    c += cdf[r, q] <= v
                out[m0 + j, i] = c
                rows[j] = base[m0 + j] + c


@numba.njit(cache=True, nogil=True)
def greedy_table(s, tT, out):  # pragma: no cover - compiled
    # finite inputs only (the caller checks): the first strict maximum over j, all P rows in vector lanes
    B, k = s.shape
    P = tT.shape[1]
    best = np.empty(P, s.dtype)
    idx = np.empty(P, np.int64)
    for b in range(B):
        for p in range(P):
            best[p] = -np.inf
            idx[p] = 0
        for j in range(k):
            sj = s[b, j]
            for p in range(P):
                v = sj + tT[j, p]
                c = v > best[p]
                best[p] = v if c else best[p]
                idx[p] = j if c else idx[p]
        for p in range(P):
            out[b, p] = idx[p]


@numba.njit(cache=True, nogil=True)
def greedy_walk(s, tT, out):  # pragma: no cover - compiled
    # greedy_table for one context at a time, then its walk y_1 = nxt[P−1], y_i = nxt[y_{i−1}]
    B, N = out.shape
    P = tT.shape[1]
    nxt = np.empty((1, P), np.int64)
    for b in range(B):
        greedy_table(s[b:b + 1], tT, nxt)
        prev = P - 1
        for i in range(N):
            prev = nxt[0, prev]
            out[b, i] = prev


@numba.njit(cache=True, nogil=True)
def bigram_walk(E1, E2, u, n, out):  # pragma: no cover - compiled
    # Sequence m = b·n + j uses context b's table; a row is built on its first visit (a trained policy visits
    # few of the k+1), exactly as the torch definition: float64 products, running sum, division by the total,
    # rounding to u's dtype.
    # G consecutive sequences advance together so that their dependency chains overlap; context b keeps
    # table slot b mod G (at most G consecutive contexts meet in one block).
    B, k = E1.shape
    P = E2.shape[0]
    M, L = u.shape
    G = 8
    cdf = np.empty((G, P, k), u.dtype)                  # rounded to the uniforms' dtype, as the definition
    run = np.empty(k, np.float64)
    built = np.zeros((G, P), np.bool_)
    rows = np.empty(G, np.int64)
    for m0 in range(0, M, G):
        g = min(M, m0 + G) - m0
        for j in range(g):
            rows[j] = P - 1
            if (m0 + j) % n == 0:              # first sequence of a context: its slot starts empty
                built[((m0 + j) // n) % G, :] = False
        for i in range(L):
            for j in range(g):
                b = (m0 + j) // n
                s = b % G
                r = rows[j]
                if not built[s, r]:
                    acc = 0.0
                    for q in range(k):
                        acc += E1[b, q] * E2[r, q]
                        run[q] = acc
                    for q in range(k - 1):
                        cdf[s, r, q] = run[q] / acc
                    built[s, r] = True
                v = u[m0 + j, i]
                c = 0
                for q in range(k - 1):
                    c += cdf[s, r, q] <= v
                out[m0 + j, i] = c
                rows[j] = c


@numba.njit(cache=True, nogil=True)
def bigram_counts(y, a, c, obs1, obs2):  # pragma: no cover - compiled
    # the three scatter-adds of the torch definition in its order: row b, then response j, then position i
    B, n, L = y.shape
    k = obs1.shape[1]
    for b in range(B):
        for j in range(n):
            prev = k
            for i in range(L):
                t = y[b, j, i]
                w = a[b, j, i]
                c[b, prev] += w
                obs1[b, t] += w
                obs2[t, prev] += w
                prev = t
