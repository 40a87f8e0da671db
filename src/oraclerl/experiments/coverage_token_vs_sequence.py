"""Token-level vs sequence-level coverage across the horizon (Foster et al. 2025, Eq. 3 vs Eq. 13, §5).

MTSS pays for the conditional (token-level) coverage C_cond(π⋆_β) = max_h sup π⋆_h/π_{h,ref}, SpannerSampling on
whole sequences for the sequence coverage C_cov(π⋆_β) = sup π⋆_β(y|x)/π_ref(y|x). Both are computed exactly
(C_cond as a max over automaton states, C_cov by a max-product dynamic programme, no enumeration of A^H), for
the coverage-gap family (binary tokens, π_ref(good) = 1/4, π⋆(good) = 1/2; the paper's example with C_cond ≤ 2
and C_cov ≥ 2^H) and for random realisable token MDPs (random automata with |A| actions). The growth rate
of log C per token is the slope of a least-squares fit of log C against H.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..common.config import param
from ..diagnostics.token_coverage import conditional_coverage, sequence_coverage
from ..problems.token_mdp import coverage_gap_family, random_token_mdp
from ..runtime.reporting.figures import pyplot, save_figure
from ..runtime.reporting.stats import fmt_ci
from ..runtime.run.registry import EMPIRICAL, IDENTITY, Claim, Experiment, register


@dataclass
class CoverageTokenVsSequenceConfig:
    horizons: list[int] = param([1, 2, 4, 6, 8, 12, 16], "horizons H", low=1, high=24)
    beta: float = param(0.5, "KL-regularisation β", low=0.0, low_open=True)
    p_good: float = param(0.25, "π_ref mass of the good token in the family (π⋆(good) = 2p)", low=0.0, high=0.5,
                          low_open=True, high_open=True)
    d: int = param(4, "step-feature dimension d", low=2, high=2 ** 10)
    num_actions: list[int] = param([2, 4], "|A| of the random instances", low=2, high=2 ** 10)
    num_states: int = param(16, "automaton states per layer of the random instances (H up to 16 without enumeration)", low=1, high=2 ** 12)
    num_random: int = param(4, "random instances per (|A|, H) and seed", low=1, high=2 ** 10)
    reward_scale: float = param(1.0, "‖u_h‖ of the random per-step rewards", low=0.0, low_open=True)
    num_prompts: int = param(2, "prompts per instance", low=1, high=2 ** 10)


def run(cfg: CoverageTokenVsSequenceConfig, ctx) -> dict:
    rows = []
    total = len(cfg.horizons) * (1 + len(cfg.num_actions) * cfg.num_random)
    for H in cfg.horizons:
        fam = coverage_gap_family(H, beta=cfg.beta, p_good=cfg.p_good, d=cfg.d, num_prompts=cfg.num_prompts,
                                  seed=ctx.seeds.int(f"family/{H}") % 2 ** 31)
        rows.append({"kind": "family", "H": H, "num_actions": 2, "c_cond": conditional_coverage(fam),
                     "c_cov": sequence_coverage(fam), "c_cov_theory": 2.0 ** H})
        for A in cfg.num_actions:
            for k in range(cfg.num_random):
                inst = random_token_mdp(num_actions=A, horizon=H, d=cfg.d, beta=cfg.beta, num_prompts=cfg.num_prompts,
                                        reward_scale=cfg.reward_scale, num_states=cfg.num_states,
                                        seed=ctx.seeds.int(f"random/{A}/{H}/{k}") % 2 ** 31)
                rows.append({"kind": f"random |A|={A}", "H": H, "num_actions": A, "c_cond": conditional_coverage(inst),
                             "c_cov": sequence_coverage(inst)})
        ctx.log(H, **{"coverage/family_c_cov": rows[-1 - len(cfg.num_actions) * cfg.num_random]["c_cov"]})
        ctx.progress(len(rows) / total, f"H={H}")
    return {"rows": rows}


def _rates(rows, kind):
    """Per-token growth rates (slopes of log C_cond and log C_cov against H) and the R² of the log C_cov fit."""
    sel = [r for r in rows if r["kind"] == kind]
    H = np.array([r["H"] for r in sel], float)
    if len(set(H)) < 2:
        return float("nan"), float("nan"), float("nan")
    cond = np.polyfit(H, np.log([r["c_cond"] for r in sel]), 1)[0]
    y = np.log([r["c_cov"] for r in sel])
    fit = np.polyfit(H, y, 1)
    r2 = 1 - float(((np.polyval(fit, H) - y) ** 2).sum()) / max(float(((y - y.mean()) ** 2).sum()), 1e-300)
    return float(cond), float(fit[0]), r2


def claims(results: list[dict], cfg: CoverageTokenVsSequenceConfig) -> list[Claim]:
    fam = [r for res in results for r in res["rows"] if r["kind"] == "family"]
    cond_err = max(abs(r["c_cond"] - 2.0) for r in fam)
    cov_ratio = [r["c_cov"] / r["c_cov_theory"] for r in fam]
    out = [Claim(
        "On the coverage-gap family C_cond(π⋆_β) ≤ 2 while C_cov(π⋆_β) ≥ 2^H (H up to 16)",
        "Foster et al. 2025, §5 (after Eq. 13)",
        f"max |C_cond − 2| = {cond_err:.2e}; C_cov/2^H in [{min(cov_ratio):.6f}, {max(cov_ratio):.6f}] for H ≤ {max(cfg.horizons)}",
        cond_err <= 1e-9 and all(abs(q - 1) <= 1e-9 for q in cov_ratio),
        "exact values (max over automaton states / max-product DP); π⋆(good) = 2p at every state", kind=IDENTITY)]
    ordered = all(1 - 1e-12 <= r["c_cov"] <= r["c_cond"] ** r["H"] * (1 + 1e-9) for res in results for r in res["rows"])
    above = sum(r["c_cov"] >= r["c_cond"] for res in results for r in res["rows"])
    n_all = sum(len(res["rows"]) for res in results)
    out.append(Claim("1 ≤ C_cov ≤ C_cond^H on every instance", "Eq. 3 and Eq. 13 (a sequence ratio is a product of H token ratios)",
                     f"{n_all} instances checked; C_cov ≥ C_cond on {above} of them", ordered,
                     "C_cov ≥ C_cond is not a theorem: the prefix leading to the largest token ratio may itself be "
                     "down-weighted by π⋆_β", kind=IDENTITY))
    for A in cfg.num_actions:
        kind = f"random |A|={A}"
        rates = [_rates(res["rows"], kind) for res in results]
        cond = [c for c, _, _ in rates]
        cov = [v for _, v, _ in rates]
        ok = all(v > 0 and c < v for c, v, _ in rates)
        out.append(Claim(
            f"Random realisable token MDPs (|A| = {A}): log C_cov grows with H faster than log C_cond",
            "Foster et al. 2025, §5 (MTSS pays C_cond, SpannerSampling on sequences pays C_cov)",
            f"growth per token: log C_cov {fmt_ci(cov)} (R² ≥ {min(r for _, _, r in rates):.3f}), log C_cond {fmt_ci(cond)}",
            ok, f"verdict: on every seed the least-squares slope of log C_cov against H is positive and above that of "
                f"log C_cond (R² reports how linear log C_cov is in H); {cfg.num_random} instances per (H, seed), automata with {cfg.num_states} states per layer. "
                "C_cond grows slowly with H only because its supremum runs over more states (an extreme-value effect), "
                "not by compounding over tokens", kind=EMPIRICAL))
    return out


def plot(results: list[dict], cfg: CoverageTokenVsSequenceConfig, outdir) -> list:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    kinds = ["family"] + [f"random |A|={A}" for A in cfg.num_actions]
    colors = dict(zip(kinds, ["C0", "C1", "C2", "C3", "C4"]))
    for kind in kinds:
        for key, ls, mk in (("c_cov", "-", "o"), ("c_cond", "--", "s")):
            xs = sorted(cfg.horizons)
            ys = [math.exp(np.mean([math.log(r[key]) for res in results for r in res["rows"]
                                    if r["kind"] == kind and r["H"] == H])) for H in xs]
            ax.plot(xs, ys, ls=ls, marker=mk, color=colors[kind], label=f"{kind}: {'C_cov' if key == 'c_cov' else 'C_cond'}")
    xs = sorted(cfg.horizons)
    ax.plot(xs, [2.0 ** h for h in xs], "k:", lw=1, label="2^H")
    ax.set_yscale("log")
    ax.set_xlabel("horizon H")
    ax.set_ylabel("coverage (geometric mean over instances and seeds)")
    ax.set_title("Token-level C_cond vs sequence-level C_cov")
    ax.legend(fontsize=7)
    return [save_figure(fig, outdir, "coverage_token_vs_sequence.png")]


register(Experiment(
    name="coverage-token-vs-sequence",
    title="Token-level coverage C_cond vs sequence coverage C_cov across the horizon H",
    paper="foster", config=CoverageTokenVsSequenceConfig, run=run, claims=claims, plot=plot,
    scales={"quick": {}, "paper": {"horizons": list(range(1, 17)), "num_random": 16, "num_actions": [2, 4, 16]}},
    seeds=3, description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
))
