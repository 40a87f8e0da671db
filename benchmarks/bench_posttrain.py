"""Benchmark: fast PG (table sampling, closed-form gradients) vs the per-token reference (authors' style).

Measures, at the paper's Figure-1 scale (d = k = 32, N = 128, PG batch 1024, pre-training batch 256):
time per pre-training step and per PG step (ORM and PRM, with the figure's tracking: 32 centres every step,
1024 test contexts every 50 steps) for both implementations over a short run, and extrapolates to the whole
figure (1000 pre-training steps + 2 × 4000 PG steps). ``--full`` also runs the whole paper-scale
``pg-figure1`` with the fast implementation and reports its wall time.

    .venv/bin/python benchmarks/bench_posttrain.py [--steps 20] [--ref-steps 3] [--device auto] [--full]

Timings on a shared CPU are noisy: the script prints wall and process-CPU time; compare ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import torch

from oraclerl.models.linear_ar import ContextBigramFeatures, LinearARModel
from oraclerl.oracles.ledger import Ledger
from oraclerl.oracles.rewards import RewardOracle
from oraclerl.posttrain.policy_gradient import PGConfig, policy_gradient
from oraclerl.posttrain.pretrain import PretrainConfig, pretrain
from oraclerl.posttrain.reference import reference_policy_gradient, reference_pretrain
from oraclerl.posttrain.runtime import cpu_threads, resolve_device
from oraclerl.problems.teacher import TeacherContexts, TeacherReward, teacher_task

D = K = 32
N = 128
PG_B, PRE_B, PG_STEPS, PRE_STEPS, TEST_EVERY = 1024, 256, 4000, 1000, 50


def _timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20, help="PG steps timed for the fast implementation")
    ap.add_argument("--ref-steps", type=int, default=3, help="PG steps timed for the reference")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--full", action="store_true", help="also run the whole paper-scale pg-figure1 (fast)")
    args = ap.parse_args()
    dev = resolve_device(args.device)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"device {dev}, threads {args.threads or torch.get_num_threads()}, load avg {os.getloadavg()}")
    with cpu_threads(args.threads if dev.type == "cpu" else 0):
        g = torch.Generator(device=dev).manual_seed(0)
        task = teacher_task(D, K, N, generator=g, device=dev)
        x_test = task.sample_contexts(1024, g)
        y_test = task.target(x_test)
        xc = task.centres()
        yc = task.target(xc)
        contexts = TeacherContexts(task, Ledger())
        base = LinearARModel(ContextBigramFeatures(D, K), N, device=dev)

        rows = {}
        for impl, fn, steps in (("fast", pretrain, args.steps), ("ref", reference_pretrain, args.ref_steps)):
            fn(base.copy(), contexts, PretrainConfig(steps=1, batch_size=PRE_B), g)            # warm-up
            wall, cpu = _timed(lambda fn=fn, steps=steps: fn(base.copy(), contexts,
                                                             PretrainConfig(steps=steps, batch_size=PRE_B), g))
            rows[f"pretrain/{impl}"], rows[f"pretrain/{impl}/cpu"] = wall / steps, cpu / steps
        # a base model that is not uniform, so that samples look like the figure's
        pretrain(base, contexts, PretrainConfig(steps=100, batch_size=PRE_B), g)

        def track(t, p):
            p.log_likelihood(xc, yc)
            if t % TEST_EVERY == 0:
                float(p.log_likelihood(x_test, y_test).exp().mean())

        test_eval = _timed(lambda: float(base.log_likelihood(x_test, y_test).exp().mean()))[0]
        for kind, baseline in (("outcome", "batch_mean"), ("process", "none")):
            for impl, fn, steps in (("fast", policy_gradient, args.steps), ("ref", reference_policy_gradient, args.ref_steps)):
                cfg = PGConfig(steps=steps, batch_size=PG_B, reward=kind, baseline=baseline)
                reward = RewardOracle(TeacherReward(contexts, kind, "signed"), Ledger())
                fn(base.copy(), contexts, reward, PGConfig(steps=1, batch_size=PG_B, reward=kind, baseline=baseline), g)
                wall, cpu = _timed(lambda fn=fn, cfg=cfg, reward=reward: fn(base.copy(), contexts, reward, cfg, g,
                                                                             track=lambda t, p: track(t, p)))
                rows[f"pg/{kind}/{impl}"] = wall / steps
                rows[f"pg/{kind}/{impl}/cpu"] = cpu / steps

    print(f"\nper-step times (averaged over {args.steps} fast / {args.ref_steps} reference steps; tracking "
          f"included; one test evaluation = {test_eval * 1e3:.1f} ms wall):")
    print(f"{'':16s}{'ref wall':>11s}{'fast wall':>11s}{'ratio':>8s}{'ref CPU':>11s}{'fast CPU':>11s}{'ratio':>8s}")
    for key in ("pretrain", "pg/outcome", "pg/process"):
        rw, fw, rc, fc = (rows[f"{key}/ref"], rows[f"{key}/fast"], rows[f"{key}/ref/cpu"], rows[f"{key}/fast/cpu"])
        print(f"{key:16s}{rw * 1e3:9.1f}ms{fw * 1e3:9.1f}ms{rw / fw:7.1f}x{rc * 1e3:9.1f}ms{fc * 1e3:9.1f}ms{rc / fc:7.1f}x")
    for what, suf in (("wall", ""), ("process CPU", "/cpu")):
        whole = {impl: PRE_STEPS * rows[f"pretrain/{impl}{suf}"] + PG_STEPS * (rows[f"pg/outcome/{impl}{suf}"]
                                                                             + rows[f"pg/process/{impl}{suf}"])
                 for impl in ("ref", "fast")}
        print(f"EXTRAPOLATED whole paper-scale figure ({what}; 1000 pre-training + 2 × 4000 PG steps, tracking "
              f"included): reference {whole['ref'] / 60:.1f} min, fast {whole['fast'] / 60:.2f} min, "
              f"ratio {whole['ref'] / whole['fast']:.0f}x")
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if args.full:
        from oraclerl.runtime.registry import get_experiment
        from oraclerl.runtime.runner import run_one

        exp = get_experiment("pg-figure1")
        cfg = exp.make_config("paper", {"device": args.device, "threads": str(args.threads)})
        wall, cpu = _timed(lambda: run_one(exp, cfg, 0))
        print(f"MEASURED whole paper-scale pg-figure1 (fast, seed 0): wall {wall / 60:.2f} min, process CPU {cpu / 60:.2f} min")


if __name__ == "__main__":
    main()
