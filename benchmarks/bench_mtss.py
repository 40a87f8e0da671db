"""Benchmark: one MTSS run (Foster et al. 2025, Alg. 4) on a random realisable token MDP, with exact evaluation.

Default: |A| = 4, H = 8, d = 8 (prefix tree: 4^7·X states at the last layer), T = 32 iterations. Prints the wall
time, token-draw throughput, peak memory and every oracle counter, the exact regret of π̂ (target law and
sampler law) against π_ref's, and the exact soft-Bellman DP against brute-force enumeration of A^H (the
reference the DP replaces). Run single-threaded (as the report runner does):

    .venv/bin/python benchmarks/bench_mtss.py [--A 4 --H 8 --d 8 --T 32 --seed 0 --threads 1]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from oraclerl.explore.mtss import MTSS, MTSSConfig
from oraclerl.models.autoregressive_softmax import sequence_log_probs, sequence_sums
from oraclerl.problems.token_mdp import random_token_mdp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--A", type=int, default=4)
    ap.add_argument("--H", type=int, default=8)
    ap.add_argument("--d", type=int, default=8)
    ap.add_argument("--T", type=int, default=32)
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    inst = random_token_mdp(num_actions=args.A, horizon=args.H, d=args.d, num_prompts=args.prompts, seed=args.seed)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    j_star = inst.J_star()  # soft Bellman DP over prefixes
    t_dp = time.perf_counter() - t0
    brute = None
    if args.A ** args.H <= 2 ** 20:
        t0 = time.perf_counter()
        logits = sequence_log_probs(inst.model) + sequence_sums(inst.model, inst.step_rewards) / inst.beta
        v = inst.beta * torch.logsumexp(logits, -1)
        brute = (float((inst.prompt_weights * v).sum()), time.perf_counter() - t0)

    o = inst.oracles()
    cfg = MTSSConfig(T=args.T, B=inst.B)
    t0 = time.perf_counter()
    res = MTSS(cfg).run(o.auto, o.step_reward, o.prompts, torch.Generator().manual_seed(args.seed))
    t_run = time.perf_counter() - t0
    t0 = time.perf_counter()
    reg = inst.regret(res.policy)
    reg_sampler = inst.regret(res.policy.log_prob_tables(inst.model, law="sampler"))
    t_eval = time.perf_counter() - t0
    led = res.ledger
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"instance: |A|={args.A} H={args.H} d={args.d} X={args.prompts} states={sum(inst.model.num_states)} "
          f"B={inst.B:.3f} β={inst.beta} (built in {t_build:.2f}s); torch threads={torch.get_num_threads()}")
    print(f"MTSS T={cfg.T} N_reg={cfg.N_reg} N_span={cfg.N_span} N̄_span={cfg.N_bar_span} M_rej={cfg.M_rej} "
          f"δ_rej={cfg.delta_rej} ν={cfg.nu} λ={cfg.lam}")
    print(f"  run time            {t_run:8.2f} s   ({led['t_comp_token'] / t_run / 1e6:.2f} M token draws/s)")
    print(f"  exact evaluation    {t_eval:8.3f} s")
    print(f"  peak RSS            {rss:8.0f} MiB")
    print(f"  T_comp (tokens)     {led['t_comp_token']:>12,d}")
    print(f"  anchor features     {led['t_feature']:>12,d}")
    print(f"  reward queries      {led['t_data']:>12,d}")
    print(f"  resets              {led['t_reset']:>12,d}")
    print(f"  transitions         {res.transitions:>12,d}")
    print(f"  T_data (paper)      {res.t_data_paper:>12,d}   (reward + transition + reset)")
    print(f"  prompts             {led['prompts']:>12,d}")
    print(f"  returned j={res.j} (in J_span: {res.j_in_span}); final max_h κ² = {res.uncertainty[-1]:.3f}")
    print(f"regret: π̂ {reg:.4f} (target law), {reg_sampler:.4f} (sampler law)   vs π_ref {inst.regret(inst.model.log_ref):.4f}")
    line = f"reference: J_β(π⋆) by DP {j_star:.6f} in {t_dp * 1e3:.1f} ms"
    if brute is not None:
        line += f"; by enumerating {args.A ** args.H:,d} sequences {brute[0]:.6f} in {brute[1] * 1e3:.1f} ms"
    print(line)


if __name__ == "__main__":
    main()
