"""Benchmark: one MTSS run (Foster et al. 2025, Alg. 4) on a random realisable token MDP, with exact
evaluation.

Default: |A| = 4, H = 8, d = 8 (prefix tree: 4^7·X states at the last layer), T = 32 iterations, dense tables
(:func:`~oraclerl.problems.token_mdp.random_token_mdp`). ``--horizon 12 --actions 4`` (or any instance whose
dense tables exceed ``--dense-limit`` states) uses the implicit prefix tree of
:func:`~oraclerl.problems.token_mdp.prefix_tree_token_mdp`: per-prefix tables computed on demand, one float64
per prefix stored, the exact DP evaluated level by level in blocks. Prints wall and CPU time, token-draw
throughput, peak memory and every oracle counter, the exact regret of π̂ (target law and sampler law) against
π_ref's, the floor of the run on this core (docs/benchmarks.md, "Floors") and, where A^H is small, the DP
against brute-force enumeration. Run single-threaded (as the report runner does):

    .venv/bin/python benchmarks/bench_mtss.py [--actions 4 --horizon 8 --d 8 --T 32 --seed 0 --threads 1]
    .venv/bin/python benchmarks/bench_mtss.py --horizon 12 --actions 4
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _floor import describe, rates  # noqa: E402

from oraclerl.explore.mtss import MTSS, MTSSConfig  # noqa: E402
from oraclerl.models.autoregressive_softmax import sequence_log_probs, sequence_sums  # noqa: E402
from oraclerl.problems.token_mdp import prefix_tree_token_mdp, random_token_mdp  # noqa: E402

NS_PER_DRAW = 2e-9      # one uniform and ≤ |A| compares per token draw (inverse CDF over 4 actions)
CALLS_PER_ROUND = 20    # torch calls of one SoftmaxSampler round (draw, features, score, accept, store)
# SoftmaxSampler rounds per policy step (Ẑ draws, ≈ 3 candidate chunks, failure branch)
ROUNDS_PER_STEP = 5


def run_floor(r: dict, t_comp: int, H: int, T: int) -> tuple[float, str]:
    """Seconds no implementation on this core can beat for the run's token draws and sequential layers.

    Work: t_comp draws × 2 ns. Sequential dependency: per iteration, FitValue's layers run one after the other
    (layer h rolls out H − 1 − h steps, each needing the previous one) and UncertainStateAction's H steps, so
    T·H(H+1)/2 policy steps in sequence, each ≈ 5 sampler rounds of ≈ 20 torch calls at the measured dispatch
    cost.
    """
    steps = T * H * (H + 1) // 2
    calls = steps * ROUNDS_PER_STEP * CALLS_PER_ROUND
    work = t_comp * NS_PER_DRAW
    return work + calls * r["dispatch"], (
        f"{t_comp:,d} draws × 2 ns = {work:.2f} s + {steps:,d} sequential policy "
        f"steps × {ROUNDS_PER_STEP * CALLS_PER_ROUND} calls × "
        f"{r['dispatch'] * 1e6:.1f} µs = {calls * r['dispatch']:.2f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--actions", "--A", dest="A", type=int, default=4)
    ap.add_argument("--horizon", "--H", dest="H", type=int, default=8)
    ap.add_argument("--d", type=int, default=8)
    ap.add_argument("--T", type=int, default=32)
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--model",
        choices=("auto", "dense", "implicit"),
        default="auto",
        help="dense tables, the implicit prefix tree, or dense up to --dense-limit states (default)",
    )
    ap.add_argument(
        "--dense-limit", type=int, default=10**6, help="total prefixes above which 'auto' is implicit"
    )
    ap.add_argument("--no-floor", action="store_true", help="skip measuring this core's rates (≈ 3 s)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    states = sum(args.prompts * args.A ** h for h in range(args.H))
    implicit = args.model == "implicit" or (args.model == "auto" and states > args.dense_limit)

    c0, t0 = time.process_time(), time.perf_counter()
    if implicit:
        inst = prefix_tree_token_mdp(num_actions=args.A, horizon=args.H, d=args.d, num_prompts=args.prompts,
                                     seed=args.seed)
    else:
        inst = random_token_mdp(
            num_actions=args.A, horizon=args.H, d=args.d, num_prompts=args.prompts, seed=args.seed
        )
    t_build, c_build = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    j_star = inst.J_star()  # soft Bellman DP over prefixes (implicit: the construction's values)
    t_dp = time.perf_counter() - t0
    brute = None
    if args.A ** args.H <= 2 ** 20 and not implicit:
        t0 = time.perf_counter()
        logits = sequence_log_probs(inst.model) + sequence_sums(inst.model, inst.step_rewards) / inst.beta
        v = inst.beta * torch.logsumexp(logits, -1)
        brute = (float((inst.prompt_weights * v).sum()), time.perf_counter() - t0)

    o = inst.oracles()
    cfg = MTSSConfig(T=args.T, B=inst.B)
    c0, t0 = time.process_time(), time.perf_counter()
    res = MTSS(cfg).run(o.auto, o.step_reward, o.prompts, torch.Generator().manual_seed(args.seed))
    t_run, c_run = time.perf_counter() - t0, time.process_time() - c0
    rss_run = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    c0, t0 = time.process_time(), time.perf_counter()
    if implicit:
        j_tgt, j_smp, j_ref = inst.J_many([(res.policy, "target"), (res.policy, "sampler"), "ref"])
        reg, reg_sampler, reg_ref = j_star - j_tgt, j_star - j_smp, j_star - j_ref
    else:
        reg = inst.regret(res.policy.log_prob_tables(inst.model, law="target"))
        reg_sampler = inst.regret(res.policy.log_prob_tables(inst.model, law="sampler"))
        reg_ref = inst.regret(inst.model.log_ref)
    t_eval, c_eval = time.perf_counter() - t0, time.process_time() - c0
    led = res.ledger
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    kind = (
        (
            f"implicit prefix tree (pool {inst.model.pool} rows per layer, "
            f"{inst.meta['prefix_values_bytes'] / 2**20:.0f} MiB of stored prefix values)"
        )
        if implicit
        else "dense tables"
    )
    print(f"instance: |A|={args.A} H={args.H} d={args.d} X={args.prompts} states={states:,d} B={inst.B:.3f} "
          f"β={inst.beta}, {kind} (built in {t_build:.2f} s wall, {c_build:.2f} s CPU); "
          f"torch threads={torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f}")
    print(f"MTSS T={cfg.T} N_reg={cfg.N_reg} N_span={cfg.N_span} N̄_span={cfg.N_bar_span} M_rej={cfg.M_rej} "
          f"δ_rej={cfg.delta_rej} ν={cfg.nu} λ={cfg.lam}")
    print(
        f"  run time            {t_run:8.2f} s wall, {c_run:.2f} s CPU   "
        f"({led['t_comp_token'] / t_run / 1e6:.2f} M "
        f"token draws/s wall, {led['t_comp_token'] / c_run / 1e6:.2f} M per CPU-second)"
    )
    print(f"  exact evaluation    {t_eval:8.3f} s wall, {c_eval:.2f} s CPU (three policies)")
    print(f"  peak RSS            {rss:8.0f} MiB   ({rss_run:.0f} MiB after the run)")
    print(f"  T_comp (tokens)     {led['t_comp_token']:>12,d}")
    print(f"  anchor features     {led['t_feature']:>12,d}")
    print(f"  reward queries      {led['t_data']:>12,d}")
    print(f"  resets              {led['t_reset']:>12,d}")
    print(f"  transitions         {res.transitions:>12,d}")
    print(f"  T_data (paper)      {res.t_data_paper:>12,d}   (reward + transition + reset)")
    print(f"  prompts             {led['prompts']:>12,d}")
    print(f"  returned j={res.j} (in J_span: {res.j_in_span}); final max_h κ² = {res.uncertainty[-1]:.3f}")
    print(f"regret: π̂ {reg:.4f} (target law), {reg_sampler:.4f} (sampler law)   vs π_ref {reg_ref:.4f}")
    line = f"reference: J_β(π⋆) by DP {j_star:.6f} in {t_dp * 1e3:.1f} ms"
    if brute is not None:
        line += f"; by enumerating {args.A ** args.H:,d} sequences {brute[0]:.6f} in {brute[1] * 1e3:.1f} ms"
    print(line)
    if not args.no_floor:
        r = rates()
        fl, how = run_floor(r, led["t_comp_token"], args.H, args.T)
        print(f"floor: {fl:.2f} s ({how}); rates: {describe(r)}")
        print(f"  floor / run time = {100 * fl / c_run:.1f}% (CPU time), {100 * fl / t_run:.1f}% (wall)")


if __name__ == "__main__":
    main()
