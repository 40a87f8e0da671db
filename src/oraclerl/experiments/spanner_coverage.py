"""Reward queries vs sampling queries as the coverage grows (Foster et al. 2025, Thm 3.1 vs OnlineDPO and XPO).

For C_cov(π⋆_β) from 4 upwards we measure, for each algorithm, the reward queries (T_data) and sampling
queries (T_comp) it needs before its output reaches regret ε and stays there, on one instance per coverage
value, with exact regret. Instances ("needle" family, built here): every prompt has one *needle* response
whose feature is e₁ and carries a reward gap `gap`, and haystack responses with features orthogonal to e₁;
π_ref gives the needle the mass that makes C_cov hit the target exactly, while R_max, B and the haystack stay
fixed across coverage values. This is the mechanism of the coverage lower bounds (App. E, Xie et al.):
nothing but the needle reveals the e₁ direction. SpannerSampling uses the theory's C-dependence for its
knobs, T_span = ⌈κ·Ĉ⌉ and M_rej = m·Ĉ (Ĉ = exact C_cov), and fixed ν, T_prompt, T_exp; its T_data(T) counts
the spanner phase plus 2 per exploration round and its regret is the prefix average over components (Thm 3.1).
Because that schedule spends T_comp ∝ Ĉ by construction, the sampling claim measures the *need* instead: Ĉ is
halved (Ĉ = C_cov/2, C_cov/4, …, down to 1) until the run no longer reaches ε, and the smallest Ĉ that still
reached it (and the T_comp it spent) is regressed on C_cov.
OnlineDPO (strong oracle) and XPO (strong + weak oracle, exact partition function) are run for a fixed number
of rounds; best-of-n is reported as the inference-time reference (n reward queries *per prompt served*).
Log-log slopes against C_cov are fitted per seed. Finding while building it: with gap = 4 (e^{gap/β} ≈ 3·10³)
SpannerSampling's T_data slope was 0.34, driven by C_cov = 256, where π⋆_β puts (C−1)·m·e^{−gap/β} ≈ 9% on
the haystack, so every algorithm must also estimate the needle's gap more precisely (OnlineDPO and XPO needed
more data there too); this is the instance's C ≤ e^{R_max/β} coupling, not an effect of coverage on
SpannerSampling. With gap = 6 the haystack mass stays ≤ 0.2% and the slope is ≈ 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..common.config import param
from ..diagnostics import coverage_coefficient, regret
from ..errors import ConfigError
from ..explore.baselines import BestOfNPolicy
from ..explore.evaluation import first_reach, proper_curve
from ..explore.online_dpo import OnlineDPO, OnlineDPOConfig
from ..explore.xpo import XPO, XPOConfig, exact_partition
from ..models.linear_softmax import LinearSoftmaxModel
from ..models.rewards import LinearReward
from ..oracles import RewardNoise
from ..problems.instance import LinearSoftmaxInstance
from ..runtime.reporting.figures import pyplot, save_figure
from ..runtime.reporting.stats import fmt_ci, loglog_slope
from ..runtime.reporting.verdicts import separates
from ..runtime.run.registry import EMPIRICAL, Claim, Experiment, register
from ._spanner_runs import spanner_at

ALGORITHMS = ("spanner", "online-dpo", "xpo")


def needle_instance(d: int = 4, num_prompts: int = 4, num_responses: int = 64, beta: float = 0.5,
                    coverage: float = 16.0, gap: float = 6.0, hay_scale: float = 0.5, noise: float = 0.5,
                    seed: int = 0) -> LinearSoftmaxInstance:
    """A realisable instance whose C_cov(π⋆_β) equals ``coverage`` through π_ref's mass on a needle response.

    Response 0 of every prompt has ϕ = e₁; the others have ϕ = (0, u) with u uniform on a sphere shell of
    radius [½, 1] in ℝ^{d−1}. θ⋆ = (gap, w) with ‖w‖ = hay_scale, r⋆ = ⟨θ⋆, ϕ⟩ + c(x) ∈ [0, R_max]. With
    a = gap/β and m(x) = E_{hay} e^{⟨w, u⟩/β}, the needle's ratio π⋆/π_ref = e^a/(p e^a + (1−p) m) equals C for
    p = (e^a − C m)/(C (e^a − m)); this is the sup over responses when e^a ≥ C·m·max_u e^{⟨w,u⟩/β}/m.
    """
    g = torch.Generator().manual_seed(seed)
    X, Y = num_prompts, num_responses
    u = torch.randn(X, Y, d - 1, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=-1, keepdim=True) * (0.5 + 0.5 * torch.rand(X, Y, 1, generator=g, dtype=torch.float64))
    phi = torch.zeros(X, Y, d, dtype=torch.float64)
    phi[:, 1:, 1:] = u[:, 1:]
    phi[:, 0, 0] = 1.0
    w = torch.randn(d - 1, generator=g, dtype=torch.float64)
    theta = torch.cat([torch.tensor([gap], dtype=torch.float64), w / w.norm() * hay_scale])
    hay = torch.log_softmax(0.5 * torch.randn(X, Y - 1, generator=g, dtype=torch.float64), -1)
    score = phi @ theta
    a = gap / beta
    m = torch.logsumexp(hay + score[:, 1:] / beta, -1).exp()
    if not bool((math.exp(a) > coverage * m * (score[:, 1:] / beta).exp().max(-1).values / m).all()):
        raise ConfigError("gap", f"must satisfy e^(gap/β) > C·max e^(⟨w,u⟩/β) (the needle must be the argmax ratio); "
                          f"gap={gap} is too small for coverage={coverage} at beta={beta}")
    p = (math.exp(a) - coverage * m) / (coverage * (math.exp(a) - m))
    log_ref = torch.cat([torch.log(p)[:, None], torch.log1p(-p)[:, None] + hay], -1)
    offset = -score.min(-1).values
    return LinearSoftmaxInstance(
        base=LinearSoftmaxModel(log_ref, phi, beta), reward=LinearReward(theta, phi, offset), theta_star=theta,
        prompt_weights=torch.full((X,), 1.0 / X, dtype=torch.float64),
        r_max=float((score + offset[:, None]).max()), B=float(theta.norm()),
        noise=RewardNoise("gaussian", noise) if noise > 0 else RewardNoise(), name="needle",
        meta={"coverage": coverage, "gap": gap, "seed": seed})


@dataclass
class SpannerCoverageConfig:
    coverages: list[float] = param([4.0, 16.0, 64.0, 256.0], "target C_cov(π⋆_β) values (exact on each instance)", low=1.0, low_open=True, high=2.0 ** 20)
    d: int = param(4, "feature dimension", low=2, high=2 ** 10)
    num_prompts: int = param(4, "prompts |X|", low=1, high=2 ** 12)
    num_responses: int = param(64, "responses per prompt |Y|", low=3, high=2 ** 16)
    beta: float = param(0.5, "KL regularisation β", low=0.0, low_open=True)
    gap: float = param(6.0, "reward gap of the needle (fixed across coverages; needs e^{gap/β} ≫ max C)", low=0.0, low_open=True)
    noise: float = param(0.5, "std of the Gaussian reward noise", low=0.0)
    epsilon: float = param(0.02, "target regret ε", low=0.0, low_open=True)
    nu: float = param(0.5, "SpannerSampling ν (theory β/ε_stat ≈ 0.1 here: a tunable knob, docs/papers/foster2025_exploration.md §8.4)", low=0.0, low_open=True)
    T_prompt: int = param(128, "SpannerSampling spanner prompts (theory (R_max/β)²·T_exp)", low=1, high=2 ** 17)
    span_factor: float = param(4.0, "T_span = ⌈κ·Ĉ⌉ (theory κ = T_exp)", low=0.0, low_open=True, high=1000.0)
    m_factor: float = param(4.0, "M_rej = m·Ĉ (theory m = 8e² ≈ 59)", low=0.25, high=1000.0)
    T_exp: int = param(128, "SpannerSampling exploration rounds (budget)", low=1, high=2 ** 17)
    exp_batch: int = param(8, "rounds per θ refit, for every algorithm", low=1, high=2 ** 12)
    dpo_rounds: int = param(1024, "OnlineDPO rounds (budget)", low=1, high=2 ** 20)
    xpo_rounds: int = param(256, "XPO rounds (budget)", low=1, high=2 ** 20)
    xpo_alpha: float = param(0.1, "XPO optimism α", low=0.0, low_open=True)
    need_search: bool = param(True, "halve Ĉ from C_cov until ε is no longer reached (the sampling need)")
    bon_max_log2: int = param(14, "best-of-n is evaluated for n = 1, 2, 4, ..., 2^this (≤ 24: 2^10× the default 2^14)",
                               low=0, high=24)
    algorithms: list[str] = param(list(ALGORITHMS), "algorithms to run", choices=ALGORITHMS)


def _bon(inst, cfg) -> dict:
    regs = [(2 ** j, regret(BestOfNPolicy(2 ** j), inst)) for j in range(cfg.bon_max_log2 + 1)]
    reach = [n for n, r in regs if r <= cfg.epsilon]
    n_best, r_best = min(regs, key=lambda t: t[1])
    return {"n_reach": reach[0] if reach else None, "best_n": n_best, "best_regret": r_best}


def _spanner(inst, c_knob: float, cfg, gen):
    """SpannerSampling with the theory schedule at coverage knob Ĉ: T_span = ⌈κĈ⌉, M_rej = mĈ."""
    return spanner_at(inst, c_knob, nu=cfg.nu, T_prompt=cfg.T_prompt, span_factor=cfg.span_factor,
                      m_factor=cfg.m_factor, T_exp=cfg.T_exp, exp_batch=cfg.exp_batch, epsilon=cfg.epsilon, gen=gen)


def _need(inst, c_hat: float, reach: dict, cfg, ctx, cov) -> dict:
    """Smallest Ĉ on the grid C_cov·2^{−j} (≥ 1) that still reaches ε, with the T_comp and T_data it spent.

    Starts from the run at Ĉ = C_cov; ``reached_at_c_cov`` False means even the theory knob did not suffice."""
    best = {"c_hat": c_hat, "t_comp": reach["t_comp"], "t_data": reach["t_data"]} if not reach["censored"] else None
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
        inst = needle_instance(cfg.d, cfg.num_prompts, cfg.num_responses, cfg.beta, cov, cfg.gap, noise=cfg.noise,
                               seed=ctx.seeds.int(f"instance/{cov}") % 2 ** 31)
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
                o.strong, o.weak, o.reward, o.prompts, exact_partition(inst.base), ctx.generator(f"xpo/{cov}"))
            row["xpo"] = first_reach(proper_curve(out, inst), cfg.epsilon) | {"ledger": out.ledger}
        rows.append(row)
        ctx.log(i, **{f"{a}/t_data": row[a]["t_data"] for a in cfg.algorithms})
        ctx.progress((i + 1) / len(cfg.coverages), f"C_cov={c_hat:.3g}")
    return {"rows": rows}


def _slopes(results, alg, key):
    out, censored = [], 0
    for res in results:
        rows = [r for r in res["rows"] if alg in r]
        censored += sum(r[alg]["censored"] for r in rows)
        out.append(loglog_slope([r["coverage"] for r in rows], [max(r[alg][key], 1) for r in rows]))
    return out, censored


def _need_slopes(results):
    """Per seed: log-log slopes of the needed Ĉ and of the T_comp spent at it against C_cov (points where even
    Ĉ = C_cov missed ε are left out and counted)."""
    need, comp, missed = [], [], 0
    for res in results:
        rows = [r for r in res["rows"] if "spanner_need" in r and r["spanner_need"]["reached_at_c_cov"]]
        missed += sum("spanner_need" in r and not r["spanner_need"]["reached_at_c_cov"] for r in res["rows"])
        if len({r["coverage"] for r in rows}) >= 2:
            need.append(loglog_slope([r["coverage"] for r in rows], [r["spanner_need"]["c_hat"] for r in rows]))
            comp.append(loglog_slope([r["coverage"] for r in rows], [max(r["spanner_need"]["t_comp"], 1) for r in rows]))
    return need, comp, missed


def claims(results: list[dict], cfg: SpannerCoverageConfig) -> list[Claim]:
    out = []
    note = (f"ε = {cfg.epsilon}; C_cov ∈ {[round(c) for c in cfg.coverages]}; {len(results)} seeds; slope of log T vs "
            "log C_cov per seed, decided at the midpoint between prediction and alternative (not informative when "
            "the 95% interval straddles it; docs/experiments/spanner-coverage.md)")
    if "spanner" in cfg.algorithms:
        s, cens = _slopes(results, "spanner", "t_data")
        v = separates(s, 0.0, 1.0)
        out.append(Claim("SpannerSampling's T_data is flat in C_cov (active exploration)", "Foster et al. 2025, Thm 3.1",
                         f"slope {fmt_ci(s)}; {cens} censored points", v.holds and cens == 0,
                         note + f"; alternative: passive exploration's T_data ∝ C_cov. {v.text}; no censoring",
                         informative=v.informative, kind=EMPIRICAL))
        need, comp, missed = _need_slopes(results)
        if need or any("spanner_need" in r for res in results for r in res["rows"]):
            v = separates(need, 1.0, 0.0)
            out.append(Claim(
                "SpannerSampling's sampling need grows about linearly with C_cov: the smallest Ĉ that still reaches ε",
                "Foster et al. 2025, Thm 3.1 (T_comp = Õ(C_cov)·T_data²) and Thm 2.1 (sampling ≳ C_cov is necessary)",
                f"slope of the needed Ĉ {fmt_ci(need)}; T_comp spent at the need: slope {fmt_ci(comp)}; "
                f"{missed} points where Ĉ = C_cov itself missed ε",
                (v.holds and missed == 0) if need else None,
                note + "; Ĉ halved from C_cov (T_span = ⌈κĈ⌉, M_rej = mĈ) until ε is missed, so the need is "
                f"measured, not the schedule's spend (which is ∝ Ĉ by construction). Alternative: a need flat in "
                f"C_cov. {v.text}", informative=v.informative or not need, kind=EMPIRICAL))
    if "online-dpo" in cfg.algorithms:
        s, cens = _slopes(results, "online-dpo", "t_data")
        v = separates(s, 1.0, 0.0)
        out.append(Claim("OnlineDPO's T_data grows with C_cov (passive exploration)",
                         "Foster et al. 2025, App. B.1 (T_data ≳ min{C_cov, e^{R_max/β}}, Xie et al.)",
                         f"slope {fmt_ci(s)}; {cens} censored", v.holds,
                         note + "; censored points count at the budget (a lower bound on the need, so censoring "
                         f"can only flatten the slope). Alternative: flat. {v.text}", informative=v.informative, kind=EMPIRICAL))
    if "xpo" in cfg.algorithms:
        s, cens = _slopes(results, "xpo", "t_data")
        v = separates(s, 0.0, 1.0)
        out.append(Claim("XPO's T_data is flat in C_cov", "Foster et al. 2025, Eq. 4", f"slope {fmt_ci(s)}; {cens} censored",
                         v.holds and cens == 0,
                         note + "; XPO is given the exact partition function (Thm 4.1: not efficiently implementable). "
                         f"Alternative: T_data ∝ C_cov. {v.text}; no censoring", informative=v.informative, kind=EMPIRICAL))
    bon = [r["bon"] for res in results for r in res["rows"]]
    reach = [(r["coverage"], r["bon"]["n_reach"]) for res in results for r in res["rows"]]
    ok = [(c, n) for c, n in reach if n is not None]
    slope = loglog_slope([c for c, _ in ok], [n for _, n in ok]) if len({c for c, _ in ok}) > 1 else float("nan")
    out.append(Claim("Best-of-n on the reward needs n growing with C_cov to reach ε (n reward queries per prompt served)",
                     "Foster et al. 2025, §2 (inference-time baseline); best-of-n law (Beirami et al.)",
                     f"n to reach ε vs C_cov: log-log slope {slope:.2f}; {len(reach) - len(ok)} of {len(reach)} not reached "
                     f"with n ≤ 2^{cfg.bon_max_log2}; best regret over n in [{min(b['best_regret'] for b in bon):.3g}, "
                     f"{max(b['best_regret'] for b in bon):.3g}]", None,
                     "reported, not judged: best-of-n is not the KL-regularised optimum and pays its n reward queries "
                     "for every prompt it serves, unlike a trained policy, so no budget can be matched", kind=EMPIRICAL))
    return out


def plot(results: list[dict], cfg: SpannerCoverageConfig, outdir) -> list:
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in zip(("t_data", "t_comp"), axes):
        for alg in cfg.algorithms:
            xs = [r["coverage"] for r in results[0]["rows"]]
            ys = [np.mean([res["rows"][i][alg][key] for res in results]) for i in range(len(xs))]
            ax.plot(xs, ys, marker="o", label=f"{alg} (Ĉ = C_cov)" if alg == "spanner" else alg)
        if key == "t_comp" and all("spanner_need" in r for res in results for r in res["rows"]):
            xs = [r["coverage"] for r in results[0]["rows"]]
            ax.plot(xs, [np.mean([res["rows"][i]["spanner_need"]["t_comp"] for res in results]) for i in range(len(xs))],
                    marker="s", ls="--", color="C0", label="spanner at the needed Ĉ")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("C_cov(π⋆_β)")
        ax.set_ylabel(f"{key} to reach regret ≤ {cfg.epsilon}")
        ax.legend(fontsize=8)
    fig.suptitle("Coverage vs oracle queries (Foster et al. Thm 3.1)")
    return [save_figure(fig, outdir, "spanner_coverage.png")]


register(Experiment(
    name="spanner-coverage",
    title="T_data and T_comp to reach regret ε vs C_cov: SpannerSampling, OnlineDPO, XPO",
    paper="foster", config=SpannerCoverageConfig, run=run, claims=claims, plot=plot,
    scales={"quick": {}, "paper": {"coverages": [4.0, 16.0, 64.0, 256.0, 1024.0], "gap": 7.0, "num_prompts": 16,
                                   "T_exp": 1024, "T_prompt": 512, "dpo_rounds": 8192, "xpo_rounds": 2048,
                                   "epsilon": 0.01}},
    seeds=3, description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
))
