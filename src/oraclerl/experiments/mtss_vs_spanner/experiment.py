"""MTSS vs SpannerSampling on whole sequences as the horizon grows (Foster et al. 2025, Thm 5.1 vs Cor. 5.1).

Instances: the coverage-gap family (binary tokens, C_cond(π⋆_β) = 2, C_cov(π⋆_β) = 2^H), realisable both
autoregressively and at the sequence level. SpannerSampling runs on whole sequences through the weak
autoregressive oracle wrapped as a sequence sampler (features ϕ^seq/√H ∈ ℝ^{dH}; one sequence = H token
queries), MTSS runs on tokens with resets and anchor-feature queries. For each H and each algorithm the
*sampling* knob is doubled until the returned policy's exact regret is at most the target ε (same ε for both):
SpannerSampling's coverage bound Ĉ (M_rej ∝ Ĉ and T_span ∝ Ĉ as in Alg. 3 line 3 and App. G.4.2, with the
factor of M_rej a knob: theory 8e² ≈ 59 covers the truncation slack of Lemma G.6 and hides C_cov until 2^H >
59), MTSS's envelope M_rej (theory ∝ C_cond²); the data knobs stay fixed (T_exp, T_prompt ∝ dH for
SpannerSampling, T for MTSS). Recorded at the first success: T_comp in tokens and T_data (reward queries; for
MTSS also the paper's reward + transition + reset count). Regret is exact, J_β(π⋆_β) − J_β(π̂), for the law of
the *sampler* each algorithm outputs with a known normaliser (clipping at the envelope included; the ideal
target law would hide a too-small envelope); for SpannerSampling the mixture over its T_exp components and
reference responses y′ is computed exactly. Growth rates are least-squares slopes of log T against H
(exponential rate per token) and against log H (polynomial degree).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...common.config import param
from ...diagnostics import clipping_envelope
from ...diagnostics.regret import regret
from ...explore.evaluation import spanner_sampler_log_table
from ...explore.mtss import MTSS, MTSSConfig
from ...explore.spanner_sampling import SpannerSampling, SpannerSamplingConfig
from ...problems.token_mdp import coverage_gap_family


@dataclass
class MTSSVsSpannerConfig:
    horizons: list[int] = param([2, 3, 4, 5], "horizons H of the coverage-gap family", low=1, high=10)
    beta: float = param(0.5, "KL-regularisation β", low=0.0, low_open=True)
    p_good: float = param(0.25, "π_ref mass of the good token (C_cond = 2, C_cov = 2^H)", low=0.0, high=0.5,
                          low_open=True, high_open=True)
    d: int = param(2, "step-feature dimension d (sequence features have d·H)", low=1, high=2 ** 10)
    noise: float = param(0.0, "Gaussian reward-noise standard deviation", low=0.0)
    target_regret: float = param(
        0.05, "ε: both algorithms must reach J_β(π⋆_β) − J_β(π̂) ≤ ε", low=0.0, low_open=True
    )
    max_doublings: int = param(8, "search limit: knob values 1, 2, …, 2^max_doublings (≤ 20)",
                               low=0, high=20)
    mtss_T: int = param(8, "MTSS iterations T (theory dH²𝔠)", low=1, high=2 ** 12)
    mtss_N_reg: int = param(8, "MTSS FitValue repetitions N_reg", low=1, high=2 ** 16)
    mtss_N_span: int = param(8, "MTSS UncertainStateAction roll-ins N_span", low=1, high=2 ** 16)
    mtss_N_bar_span: int = param(4, "MTSS π_ref actions per reached state N̄_span", low=0, high=2 ** 16)
    mtss_nu: float = param(0.5, "MTSS truncation radius ν (theory 1/2)", low=0.0, low_open=True)
    mtss_delta_rej: float = param(0.05, "MTSS SoftmaxSampler failure probability δ_rej", low=0.0, high=1.0,
                                  low_open=True, high_open=True)
    span_T_exp_per_dim: int = param(16, "SpannerSampling T_exp = this·d·H (theory ∝ d²H²)", low=1, high=2**16)
    span_T_prompt_per_dim: int = param(
        32, "SpannerSampling spanner prompts T_prompt = this·d·H (theory (R_max/β)²·T_exp)", low=1, high=2**16
    )
    span_T_span_per_coverage: float = param(
        4.0, "SpannerSampling T_span = ⌈this·Ĉ⌉ (theory Ĉ·T_exp)", low=0.0, low_open=True, high=1000.0
    )
    span_exp_batch: int = param(
        8, "SpannerSampling exploration rounds sharing one θ (theory 1; batching only)", low=1, high=2**12
    )
    span_M_factor: float = param(
        1.0, "SpannerSampling M_rej = this·Ĉ (theory 8e² ≈ 59, Alg. 3 line 3)", low=1.0, high=1000.0
    )
    span_nu: float = param(
        0.5, "SpannerSampling spanner radius ν (theory β/ε_stat, tiny)", low=0.0, low_open=True
    )


def _mtss(inst, M: float, cfg, gen):
    o = inst.oracles()
    mc = MTSSConfig(T=cfg.mtss_T, nu=cfg.mtss_nu, B=inst.B, M_rej=M, delta_rej=cfg.mtss_delta_rej,
                    N_reg=cfg.mtss_N_reg, N_span=cfg.mtss_N_span, N_bar_span=cfg.mtss_N_bar_span)
    res = MTSS(mc).run(o.auto, o.step_reward, o.prompts, gen)
    reg = inst.regret(res.policy.log_prob_tables(inst.model, law="sampler"))
    led = res.ledger
    return {"regret": reg, "t_comp_tokens": led["t_comp_token"], "t_data": led["t_data"],
            "t_data_paper": res.t_data_paper, "t_feature": led["t_feature"], "prompts": led["prompts"],
            "regret_target_law": inst.regret(res.policy.log_prob_tables(inst.model, law="target"))}


def _spanner(inst, seq, C: float, cfg, gen):
    o = inst.oracles()
    H = inst.horizon
    sc = SpannerSamplingConfig.scheduled(
        C,
        span_factor=cfg.span_T_span_per_coverage,
        m_factor=cfg.span_M_factor,
        B=seq.B,
        nu=cfg.span_nu,
        T_prompt=cfg.span_T_prompt_per_dim * cfg.d * H,
        exp_batch=cfg.span_exp_batch,
        T_exp=cfg.span_T_exp_per_dim * cfg.d * H,
    )
    res = SpannerSampling(sc).run(o.weak, o.reward, o.prompts, gen)
    led = res.ledger
    return {
        "regret": regret(spanner_sampler_log_table(res.policy, seq), seq),
        "t_comp_tokens": led["t_comp"] * H,
        "t_data": led["t_data"],
        "t_data_paper": led["t_data"],
        "prompts": led["prompts"],
        "spanner_size": res.spanner_size,
        "regret_target_law": regret(res.policy.log_prob_table(seq, law="ideal"), seq),
    }


def run(cfg: MTSSVsSpannerConfig, ctx) -> dict:
    rows = []
    total = 2 * len(cfg.horizons)
    for H in cfg.horizons:
        inst = coverage_gap_family(H, beta=cfg.beta, p_good=cfg.p_good, d=cfg.d, noise=cfg.noise,
                                   seed=ctx.seeds.int(f"instance/{H}") % 2 ** 31)
        seq = inst.sequence_instance()
        for alg in ("MTSS", "SpannerSampling"):
            found = None
            for k in range(cfg.max_doublings + 1):
                knob = float(2 ** k)
                gen = ctx.generator(f"{alg}/{H}/{k}")
                rec = _mtss(inst, knob, cfg, gen) if alg == "MTSS" else _spanner(inst, seq, knob, cfg, gen)
                rec.update(
                    {"algorithm": alg, "H": H, "knob": knob, "reached": rec["regret"] <= cfg.target_regret}
                )
                found = rec
                if rec["reached"]:
                    break
            found["regret_ref"] = inst.regret(inst.model.log_ref)
            found["c_cov"] = 2.0 ** H
            found["clip_envelope"] = clipping_envelope(seq, cfg.target_regret)
            rows.append(found)
            ctx.log(H, **{f"{alg}/t_comp_tokens": found["t_comp_tokens"], f"{alg}/t_data": found["t_data"],
                          f"{alg}/regret": found["regret"]})
            ctx.progress(len(rows) / total, f"H={H} {alg}")
    return {"rows": rows}


SCALES = {
    "toy": {
        "horizons": [2],
        "max_doublings": 3,
        "mtss_T": 2,
        "mtss_N_reg": 2,
        "mtss_N_span": 2,
        "mtss_N_bar_span": 1,
        "target_regret": 0.2,
    },
    "quick": {},
    "paper": {"horizons": [2, 3, 4, 5, 6, 7, 8], "max_doublings": 12, "target_regret": 0.005, "mtss_T": 12},
}
