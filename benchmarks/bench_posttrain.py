"""Benchmark: the policy-gradient step at the paper's Figure-1 scale — new vs today's vs the authors' style vs
the floor.

One PG step of Figure 1 (Mousavi-Hosseini & Erdogdu 2026: d = k = 32, N = 128, batch 1024, Adagrad 0.1, with
the figure's tracking: the 32 centres every step, 1024 test contexts every 50 steps), ORM and PRM, for

* **new**: ``oraclerl.posttrain.policy_gradient`` as it is (with the numba kernels of
  ``oraclerl.models.kernels`` when numba is installed, else their torch definitions);
* **today**: the step before issue 15 (``benchmarks/_today_pg.py``: the old sampler and the kernels' torch
  definitions);
* **authors**: the per-token reference in the authors' style (``oraclerl.posttrain.reference``: logits
  recomputed
  per position, ``torch.multinomial``, autograd);
* **floor**: bytes and flops of the step against this core's measured bandwidth and matmul throughput plus the
  dispatch cost of the unavoidable torch ops (``benchmarks/_floor.py``; derivation in docs/benchmarks.md).

The three implementations are timed interleaved (round-robin, ``--rounds`` rounds of ``--steps`` steps; the
median per-step time is reported, and each round's ratios min-max) so that a shared machine's load hits them
alike; compare the ratios. "Today" builds its oracles inside ``_today_pg.torch_kernels()``, which also puts
back the shared code as it was before issue 15 (see that module). The oracle provenance of issue 16 (one
vectorised key per drawn response, kept in a bounded hash table; its cost is measured by
benchmarks/bench_provenance.py) is bypassed by default so that the step is compared with the references on
equal terms (``--provenance on`` keeps it); its own cost is measured on one line.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_posttrain.py [--steps 20] [--ref-steps 3] [--rounds 5]
    [--full]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _floor import describe, floor, rates  # noqa: E402
from _today_pg import TodayModel, torch_kernels  # noqa: E402

from oraclerl.common.device import resolve_device  # noqa: E402
from oraclerl.common.threads import torch_threads  # noqa: E402
from oraclerl.models import kernels  # noqa: E402
from oraclerl.models.linear_ar import ContextBigramFeatures, LinearARModel  # noqa: E402
from oraclerl.oracles import ledger as ledger_mod  # noqa: E402
from oraclerl.oracles.ledger import Ledger  # noqa: E402
from oraclerl.oracles.rewards import RewardOracle  # noqa: E402
from oraclerl.oracles.samplers import PromptSource  # noqa: E402
from oraclerl.posttrain.policy_gradient import PGConfig, PolicyGradient, pg_oracles  # noqa: E402
from oraclerl.posttrain.pretrain import Pretrain, PretrainConfig  # noqa: E402
from oraclerl.posttrain.reference import reference_policy_gradient  # noqa: E402
from oraclerl.problems.teacher import TeacherContexts, TeacherReward, teacher_task  # noqa: E402

D = K = 32
N = 128
PG_B, PRE_B, PG_STEPS, PRE_STEPS, TEST_EVERY = 1024, 256, 4000, 1000, 50


@contextlib.contextmanager
def no_provenance():
    """Bypass the issue-16 provenance set (every pair counts as drawn) inside the block."""
    P = ledger_mod.Provenance
    add, contains = P.add, P.contains
    P.add = lambda self, *a, **k: None
    P.contains = lambda self, prompts, responses: torch.ones(responses.shape[:2], dtype=torch.bool,
                                                             device=responses.device)
    try:
        yield
    finally:
        P.add, P.contains = add, contains


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def step_floor(r: dict, kind: str) -> float:
    """Floor of one PG step (seconds): see docs/benchmarks.md, "Floors", PG step."""
    T = PG_B * N                                             # sampled tokens
    rows = PG_B * (K + 1) * K                                # transition-table entries
    # bytes: uniforms (4) + tokens written (8) and read by reward and gradient (16) + y* ring (2) and long
    # (8); PRM adds the [B, N] rewards and advantages (float32, written and read: 16)
    bytes_moved = T * (4 + 8 + 16 + 2 + 8 + (16 if kind == "process" else 0))
    # flops: table (mul, add, div per entry), walk (k compares per token), teacher (add + compare per entry),
    # gradient (4 matmuls of B(k+1)k multiply-adds, 3 weighted counts per token)
    flops = 3 * rows + K * T + 2 * rows + 8 * rows + 3 * T
    return floor(r, bytes_moved, flops, ops=20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20, help="PG steps per round for new and today")
    ap.add_argument("--ref-steps", type=int, default=3, help="PG steps per round for the authors' reference")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--provenance", default="bypass", choices=("bypass", "on"),
                    help="issue-16 oracle provenance: bypassed (default) or as in the tree")
    ap.add_argument("--full", action="store_true", help="also run the whole paper-scale pg-figure1 (new)")
    ap.add_argument("--seeds", type=int, default=1, help="with --full: seeds 0..seeds-1, one after the other")
    args = ap.parse_args()
    dev = resolve_device(args.device)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}, "
        f"device {dev}, threads {args.threads or torch.get_num_threads()}, load avg {os.getloadavg()}, "
        f"numba kernels {'on' if kernels.accelerated(torch.zeros(1, device=dev)) else 'off'}"
    )
    prov = no_provenance() if args.provenance == "bypass" else contextlib.nullcontext()
    with torch_threads(args.threads if dev.type == "cpu" else 0):
        r = rates()
        print(f"this core: {describe(r)}")
        g = torch.Generator(device=dev).manual_seed(0)
        task = teacher_task(D, K, N, generator=g, device=dev)
        x_test = task.sample_contexts(1024, g)
        y_test = task.target(x_test)
        xc = task.centres()
        yc = task.target(xc)
        contexts = TeacherContexts(task, Ledger())
        base = LinearARModel(ContextBigramFeatures(D, K), N, device=dev)
        pre = PretrainConfig(steps=args.steps, batch_size=PRE_B)
        Pretrain(PretrainConfig(steps=1, batch_size=PRE_B)).run(base.copy(), contexts, g)
        _sync()
        t0 = time.perf_counter()
        Pretrain(pre).run(base.copy(), contexts, g)
        _sync()
        pre_step = (time.perf_counter() - t0) / args.steps
        # a non-uniform base model
        Pretrain(PretrainConfig(steps=100, batch_size=PRE_B)).run(base, contexts, g)

        def track(t, p):
            p.log_likelihood(xc, yc)
            if t % TEST_EVERY == 0:
                float(p.log_likelihood(x_test, y_test).exp().mean())

        def pg(pol, cont, reward, cfg, g, track):
            return PolicyGradient(cfg).run(pol, cont, reward, pg_oracles(pol, cont, reward), g, track=track)

        def reference_pg(pol, cont, reward, cfg, g, track):
            return reference_policy_gradient(
                pol, cont, reward, PromptSource(cont, reward.ledger), cfg, g, track=track
            )

        impls = {
            "new": (pg, lambda: base.copy(), contextlib.nullcontext, args.steps),
            "today": (pg, lambda: TodayModel(base.feature_map, N, base.w, base.dtype, base.device),
                      torch_kernels, args.steps),
            "authors": (reference_pg, lambda: base.copy(), contextlib.nullcontext, args.ref_steps),
        }

        def run(name, kind, steps):
            fn, make, ctx, _ = impls[name]
            baseline = "batch_mean" if kind == "outcome" else "none"
            cfg = PGConfig(steps=steps, batch_size=PG_B, reward=kind, advantage=baseline)
            with ctx():                  # today's: the oracles are built with the pre-issue-15 shared code
                led = Ledger()
                cont = TeacherContexts(task, led)
                reward = RewardOracle(TeacherReward(cont, kind, "signed"), led)
                _sync()
                w0, c0 = time.perf_counter(), time.process_time()
                pol = make()
                fn(pol, cont, reward, cfg, g, track=track)
                _sync()
                return (time.perf_counter() - w0) / steps, (time.process_time() - c0) / steps

        res = {}
        with prov:
            for kind in ("outcome", "process"):
                for name in impls:
                    run(name, kind, 1)                                                  # warm-up
                times = {name: [] for name in impls}
                for _ in range(args.rounds):
                    for name, (_, _, _, steps) in impls.items():
                        times[name].append(run(name, kind, steps))
                res[kind] = {name: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v))
                             for name, v in times.items()}
                res[kind]["floor"] = (step_floor(r, kind), step_floor(r, kind))
                res[kind]["rounds"] = times
        prov_line = ({kind: run("new", kind, args.steps) for kind in ("outcome", "process")}
                     if args.provenance == "bypass" else None)

    print(f"\nPG step, paper-scale Figure 1 (B = {PG_B}, N = {N}, k = {K}; tracking included), median of "
          f"{args.rounds} interleaved rounds ({args.steps} steps new/today, {args.ref_steps} authors'); "
          f"load avg now {os.getloadavg()}:")
    print(f"{'':10s}{'new':>10s}{'today':>10s}{'authors':>10s}{'floor':>10s}{'today/new':>11s}{'authors/new':>13s}"
          f"{'floor/new':>11s}")
    for kind in ("outcome", "process"):
        for j, what in ((0, "wall"), (1, "CPU")):
            v = {name: res[kind][name][j] for name in ("new", "today", "authors", "floor")}
            print(
                f"{kind[:3].upper() + ' ' + what:10s}"
                + "".join(f"{v[n] * 1e3:8.2f}ms" for n in v)
                + f"{v['today'] / v['new']:10.2f}x{v['authors'] / v['new']:12.1f}x"
                + f"{v['floor'] / v['new']:10.1%}"
            )
    print("per round (each round times new, today and authors' back to back), ratio min-max:")
    for kind in ("outcome", "process"):
        t = res[kind]["rounds"]
        for j, what in ((0, "wall"), (1, "CPU")):
            rt = [b[j] / a[j] for a, b in zip(t["new"], t["today"])]
            ra = [b[j] / a[j] for a, b in zip(t["new"], t["authors"])]
            print(f"  {kind[:3].upper()} {what}: today/new {min(rt):.2f}-{max(rt):.2f}x, authors/new "
                  f"{min(ra):.1f}-{max(ra):.1f}x")
    if prov_line:
        print("with the issue-16 oracle provenance on (new; bypassed above): "
              + ", ".join(f"{k[:3].upper()} {v[0] * 1e3:.1f} ms wall / {v[1] * 1e3:.1f} ms CPU per step"
                          for k, v in prov_line.items()) + f" over {args.steps} steps")
    whole = {n: PRE_STEPS * pre_step + PG_STEPS * (res["outcome"][n][0] + res["process"][n][0])
             for n in ("new", "today", "authors")}
    print(f"EXTRAPOLATED whole paper-scale figure, wall (1000 pre-training + 2 × 4000 PG steps): new "
          f"{whole['new'] / 60:.2f} min, today {whole['today'] / 60:.2f} min, authors' style "
          f"{whole['authors'] / 60:.1f} min")
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if args.full:
        from oraclerl.runtime.run.registry import get_experiment
        from oraclerl.runtime.run.runner import run_one

        exp = get_experiment("pg-figure1")
        cfg = exp.make_config("paper", {"device": args.device, "threads": str(args.threads)})
        total = 0.0
        for seed in range(args.seeds):
            with (no_provenance() if args.provenance == "bypass" else contextlib.nullcontext()):
                w0, c0 = time.perf_counter(), time.process_time()
                out, _ = run_one(exp, cfg, seed)
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            total += wall
            errs = {k: round(v["test_error"][-1], 4) for k, v in out["runs"].items()}
            print(
                f"MEASURED whole paper-scale pg-figure1 (new, seed {seed}, provenance {args.provenance}): "
                f"wall {wall / 60:.2f} min, process CPU {cpu / 60:.2f} min, load avg {os.getloadavg()}, "
                f"final test error {errs}",
                flush=True,
            )
        if args.seeds > 1:
            print(f"MEASURED {args.seeds} seeds one after the other: {total / 60:.2f} min wall")


if __name__ == "__main__":
    main()
