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

from ..common.config import param
from ..inference.best_of_n import best_of_n_law, calibrated_reward, rewind_and_repeat_summary
from ..inference.sample_based import BestOfNConfig, best_of_n
from ..inference.tilt import kl_reward_frontier
from ..models.memoryless import AdditiveReward, MemorylessModel
from ..oracles import Ledger, RewardOracle, WeakSampler
from ..runtime.reporting.figures import pyplot, save_figure
from ..runtime.run.registry import EMPIRICAL, IDENTITY, Claim, Experiment, register


@dataclass
class BonWinRateConfig:
    uniform_L: int = param(1000, "support size of the uniform reference (distinct rewards)", low=2, high=10 ** 6)
    staircase: list[float] = param([0.5, 0.25, 0.2, 0.0499, 1e-4], "staircase masses, increasing reward", low=0.0,
                                   low_open=True)
    n_max: float = param(1e4, "largest n on the log grid", low=1.0, high=1000000000000.0)
    num_n: int = param(30, "number of n values", low=2, high=10 ** 4)
    frontier_points: int = param(60, "points on the optimal tilted curve", low=2, high=10 ** 4)
    mc_n: list[int] = param([2, 8, 32], "n values checked by Monte Carlo through the oracles", low=1, high=2 ** 12)
    mc_selections: int = param(4000, "BoN selections per Monte Carlo check", low=10, high=10 ** 6)


def _interp(x, xs, ys):
    order = np.argsort(xs)
    return np.interp(x, np.asarray(xs)[order], np.asarray(ys)[order], left=np.nan, right=np.nan)


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
    pu, ru = torch.full((L,), 1.0 / L, dtype=torch.float64), torch.arange(L, dtype=torch.float64)
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
        out = best_of_n(weak, reward, prompts, BestOfNConfig(n=n), gen)
        ref = reward.outcome(prompts, weak.sample(prompts, 1, gen).responses, gen)  # z ~ p, one per selection
        wins = (out.rewards > ref).double() + 0.5 * (out.rewards == ref).double()
        mc.append({"n": n, "win": float(wins.mean()), "se": float(wins.std() / math.sqrt(wins.numel())),
                   "exact": float(best_of_n_law(pu, ru, n).win_rate), "ledger": ledger.snapshot()})
        ctx.log(len(mc), **{"oracle/t_comp": ledger.t_comp, "oracle/t_data": ledger.t_data})
    ctx.progress(1.0, "Monte Carlo")
    return {"curves": curves, "mc": mc}


def claims(results: list[dict], cfg: BonWinRateConfig) -> list[Claim]:
    curves = results[0]["curves"]
    excess = max(w - n / (n + 1) for c in curves for n, w in zip(c["n"], c["bon_win"]))
    gap54 = max((n / (n + 1) - w) / max((n - 1) / 2 * c["sum_p2"], 1e-300)
                for c in curves for n, w in zip(c["n"], c["bon_win"]) if n > 1)
    above_rr, below_opt = [], []
    for c in curves:
        rr = _interp(c["bon_kl"], c["rr_kl"], c["rr_win"])
        above_rr += [b - x for b, x in zip(c["bon_win"], rr) if not math.isnan(x)]
        below_opt += [x - b for b, x in zip(c["bon_win"], c["opt_at_bon"])]
    z = [abs(m["win"] - m["exact"]) / max(m["se"], 1e-12) for res in results for m in res["mc"]]
    uni = curves[0]
    gap_uni = max(x - b for b, x in zip(uni["bon_win"], uni["opt_at_bon"]))
    return [
        Claim("Best-of-n win rate ≤ n/(n+1)", "Beirami et al. 2025, Thm 5.3",
              f"max(W_n − n/(n+1)) = {excess:.2e}", excess <= 1e-12, "exact, ties count ½", kind=IDENTITY),
        Claim("n/(n+1) − W_n ≤ ((n−1)/2)·Σp²", "Beirami et al. 2025, Thm 5.4 (constant from secondary sources)",
              f"max ratio = {gap54:.3g}", gap54 <= 1 + 1e-9, "", kind=IDENTITY),
        Claim("At matched KL, best-of-n has a higher win rate than rewind-and-repeat",
              "Beirami et al. 2025, §§6–7", f"min(W_BoN − W_R&R) = {min(above_rr):.3g} over {len(above_rr)} points",
              min(above_rr) >= -1e-9, "R&R interpolated linearly between its threshold points; our reading of §6", kind=EMPIRICAL),
        Claim("Best-of-n is nearly win-rate–KL optimal (within 0.02 of the tilted-calibrated-reward curve)",
              "Beirami et al. 2025 §7 / Gui et al. 2024 (BoNBoN)",
              f"uniform L={cfg.uniform_L}: max gap {gap_uni:.4f}; over all instances: max gap {max(below_opt):.4f}",
              gap_uni <= 0.02 and min(below_opt) >= -1e-6,
              "the optimal curve dominates everywhere (a check of the tilt); the 0.02 verdict uses the near-continuous "
              "uniform reference — on the staircase, discreteness lets the tilt randomise within atoms", kind=EMPIRICAL),
        Claim("Monte Carlo win rates of sample-based BoN through the oracles match the exact law",
              "this library", f"max |z| = {max(z):.2f} over {len(z)} (seed, n) checks", max(z) <= 4.0,
              f"{cfg.mc_selections} selections each; |z| ≤ 4", kind=EMPIRICAL),
    ]


def plot(results: list[dict], cfg: BonWinRateConfig, outdir) -> list:
    plt = pyplot()

    curves = results[0]["curves"]
    fig, axes = plt.subplots(1, len(curves), figsize=(11, 4.3))
    for ax, c in zip(axes, curves):
        ax.plot(c["opt_kl"], c["opt_win"], "k-", lw=1.5, label="optimal (tilt of calibrated reward)")
        ax.plot(c["bon_kl"], c["bon_win"], "o-", ms=3, label="best-of-n (exact)")
        ax.plot(c["rr_kl"], c["rr_win"], "s--" if len(c["rr_kl"]) <= 50 else "--", ms=3, label="rewind-and-repeat")
        ns = np.asarray(c["n"])
        ax.plot(np.log(ns) - (ns - 1) / ns, ns / (ns + 1), ":", label="BoN continuum (formula KL, n/(n+1))")
        lam = np.linspace(1e-3, 60, 400)
        wl = 1 / (1 - np.exp(-lam)) - 1 / lam
        ax.plot(lam * wl - np.log(np.expm1(lam) / lam), wl, "-.", lw=1, label="optimal, continuum limit")
        if c is curves[0]:
            for res in results:
                ax.errorbar([float(best_of_n_law(torch.full((cfg.uniform_L,), 1.0 / cfg.uniform_L, dtype=torch.float64),
                                                 torch.arange(cfg.uniform_L, dtype=torch.float64), m["n"]).kl)
                             for m in res["mc"]], [m["win"] for m in res["mc"]], yerr=[2 * m["se"] for m in res["mc"]],
                            fmt="x", color="C3")
        ax.set_xlim(0, max(c["bon_kl"]) * 1.1)
        ax.set_xlabel("KL(π ‖ p) [nats]")
        ax.set_ylabel("win rate vs p")
        ax.set_title(c["instance"])
        ax.legend(fontsize=7)
    return [save_figure(fig, outdir, "bon_winrate.png")]


register(Experiment(
    name="bon-winrate",
    title="Win rate vs KL: best-of-n, rewind-and-repeat, optimal tilted curve",
    paper="yang_bon", config=BonWinRateConfig, run=run, claims=claims, plot=plot,
    scales={"quick": {}, "paper": {"uniform_L": 10000, "n_max": 1e5, "num_n": 60, "mc_selections": 40000}},
    seeds=3, description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
))
