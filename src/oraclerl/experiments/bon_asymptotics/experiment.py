"""Best-of-N with N = e^{mδ} vs the KL-constrained optimum on a memoryless model (Yang et al. 2024).

Tokens i.i.d. from p over a small vocabulary, additive reward, sequence length m. For each m we sweep the
per-token budget δ and compute exactly (on the law of the total reward, log space) the per-token reward
and KL of best-of-N with N = e^{mδ} and of the factorised tilt φ_Δ (Δ = mδ); the tilt's per-token curve
is the m-independent optimal frontier. At a fixed δ we track (1/m)·KL(BoN ‖ φ_Δ) as m grows, and check
the LDP of the reward under φ_Δ: −(1/m) log P((1/m)R ≥ x) → I_λ(x). Monte Carlo checks (the only
seed-dependent part): exact BoN winner sequences drawn by backward sampling, and sample-based BoN through
the oracles on the same memoryless model. The axes are ours: the paper's figure was not accessible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...common.config import param
from ...diagnostics.large_deviations import rate_function, scgf, scgf_renyi
from ...inference.sample_based import BestOfN, BestOfNConfig
from ...inference.tilt import kl_reward_frontier, tilt
from ...models.memoryless import (
    AdditiveReward,
    MemorylessModel,
    memoryless_alignment,
    reward_distribution,
    sample_bon_sequences,
)
from ...oracles import Ledger, RewardOracle, WeakSampler


@dataclass
class BonAsymptoticsConfig:
    p: list[float] = param([0.6, 0.3, 0.1], "token law p over the vocabulary", low=0.0)
    r: list[float] = param([0.0, 1.0, 2.0], "token rewards r(v)")
    lengths: list[int] = param(
        [1, 10, 100, 1000], "sequence lengths m for the per-token curves", low=1, high=10**5
    )
    num_delta: int = param(10, "per-token KL budgets δ on (0, 0.95·δ_max]", low=2, high=10 ** 4)
    delta: float = param(0.2, "fixed δ for KL(BoN ‖ tilt) vs m and the LDP check", low=0.0, low_open=True)
    kl_lengths: list[int] = param(
        [1, 3, 10, 30, 100, 300, 1000], "m values for KL(BoN ‖ tilt)", low=1, high=10**5
    )
    ldp_x: float = param(1.4, "threshold x (> tilted mean) for the LDP tail −(1/m) log P(R/m ≥ x)")
    ldp_lengths: list[int] = param([10, 30, 100, 300, 1000], "m values for the LDP check", low=1, high=10**5)
    mc_length: int = param(100, "m of the exact backward-sampling Monte Carlo check", low=1, high=10 ** 4)
    mc_samples: int = param(4000, "exact BoN winner sequences drawn", low=10, high=10 ** 6)
    oracle_length: int = param(10, "m of the sample-based BoN check through the oracles", low=1, high=10 ** 3)
    oracle_selections: int = param(
        2000, "sample-based BoN selections (N = round(e^{mδ}))", low=10, high=10**6
    )

    def check(self):
        from ...common.validation import check_probabilities

        check_probabilities("p", torch.tensor(self.p, dtype=torch.float64))
        if len(self.r) != len(self.p):
            from ...errors import ConfigError

            raise ConfigError("r", f"must have one reward per token ({len(self.p)}), got {len(self.r)}")


def run(cfg: BonAsymptoticsConfig, ctx) -> dict:
    p, r = torch.tensor(cfg.p, dtype=torch.float64), torch.tensor(cfg.r, dtype=torch.float64)
    dmax = -math.log(float(p[r == r.max()].sum()))
    deltas = np.linspace(0.95 * dmax / cfg.num_delta, 0.95 * dmax, cfg.num_delta).tolist()
    front = kl_reward_frontier(p, r, num=200)
    dists = {}

    def dist(m):
        if m not in dists:
            dists[m] = reward_distribution(p, r, m)
        return dists[m]

    curves = []
    for m in cfg.lengths:
        d = dist(m)
        for dl in deltas:
            a = memoryless_alignment(dist=d, delta=dl)
            curves.append({"m": m, "delta": dl, "bon_reward": a.bon_reward, "bon_kl": a.bon_kl,
                           "tilt_reward": a.tilt_reward, "tilt_kl": a.tilt_kl,
                           "frontier_at_bon_kl": float(tilt(p, r, kl=a.bon_kl).reward),
                           "kl_bon_tilt_per_token": a.kl_bon_tilt / m})
        ctx.progress(len(curves) / (len(cfg.lengths) * len(deltas)) * 0.5, f"m={m}")
    kl_vs_m = []
    for m in cfg.kl_lengths:
        a = memoryless_alignment(dist=dist(m), delta=cfg.delta)
        kl_vs_m.append({"m": m, "kl_bon_tilt": a.kl_bon_tilt, "per_token": a.kl_bon_tilt / m,
                        "reward_gap": a.tilt_reward - a.bon_reward})
    lam = float(tilt(p, r, kl=cfg.delta).lam)
    rate = float(rate_function(p, r, lam, cfg.ldp_x))
    ldp = []
    for m in cfg.ldp_lengths:
        d = dist(m)
        z = d.log_probs + lam * d.values
        lp = z - torch.logsumexp(z, 0)
        tail = float(torch.logsumexp(lp[d.values >= m * cfg.ldp_x - 1e-9 * m], 0))
        ldp.append({"m": m, "tail_rate": -tail / m, "rate": rate})
    t = torch.linspace(-3, 3, 61, dtype=torch.float64)
    renyi_err = float((scgf(p, r, lam, t) - scgf_renyi(p, r, lam, t)).abs().max())
    ctx.progress(0.8, "exact parts")
    # Monte Carlo 1: exact BoN winner sequences (backward sampling), N = e^{mδ}
    m = cfg.mc_length
    a = memoryless_alignment(dist=dist(m), delta=cfg.delta)
    seqs = sample_bon_sequences(dist(m), cfg.mc_samples, ctx.generator("bon-sequences"), log_n=m * cfg.delta)
    rew = r[seqs].sum(-1) / m
    mc_exact = {
        "mean": float(rew.mean()),
        "se": float(rew.std() / math.sqrt(rew.numel())),
        "exact": a.bon_reward,
    }
    # Monte Carlo 2: sample-based BoN through the oracles, N = round(e^{mδ})
    m = cfg.oracle_length
    n = max(1, round(math.exp(m * cfg.delta)))
    ledger = Ledger()
    weak = WeakSampler(MemorylessModel(p, m), ledger)
    reward = RewardOracle(AdditiveReward(r, m), ledger)
    out = BestOfN(BestOfNConfig(n=n)).run(weak, reward, torch.zeros(cfg.oracle_selections, dtype=torch.long),
                                          ctx.generator("oracle"))
    x = out.rewards[:, 0].double() / m
    exact = memoryless_alignment(dist=dist(m), delta=cfg.delta, log_n=math.log(n)).bon_reward
    mc_oracle = {"n": n, "mean": float(x.mean()), "se": float(x.std() / math.sqrt(x.numel())), "exact": exact,
                 "ledger": out.ledger}
    ctx.log(1, **{"oracle/t_comp": out.ledger["t_comp"], "oracle/t_data": out.ledger["t_data"]})
    return {"curves": curves, "frontier": {"kl": front.kl.tolist(), "reward": front.reward.tolist()},
            "kl_vs_m": kl_vs_m, "ldp": ldp, "renyi_err": renyi_err, "lam": lam, "mc_exact": mc_exact,
            "mc_oracle": mc_oracle, "delta_max": dmax}


SCALES = {
    # the convergence claims are read at m = 1000 (their thresholds: gap and (1/m)·KL below 0.01 there)
    "toy": {"lengths": [1, 100, 1000], "num_delta": 3, "kl_lengths": [1, 100, 1000],
            "ldp_lengths": [10, 100, 1000], "mc_length": 10, "mc_samples": 200, "oracle_length": 3,
            "oracle_selections": 200},
    "quick": {},
    "paper": {"lengths": [1, 10, 100, 1000, 2000], "num_delta": 25,
              "kl_lengths": [1, 3, 10, 30, 100, 300, 1000, 2000, 4000],
              "ldp_lengths": [10, 30, 100, 300, 1000, 2000, 4000], "mc_samples": 40000,
              "oracle_selections": 20000},
}
