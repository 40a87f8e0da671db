"""Benchmarks for oraclerl.inference and the memoryless model (issue 3 performance targets).

Run:  .venv/bin/python benchmarks/bench_inference.py [--threads 2] [--repeat 3]

Each case runs in a fresh subprocess so that its peak resident memory (ru_maxrss) can be reported above
the interpreter + torch baseline. Times are the best of ``--repeat`` runs (wall clock).

Targets (issue 3): memoryless |V| = 3 non-lattice, m = 2000, N = e^{400}: per-token reward, KL and
KL(BoN ‖ tilt) in < 1 s; best-of-n law, KL and win rate over 10^6 distinct outcomes in < 1 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CASES = {
    "memoryless_m2000": """
p = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
r = torch.tensor([0.0, 1.0, math.sqrt(2) + 0.3], dtype=torch.float64)   # non-lattice rewards
def work():   # types enumerated, those negligible for BoN_N and the tilt folded (exact to ~1e-20)
    a = memoryless_alignment(p, r, 2000, 0.2)     # N = e^{mδ} = e^{400}
    return dict(levels=a.dist.values.numel(), bon_reward=a.bon_reward, bon_kl=a.bon_kl,
                tilt_reward=a.tilt_reward, kl_bon_tilt=a.kl_bon_tilt)
""",
    "memoryless_m2000_full_law": """
p = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
r = torch.tensor([0.0, 1.0, math.sqrt(2) + 0.3], dtype=torch.float64)
def work():   # reference: the complete law of R (2,003,001 distinct levels), no folding
    d = reward_distribution(p, r, 2000, method="types")
    a = memoryless_alignment(dist=d, delta=0.2)
    return dict(levels=d.values.numel(), bon_reward=a.bon_reward, bon_kl=a.bon_kl, tilt_reward=a.tilt_reward,
                kl_bon_tilt=a.kl_bon_tilt)
""",
    "memoryless_lattice_m2000": """
p = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
r = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)   # lattice rewards: log-space convolution
def work():
    d = reward_distribution(p, r, 2000, method="lattice")
    a = memoryless_alignment(dist=d, delta=0.2)
    return dict(levels=d.values.numel(), bon_reward=a.bon_reward, bon_kl=a.bon_kl, kl_bon_tilt=a.kl_bon_tilt)
""",
    "naive_enumeration_m10": """
p = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
r = torch.tensor([0.0, 1.0, math.sqrt(2) + 0.3], dtype=torch.float64)
import itertools
def work():   # reference: enumerate all 3^m sequences (only feasible for tiny m)
    seqs = torch.tensor(list(itertools.product(range(3), repeat=10)))
    law = best_of_n_law(p[seqs].prod(-1), r[seqs].sum(-1), math.exp(2.0))
    return dict(sequences=seqs.shape[0], bon_kl_per_token=float(law.kl) / 10)
""",
    "bon_law_1e6": """
g = torch.Generator().manual_seed(0)
P = torch.rand(10**6, generator=g, dtype=torch.float64); P /= P.sum()
R = torch.randn(10**6, generator=g, dtype=torch.float64)
def work():
    law = best_of_n_law(P, R, 1000)
    return dict(kl=float(law.kl), win_rate=float(law.win_rate), formula=float(best_of_n_kl_formula(1000)))
""",
    "winrate_uniform_1e4": """
from oraclerl.inference.best_of_n import rewind_and_repeat_summary
L = 10**4            # bon-winrate at --scale paper: uniform reference, every level a rewind threshold
P = torch.full((L,), 1.0 / L, dtype=torch.float64); R = torch.arange(L, dtype=torch.float64)
def work():   # linear memory (issue 12 item 8); the [L, L] law needed ≈ 4.2 GiB here
    s = rewind_and_repeat_summary(P, R, torch.unique(R))
    return dict(thresholds=L, top_kl=float(s.kl[-1]), top_win=float(s.win_rate[-1]))
""",
    "winrate_uniform_1e6": """
from oraclerl.inference.best_of_n import rewind_and_repeat_summary
L = 10**6
P = torch.full((L,), 1.0 / L, dtype=torch.float64); R = torch.arange(L, dtype=torch.float64)
def work():   # 10^6 thresholds × 10^6 outcomes: 8 TB as a law
    s = rewind_and_repeat_summary(P, R, torch.unique(R))
    return dict(thresholds=L, top_kl=float(s.kl[-1]), top_win=float(s.win_rate[-1]))
""",
    "bon_law_1e6_n1e300": """
g = torch.Generator().manual_seed(0)
P = torch.rand(10**6, generator=g, dtype=torch.float64); P /= P.sum()
R = torch.randn(10**6, generator=g, dtype=torch.float64)
def work():
    law = best_of_n_law(P, R, 1e300)
    return dict(kl=float(law.kl), saturation=float(-P[R.argmax()].log()))
""",
    "naive_power_1e6": """
g = torch.Generator().manual_seed(0)
P = torch.rand(10**6, generator=g, dtype=torch.float64); P /= P.sum()
R = torch.randn(10**6, generator=g, dtype=torch.float64)
def work():   # reference: linear-space F^n − F⁻^n (no ties, no log space)
    out = {}
    for n in (1000, 1e12):
        rs, o = torch.sort(R); ps = P[o]; F = torch.cumsum(ps, 0); Fm = F - ps
        b = F ** n - Fm ** n
        out[f"kl_n={n:g}"] = float(torch.where(b > 0, b * (b / ps).log(), 0.0).sum())
        out[f"exact_n={n:g}"] = float(best_of_n_law(P, R, n).kl)
    return out
""",
    "bon_sample_1e6_draws": """
g = torch.Generator().manual_seed(0)
P = torch.rand(10**4, generator=g, dtype=torch.float64); P /= P.sum()
R = torch.randn(10**4, generator=g, dtype=torch.float64)
def work():
    idx = sample_best_of_n(P, R, 1000, 10**6, g)
    return dict(draws=idx.numel(), distinct=int(idx.unique().numel()))
""",
    "naive_sample_candidates": """
g = torch.Generator().manual_seed(0)
P = torch.rand(10**4, generator=g, dtype=torch.float64); P /= P.sum()
R = torch.randn(10**4, generator=g, dtype=torch.float64)
def work():   # reference: draw n = 1000 candidates for each of 10^4 selections
    c = torch.multinomial(P, 1000 * 10**4, replacement=True, generator=g).reshape(10**4, 1000)
    w = c.gather(1, R[c].argmax(1, keepdim=True))
    return dict(draws=w.numel(), candidates=c.numel())
""",
    "tilt_1e6": """
g = torch.Generator().manual_seed(0)
P = torch.rand(10**6, generator=g, dtype=torch.float64); P /= P.sum()
R = torch.randn(10**6, generator=g, dtype=torch.float64)
def work():
    t = tilt(P, R, kl=1.0)
    return dict(kl=float(t.kl), lam=float(t.lam), reward=float(t.reward))
""",
    "sample_based_bon_oracles": """
model = MemorylessModel(torch.tensor([0.6, 0.3, 0.1]), 64)
def work():
    ledger = Ledger()
    weak = WeakSampler(model, ledger, reveal={"log_probs"})
    reward = RewardOracle(AdditiveReward(torch.tensor([0.0, 1.0, 2.0]), 64), ledger)
    out = BestOfN(BestOfNConfig(n=64, num_samples=4)).run(weak, reward, torch.zeros(256, dtype=torch.long),
                                                          torch.Generator().manual_seed(0))
    return dict(selections=256 * 4, **ledger.snapshot(), kl_estimate=float(out.kl_estimate.mean()))
""",
}

PRELUDE = """
import json, math, resource, sys, time
import torch
torch.set_num_threads({threads})
from oraclerl.inference.best_of_n import best_of_n_kl_formula, best_of_n_law, sample_best_of_n
from oraclerl.inference.tilt import tilt
from oraclerl.inference.sample_based import BestOfN, BestOfNConfig
from oraclerl.models.memoryless import (AdditiveReward, MemorylessModel, memoryless_alignment,
                                        reward_distribution)
from oraclerl.oracles import Ledger, RewardOracle, WeakSampler
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

RUNNER = """
best, out = float("inf"), None
for _ in range({repeat}):
    t0 = time.perf_counter(); out = work(); best = min(best, time.perf_counter() - t0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(seconds=best, extra_mib=(peak - base) / 1024, result=out)))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (2 = the whole machine)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    print(f"{'case':28s} {'time [s]':>9s} {'peak +MiB':>10s}  result")
    for name, body in CASES.items():
        if args.only and name not in args.only:
            continue
        code = PRELUDE.format(threads=args.threads) + body + RUNNER.format(repeat=args.repeat)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if proc.returncode:
            print(f"{name:28s} FAILED\n{proc.stderr[-2000:]}")
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        shown = ", ".join(
            f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in res["result"].items()
        )
        print(f"{name:28s} {res['seconds']:9.3f} {res['extra_mib']:10.0f}  {shown}")


if __name__ == "__main__":
    main()
