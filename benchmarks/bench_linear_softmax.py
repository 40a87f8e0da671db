"""Benchmark: exact linear-softmax models at 10^6 (prompt, response) pairs, d = 64 (foundation issue, item 3).

Prints, side by side, the batched PyTorch implementation and a reference NumPy implementation that loops over
prompts (vectorised over responses, as a careful NumPy user would write it), for: the exact log-policy
log π_θ, exact J_β / regret (KL to π⋆_β), and sampling 128 responses per prompt. Memory is the size of the
tensors held plus the peak resident set size of the process.

    .venv/bin/python benchmarks/bench_linear_softmax.py [--prompts 16 --responses 65536 --d 64 --threads 1]
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

import numpy as np
import torch

from oraclerl.diagnostics import regret
from oraclerl.models import sample_from_log_probs
from oraclerl.problems import linear_softmax


def timed(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def numpy_reference(log_ref, phi, theta, beta, reward, log_star, n, rng):
    out_reg = 0.0
    samples = []
    for x in range(log_ref.shape[0]):
        z = log_ref[x] + phi[x] @ theta / beta
        z = z - z.max()
        lp = z - np.log(np.exp(z).sum())
        p = np.exp(lp)
        out_reg += (p * (lp - log_star[x])).sum()
        samples.append(rng.choice(p.size, size=n, p=p))
    return beta * out_reg / log_ref.shape[0], samples


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--responses", type=int, default=65536)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: the report's setting)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    pairs = args.prompts * args.responses
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}; {pairs:,} pairs, d={args.d}, {args.dtype}")
    t0 = time.perf_counter()
    inst = linear_softmax(d=args.d, num_prompts=args.prompts, num_responses=args.responses, beta=0.5,
                          target_coverage=64.0, seed=0, dtype=dtype)
    t_build = time.perf_counter() - t0
    g = torch.Generator().manual_seed(0)
    theta = inst.theta_star + 0.1 * torch.randn(args.d, generator=g, dtype=dtype)
    held = sum(t.numel() * t.element_size() for t in (inst.base.phi, inst.base.log_ref, inst.reward.table))
    t_lp, lp = timed(lambda: inst.base.log_policy(theta))
    t_reg, reg = timed(lambda: regret(lp, inst))
    prompts = torch.arange(args.prompts)
    t_smp, _ = timed(lambda: sample_from_log_probs(lp, 128, g))
    t_feat, _ = timed(lambda: inst.base.features(prompts, inst.base.sample(prompts, 128, g)))

    np_args = (
        inst.base.log_ref.numpy(),
        inst.base.phi.numpy(),
        theta.numpy(),
        0.5,
        inst.reward.table.numpy(),
        inst.optimal_log_policy().numpy(),
        128,
        np.random.default_rng(0),
    )
    t_np, (reg_np, _) = timed(lambda: numpy_reference(*np_args), repeat=3)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ours = t_lp + t_reg + t_smp
    print(f"instance build (incl. coverage bisection): {t_build:.2f} s; tensors held {held / 2**20:.0f} MiB; "
          f"peak RSS {rss:.0f} MiB")
    print(f"{'operation':44s} {'oraclerl (torch)':>18s} {'NumPy per-prompt ref':>22s}")
    print(f"{'exact log π_θ over all pairs':44s} {t_lp * 1e3:15.1f} ms")
    print(f"{'exact regret β·E KL(π_θ‖π⋆) from log π_θ':44s} {t_reg * 1e3:15.1f} ms")
    print(f"{'sample 128 responses/prompt from π_θ':44s} {t_smp * 1e3:15.1f} ms")
    print(f"{'weak sample 128/prompt + features':44s} {t_feat * 1e3:15.1f} ms")
    print(f"{'log π_θ + regret + sampling (total)':44s} {ours * 1e3:15.1f} ms {t_np * 1e3:19.1f} ms"
          f"   (NumPy/ours {t_np / ours:.2f}x)")
    print(f"regret agrees with the reference: {reg:.10f} vs {reg_np:.10f}")


if __name__ == "__main__":
    main()
