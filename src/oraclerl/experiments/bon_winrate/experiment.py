"""Win rate vs KL: best-of-n, rewind-and-repeat and the optimal tilted curve (Beirami et al. 2025 §§5–7).

For a reference p and reward r, the win rate of π against p (ties count ½) is E_π c with the calibrated
reward c(y) = P_p(r < r(y)) + ½P_p(r = r(y)). It is linear in π, so the best win rate at a KL budget Δ
is attained by the tilt of c: the optimal curve is the exact KL–reward frontier of (p, c). We compare it
with exact best-of-n (n on a grid), with rewind-and-repeat (resample until r ≥ τ, τ over the reward
levels; our reading of §6), with the continuous-limit curves W(λ) = 1/(1−e^{−λ}) − 1/λ and BoN's
(log n − (n−1)/n, n/(n+1)), and check the exact BoN win rates by Monte Carlo through the oracles (the
only seed-dependent part).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...common.config import param
from ...inference.best_of_n import best_of_n_law, calibrated_reward, rewind_and_repeat_summary
from ...inference.sample_based import BestOfN, BestOfNConfig
from ...inference.tilt import kl_reward_frontier
from ...models.memoryless import AdditiveReward, MemorylessModel
from ...oracles import Ledger, RewardOracle, WeakSampler


@dataclass
class BonWinRateConfig:
    uniform_L: int = param(
        1000, "support size of the uniform reference (distinct rewards)", low=2, high=10**6
    )
    staircase: list[float] = param(
        [0.5, 0.25, 0.2, 0.0499, 1e-4], "staircase masses, increasing reward", low=0.0, low_open=True
    )
    n_max: float = param(1e4, "largest n on the log grid", low=1.0, high=1000000000000.0)
    num_n: int = param(30, "number of n values", low=2, high=10 ** 4)
    frontier_points: int = param(60, "points on the optimal tilted curve", low=2, high=10 ** 4)
    mc_n: list[int] = param(
        [2, 8, 32], "n values checked by Monte Carlo through the oracles", low=1, high=2**12
    )
    mc_selections: int = param(4000, "BoN selections per Monte Carlo check", low=10, high=10 ** 6)


def uniform_reference(L: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The uniform reference over L outcomes with distinct rewards 0, …, L − 1 (float64)."""
    return torch.full((L,), 1.0 / L, dtype=torch.float64), torch.arange(L, dtype=torch.float64)


def _instance_curves(name, p, r, cfg):
    ns = np.unique(np.round(np.geomspace(1, cfg.n_max, cfg.num_n)))
    bon = best_of_n_law(p, r, torch.tensor(ns, dtype=torch.float64))
    levels = torch.unique(r)
    rr = rewind_and_repeat_summary(p, r, levels)               # linear in L (issue 12 item 8)
    c = calibrated_reward(p, r)
    front = kl_reward_frontier(p, c, num=cfg.frontier_points)
    at_bon = kl_reward_frontier(p, c, kl=bon.kl)  # the optimal win rate at exactly BoN's KL
    return {"instance": name, "n": ns.tolist(), "bon_kl": bon.kl.tolist(), "bon_win": bon.win_rate.tolist(),
            "rr_kl": rr.kl.tolist(), "rr_win": rr.win_rate.tolist(),
            "opt_kl": front.kl.tolist(), "opt_win": front.reward.tolist(),
            "opt_at_bon": at_bon.reward.tolist(), "sum_p2": float((p ** 2).sum())}


def run(cfg: BonWinRateConfig, ctx) -> dict:
    L = cfg.uniform_L
    pu, ru = uniform_reference(L)
    w = torch.tensor(cfg.staircase, dtype=torch.float64)
    curves = [_instance_curves(f"uniform L={L}", pu, ru, cfg),
              _instance_curves("staircase", w / w.sum(), torch.arange(w.numel(), dtype=torch.float64), cfg)]
    ctx.progress(0.5, "exact curves")
    mc = []
    for n in cfg.mc_n:
        ledger = Ledger()
        weak = WeakSampler(MemorylessModel(pu, 1), ledger)
        reward = RewardOracle(AdditiveReward(ru, 1), ledger)
        gen = ctx.generator(f"mc/{n}")
        prompts = torch.zeros(cfg.mc_selections, dtype=torch.long)
        out = BestOfN(BestOfNConfig(n=n)).run(weak, reward, prompts, gen)
        ref = reward.outcome(prompts, weak.sample(prompts, 1, gen).responses, gen)  # z ~ p, one per selection
        wins = (out.rewards > ref).double() + 0.5 * (out.rewards == ref).double()
        mc.append({"n": n, "win": float(wins.mean()), "se": float(wins.std() / math.sqrt(wins.numel())),
                   "exact": float(best_of_n_law(pu, ru, n).win_rate), "ledger": ledger.snapshot()})
        ctx.log(len(mc), **{"oracle/t_comp": ledger.t_comp, "oracle/t_data": ledger.t_data})
    ctx.progress(1.0, "Monte Carlo")
    return {"curves": curves, "mc": mc}


SCALES = {
    "toy": {"uniform_L": 50, "num_n": 6, "n_max": 100.0, "frontier_points": 8, "mc_n": [2, 4],
            "mc_selections": 200},
    "quick": {},
    "paper": {"uniform_L": 10000, "n_max": 1e5, "num_n": 60, "mc_selections": 40000},
}
