"""Benchmark: one SpannerSampling run and its exact evaluation (averaged regret of Thm 3.1 + mixture regret).

Default: d = 16, 64 prompts × 1,024 responses (65,536 responses; issue 4's target < 60 s). At the next scale
(issue 15 item 4: d = 64 over 10^6 responses, 64 prompts × 16,384, exact evaluation, target < 1 min)::

    .venv/bin/python benchmarks/bench_spanner.py --d 64 --responses 16384 --prompts 64 --threads 2

prints the run and the evaluation (wall and CPU time, load average, peak RSS, the evaluation's block plan and
its bounded temporaries) against the floor of the evaluation on this machine (float64 matrix-product flops of
the distance products and the component log-matmuls, at the float64 rate measured by ``benchmarks/_floor.py``
times the threads), and, with ``--f32-prompts N``, how many truncation-mask entries float32 distances would
flip on N prompts. The exact evaluation (every distinct component's truncated-softmax law, O(|Y|²) per prompt
and component) runs in [b, b] blocks of the pair axis within ``--eval-block-bytes``. Below 4,096 responses
(the references hold [Y, Y] temporaries) it is printed side by side with references:

* evaluation: the BLAS matrix-product form of ``truncated_log_marginal`` vs the direct elementwise form
  (log-softmax over y for every y′, a [Y, Y] tensor per prompt and component), timed on one component and
  extrapolated to all components;
* rejection sampling: the chunked SoftmaxSampler (default chunk = ceil(M_rej)) vs the sequential algorithm
  (chunk = 1) on one exploration batch: time and responses drawn (the ledger counts both exactly).

    .venv/bin/python benchmarks/bench_spanner.py [--threads 1 --T-exp 512 --T-prompt 1024]

One torch thread by default (``--threads 2`` lets the BLAS products use both cores): on the shared 2-core
machine two intra-op threads contend with other processes and small tensor operations become many times slower
(measured: the run took 19.5 s with 2 threads vs 1.5 s with 1 under a load average of ~9); the experiment
runner also uses one thread per worker.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import time

import torch

from oraclerl.diagnostics import coverage_coefficient, regret
from oraclerl.explore.spanner_sampling import SpannerSampling, SpannerSamplingConfig
from oraclerl.explore.truncated_softmax import BLOCK_BYTES, _block_plan, truncated_score
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


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load() -> str:
    return "load average " + " / ".join(f"{v:.1f}" for v in os.getloadavg())


def evaluation_flops(X: int, Y: int, d: int, K: int, laws: int, block_bytes: int) -> dict[str, float]:
    """Matrix-product flops of the exact evaluation (``_exact_laws``) per call: the distance products of
    the upper block triangle ((Y² + Y·b)/2 pairs × 2(d + 2), twice when the mask is not stored), pass 1 (K
    + 1 columns over Y² pairs) and pass 2 (2K columns per law)."""
    b, store = _block_plan(Y, block_bytes)
    upper = (Y * Y + Y * b) / 2
    dist = X * upper * 2 * (d + 2) * (1 if store else 2)
    prod = X * Y * Y * 2 * ((K + 1) + 2 * K * laws)
    return {"dist": dist, "products": prod, "block": b, "store": store}


def float32_mask_flips(
    phi: torch.Tensor, sigma_inv: torch.Tensor, nu: float, rows: int = 512
) -> dict[str, float]:
    """Mask entries 1{‖ϕ_y − ϕ_y′‖²_{Σ⁻¹} ≤ ν²} that change when the distance product is computed in
    float32 instead of float64 (same formula, q_y + q_y′ − 2ϕ_yᵀΣ⁻¹ϕ_y′, prompt by prompt in row blocks),
    the pairs within a rigorous float32 error band of ν² (those a float32 path would have to recompute in
    float64), and the pairs kept."""
    flips = band = kept = total = 0
    worst = 0.0
    u = 2.0 ** -24
    for ph in phi:
        pS = ph @ sigma_inv.to(ph)
        q = (pS * ph).sum(-1)
        pS32, ph32 = pS.float(), ph.float()
        # |error| of the float32 dot product ≤ (d + 2)·u·Σ|pS_i||ϕ_i| (rounding of the inputs and the sum)
        scale = (pS.abs().max(0).values * ph.abs().max(0).values).sum()
        tol = float(4 * (ph.shape[1] + 2) * u * scale)
        for r0 in range(0, ph.shape[0], rows):
            d64 = q[r0:r0 + rows, None] + q[None, :] - 2.0 * pS[r0:r0 + rows] @ ph.T
            d32 = q[r0:r0 + rows, None] + q[None, :] - 2.0 * (pS32[r0:r0 + rows] @ ph32.T).double()
            k64, k32 = d64 <= nu * nu, d32 <= nu * nu
            diff = k64 != k32
            flips += int(diff.sum())
            if diff.any():
                worst = max(worst, float((d64[diff] - nu * nu).abs().max()))
            band += int(((d32 - nu * nu).abs() <= tol).sum())
            kept += int(k64.sum())
            total += k64.numel()
    return {"flips": flips, "band": band, "kept": kept, "pairs": total, "worst": worst, "tol": tol}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--responses", type=int, default=1024)
    ap.add_argument("--T-prompt", type=int, default=1024)
    ap.add_argument("--T-exp", type=int, default=512)
    ap.add_argument("--exp-batch", type=int, default=16)
    ap.add_argument("--eval-block-bytes", type=int, default=BLOCK_BYTES,
                    help="memory budget of the exact evaluation's temporaries (bytes)")
    ap.add_argument("--ideal", action="store_true", help="also evaluate the ideal law's averaged regret")
    ap.add_argument(
        "--f32-prompts", type=int, default=0, help="count float32 mask flips on this many prompts"
    )
    ap.add_argument("--no-floor", action="store_true", help="skip measuring the floor rates")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {_load()} (shared), "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; d={args.d}, {args.prompts} "
        f"prompts × {args.responses} responses = {args.prompts * args.responses:,} responses"
    )
    t0 = time.perf_counter()
    inst = linear_softmax(d=args.d, num_prompts=args.prompts, num_responses=args.responses, beta=0.5,
                          target_coverage=16.0, noise=0.5, seed=0)
    c = coverage_coefficient(inst)
    t_build = time.perf_counter() - t0
    cfg = SpannerSamplingConfig(
        coverage_bound=c,
        B=inst.B,
        nu=0.5,
        T_prompt=args.T_prompt,
        T_span=math.ceil(4 * c),
        T_exp=args.T_exp,
        M_rej=4 * c,
        exp_batch=args.exp_batch,
    )
    o = inst.oracles()
    t0, c0 = time.perf_counter(), time.process_time()
    out = SpannerSampling(cfg).run(o.weak, o.reward, o.prompts, torch.Generator().manual_seed(0))
    t_run, c_run = time.perf_counter() - t0, time.process_time() - c0
    K = out.policy.distinct_components()[0].shape[0]
    rss_before = _rss_mib()
    print(f"before the evaluation: {_load()}, peak RSS so far {rss_before:.0f} MiB", flush=True)
    t0, c0 = time.perf_counter(), time.process_time()
    # law="sampler" (what sample() draws), every distinct component
    avg = out.policy.average_regret(inst)
    mix = regret(out.policy, inst)                 # the mixture, from the same (cached) tables
    t_eval, c_eval = time.perf_counter() - t0, time.process_time() - c0
    rss = _rss_mib()
    print(f"instance build: {t_build:.2f} s;  C_cov = {c:.3g}, R_max = {inst.r_max:.3g}, base regret "
          f"{regret(inst.base.log_ref, inst):.4f}")
    print(
        f"SpannerSampling run: {t_run:.2f} s wall, {c_run:.2f} s CPU  (spanner |Ψ| = {out.spanner_size}, "
        f"T_exp = {args.T_exp}, {K} distinct θ)  ledger: {out.ledger}"
    )
    print(
        f"exact evaluation ({K} components, O(|Y|²) each): {t_eval:.2f} s wall, {c_eval:.2f} s CPU;  "
        f"averaged regret {avg:.5f}, mixture regret {mix:.5f}"
    )
    print(
        f"TOTAL run + exact evaluation: {t_run + t_eval:.2f} s wall, {c_run + c_eval:.2f} s CPU (target < 60 "
        f"s);  peak RSS {rss:.0f} MiB (before the evaluation {rss_before:.0f} MiB); {_load()}"
    )
    fl = evaluation_flops(args.prompts, args.responses, args.d, K, 1, args.eval_block_bytes)
    b = fl["block"]
    temp = 24 * b * b + (fl["store"] * (args.responses ** 2 + args.responses * b)) / 2
    print(
        f"evaluation plan: [{b}, {b}] pair blocks, mask {'stored' if fl['store'] else 'recomputed'} between "
        f"the passes, temporaries ≤ {temp / 2**20:.0f} MiB (budget {args.eval_block_bytes / 2**20:.0f} MiB) "
        "+ [Y, K] vectors"
    )
    if not args.no_floor:
        from _floor import describe, rates
        torch.set_num_threads(1)                 # the rates of one core; the floor divides by the threads
        r = rates()
        torch.set_num_threads(args.threads)
        tot = fl["dist"] + fl["products"]
        f64 = tot / (r["flops64"] * args.threads)
        f32 = fl["dist"] / (r["flops32"] * args.threads) + fl["products"] / (r["flops64"] * args.threads)
        print(
            f"floor ({describe(r)}, measured now on one thread, {_load()}): {tot / 1e12:.2f} Tflop float64 "
            f"(distances {fl['dist'] / 1e12:.2f}, component products {fl['products'] / 1e12:.2f}) / "
            f"({args.threads} × {r['flops64'] / 1e9:.1f} GFLOP/s) = {f64:.1f} s; with float32 distances "
            f"{f32:.1f} s;  measured evaluation {t_eval:.1f} s wall / {c_eval:.1f} s CPU = "
            f"{f64 / t_eval:.0%} of the floor (wall)"
        )
    if args.ideal:
        t0, c0 = time.perf_counter(), time.process_time()
        avg_i = out.policy.average_regret(inst, law="ideal")
        print(f"ideal law π̄_θ: averaged regret {avg_i:.5f} in {time.perf_counter() - t0:.2f} s wall, "
              f"{time.process_time() - c0:.2f} s CPU; {_load()}")
    if args.f32_prompts:
        t0 = time.perf_counter()
        st = float32_mask_flips(inst.base.phi[:args.f32_prompts], out.policy.sigma_inv, out.policy.nu)
        print(
            f"float32 distances on {args.f32_prompts} prompts ({st['pairs']:,} pairs, {st['kept']:,} kept): "
            f"{st['flips']} mask flips vs float64 (largest |d64 − ν²| among them {st['worst']:.1e}); "
            f"{st['band']:,} pairs within the float32 error band ±{st['tol']:.1e} of ν² "
            f"({time.perf_counter() - t0:.1f} s)"
        )
    if args.responses > 4096:
        print("references (elementwise [Y, Y] evaluation, sequential sampler) skipped above 4,096 responses")
        return

    # -- evaluation reference: elementwise [Y, Y] log-softmax, one component, extrapolated ------------------
    theta = out.policy.thetas[-1]
    base = inst.base
    t0 = time.perf_counter()
    ref = elementwise_log_marginal(
        base.log_ref, base.phi, theta, out.policy.sigma_inv, out.policy.nu, base.beta
    )
    t_ref = time.perf_counter() - t0
    from oraclerl.explore.truncated_softmax import truncated_log_marginal
    t0 = time.perf_counter()
    ours = truncated_log_marginal(
        base.log_ref, base.phi, theta[None], out.policy.sigma_inv, out.policy.nu, base.beta
    )[0]
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
        return truncated_score(
            theta, out.policy.sigma_inv, out.policy.nu, s.features, phi2 if rows is None else phi2[rows]
        )

    print(
        f"{'SoftmaxSampler, ' + str(xs.numel()) + ' rows':36s} {'time':>10s} {'drawn':>10s} "
        f"{'python steps':>13s}"
    )
    for chunk in (None, 1):
        g = torch.Generator().manual_seed(3)
        before = o.ledger.t_comp
        t0 = time.perf_counter()
        res = softmax_sampler(
            weak_draw(o.weak, xs, g), score, base.beta, cfg.M_rej, 1 / args.T_exp, generator=g, chunk=chunk
        )
        dt = time.perf_counter() - t0
        drawn = o.ledger.t_comp - before
        steps = (
            int(
                (res.draws.max() - math.ceil(4 * cfg.M_rej * math.log(4 * args.T_exp)))
                // (chunk or math.ceil(cfg.M_rej))
            )
            + 1
        )
        label = f"chunk={'ceil(M)=' + str(math.ceil(cfg.M_rej)) if chunk is None else chunk}"
        print(f"{label:36s} {dt:8.3f} s {drawn:10d} {steps:13d}")


if __name__ == "__main__":
    main()
