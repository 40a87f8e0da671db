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
def greedy_walk(s, t, out):  # pragma: no cover - compiled
    # The walk y_1 = nxt[P−1], y_i = nxt[y_{i−1}] of greedy_table's map for one context at a time, each nxt[p]
    # computed on the first visit of row p only, with greedy_table's sums s[b, j] + t[p, j] in the inputs'
    # dtype and its first strict maximum. The walk is deterministic, so once a token repeats (y_i = y_f, f <
    # i) the rest is the cycle y_f..y_{i−1} repeated: it is copied instead of walked.
    B, N = out.shape
    P, k = t.shape
    nxt = np.empty(P, np.int64)
    first = np.empty(P, np.int64)
    for b in range(B):
        for p in range(P):
            nxt[p] = -1
            first[p] = -1
        prev = P - 1
        for i in range(N):
            q = nxt[prev]
            if q < 0:
                best = s[b, 0] + t[prev, 0]
                q = 0
                for j in range(1, k):
                    v = s[b, j] + t[prev, j]
                    if v > best:
                        best = v
                        q = j
                nxt[prev] = q
            out[b, i] = q
            f = first[q]
            if f >= 0:                                  # out[i] = out[f]: period i − f from position f on
                per = i - f
                c = 0
                for i2 in range(i + 1, N):
                    c += 1
                    if c == per:
                        c = 0
                    out[b, i2] = out[b, f + c]
                break
            first[q] = i
            prev = q


@numba.njit(cache=True, nogil=True)
def bigram_walk(E1, E2, u, n, out):  # pragma: no cover - compiled
    # Sequence m = b·n + j uses context b's table; a row is built on its first visit (a trained policy visits
    # few of the k+1), exactly as the torch definition: float64 products, running sum, division by the total,
    # rounding to u's dtype. G consecutive sequences advance together so that their dependency chains overlap;
    # context b keeps table slot b mod G (at most G consecutive contexts meet in one block). Each built row
    # also keeps the interval [lo, hi) = [cdf[q−1], cdf[q]) of its most likely token q: a uniform in it has
    # exactly q entries ≤ it (the row is nondecreasing), so the count is skipped (the same answer).
    B, k = E1.shape
    P = E2.shape[0]
    M, L = u.shape
    G = 8
    cdf = np.empty((G, P, k), u.dtype)                  # rounded to the uniforms' dtype, as the definition
    lo = np.empty((G, P), u.dtype)
    hi = np.empty((G, P), u.dtype)
    mode = np.empty((G, P), np.int64)
    run = np.empty(k, np.float64)
    built = np.zeros((G, P), np.bool_)
    rows = np.empty(G, np.int64)
    ctx = np.empty(G, np.int64)
    slot = np.empty(G, np.int64)
    for m0 in range(0, M, G):
        g = min(M, m0 + G) - m0
        for j in range(g):
            rows[j] = P - 1
            ctx[j] = (m0 + j) // n
            slot[j] = ctx[j] % G
            if (m0 + j) % n == 0:              # first sequence of a context: its slot starts empty
                built[slot[j], :] = False
                lo[slot[j], :] = 2.0           # an empty interval until the row is built: the shortcut fails
                hi[slot[j], :] = -1.0
        for i in range(L):
            for j in range(g):
                s = slot[j]
                r = rows[j]
                v = u[m0 + j, i]
                if lo[s, r] <= v and v < hi[s, r]:
                    c = mode[s, r]
                else:
                    if not built[s, r]:
                        b = ctx[j]
                        acc = 0.0
                        top = -1.0
                        q0 = 0
                        for q in range(k):
                            e = E1[b, q] * E2[r, q]
                            acc += e
                            run[q] = acc
                            if e > top:
                                top = e
                                q0 = q
                        for q in range(k - 1):
                            cdf[s, r, q] = run[q] / acc
                        # the most likely token q0 owns [cdf[q0−1], cdf[q0]) (q0 = 0: from −1; q0 = k−1: up to
                        # 3)
                        lo[s, r] = cdf[s, r, q0 - 1] if q0 > 0 else -1.0
                        hi[s, r] = cdf[s, r, q0] if q0 < k - 1 else 3.0
                        mode[s, r] = q0
                        built[s, r] = True
                    c = 0
                    for q in range(k - 1):
                        c += cdf[s, r, q] <= v
                out[m0 + j, i] = c
                rows[j] = c


@numba.njit(cache=True, nogil=True)
def bigram_counts(y, a, c, obs1, obs2):  # pragma: no cover - compiled
    # the three scatter-adds of the torch definition in its order: row b, then response j, then position i; a
    # is [B, n, L] or [B, n, 1] (one weight per response) of float32 or float64, each weight converted to
    # float64 (exact) before it is added, as the definition's a.to(float64). A run of repeats (y_i = y_{i−1}:
    # a trained policy's fixed points) adds to the same three cells, in the same order, in registers.
    B, n, L = y.shape
    k = obs1.shape[1]
    per_token = a.shape[2] != 1
    for b in range(B):
        for j in range(n):
            prev = k
            w = np.float64(a[b, j, 0])
            i = 0
            while i < L:
                t = y[b, j, i]
                if per_token:
                    w = np.float64(a[b, j, i])
                if t != prev:
                    c[b, prev] += w
                    obs1[b, t] += w
                    obs2[t, prev] += w
                    prev = t
                    i += 1
                    continue
                cc = c[b, t] + w
                o1 = obs1[b, t] + w
                o2 = obs2[t, t] + w
                i += 1
                while i < L and y[b, j, i] == t:
                    if per_token:
                        w = np.float64(a[b, j, i])
                    cc += w
                    o1 += w
                    o2 += w
                    i += 1
                c[b, t] = cc
                obs1[b, t] = o1
                obs2[t, t] = o2
