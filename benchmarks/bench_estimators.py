"""Benchmark of the exact estimator lab (oraclerl.diagnostics.estimators).

1. ``kl_estimator_moments`` on 10^5 prompts × 10^3 responses in one call (six estimators, E and Var each, plus
   KL(q‖p) and KL(p‖q)); compared with the floor of one fused pass, ``kl_divergence`` on the same tables (the
   least any exact KL moment must do: read both tables once and take one exp).
2. ``group_gradient_moments``: exact group enumeration of |Y|^n = 10^6 groups per prompt (Y = 10, n = 6) for
   RLOO and GRPO, against a Python loop over groups (one ``advantages`` call per group) timed on 2,000 groups
   and extrapolated.

    python benchmarks/bench_estimators.py [--threads 1] [--dtype float32|float64] [--prompts 100000]
"""

from __future__ import annotations

import argparse
import itertools
import math
import resource
import time

import torch

from oraclerl.diagnostics.divergences import kl_divergence
from oraclerl.diagnostics.estimators import group_gradient_moments, kl_estimator_moments
from oraclerl.posttrain.advantages import advantages


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def bench_moments(X: int, Y: int, dtype) -> None:
    g = torch.Generator().manual_seed(0)
    lq = torch.log_softmax(torch.randn(X, Y, generator=g, dtype=dtype), -1)
    lp = torch.log_softmax(torch.randn(X, Y, generator=g, dtype=dtype), -1)
    held = 2 * lq.numel() * lq.element_size() / 2 ** 30
    t = time.perf_counter()
    kl_divergence(lq, lp)
    floor = time.perf_counter() - t
    t = time.perf_counter()
    mom = kl_estimator_moments(lq, lp)
    dt = time.perf_counter() - t
    assert torch.allclose(mom.mean["k1"], mom.kl_qp, atol=1e-3 if dtype == torch.float32 else 1e-10)
    print(
        f"moments {X} x {Y} ({dtype}): {dt:.2f} s for 6 estimators x (E, Var) + 2 KLs "
        f"({X * Y / dt / 1e6:.0f} M entries/s); one kl_divergence pass {floor:.2f} s -> {dt / floor:.1f}x "
        f"that floor; inputs {held:.2f} GiB, peak RSS {_peak_rss_gib():.2f} GiB"
    )


def bench_groups(Y: int, n: int, d: int) -> None:
    g = torch.Generator().manual_seed(1)
    lq = torch.log_softmax(torch.randn(1, Y, generator=g, dtype=torch.float64), -1)
    R = (torch.rand(1, Y, generator=g) < 0.4).double()
    S = torch.randn(1, Y, d, generator=g, dtype=torch.float64)
    for est in ("leave_one_out", "group_normalised"):
        t = time.perf_counter()
        m = group_gradient_moments(lq, R, S, n, est)
        dt = time.perf_counter() - t
        # reference: one advantages() call per group, Python loop (2,000 groups, extrapolated)
        K = 2000
        t = time.perf_counter()
        for grp in itertools.islice(itertools.product(range(Y), repeat=n), K):
            idx = torch.tensor(grp)
            a = advantages(R[0, idx][None], est)[0]
            (a @ S[0, idx]) * math.exp(float(lq[0, idx].sum()))
        loop = (time.perf_counter() - t) / K * m.groups
        print(
            f"groups |Y|^n = {Y}^{n} = {m.groups} ({est}, D = {d}): {dt:.2f} s ({m.groups / dt / 1e6:.2f} M "
            f"groups/s); Python loop over groups ≈ {loop:.0f} s ({loop / dt:.0f}x)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--prompts", type=int, default=100_000)
    ap.add_argument("--responses", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    bench_groups(10, 6, 8)
    bench_moments(args.prompts, args.responses, getattr(torch, args.dtype))


if __name__ == "__main__":
    main()
