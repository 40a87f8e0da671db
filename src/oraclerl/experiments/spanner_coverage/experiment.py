"""Reward queries vs sampling queries as the coverage grows (Foster et al. 2025, Thm 3.1 vs OnlineDPO and
XPO).

For C_cov(π⋆_β) from 4 upwards we measure, for each algorithm, the reward queries (T_data) and sampling
queries (T_comp) it needs before its output reaches regret ε and stays there, on one instance per coverage
value, with exact regret. Instances (``problems.needle_instance``): every prompt has one *needle* response
whose feature is e₁ and carries a reward gap `gap`, and haystack responses with features orthogonal to e₁;
π_ref gives the needle the mass that makes C_cov hit the target exactly, while R_max, B and the haystack stay
fixed across coverage values. This is the mechanism of the coverage lower bounds (App. E, Xie et al.):
nothing but the needle reveals the e₁ direction. SpannerSampling uses the theory's C-dependence for its
knobs, T_span = ⌈κ·Ĉ⌉ and M_rej = max(1, m·Ĉ) (Ĉ = exact C_cov), and fixed ν, T_prompt, T_exp; its T_data(T)
counts the spanner phase plus 2 per exploration round and its regret is the prefix average over components
(Thm 3.1).
Because that schedule spends T_comp ∝ Ĉ by construction, the sampling claim measures the *need* instead: Ĉ is
halved (Ĉ = C_cov/2, C_cov/4, …, down to 1) until the run no longer reaches ε, and the smallest Ĉ that still
reached it (and the T_comp it spent) is regressed on C_cov.
OnlineDPO (strong oracle) and XPO (strong + weak oracle, exact partition function) are run for a fixed number
of rounds; best-of-n is reported as the inference-time reference (n reward queries *per prompt served*).
Log-log slopes against C_cov are fitted per seed (docs/experiments/spanner-coverage.md: why gap = 6).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...common.config import param
from ...diagnostics import coverage_coefficient, regret
from ...explore.baselines import BestOfNPolicy
from ...explore.evaluation import first_reach, proper_curve, spanner_at
from ...explore.online_dpo import OnlineDPO, OnlineDPOConfig
from ...explore.xpo import XPO, XPOConfig, exact_partition
from ...problems import needle_instance

ALGORITHMS = ("spanner", "online-dpo", "xpo")


@dataclass
class SpannerCoverageConfig:
    coverages: list[float] = param(
        [4.0, 16.0, 64.0, 256.0],
        "target C_cov(π⋆_β) values (exact on each instance)",
        low=1.0,
        low_open=True,
        high=2.0**20,
    )
    d: int = param(4, "feature dimension", low=2, high=2 ** 10)
    num_prompts: int = param(4, "prompts |X|", low=1, high=2 ** 12)
    num_responses: int = param(64, "responses per prompt |Y|", low=3, high=2 ** 16)
    beta: float = param(0.5, "KL regularisation β", low=0.0, low_open=True)
    gap: float = param(
        6.0,
        "reward gap of the needle (fixed across coverages; needs e^{gap/β} ≫ max C)",
        low=0.0,
        low_open=True,
    )
    noise: float = param(0.5, "std of the Gaussian reward noise", low=0.0)
    epsilon: float = param(0.02, "target regret ε", low=0.0, low_open=True)
    nu: float = param(
        0.5,
        "SpannerSampling ν (theory β/ε_stat ≈ 0.1 here: a tunable knob, "
        "docs/papers/foster2025_exploration.md §8.4)",
        low=0.0,
        low_open=True,
    )
    T_prompt: int = param(128, "SpannerSampling spanner prompts (theory (R_max/β)²·T_exp)", low=1, high=2**17)
    span_factor: float = param(4.0, "T_span = ⌈κ·Ĉ⌉ (theory κ = T_exp)", low=0.0, low_open=True, high=1000.0)
    m_factor: float = param(4.0, "M_rej = max(1, m·Ĉ) (theory m = 8e² ≈ 59)", low=0.25, high=1000.0)
    T_exp: int = param(128, "SpannerSampling exploration rounds (budget)", low=1, high=2 ** 17)
    exp_batch: int = param(8, "rounds per θ refit, for every algorithm", low=1, high=2 ** 12)
    dpo_rounds: int = param(1024, "OnlineDPO rounds (budget)", low=1, high=2 ** 20)
    xpo_rounds: int = param(256, "XPO rounds (budget)", low=1, high=2 ** 20)
    xpo_alpha: float = param(0.1, "XPO optimism α", low=0.0, low_open=True)
    need_search: bool = param(True, "halve Ĉ from C_cov until ε is no longer reached (the sampling need)")
    bon_max_log2: int = param(
        14,
        "best-of-n is evaluated for n = 1, 2, 4, ..., 2^this (≤ 24: 2^10× the default 2^14)",
        low=0,
        high=24,
    )
    algorithms: list[str] = param(list(ALGORITHMS), "algorithms to run", choices=ALGORITHMS)


def _bon(inst, cfg) -> dict:
    regs = [(2 ** j, regret(BestOfNPolicy(2 ** j), inst)) for j in range(cfg.bon_max_log2 + 1)]
    reach = [n for n, r in regs if r <= cfg.epsilon]
    n_best, r_best = min(regs, key=lambda t: t[1])
    return {"n_reach": reach[0] if reach else None, "best_n": n_best, "best_regret": r_best}


def _spanner(inst, c_knob: float, cfg, gen):
    """SpannerSampling with the theory schedule at coverage knob Ĉ: T_span = ⌈κĈ⌉, M_rej = max(1, mĈ)."""
    return spanner_at(
        inst,
        c_knob,
        nu=cfg.nu,
        T_prompt=cfg.T_prompt,
        span_factor=cfg.span_factor,
        m_factor=cfg.m_factor,
        T_exp=cfg.T_exp,
        exp_batch=cfg.exp_batch,
        epsilon=cfg.epsilon,
        gen=gen,
    )


def _need(inst, c_hat: float, reach: dict, cfg, ctx, cov) -> dict:
    """Smallest Ĉ on the grid C_cov·2^{−j} (≥ 1) that still reaches ε, with the T_comp and T_data it spent.

    Starts from the run at Ĉ = C_cov; ``reached_at_c_cov`` False means even the theory knob did not
    suffice."""
    best = (
        {"c_hat": c_hat, "t_comp": reach["t_comp"], "t_data": reach["t_data"]}
        if not reach["censored"]
        else None
    )
    tried = [c_hat]
    knob = c_hat
    while best is not None and knob > 1.0:
        knob = max(1.0, knob / 2)
        tried.append(knob)
        _, r = _spanner(inst, knob, cfg, ctx.generator(f"spanner-need/{cov}/{knob:.6g}"))
        if r["censored"]:
            break
        best = {"c_hat": knob, "t_comp": r["t_comp"], "t_data": r["t_data"]}
    return {"reached_at_c_cov": best is not None, "tried": tried,
            **(best or {"c_hat": c_hat, "t_comp": reach["t_comp"], "t_data": reach["t_data"]})}


def run(cfg: SpannerCoverageConfig, ctx) -> dict:
    rows = []
    for i, cov in enumerate(cfg.coverages):
        inst = needle_instance(
            cfg.d,
            cfg.num_prompts,
            cfg.num_responses,
            cfg.beta,
            cov,
            cfg.gap,
            noise=cfg.noise,
            seed=ctx.seeds.int(f"instance/{cov}") % 2**31,
        )
        c_hat = coverage_coefficient(inst)
        row = {"coverage": c_hat, "base_regret": regret(inst.base.log_ref, inst), "bon": _bon(inst, cfg),
               "r_max": inst.r_max}
        if "spanner" in cfg.algorithms:
            out, reach = _spanner(inst, c_hat, cfg, ctx.generator(f"spanner/{cov}"))
            row["spanner"] = reach | {
                "spanner_size": out.spanner_size, "span_t_comp": out.span_phase["t_comp"],
                "final_regret": out.policy.average_regret(inst), "ledger": out.ledger}
            if cfg.need_search:
                row["spanner_need"] = _need(inst, c_hat, reach, cfg, ctx, cov)
        if "online-dpo" in cfg.algorithms:
            o = inst.oracles()
            out = OnlineDPO(OnlineDPOConfig(T=cfg.dpo_rounds, B=inst.B, batch=cfg.exp_batch)).run(
                o.strong, o.reward, o.prompts, ctx.generator(f"dpo/{cov}"))
            row["online-dpo"] = first_reach(proper_curve(out, inst), cfg.epsilon) | {"ledger": out.ledger}
        if "xpo" in cfg.algorithms:
            o = inst.oracles()
            out = XPO(XPOConfig(T=cfg.xpo_rounds, alpha=cfg.xpo_alpha, B=inst.B, batch=cfg.exp_batch)).run(
                o.strong, o.weak, o.reward, o.prompts, exact_partition(inst.base), ctx.generator(f"xpo/{cov}")
            )
            row["xpo"] = first_reach(proper_curve(out, inst), cfg.epsilon) | {"ledger": out.ledger}
        rows.append(row)
        ctx.log(i, **{f"{a}/t_data": row[a]["t_data"] for a in cfg.algorithms})
        ctx.progress((i + 1) / len(cfg.coverages), f"C_cov={c_hat:.3g}")
    return {"rows": rows}


SCALES = {
    "toy": {"coverages": [4.0, 16.0], "T_exp": 16, "T_prompt": 16, "dpo_rounds": 64, "xpo_rounds": 32,
            "bon_max_log2": 4},
    "quick": {},
    "paper": {"coverages": [4.0, 16.0, 64.0, 256.0, 1024.0], "gap": 7.0, "num_prompts": 16, "T_exp": 1024,
              "T_prompt": 512, "dpo_rounds": 8192, "xpo_rounds": 2048, "epsilon": 0.01},
}
