"""MTSS vs SpannerSampling on whole sequences as the horizon grows (Foster et al. 2025, Thm 5.1 vs Cor. 5.1).

Instances: the coverage-gap family (binary tokens, C_cond(π⋆_β) = 2, C_cov(π⋆_β) = 2^H), realisable both
autoregressively and at the sequence level. SpannerSampling runs on whole sequences through the weak
autoregressive oracle wrapped as a sequence sampler (features ϕ^seq/√H ∈ ℝ^{dH}; one sequence = H token
queries), MTSS runs on tokens with resets and anchor-feature queries. For each H and each algorithm the
*sampling* knob is doubled until the returned policy's exact regret is at most the target ε (same ε for both):
SpannerSampling's coverage bound Ĉ (M_rej ∝ Ĉ and T_span ∝ Ĉ as in Alg. 3 line 3 and App. G.4.2, with the
factor of M_rej a knob: theory 8e² ≈ 59 covers the truncation slack of Lemma G.6 and hides C_cov until
2^H > 59), MTSS's envelope M_rej (theory ∝ C_cond²); the data knobs stay fixed (T_exp, T_prompt ∝ dH for SpannerSampling, T for MTSS). Recorded at the first
success: T_comp in tokens and T_data (reward queries; for MTSS also the paper's reward + transition + reset
count). Regret is exact, J_β(π⋆_β) − J_β(π̂), for the law of the *sampler* each algorithm outputs with a known
normaliser (clipping at the envelope included; the ideal target law would hide a too-small envelope); for
SpannerSampling the mixture over its T_exp components and reference responses y′ is computed exactly.
Growth rates are least-squares slopes of log T against H (exponential rate per token) and against log H
(polynomial degree).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..common.config import param
from ..diagnostics.regret import regret
from ..explore.mtss import MTSS, MTSSConfig
from ..explore.mtss_subroutines import sampler_log_law
from ..explore.spanner_sampling import SpannerSampling, SpannerSamplingConfig
from ..explore.truncated_softmax import truncated_score
from ..problems.token_mdp import coverage_gap_family
from ..runtime.reporting.figures import pyplot, save_figure
from ..runtime.reporting.stats import fmt_ci
from ..runtime.run.registry import EMPIRICAL, Claim, Experiment, register


@dataclass
class MTSSVsSpannerConfig:
    horizons: list[int] = param([2, 3, 4, 5], "horizons H of the coverage-gap family", low=1, high=10)
    beta: float = param(0.5, "KL-regularisation β", low=0.0, low_open=True)
    p_good: float = param(0.25, "π_ref mass of the good token (C_cond = 2, C_cov = 2^H)", low=0.0, high=0.5,
                          low_open=True, high_open=True)
    d: int = param(2, "step-feature dimension d (sequence features have d·H)", low=1, high=2 ** 10)
    noise: float = param(0.0, "Gaussian reward-noise standard deviation", low=0.0)
    target_regret: float = param(0.05, "ε: both algorithms must reach J_β(π⋆_β) − J_β(π̂) ≤ ε", low=0.0, low_open=True)
    max_doublings: int = param(8, "search limit: knob values 1, 2, …, 2^max_doublings (≤ 20: 2^8× the paper's 2^12)",
                               low=0, high=20)
    mtss_T: int = param(8, "MTSS iterations T (theory dH²𝔠)", low=1, high=2 ** 12)
    mtss_N_reg: int = param(8, "MTSS FitValue repetitions N_reg", low=1, high=2 ** 16)
    mtss_N_span: int = param(8, "MTSS UncertainStateAction roll-ins N_span", low=1, high=2 ** 16)
    mtss_N_bar_span: int = param(4, "MTSS π_ref actions per reached state N̄_span", low=0, high=2 ** 16)
    mtss_nu: float = param(0.5, "MTSS truncation radius ν (theory 1/2)", low=0.0, low_open=True)
    mtss_delta_rej: float = param(0.05, "MTSS SoftmaxSampler failure probability δ_rej", low=0.0, high=1.0,
                                  low_open=True, high_open=True)
    span_T_exp_per_dim: int = param(16, "SpannerSampling T_exp = this·d·H (theory ∝ d²H²)", low=1, high=2 ** 16)
    span_T_prompt_per_dim: int = param(32, "SpannerSampling spanner prompts T_prompt = this·d·H (theory (R_max/β)²·T_exp)", low=1, high=2 ** 16)
    span_T_span_per_coverage: float = param(4.0, "SpannerSampling T_span = ⌈this·Ĉ⌉ (theory Ĉ·T_exp)", low=0.0, low_open=True, high=1000.0)
    span_exp_batch: int = param(8, "SpannerSampling exploration rounds sharing one θ (theory 1; batching only)", low=1, high=2 ** 12)
    span_M_factor: float = param(1.0, "SpannerSampling M_rej = this·Ĉ (theory 8e² ≈ 59, Alg. 3 line 3)", low=1.0, high=1000.0)
    span_nu: float = param(0.5, "SpannerSampling spanner radius ν (theory β/ε_stat, tiny)", low=0.0, low_open=True)


def spanner_sampler_log_table(policy, seq_inst) -> torch.Tensor:
    """Exact law [X, Y] of SpannerSampling's output sampler: mixture over its components θ^t and y′ ~ π_ref of
    SoftmaxSampler_{β,M_rej,δ_rej}(r^t(x, ·, y′)) with a known normaliser (evaluation code)."""
    base = seq_inst.base
    thetas, counts = policy.distinct_components()
    w = counts.to(base.dtype) / counts.sum()
    X, Y, D = base.phi.shape
    out = torch.full((X, Y), -math.inf, dtype=base.dtype)
    for k in range(thetas.shape[0]):
        for x in range(X):
            phi = base.phi[x]                                   # [Y, D]
            f = truncated_score(thetas[k], policy.sigma_inv, policy.nu, phi[None].expand(Y, Y, D), phi)  # [y′, y]
            law = sampler_log_law(base.log_ref[x][None].expand(Y, Y), f, policy.beta, policy.M_rej, policy.delta_rej)
            marg = torch.logsumexp(base.log_ref[x][:, None] + law, dim=0)
            out[x] = torch.logaddexp(out[x], marg + math.log(float(w[k])))
    return out


def clipping_envelope(seq_inst, eps: float, delta: float = 0.05) -> float:
    """M⋆(ε): the smallest envelope M whose SoftmaxSampler applied to π⋆_β itself (f = r⋆) has regret ≤ ε.

    A sampler with envelope M clips the density ratio π⋆_β/π_ref at M; C_cov(π⋆_β) is the envelope that never
    clips, but a regret ε tolerates clipping sequences that carry little π⋆_β mass. Bisection on log M (the
    regret is non-increasing in M), exact by enumeration of Y.
    """
    base = seq_inst.base
    f = seq_inst.reward.table.to(base.dtype)
    log_cov = float((seq_inst.optimal_log_policy() - base.log_ref).max())

    def reg(log_m):
        return regret(sampler_log_law(base.log_ref, f, seq_inst.beta, math.exp(log_m), delta), seq_inst)

    if reg(0.0) <= eps:
        return 1.0
    lo, hi = 0.0, log_cov + 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if reg(mid) <= eps:
            hi = mid
        else:
            lo = mid
    return math.exp(hi)


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
    sc = SpannerSamplingConfig(coverage_bound=C, B=seq.B, nu=cfg.span_nu, T_prompt=cfg.span_T_prompt_per_dim * cfg.d * H,
                               M_rej=cfg.span_M_factor * C, exp_batch=cfg.span_exp_batch,
                               T_span=math.ceil(cfg.span_T_span_per_coverage * C),
                               T_exp=cfg.span_T_exp_per_dim * cfg.d * H)
    res = SpannerSampling(sc).run(o.weak, o.reward, o.prompts, gen)
    led = res.ledger
    return {"regret": regret(spanner_sampler_log_table(res.policy, seq), seq), "t_comp_tokens": led["t_comp"] * H,
            "t_data": led["t_data"], "t_data_paper": led["t_data"], "prompts": led["prompts"],
            "spanner_size": res.spanner_size, "regret_target_law": regret(res.policy.log_prob_table(seq, law="ideal"), seq)}


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
                rec.update({"algorithm": alg, "H": H, "knob": knob, "reached": rec["regret"] <= cfg.target_regret})
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


def _fit(rows, alg, key):
    sel = sorted((r for r in rows if r["algorithm"] == alg), key=lambda r: r["H"])
    H = np.array([r["H"] for r in sel], float)
    y = np.log([max(r[key], 1) for r in sel])
    if len(H) < 2:
        return float("nan"), float("nan")
    return float(np.polyfit(H, y, 1)[0]), float(np.polyfit(np.log(H), y, 1)[0])


def claims(results: list[dict], cfg: MTSSVsSpannerConfig) -> list[Claim]:
    rows = [r for res in results for r in res["rows"]]
    reached = {a: sum(r["reached"] for r in rows if r["algorithm"] == a) for a in ("MTSS", "SpannerSampling")}
    n = {a: sum(r["algorithm"] == a for r in rows) for a in reached}
    out = [Claim("Both algorithms reach the same target regret at every H", "Thm 5.1 and Cor. 5.1 (both are ε-optimal)",
                 f"reached ε = {cfg.target_regret}: MTSS {reached['MTSS']}/{n['MTSS']}, SpannerSampling "
                 f"{reached['SpannerSampling']}/{n['SpannerSampling']}",
                 all(r["reached"] for r in rows),
                 f"sampling knob doubled up to 2^{cfg.max_doublings}; unreached runs report the last attempt", kind=EMPIRICAL)]
    rates = {a: [_fit(res["rows"], a, "t_comp_tokens") for res in results] for a in reached}
    sp_exp = [e for e, _ in rates["SpannerSampling"]]
    mt_exp = [e for e, _ in rates["MTSS"]]
    mt_deg = [p for _, p in rates["MTSS"]]
    knob_rate = [_fit(res["rows"], "SpannerSampling", "knob")[0] for res in results]
    clip_rate = [_fit(res["rows"], "SpannerSampling", "clip_envelope")[0] for res in results]
    Hmax = max(cfg.horizons)
    knob = {a: [r["knob"] for r in rows if r["algorithm"] == a and r["H"] == Hmax] for a in reached}
    clip = [r["clip_envelope"] for r in rows if r["algorithm"] == "SpannerSampling" and r["H"] == Hmax]
    out.append(Claim(
        "SpannerSampling on sequences needs a sampling effort that grows like C_cov = 2^H (exponential in H)",
        "Foster et al. 2025, Cor. 5.1 (T_comp = Õ(C_cov·…)) and Thm 2.1; the issue's expectation",
        f"Ĉ needed: log-rate per token {fmt_ci(knob_rate)} (log 2 = {math.log(2):.3f}), Ĉ = {knob['SpannerSampling']} at "
        f"H = {Hmax} where C_cov = {2 ** Hmax}; T_comp log-rate per token {fmt_ci(sp_exp)}; clipping envelope M⋆(ε) "
        f"log-rate {fmt_ci(clip_rate)}, M⋆ = {clip[0]:.3g} at H = {Hmax}",
        all(k >= 0.5 * math.log(2) for k in knob_rate),
        "verdict: the needed Ĉ grows at ≥ ½·log 2 per token on every seed (doubling grid, so the rate is coarse). "
        "What we found: the Ĉ SpannerSampling needs stays far below C_cov and tracks M⋆(ε), the smallest envelope "
        "whose sampler applied to π⋆ itself has regret ≤ ε (exact). C_cov is a supremum, attained on the all-good "
        "sequence that has π⋆ mass 2^−H; an envelope M only clips the ratio where it exceeds M, and a regret ε "
        "tolerates clipping sequences with little π⋆ mass, so M⋆(ε) grows like e^{cH} with c well below log 2 "
        "(c ≈ 0.3 at ε = 0.05, ≈ 0.45 at ε = 0.002). C_cov is the price of ε → 0 (M⋆ → C_cov) and of worst-case "
        "instances (Thm 2.1's needle); T_comp also grows here through T_exp, T_prompt ∝ dH", kind=EMPIRICAL))
    out.append(Claim(
        "MTSS pays C_cond, not C_cov: the envelope it needs stays O(C_cond) and T_comp grows polynomially",
        "Foster et al. 2025, Thm 5.1 / J.1 (T_comp ≤ poly(C_cond, T_data))",
        f"M_rej needed at H = {Hmax}: {knob['MTSS']} (C_cond = 2); T_comp log-log degree {fmt_ci(mt_deg)}, "
        f"log-rate per token {fmt_ci(mt_exp)} (SpannerSampling {fmt_ci(sp_exp)})",
        all(k <= 8 for k in knob["MTSS"]),
        "verdict: the needed envelope is ≤ 4·C_cond = 8 (Thm F.2's sufficient condition) at the largest H on every "
        "seed. Over this short range of H, MTSS's T_comp (≈ H²–H³ roll-out steps × the sampler's ≈ 4M log(4/δ) "
        "draws) is not smaller than SpannerSampling's: the exponential separation needs ε small enough that "
        "M⋆(ε) approaches C_cov, or longer horizons", kind=EMPIRICAL))
    dr = {a: [_fit(res["rows"], a, "t_data") for res in results] for a in reached}
    out.append(Claim(
        "Reward queries (T_data) grow polynomially for both",
        "Cor. 5.1 (T_data = Õ(d²H²)) and Thm J.1 (T_data = poly(d, B, H, 1/β, 1/ε))",
        f"log-log degree of T_data: SpannerSampling {fmt_ci([p for _, p in dr['SpannerSampling']])}, "
        f"MTSS {fmt_ci([p for _, p in dr['MTSS']])} (MTSS counts one query per per-step reward)",
        None, "no polynomial degree is stated in the paper for MTSS; reported, not judged", kind=EMPIRICAL))
    return out


def plot(results: list[dict], cfg: MTSSVsSpannerConfig, outdir) -> list:
    plt = pyplot()

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    xs = sorted(cfg.horizons)

    def gmean(alg, key, H):
        return math.exp(np.mean([math.log(max(r[key], 1e-300)) for res in results for r in res["rows"]
                                 if r["algorithm"] == alg and r["H"] == H]))

    for ax, key, label in ((axes[0], "t_comp_tokens", "T_comp (token queries)"), (axes[1], "t_data", "T_data (reward queries)")):
        for alg, c in (("MTSS", "C0"), ("SpannerSampling", "C1")):
            ax.plot(xs, [gmean(alg, key, H) for H in xs], marker="o", color=c, label=alg)
        ax.set_yscale("log")
        ax.set_xlabel("horizon H")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    axes[0].set_title(f"to regret ≤ {cfg.target_regret} (C_cov = 2^H, C_cond = 2)")
    ax = axes[2]
    ax.plot(xs, [gmean("SpannerSampling", "knob", H) for H in xs], marker="o", color="C1", label="Ĉ needed (SpannerSampling)")
    ax.plot(xs, [gmean("MTSS", "knob", H) for H in xs], marker="o", color="C0", label="M_rej needed (MTSS)")
    ax.plot(xs, [gmean("SpannerSampling", "clip_envelope", H) for H in xs], "k--", label="M⋆(ε): clipping envelope of π⋆")
    ax.plot(xs, [2.0 ** H for H in xs], "k:", label="C_cov = 2^H")
    ax.set_yscale("log")
    ax.set_xlabel("horizon H")
    ax.set_ylabel("sampling knob at the first success")
    ax.legend(fontsize=8)
    return [save_figure(fig, outdir, "mtss_vs_spanner.png")]


register(Experiment(
    name="mtss-vs-spanner",
    title="MTSS vs SpannerSampling on sequences: sampling and reward queries to the same regret as H grows",
    paper="foster", config=MTSSVsSpannerConfig, run=run, claims=claims, plot=plot,
    scales={"quick": {}, "paper": {"horizons": [2, 3, 4, 5, 6, 7, 8], "max_doublings": 12, "target_regret": 0.005,
                                   "mtss_T": 12}},
    seeds=3, description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
))
