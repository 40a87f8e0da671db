"""The theoretical PG algorithms (Mousavi-Hosseini & Erdogdu 2026, Algorithms 1 and 2; Thm 3 / Cor. 3.6 and
Thm 4.1) on single-context teacher problems.

Each problem is one context x (a point-mass context law) with teacher answer y*(x). The base model q₀ is the
teacher direction scaled so that q₀(y*|x) = α exactly (bisection on the scale): α is the base likelihood of
the problem (α = k^{−N}, i.e. q₀ uniform, is "off-support"). The learner starts at w = 0 and runs PG with
{0,1} rewards, no baseline, the adaptive step η = 1/(4 + 2‖g‖²) on the sequence loss, and best-of-m
exploration from ½q₀ + ½Unif (whole sequences for ORM with m = ⌈4/α⌉ ∧ k^N, per token for PRM with m = 4k). We
count reward queries until p_w(y*|x) ≥ 1 − ε. (A) ORM queries vs 1/α at fixed ε and vs 1/ε at fixed α: the
rate Õ((1/α + 1/ε)/γ²). (B) off-support (q₀ uniform): ORM queries grow like k^N, PRM's like N·k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...common.config import param
from ...common.threads import torch_threads
from ...models.linear_ar import ContextBigramFeatures, LinearARModel
from ...oracles.ledger import Ledger
from ...oracles.rewards import RewardOracle
from ...posttrain.policy_gradient import PGConfig, PolicyGradient, pg_oracles
from ...problems.single_context import base_with_likelihood, single_context_problem
from ...problems.teacher import TeacherContexts, TeacherReward


@dataclass
class PGTheoryConfig:
    d: int = param(8, "context dimension", low=1, high=2 ** 10)
    k: int = param(4, "vocabulary size for part A", low=2, high=256)
    N: int = param(6, "response length for part A", low=1, high=256)
    alphas: list[float] = param([0.3, 0.1, 0.03, 0.01], "base likelihoods α of part A", low=0.0, high=1.0,
                                low_open=True)
    eps_fixed: float = param(
        0.1, "target error ε while α varies", low=0.0, high=1.0, low_open=True, high_open=True
    )
    epsilons: list[float] = param(
        [0.1, 0.03, 0.01, 0.003, 0.001],
        "target errors ε of part A (the slope uses ε ≤ 0.01)",
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
    )
    alpha_fixed: float = param(0.3, "base likelihood while ε varies", low=0.0, high=1.0, low_open=True)
    k_offsupport: int = param(3, "vocabulary size for part B (q₀ uniform)", low=2, high=256)
    horizons: list[int] = param([1, 2, 3, 4, 5], "response lengths N of part B", low=1, high=256)
    eps_offsupport: float = param(
        0.3, "target error of part B", low=0.0, high=1.0, low_open=True, high_open=True
    )
    repeats: int = param(
        2, "independent problems (teacher + context) per N in part B; queries are averaged", low=1, high=10**3
    )
    max_iters: int = param(20000, "iteration cap per run (censoring)", low=1, high=10 ** 7)
    threads: int = param(1, "torch CPU threads during the run (0 = unchanged)", low=0, high=256)


def _queries_to_reach(task, x0, ystar, base, kind: str, m: int, eps: float, max_iters: int, gen) -> dict:
    ledger = Ledger()
    contexts = TeacherContexts(task, ledger, capacity=64)
    policy = LinearARModel(base.feature_map, task.horizon, dtype=torch.float64)
    reward = RewardOracle(TeacherReward(contexts, kind, "binary"), ledger)
    cfg = PGConfig(
        steps=max_iters,
        batch_size=1,
        reward=kind,
        reward_form="binary",
        advantage="none",
        behaviour="best_of_m",
        m=m,
        optimizer="adaptive",
        lr=1.0,
        loss_normalisation="sequence_sum",
    )
    state = {"iters": 0}

    def reached(t, p):
        state["iters"] = t
        return p.log_likelihood(x0, ystar).exp().item() >= 1 - eps

    oracles = pg_oracles(policy, contexts, reward, base=base)   # the caller builds the sampling oracles
    PolicyGradient(cfg).run(policy, contexts, reward, oracles, gen, track=reached)
    return {"queries": ledger.t_data, "iters": state["iters"], "censored": state["iters"] >= max_iters,
            "t_comp": ledger.t_comp, "t_comp_token": ledger.t_comp_token}


def run(cfg: PGTheoryConfig, ctx) -> dict:
    with torch_threads(cfg.threads):
        task, x0, ystar = single_context_problem(cfg.d, cfg.k, cfg.N, ctx.generator("problem/A"))
        gamma = float(task.margin(x0)[0])
        rows_a, rows_e, rows_b = [], [], []
        for a in cfg.alphas:
            base = base_with_likelihood(task, x0, ystar, a)
            m = min(math.ceil(4 / a), cfg.k ** cfg.N)
            r = _queries_to_reach(task, x0, ystar, base, "outcome", m, cfg.eps_fixed, cfg.max_iters,
                                  ctx.generator(f"A/alpha/{a}"))
            rows_a.append({"alpha": a, "m": m, **r})
            ctx.progress(len(rows_a) / (len(cfg.alphas) + len(cfg.epsilons) + len(cfg.horizons)), f"α={a}")
        base = base_with_likelihood(task, x0, ystar, cfg.alpha_fixed)
        for e in cfg.epsilons:
            m = min(math.ceil(4 / cfg.alpha_fixed), cfg.k ** cfg.N)
            r = _queries_to_reach(
                task, x0, ystar, base, "outcome", m, e, cfg.max_iters, ctx.generator(f"A/eps/{e}")
            )
            rows_e.append({"eps": e, **r})
        for N in cfg.horizons:
            row = {"N": N, "k_to_N": cfg.k_offsupport ** N}
            for kind, m in (("outcome", cfg.k_offsupport ** N), ("process", 4 * cfg.k_offsupport)):
                reps = []
                for rep in range(cfg.repeats):
                    taskb, xb, yb = single_context_problem(
                        cfg.d, cfg.k_offsupport, N, ctx.generator(f"problem/B/{N}/{rep}")
                    )
                    uniform = LinearARModel(
                        ContextBigramFeatures(cfg.d, cfg.k_offsupport), N, dtype=torch.float64
                    )
                    reps.append(
                        _queries_to_reach(
                            taskb,
                            xb,
                            yb,
                            uniform,
                            kind,
                            m,
                            cfg.eps_offsupport,
                            cfg.max_iters,
                            ctx.generator(f"B/{N}/{kind}/{rep}"),
                        )
                    )
                row[kind] = {"queries": float(np.mean([q["queries"] for q in reps])),
                             "iters": float(np.mean([q["iters"] for q in reps])),
                             "censored": any(q["censored"] for q in reps), "runs": reps}
            rows_b.append(row)
            ctx.log(
                N, **{"B/orm_queries": row["outcome"]["queries"], "B/prm_queries": row["process"]["queries"]}
            )
    return {"gamma": gamma, "alpha_rows": rows_a, "eps_rows": rows_e, "offsupport_rows": rows_b}


SCALES = {
    "toy": {"alphas": [0.3, 0.1], "epsilons": [0.1, 0.01], "horizons": [1, 2, 3], "repeats": 1},
    "quick": {},
    "paper": {
        "alphas": [0.3, 0.1, 0.03, 0.01, 0.003, 0.001],
        "epsilons": [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003],
        "repeats": 5,
        "horizons": [1, 2, 3, 4, 5, 6],
    },
}
