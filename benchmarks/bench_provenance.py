"""Benchmark: the cost of the oracle provenance check (issue 16 §5) inside a paper-scale policy-gradient step.

One PG step of Figure 1 (Mousavi-Hosseini & Erdogdu 2026: d = k = 32, N = 128, batch 1024, Adagrad 0.1; no
tracking, so the step is at its smallest and the check's share at its largest), ORM and PRM, with the
provenance set of :class:`~oraclerl.oracles.ledger.Provenance` on and bypassed
(``bench_posttrain.no_provenance``: every pair counts as drawn). The two are run interleaved (round-robin,
``--rounds`` rounds of ``--steps`` steps, the median per-step time reported) so that a shared machine's load
hits them alike. A run's per-step times are taken from its ``track`` callback, so the first and last fifth of
a run show whether the check grows with the steps; the keys held after the run give its memory (8 bytes a
key).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_provenance.py [--steps 40] [--rounds 3]

Run it with ``PYTHONPATH=<a copy of an older src>`` to time an older provenance the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_posttrain import PG_B, D, K, N, no_provenance  # noqa: E402

import oraclerl  # noqa: E402
from oraclerl.models.linear_ar import ContextBigramFeatures, LinearARModel  # noqa: E402
from oraclerl.oracles.ledger import Ledger  # noqa: E402
from oraclerl.oracles.rewards import RewardOracle  # noqa: E402
from oraclerl.posttrain.policy_gradient import PGConfig, PolicyGradient, pg_oracles  # noqa: E402
from oraclerl.problems.teacher import TeacherContexts, TeacherReward, teacher_task  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=40, help="PG steps per run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"oraclerl from {os.path.dirname(oraclerl.__file__)}, torch {torch.__version__}, 1 thread, "
          f"load avg {os.getloadavg()}")
    g = torch.Generator().manual_seed(0)
    task = teacher_task(D, K, N, generator=g)
    base = LinearARModel(ContextBigramFeatures(D, K), N)

    def run(kind: str, on: bool, steps: int):
        led = Ledger()
        cont = TeacherContexts(task, led)
        reward = RewardOracle(TeacherReward(cont, kind, "signed"), led)
        cfg = PGConfig(
            steps=steps, batch_size=PG_B, reward=kind, advantage="batch_mean" if kind == "outcome" else "none"
        )
        stamps = []
        with contextlib.nullcontext() if on else no_provenance():
            pol = base.copy()
            PolicyGradient(cfg).run(pol, cont, reward, pg_oracles(pol, cont, reward), g,
                                    track=lambda t, p: stamps.append(time.perf_counter()))
        dt = [b - a for a, b in zip(stamps, stamps[1:])]
        fifth = max(1, len(dt) // 5)
        return (
            statistics.median(dt),
            statistics.median(dt[:fifth]),
            statistics.median(dt[-fifth:]),
            len(led.provenance),
        )

    for kind in ("outcome", "process"):
        run(kind, True, 2)
        run(kind, False, 2)                                                            # warm-up
        res = {True: [], False: []}
        for _ in range(args.rounds):
            for on in (True, False):
                res[on].append(run(kind, on, args.steps))
        on, off = (statistics.median(r[0] for r in res[v]) for v in (True, False))
        first, last = (statistics.median(r[i] for r in res[True]) for i in (1, 2))
        keys = res[True][-1][3]
        print(
            f"{kind[:3].upper()}: provenance on {on * 1e3:.1f} ms/step, bypassed {off * 1e3:.1f} ms/step, "
            f"check {(on - off) * 1e3:+.1f} ms = {(on - off) / off:+.1%} (median of {args.rounds} "
            f"interleaved rounds of {args.steps} steps); on: first fifth {first * 1e3:.1f}, last fifth "
            f"{last * 1e3:.1f} ms/step; {keys} keys held after {args.steps} steps "
            f"({keys / args.steps:.0f}/step, {keys * 8 / 2**20:.2f} MiB)"
        )
    print(f"load avg now {os.getloadavg()}")


if __name__ == "__main__":
    main()
