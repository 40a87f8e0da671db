"""mtss-vs-spanner analysis: the claims and the figure, read from the stored results only (one function per
claim).

Why each verdict window is what it is, and what the needed Ĉ was found to track:
docs/experiments/mtss-vs-spanner.md.
"""

from __future__ import annotations

import math

import numpy as np

from ...runtime.reporting.figures import finish, pyplot, style
from ...runtime.reporting.stats import fmt_ci
from ...runtime.run.registry import EMPIRICAL, Claim

ALGORITHMS = ("MTSS", "SpannerSampling")


def _rows(results: list[dict]) -> list[dict]:
    return [r for res in results for r in res["rows"]]


def _fit(rows, alg, key):
    """(exponential rate per token, polynomial degree): least-squares slopes of log ``key`` against H and
    log H."""
    sel = sorted((r for r in rows if r["algorithm"] == alg), key=lambda r: r["H"])
    H = np.array([r["H"] for r in sel], float)
    y = np.log([max(r[key], 1) for r in sel])
    if len(H) < 2:
        return float("nan"), float("nan")
    return float(np.polyfit(H, y, 1)[0]), float(np.polyfit(np.log(H), y, 1)[0])


def _rates(results, alg, key) -> list[tuple[float, float]]:
    return [_fit(res["rows"], alg, key) for res in results]


def _knobs_at_max_h(results, cfg, alg, key="knob") -> list[float]:
    return [r[key] for r in _rows(results) if r["algorithm"] == alg and r["H"] == max(cfg.horizons)]


def both_reach(results: list[dict], cfg) -> Claim:
    rows = _rows(results)
    reached = {a: sum(r["reached"] for r in rows if r["algorithm"] == a) for a in ALGORITHMS}
    n = {a: sum(r["algorithm"] == a for r in rows) for a in ALGORITHMS}
    return Claim(
        "Both algorithms reach the same target regret at every H",
        "Thm 5.1 and Cor. 5.1 (both are ε-optimal)",
        f"reached ε = {cfg.target_regret}: MTSS {reached['MTSS']}/{n['MTSS']}, SpannerSampling "
        f"{reached['SpannerSampling']}/{n['SpannerSampling']}",
        all(r["reached"] for r in rows),
        f"sampling knob doubled up to 2^{cfg.max_doublings}; unreached runs report the last attempt",
        kind=EMPIRICAL,
    )


def spanner_exponential(results: list[dict], cfg) -> Claim:
    sp_exp = [e for e, _ in _rates(results, "SpannerSampling", "t_comp_tokens")]
    knob_rate = [e for e, _ in _rates(results, "SpannerSampling", "knob")]
    clip_rate = [e for e, _ in _rates(results, "SpannerSampling", "clip_envelope")]
    Hmax = max(cfg.horizons)
    clip = _knobs_at_max_h(results, cfg, "SpannerSampling", "clip_envelope")
    return Claim(
        "SpannerSampling on sequences needs a sampling effort that grows like C_cov = 2^H (exponential in H)",
        "Foster et al. 2025, Cor. 5.1 (T_comp = Õ(C_cov·…)) and Thm 2.1; the issue's expectation",
        f"Ĉ needed: log-rate per token {fmt_ci(knob_rate)} (log 2 = {math.log(2):.3f}), Ĉ = "
        f"{_knobs_at_max_h(results, cfg, 'SpannerSampling')} at H = {Hmax} where C_cov = {2 ** Hmax}; T_comp "
        f"log-rate per token {fmt_ci(sp_exp)}; clipping envelope M⋆(ε) log-rate {fmt_ci(clip_rate)}, M⋆ = "
        f"{clip[0]:.3g} at H = {Hmax}",
        all(k >= 0.5 * math.log(2) for k in knob_rate),
        "verdict: the needed Ĉ grows at ≥ ½·log 2 per token on every seed (doubling grid, so the rate is "
        "coarse). What we found: the Ĉ SpannerSampling needs stays far below C_cov and tracks M⋆(ε), the "
        "smallest envelope whose sampler applied to π⋆ itself has regret ≤ ε (exact). C_cov is a supremum, "
        "attained on the all-good sequence that has π⋆ mass 2^−H; an envelope M only clips the ratio where "
        "it exceeds M, and a regret ε tolerates clipping sequences with little π⋆ mass, so M⋆(ε) grows like "
        "e^{cH} with c well below log 2 (c ≈ 0.3 at ε = 0.05, ≈ 0.45 at ε = 0.002). C_cov is the price of ε "
        "→ 0 (M⋆ → C_cov) and of worst-case instances (Thm 2.1's needle); T_comp also grows here through "
        "T_exp, T_prompt ∝ dH", kind=EMPIRICAL)


def mtss_pays_c_cond(results: list[dict], cfg) -> Claim:
    mt = _rates(results, "MTSS", "t_comp_tokens")
    sp_exp = [e for e, _ in _rates(results, "SpannerSampling", "t_comp_tokens")]
    knob = _knobs_at_max_h(results, cfg, "MTSS")
    return Claim(
        "MTSS pays C_cond, not C_cov: the envelope it needs stays O(C_cond) and T_comp grows polynomially",
        "Foster et al. 2025, Thm 5.1 / J.1 (T_comp ≤ poly(C_cond, T_data))",
        f"M_rej needed at H = {max(cfg.horizons)}: {knob} (C_cond = 2); T_comp log-log degree "
        f"{fmt_ci([p for _, p in mt])}, log-rate per token {fmt_ci([e for e, _ in mt])} "
        f"(SpannerSampling {fmt_ci(sp_exp)})",
        all(k <= 8 for k in knob),
        "verdict: the needed envelope is ≤ 4·C_cond = 8 (Thm F.2's sufficient condition) at the largest H on "
        "every seed. Over this short range of H, MTSS's T_comp (≈ H²–H³ roll-out steps × the sampler's ≈ 4M "
        "log(4/δ) draws) is not smaller than SpannerSampling's: the exponential separation needs ε small "
        "enough that M⋆(ε) approaches C_cov, or longer horizons", kind=EMPIRICAL)


def t_data_polynomial(results: list[dict], cfg) -> Claim:
    dr = {a: _rates(results, a, "t_data") for a in ALGORITHMS}
    return Claim(
        "Reward queries (T_data) grow polynomially for both",
        "Cor. 5.1 (T_data = Õ(d²H²)) and Thm J.1 (T_data = poly(d, B, H, 1/β, 1/ε))",
        f"log-log degree of T_data: SpannerSampling {fmt_ci([p for _, p in dr['SpannerSampling']])}, "
        f"MTSS {fmt_ci([p for _, p in dr['MTSS']])} (MTSS counts one query per per-step reward)",
        None, "no polynomial degree is stated in the paper for MTSS; reported, not judged", kind=EMPIRICAL)


CLAIMS = (both_reach, spanner_exponential, mtss_pays_c_cond, t_data_polynomial)


def claims(results: list[dict], cfg) -> list[Claim]:
    return [claim(results, cfg) for claim in CLAIMS]


def plot(results: list[dict], cfg, outdir) -> list:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    xs = sorted(cfg.horizons)

    def gmean(alg, key, H):
        return math.exp(np.mean([math.log(max(r[key], 1e-300)) for r in _rows(results)
                                 if r["algorithm"] == alg and r["H"] == H]))

    for ax, key, label in ((axes[0], "t_comp_tokens", "T_comp (token queries)"),
                           (axes[1], "t_data", "T_data (reward queries)")):
        for alg, c in (("MTSS", "C0"), ("SpannerSampling", "C1")):
            ax.plot(xs, [gmean(alg, key, H) for H in xs], marker="o", color=c, label=alg)
        style(ax, yscale="log", xlabel="horizon H", ylabel=label, legend=8)
    axes[0].set_title(f"to regret ≤ {cfg.target_regret} (C_cov = 2^H, C_cond = 2)")
    ax = axes[2]
    ax.plot(xs, [gmean("SpannerSampling", "knob", H) for H in xs], marker="o", color="C1",
            label="Ĉ needed (SpannerSampling)")
    ax.plot(xs, [gmean("MTSS", "knob", H) for H in xs], marker="o", color="C0", label="M_rej needed (MTSS)")
    ax.plot(xs, [gmean("SpannerSampling", "clip_envelope", H) for H in xs], "k--",
            label="M⋆(ε): clipping envelope of π⋆")
    ax.plot(xs, [2.0 ** H for H in xs], "k:", label="C_cov = 2^H")
    return finish(fig, outdir, "mtss_vs_spanner.png", ax, yscale="log", xlabel="horizon H",
                  ylabel="sampling knob at the first success", legend=8)
