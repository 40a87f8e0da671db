"""Benchmark: one SpannerSampling run on d = 16, 64 prompts × 1,024 responses (65,536 responses), exact evaluation.

Target (issue 4): the whole run, including the exact averaged regret of Theorem 3.1 (every distinct component's
truncated-softmax marginal, O(|Y|²) per prompt and component) and the exact regret of the output mixture, in
under 60 s on a 2-core CPU. Printed side by side with references:

* evaluation: the BLAS matrix-product form of ``truncated_log_marginal`` vs the direct elementwise form
  (log-softmax over y for every y′, a [Y, Y] tensor per prompt and component), timed on one component and
  extrapolated to all components;
* rejection sampling: the chunked SoftmaxSampler (default chunk = ceil(M_rej)) vs the sequential algorithm
  (chunk = 1) on one exploration batch: time and responses drawn (the ledger counts both exactly).

    .venv/bin/python benchmarks/bench_spanner.py [--threads 1 --T-exp 512 --T-prompt 1024]

One torch thread by default: on the shared 2-core machine two intra-op threads contend with other processes and
small tensor operations become many times slower (measured: the run took 19.5 s with 2 threads vs 1.5 s with 1
under a load average of ~9); the experiment runner also uses one thread per worker.
"""

from __future__ import annotations

import argparse
import math
import platform
import resource
import time

import torch

from oraclerl.diagnostics import coverage_coefficient, regret
from oraclerl.explore.spanner_sampling import SpannerSampling, SpannerSamplingConfig
from oraclerl.explore.truncated_softmax import truncated_score
from oraclerl.inference.softmax_sampler import softmax_sampler, weak_draw
from oraclerl.problems import linear_softmax


def elementwise_log_marginal(log_ref, phi, theta, sigma_inv, nu, beta):
    """Reference: π̄_θ(y|x) by an explicit [Y, Y] log-softmax per prompt (no matrix-product trick)."""
    out = torch.empty_like(log_ref)
    for x in range(phi.shape[0]):
        ph, lr = phi[x], log_ref[x]
        pS = ph @ sigma_inv
        q = (pS * ph).sum(-1)
        keep = (q[:, None] + q[None, :] - 2.0 * pS @ ph.T) <= nu * nu
        a = ph @ theta
        logits = lr[:, None] + (a[:, None] - a[None, :]) * keep / beta     # [y, y′]
        logits = torch.log_softmax(logits, dim=0) + lr[None, :]
        out[x] = torch.logsumexp(logits, dim=1)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--responses", type=int, default=1024)
    ap.add_argument("--T-prompt", type=int, default=1024)
    ap.add_argument("--T-exp", type=int, default=512)
    ap.add_argument("--exp-batch", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}; d={args.d}, {args.prompts} prompts × {args.responses} responses "
          f"= {args.prompts * args.responses:,} responses")
    t0 = time.perf_counter()
    inst = linear_softmax(d=args.d, num_prompts=args.prompts, num_responses=args.responses, beta=0.5,
                          target_coverage=16.0, noise=0.5, seed=0)
    c = coverage_coefficient(inst)
    t_build = time.perf_counter() - t0
    cfg = SpannerSamplingConfig(coverage_bound=c, B=inst.B, nu=0.5, T_prompt=args.T_prompt, T_span=math.ceil(4 * c),
                                T_exp=args.T_exp, M_rej=4 * c, exp_batch=args.exp_batch)
    o = inst.oracles()
    t0, c0 = time.perf_counter(), time.process_time()
    out = SpannerSampling(cfg).run(o.weak, o.reward, o.prompts, torch.Generator().manual_seed(0))
    t_run, c_run = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    avg = out.policy.average_regret(inst)
    mix = regret(out.policy, inst)
    t_eval, c_eval = time.perf_counter() - t0, time.process_time() - c0
    K = out.policy.distinct_components()[0].shape[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"instance build: {t_build:.2f} s;  C_cov = {c:.3g}, R_max = {inst.r_max:.3g}, base regret "
          f"{regret(inst.base.log_ref, inst):.4f}")
    print(f"SpannerSampling run: {t_run:.2f} s wall, {c_run:.2f} s CPU  (spanner |Ψ| = {out.spanner_size}, T_exp = {args.T_exp}, "
          f"{K} distinct θ)  ledger: {out.ledger}")
    print(f"exact evaluation ({K} components, O(|Y|²) each): {t_eval:.2f} s wall, {c_eval:.2f} s CPU;  averaged regret {avg:.5f}, "
          f"mixture regret {mix:.5f}")
    print(f"TOTAL run + exact evaluation: {t_run + t_eval:.2f} s wall, {c_run + c_eval:.2f} s CPU (target < 60 s);  peak RSS {rss:.0f} MiB")

    # -- evaluation reference: elementwise [Y, Y] log-softmax, one component, extrapolated ------------------
    theta = out.policy.thetas[-1]
    base = inst.base
    t0 = time.perf_counter()
    ref = elementwise_log_marginal(base.log_ref, base.phi, theta, out.policy.sigma_inv, out.policy.nu, base.beta)
    t_ref = time.perf_counter() - t0
    from oraclerl.explore.truncated_softmax import truncated_log_marginal
    t0 = time.perf_counter()
    ours = truncated_log_marginal(base.log_ref, base.phi, theta[None], out.policy.sigma_inv, out.policy.nu, base.beta)[0]
    t_ours = time.perf_counter() - t0
    err = float((ours.exp() - ref.exp()).abs().max())
    print(f"{'evaluation of one component':36s} {'matrix products':>16s} {'elementwise ref':>16s}")
    print(f"{'':36s} {t_ours:14.2f} s {t_ref:14.2f} s   (max |Δπ̄| = {err:.1e}); all {K} components batched: "
          f"{t_eval:.2f} s vs {t_ref * K:.1f} s for the reference one by one")

    # -- rejection sampling: chunked vs sequential on one exploration batch ---------------------------------
    xs = o.prompts.draw(args.exp_batch * 4, torch.Generator().manual_seed(1))
    ref_s = o.weak.sample(xs, 1, torch.Generator().manual_seed(2))
    phi2 = ref_s.features[:, 0]

    def score(s, rows=None):
        return truncated_score(theta, out.policy.sigma_inv, out.policy.nu, s.features, phi2 if rows is None else phi2[rows])

    print(f"{'SoftmaxSampler, ' + str(xs.numel()) + ' rows':36s} {'time':>10s} {'drawn':>10s} {'python steps':>13s}")
    for chunk in (None, 1):
        g = torch.Generator().manual_seed(3)
        before = o.ledger.t_comp
        t0 = time.perf_counter()
        res = softmax_sampler(weak_draw(o.weak, xs, g), score, base.beta, cfg.M_rej, 1 / args.T_exp, generator=g, chunk=chunk)
        dt = time.perf_counter() - t0
        drawn = o.ledger.t_comp - before
        steps = int((res.draws.max() - math.ceil(4 * cfg.M_rej * math.log(4 * args.T_exp))) // (chunk or math.ceil(cfg.M_rej))) + 1
        label = f"chunk={'ceil(M)=' + str(math.ceil(cfg.M_rej)) if chunk is None else chunk}"
        print(f"{label:36s} {dt:8.3f} s {drawn:10d} {steps:13d}")


if __name__ == "__main__":
    main()
