"""Proper vs improper exploration on the Max-k-DNF instance (Foster et al. 2025, §4, App. H.2, Lemma H.2).

On the DNF instance (one prompt, Y = {0} ∪ clauses, π_ref(0) = 1 − e^{−1/β}) a proper policy π_θ puts mass
≤ 2(val(φ; sgn θ)/m + e^{−1/(βk)}) on clause responses: it stays on the useless null response 0 unless sgn θ
nearly maximises the DNF, and a proper learner only sees clause responses (the only informative rewards) at
rate ≈ its own clause mass. SpannerSampling samples from π_ref without querying rewards (improper: it
chooses which samples to label) and outputs a truncated-softmax mixture. We give every algorithm the same
reward budget (OnlineDPO and XPO get T = T_data(SpannerSampling)/2 rounds) and compare the clause mass
Σ_{i≥1} π̂(i) of the outputs with π⋆_β's, and their exact regrets. XPO is given the exact partition function
(Theorem 4.1: its objective cannot be optimised efficiently in general; here |Y| = m + 1 is small and d is
small, so its optimism term −α log Z_θ, a smooth relaxation of Max-k-DNF, can be minimised by projected
gradient: the hardness of Theorem 4.1 is asymptotic and does not bite at this scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...common.config import param
from ...diagnostics import coverage_coefficient, regret
from ...explore.online_dpo import OnlineDPO, OnlineDPOConfig
from ...explore.spanner_sampling import SpannerSampling, SpannerSamplingConfig
from ...explore.xpo import XPO, XPOConfig, exact_partition
from ...problems.dnf import clause_mass, dnf_value, lemma_h2_upper, max_k_dnf


@dataclass
class DNFProperConfig:
    num_vars: int = param(10, "DNF variables d (the feature dimension)", low=1, high=22)
    num_clauses: int = param(40, "clauses m (|Y| = m + 1)", low=1, high=2 ** 14)
    k: int = param(3, "literals per clause", low=1, high=22)
    beta: float = param(
        0.15, "β (π_ref's clause mass is e^{−1/β}; theory β = 1/(k² log(16/δ)))", low=0.0, low_open=True
    )
    noise: float = param(0.1, "std of the Gaussian reward noise", low=0.0)
    nu: float = param(0.5, "SpannerSampling ν", low=0.0, low_open=True)
    T_prompt: int = param(
        64, "SpannerSampling spanner prompts (= trials on the single prompt)", low=1, high=2**16
    )
    span_factor: float = param(4.0, "T_span = ⌈κ·C_cov⌉", low=0.0, low_open=True, high=1000.0)
    m_factor: float = param(4.0, "M_rej = max(1, m·C_cov) (theory m = 8e²)", low=0.25, high=1000.0)
    T_exp: int = param(64, "SpannerSampling exploration rounds", low=1, high=2 ** 16)
    exp_batch: int = param(8, "rounds per θ refit (all algorithms)", low=1, high=2 ** 12)
    xpo_alpha: float = param(0.1, "XPO optimism α", low=0.0, low_open=True)


def _proper_row(inst, out) -> dict:
    th = out.policy.theta
    v = inst.meta
    return {
        "clause_mass": float(clause_mass(inst.base.log_policy(th))[0]),
        "regret": regret(out.policy, inst),
        "val_sgn": int(dnf_value(torch.sign(th), v["variables"], v["signs"])),
        "h2_bound": float(lemma_h2_upper(th, inst)),
        "ledger": out.ledger,
        "stats": out.stats,
    }


def run(cfg: DNFProperConfig, ctx) -> dict:
    inst = max_k_dnf(cfg.num_vars, cfg.num_clauses, cfg.k, cfg.beta, seed=ctx.seeds.int("instance") % 2 ** 31,
                     noise=cfg.noise)
    C = coverage_coefficient(inst)
    opt = inst.optimal_log_policy()
    row = {
        "coverage": C,
        "val": inst.meta["val"],
        "m": cfg.num_clauses,
        "opt_clause_mass": float(clause_mass(opt)[0]),
        "ref_clause_mass": float(clause_mass(inst.base.log_ref)[0]),
        "base_regret": regret(inst.base.log_ref, inst),
    }
    o = inst.oracles()
    sc = SpannerSamplingConfig.scheduled(C, span_factor=cfg.span_factor, m_factor=cfg.m_factor, B=1.0,
                                         theta_set="linf", nu=cfg.nu, T_prompt=cfg.T_prompt, T_exp=cfg.T_exp,
                                         exp_batch=cfg.exp_batch)
    out = SpannerSampling(sc).run(o.weak, o.reward, o.prompts, ctx.generator("spanner"))
    row["spanner"] = {"clause_mass": float(clause_mass(out.policy.log_prob_table(inst))[0]),
                      "regret": regret(out.policy, inst), "average_regret": out.policy.average_regret(inst),
                      "spanner_size": out.spanner_size, "ledger": out.ledger}
    ctx.progress(0.5, "SpannerSampling done")
    T = max(1, out.ledger["t_data"] // 2)
    o = inst.oracles()
    dpo = OnlineDPO(OnlineDPOConfig(T=T, B=1.0, theta_set="linf", batch=cfg.exp_batch)).run(
        o.strong, o.reward, o.prompts, ctx.generator("dpo"))
    row["online-dpo"] = _proper_row(inst, dpo)
    o = inst.oracles()
    xpo = XPO(XPOConfig(T=T, alpha=cfg.xpo_alpha, B=1.0, theta_set="linf", batch=cfg.exp_batch)).run(
        o.strong, o.weak, o.reward, o.prompts, exact_partition(inst.base), ctx.generator("xpo"))
    row["xpo"] = _proper_row(inst, xpo)
    ctx.log(0, **{f"{a}/clause_mass": row[a]["clause_mass"] for a in ("spanner", "online-dpo", "xpo")})
    return row


SCALES = {
    "toy": {"num_vars": 6, "num_clauses": 12, "beta": 0.25, "T_prompt": 8, "T_exp": 8},
    "quick": {},
    "paper": {"num_vars": 16, "num_clauses": 128, "beta": 0.12, "T_prompt": 256, "T_exp": 256},
}
