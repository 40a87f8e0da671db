"""KL divergence of best-of-n: exact vs the formula log n − (n−1)/n vs the Beirami et al. estimator.

Uniform references over L outcomes with distinct rewards and a "staircase" reference (a rare top outcome
above a few heavy atoms; Beirami et al. 2025 §4 experiments). For each n we compute the exact KL of the
best-of-n law, the classical formula, the exact expectation E_{π⁽ⁿ⁾} D̂_n(p(y)) of the estimator, and a
Monte Carlo estimate averaging D̂_n over M exactly sampled winners (what a user would compute from
π_ref(y|x) of the selected responses). One configuration is also run end to end through the oracles
(WeakSampler revealing log π_ref + RewardOracle). Only the Monte Carlo parts depend on the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...common.config import param
from ...inference.best_of_n import (
    best_of_n_expected_estimate,
    best_of_n_kl_estimate,
    best_of_n_kl_formula,
    best_of_n_law,
    sample_best_of_n,
)
from ...inference.sample_based import BestOfN, BestOfNConfig
from ...models.memoryless import AdditiveReward, MemorylessModel
from ...oracles import Ledger, RewardOracle, WeakSampler


@dataclass
class BonKLConfig:
    sizes: list[int] = param(
        [10, 100, 1000, 10000], "support sizes L of the uniform references", low=2, high=10**6
    )
    staircase: list[float] = param(
        [0.5, 0.25, 0.2, 0.0499, 1e-4],
        "staircase masses, increasing reward (top = last)",
        low=0.0,
        low_open=True,
    )
    n_max: float = param(1e5, "largest n (grid is log-spaced from 1)", low=1.0, high=1000000000000.0)
    num_n: int = param(25, "number of n values on the grid", low=2, high=10 ** 4)
    winners: int = param(64, "M: sampled winners averaged by the Monte Carlo estimator", low=1, high=10 ** 5)
    oracle_L: int = param(
        100, "support size of the end-to-end oracle run (Zipf reference)", low=2, high=10**5
    )
    oracle_n: int = param(16, "n of the end-to-end oracle run", low=1, high=2 ** 12)
    oracle_prompts: int = param(
        200, "independent BoN selections in the oracle run (one prompt id, repeated)", low=2, high=10**5
    )


def _instances(cfg):
    out = []
    for L in cfg.sizes:
        out.append(
            (
                f"uniform L={L}",
                torch.full((L,), 1.0 / L, dtype=torch.float64),
                torch.arange(L, dtype=torch.float64),
            )
        )
    w = torch.tensor(cfg.staircase, dtype=torch.float64)
    out.append(("staircase", w / w.sum(), torch.arange(w.numel(), dtype=torch.float64)))
    return out


def run(cfg: BonKLConfig, ctx) -> dict:
    ns = np.unique(np.round(np.geomspace(1, cfg.n_max, cfg.num_n))).tolist()
    nt = torch.tensor(ns, dtype=torch.float64)
    rows = []
    insts = _instances(cfg)
    for k, (name, p, r) in enumerate(insts):
        law = best_of_n_law(p, r, nt)
        exp_est = best_of_n_expected_estimate(p, r, nt)
        gen = ctx.generator(f"winners/{name}")
        idx = sample_best_of_n(p, r, nt[:, None], cfg.winners, gen)  # [K, M] exact winners
        mc = best_of_n_kl_estimate(p[idx].clamp_max(1.0), nt[:, None]).mean(-1)
        top = float(p[r == r.max()].sum())
        for i, n in enumerate(ns):
            rows.append(
                {
                    "instance": name,
                    "n": n,
                    "kl": float(law.kl[i]),
                    "formula": float(best_of_n_kl_formula(n)),
                    "estimate_exact": float(exp_est[i]),
                    "estimate_mc": float(mc[i]),
                    "saturation": -math.log(top),
                    "n_eps": n * top,
                    "sum_p2": float((p**2).sum()),
                }
            )
        ctx.progress((k + 1) / (len(insts) + 1), name)
    # end to end through the oracles: WeakSampler (reveals log π_ref) + RewardOracle
    # Zipf reference p_i ∝ 1/(i+1) with the reward increasing in i (rare responses are the best), so the
    # selected responses' π_ref(y|x) vary and the estimator has sampling noise
    L = cfg.oracle_L
    pz = 1.0 / torch.arange(1, L + 1, dtype=torch.float64)
    pz = pz / pz.sum()
    rz = torch.arange(L, dtype=torch.float64)
    ledger = Ledger()
    weak = WeakSampler(MemorylessModel(pz, 1), ledger, reveal={"log_probs"})
    reward = RewardOracle(AdditiveReward(rz, 1), ledger)
    out = BestOfN(BestOfNConfig(n=cfg.oracle_n)).run(
        weak, reward, torch.zeros(cfg.oracle_prompts, dtype=torch.long), ctx.generator("oracle")
    )
    oracle = {"estimate": float(out.kl_estimate.mean()), "estimate_sd": float(out.kl_estimate.std()),
              "exact_kl": float(best_of_n_law(pz, rz, cfg.oracle_n).kl),
              "exact_estimate": float(best_of_n_expected_estimate(pz, rz, cfg.oracle_n)),
              "ledger": out.ledger, "prompts": cfg.oracle_prompts}
    ctx.log(1, **{"oracle/t_comp": out.ledger["t_comp"], "oracle/t_data": out.ledger["t_data"]})
    ctx.progress(1.0, "oracle run")
    return {"rows": rows, "oracle": oracle}


SCALES = {
    "toy": {
        "sizes": [10, 100],
        "num_n": 6,
        "n_max": 1000.0,
        "winners": 8,
        "oracle_L": 20,
        "oracle_prompts": 50,
    },
    "quick": {},
    "paper": {"n_max": 1e6, "num_n": 61, "winners": 256, "oracle_prompts": 2000},
}
