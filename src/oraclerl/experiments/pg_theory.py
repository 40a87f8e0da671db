"""The theoretical PG algorithms (Mousavi-Hosseini & Erdogdu 2026, Algorithms 1 and 2; Thm 3 / Cor. 3.6 and
Thm 4.1) on single-context teacher problems.

Each problem is one context x (a point-mass context law) with teacher answer y*(x). The base model q₀ is the
teacher direction scaled so that q₀(y*|x) = α exactly (bisection on the scale): α is the base likelihood of the
problem (α = k^{−N}, i.e. q₀ uniform, is "off-support"). The learner starts at w = 0 and runs PG with {0,1}
rewards, no baseline, the adaptive step η = 1/(4 + 2‖g‖²) on the sequence loss, and best-of-m exploration from
½q₀ + ½Unif (whole sequences for ORM with m = ⌈4/α⌉ ∧ k^N, per token for PRM with m = 4k). We count reward
queries until p_w(y*|x) ≥ 1 − ε. (A) ORM queries vs 1/α at fixed ε and vs 1/ε at fixed α: the rate
Õ((1/α + 1/ε)/γ²). (B) off-support (q₀ uniform): ORM queries grow like k^N, PRM's like N·k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..common.config import param
from ..common.threads import torch_threads
from ..models.linear_ar import ContextBigramFeatures, LinearARModel
from ..oracles.ledger import Ledger
from ..oracles.rewards import RewardOracle
from ..posttrain.policy_gradient import PGConfig, pg_oracles, policy_gradient
from ..problems.teacher import TeacherContexts, TeacherReward, teacher_task
from ..runtime.reporting.figures import pyplot, save_figure
from ..runtime.reporting.stats import fmt_ci, loglog_slope
from ..runtime.run.registry import EMPIRICAL, Claim, Experiment, register


@dataclass
class PGTheoryConfig:
    d: int = param(8, "context dimension", low=1, high=2 ** 10)
    k: int = param(4, "vocabulary size for part A", low=2, high=256)
    N: int = param(6, "response length for part A", low=1, high=256)
    alphas: list[float] = param([0.3, 0.1, 0.03, 0.01], "base likelihoods α of part A", low=0.0, high=1.0,
                                low_open=True)
    eps_fixed: float = param(0.1, "target error ε while α varies", low=0.0, high=1.0, low_open=True, high_open=True)
    epsilons: list[float] = param([0.1, 0.03, 0.01, 0.003, 0.001], "target errors ε of part A (the slope uses ε ≤ 0.01)", low=0.0, high=1.0, low_open=True,
                                  high_open=True)
    alpha_fixed: float = param(0.3, "base likelihood while ε varies", low=0.0, high=1.0, low_open=True)
    k_offsupport: int = param(3, "vocabulary size for part B (q₀ uniform)", low=2, high=256)
    horizons: list[int] = param([1, 2, 3, 4, 5], "response lengths N of part B", low=1, high=256)
    eps_offsupport: float = param(0.3, "target error of part B", low=0.0, high=1.0, low_open=True, high_open=True)
    repeats: int = param(2, "independent problems (teacher + context) per N in part B; queries are averaged", low=1, high=10 ** 3)
    max_iters: int = param(20000, "iteration cap per run (censoring)", low=1, high=10 ** 7)
    threads: int = param(1, "torch CPU threads during the run (0 = unchanged)", low=0, high=256)


def _problem(d: int, k: int, N: int, gen: torch.Generator):
    x0 = torch.randn(1, d, generator=gen, dtype=torch.float64)
    x0 = x0 / x0.norm() * math.sqrt(d)
    task = teacher_task(d, k, N, "finite", generator=gen, dtype=torch.float64, support=x0)
    return task, x0, task.target(x0)


def _base_with(task, x0, ystar, alpha: float) -> LinearARModel:
    """q₀ = p_{s·w_T} with w_T the (normalised) teacher direction and s such that q₀(y*|x) = α."""
    fm = ContextBigramFeatures(task.context_dim, task.num_actions)
    wt = torch.cat([task.W1_star.T.reshape(-1), task.W2_star.reshape(-1)])
    wt = wt / wt.norm()
    lo, hi = 0.0, 1.0
    while LinearARModel(fm, task.horizon, hi * wt, dtype=torch.float64).log_likelihood(x0, ystar).item() < math.log(alpha):
        hi *= 2
    for _ in range(60):
        s = (lo + hi) / 2
        ll = LinearARModel(fm, task.horizon, s * wt, dtype=torch.float64).log_likelihood(x0, ystar).item()
        lo, hi = (s, hi) if ll < math.log(alpha) else (lo, s)
    return LinearARModel(fm, task.horizon, hi * wt, dtype=torch.float64)


def _queries_to_reach(task, x0, ystar, base, kind: str, m: int, eps: float, max_iters: int, gen) -> dict:
    ledger = Ledger()
    contexts = TeacherContexts(task, ledger, capacity=64)
    policy = LinearARModel(base.feature_map, task.horizon, dtype=torch.float64)
    reward = RewardOracle(TeacherReward(contexts, kind, "binary"), ledger)
    cfg = PGConfig(steps=max_iters, batch_size=1, reward=kind, reward_form="binary", baseline="none",
                   behaviour="best_of_m", m=m, optimizer="adaptive", lr=1.0, loss_normalisation="sequence_sum")
    state = {"iters": 0}

    def reached(t, p):
        state["iters"] = t
        return p.log_likelihood(x0, ystar).exp().item() >= 1 - eps

    oracles = pg_oracles(policy, contexts, reward, base=base)   # the caller builds the sampling oracles
    policy_gradient(policy, contexts, reward, cfg, gen, oracles=oracles, track=reached)
    return {"queries": ledger.t_data, "iters": state["iters"], "censored": state["iters"] >= max_iters,
            "t_comp": ledger.t_comp, "t_comp_token": ledger.t_comp_token}


def run(cfg: PGTheoryConfig, ctx) -> dict:
    with torch_threads(cfg.threads):
        task, x0, ystar = _problem(cfg.d, cfg.k, cfg.N, ctx.generator("problem/A"))
        gamma = float(task.margin(x0)[0])
        rows_a, rows_e, rows_b = [], [], []
        for a in cfg.alphas:
            base = _base_with(task, x0, ystar, a)
            m = min(math.ceil(4 / a), cfg.k ** cfg.N)
            r = _queries_to_reach(task, x0, ystar, base, "outcome", m, cfg.eps_fixed, cfg.max_iters,
                                  ctx.generator(f"A/alpha/{a}"))
            rows_a.append({"alpha": a, "m": m, **r})
            ctx.progress(len(rows_a) / (len(cfg.alphas) + len(cfg.epsilons) + len(cfg.horizons)), f"α={a}")
        base = _base_with(task, x0, ystar, cfg.alpha_fixed)
        for e in cfg.epsilons:
            m = min(math.ceil(4 / cfg.alpha_fixed), cfg.k ** cfg.N)
            r = _queries_to_reach(task, x0, ystar, base, "outcome", m, e, cfg.max_iters, ctx.generator(f"A/eps/{e}"))
            rows_e.append({"eps": e, **r})
        for N in cfg.horizons:
            row = {"N": N, "k_to_N": cfg.k_offsupport ** N}
            for kind, m in (("outcome", cfg.k_offsupport ** N), ("process", 4 * cfg.k_offsupport)):
                reps = []
                for rep in range(cfg.repeats):
                    taskb, xb, yb = _problem(cfg.d, cfg.k_offsupport, N, ctx.generator(f"problem/B/{N}/{rep}"))
                    uniform = LinearARModel(ContextBigramFeatures(cfg.d, cfg.k_offsupport), N, dtype=torch.float64)
                    reps.append(_queries_to_reach(taskb, xb, yb, uniform, kind, m, cfg.eps_offsupport, cfg.max_iters,
                                                  ctx.generator(f"B/{N}/{kind}/{rep}")))
                row[kind] = {"queries": float(np.mean([q["queries"] for q in reps])),
                             "iters": float(np.mean([q["iters"] for q in reps])),
                             "censored": any(q["censored"] for q in reps), "runs": reps}
            rows_b.append(row)
            ctx.log(N, **{"B/orm_queries": row["outcome"]["queries"], "B/prm_queries": row["process"]["queries"]})
    return {"gamma": gamma, "alpha_rows": rows_a, "eps_rows": rows_e, "offsupport_rows": rows_b}


def claims(results: list[dict], cfg: PGTheoryConfig) -> list[Claim]:
    sa, se, so, sp, ratio = [], [], [], [], []
    for r in results:
        sa.append(loglog_slope([1 / x["alpha"] for x in r["alpha_rows"]], [x["queries"] for x in r["alpha_rows"]]))
        small = [x for x in r["eps_rows"] if x["eps"] <= 0.01]
        small = small if len(small) >= 2 else r["eps_rows"]
        se.append(loglog_slope([1 / x["eps"] for x in small], [x["iters"] for x in small]))
        Ns = [x["N"] for x in r["offsupport_rows"]]
        # the exponential rate is read on the upper half of the horizons: a polynomial N^p is concave in N on a
        # log scale, so its rate there is p·(ln N_max − ln N_mid)/(N_max − N_mid), well below ln k for p ≤ 3
        upper = [x for x in r["offsupport_rows"] if x["N"] >= sorted(Ns)[len(Ns) // 2]]
        so.append(np.polyfit([x["N"] for x in upper], np.log([x["outcome"]["queries"] for x in upper]), 1)[0]
                  if len(upper) >= 2 else float("nan"))
        sp.append(loglog_slope(Ns, [x["process"]["queries"] for x in r["offsupport_rows"]]))
        last = r["offsupport_rows"][-1]
        ratio.append(last["outcome"]["queries"] / last["process"]["queries"])
    censored = sum(x["censored"] for r in results for x in r["alpha_rows"] + r["eps_rows"]) + sum(
        x[kd]["censored"] for r in results for x in r["offsupport_rows"] for kd in ("outcome", "process"))
    logk = math.log(cfg.k_offsupport)
    return [
        Claim("ORM reward queries to reach likelihood 1 − ε grow like 1/α in the base likelihood α",
              "Mousavi-Hosseini & Erdogdu 2026, Thm 3 / Cor. 3.6 (Õ((1/α + 1/ε)/γ²) with best-of-m exploration)",
              f"log-log slope of queries vs 1/α: {fmt_ci(sa)} (ε = {cfg.eps_fixed}, α ∈ {cfg.alphas})",
              all(0.6 <= s <= 1.3 for s in sa) and censored == 0,
              "verdict: slope in [0.6, 1.3] (1/ε and log terms flatten it at large α); no run censored", kind=EMPIRICAL),
        Claim("PG iterations to reach 1 − ε grow like 1/ε (the 1/(γ²ε) term)",
              "Mousavi-Hosseini & Erdogdu 2026, Cor. 3.6 (T = Õ(1/(γ²ε)))",
              f"log-log slope of iterations vs 1/ε over ε ≤ 0.01: {fmt_ci(se)} (α = {cfg.alpha_fixed})",
              all(0.6 <= s <= 1.4 for s in se) and censored == 0, "verdict: slope in [0.6, 1.4], fitted where the 1/ε term dominates (ε ≤ 0.01; at larger ε the first "
              "iterations, which do not depend on ε, dominate); the teacher margin "
              f"γ (unnormalised) was {fmt_ci([r['gamma'] for r in results])}: a large margin delays the 1/ε regime", kind=EMPIRICAL),
        Claim("Off-support (q₀ uniform): ORM needs queries exponential in N (∝ k^N), PRM only polynomial",
              "Mousavi-Hosseini & Erdogdu 2026, Cor. 3.6 worst case Õ(k^N) vs Thm 4.1 Õ(Nk)",
              f"ORM: slope of ln(queries) vs N (upper half of N) {fmt_ci(so)} (ln k = {logk:.2f}); PRM: log-log slope vs N "
              f"{fmt_ci(sp)}; ORM/PRM queries at N = {cfg.horizons[-1]}: {fmt_ci(ratio)}",
              all(s >= 0.7 * logk for s in so) and all(s <= 2.5 for s in sp) and all(q > 1 for q in ratio)
              and censored == 0,
              "verdict: ORM's exponential rate over the upper half of N ≥ 0.7·ln k (on N ∈ {3, 4, 5} a polynomial "
              "needs degree > 3 to pass; the lower bound Ω(k^N/(Nγ²)) of Thm 5.4 allows polynomial "
              "factors on top of k^N); PRM's polynomial degree ≤ 2.5; ORM costlier at the largest N; no run censored. "
              f"Queries averaged over {cfg.repeats} problems per N", kind=EMPIRICAL),
    ]


def plot(results: list[dict], cfg: PGTheoryConfig, outdir) -> list:
    plt = pyplot()

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for s, r in enumerate(results):
        lab = f"seed {s}"
        axes[0].loglog([1 / x["alpha"] for x in r["alpha_rows"]], [x["queries"] for x in r["alpha_rows"]], "o-", label=lab)
        axes[1].loglog([1 / x["eps"] for x in r["eps_rows"]], [x["iters"] for x in r["eps_rows"]], "o-", label=lab)
        Ns = [x["N"] for x in r["offsupport_rows"]]
        axes[2].semilogy(Ns, [x["outcome"]["queries"] for x in r["offsupport_rows"]], "o-", color="C0",
                         label="ORM" if s == 0 else None)
        axes[2].semilogy(Ns, [x["process"]["queries"] for x in r["offsupport_rows"]], "s-", color="C1",
                         label="PRM" if s == 0 else None)
    axes[0].set_xlabel("1/α (base likelihood)")
    axes[0].set_ylabel(f"ORM reward queries to reach 1−ε (ε={cfg.eps_fixed})")
    axes[1].set_xlabel("1/ε")
    axes[1].set_ylabel(f"PG iterations (α={cfg.alpha_fixed})")
    axes[2].set_xlabel("N (q₀ uniform, off-support)")
    axes[2].set_ylabel("reward queries")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle("Theoretical PG algorithms: adaptive step, {0,1} rewards, best-of-m exploration")
    return [save_figure(fig, outdir, "pg_theory.png")]


register(Experiment(
    name="pg-theory",
    title="Reward queries of the theoretical PG algorithms vs base likelihood α, target ε and horizon N",
    paper="mousavi", config=PGTheoryConfig, run=run, claims=claims, plot=plot,
    scales={"quick": {}, "paper": {"alphas": [0.3, 0.1, 0.03, 0.01, 0.003, 0.001],
                                   "epsilons": [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003], "repeats": 5,
                                   "horizons": [1, 2, 3, 4, 5, 6]}},
    seeds=2, description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
))
