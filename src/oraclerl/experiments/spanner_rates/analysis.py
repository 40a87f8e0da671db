"""spanner-rates analysis: the claims and the figure, read from the stored results only (one function per
claim).

Why each verdict window is what it is: docs/experiments/spanner-rates.md.
"""

from __future__ import annotations

import numpy as np

from ...runtime.reporting.figures import finish, pyplot
from ...runtime.reporting.stats import fmt_ci, loglog_slope
from ...runtime.reporting.verdicts import separation_claim
from ...runtime.run.registry import Claim


def _mean_curves(results, cfg):
    """Per d: the averaged-regret curve (mean over seeds) against mean T_data, second half of exploration."""
    out = {}
    for i, d in enumerate(cfg.dims):
        curves = [res["rows"][i]["curve"] for res in results]
        n = min(len(c) for c in curves)
        t = np.mean([[p["t_data"] for p in c[:n]] for c in curves], axis=0)
        r = np.mean([[p["regret"] for p in c[:n]] for c in curves], axis=0)
        out[d] = (t[n // 2:], r[n // 2:])
    return out


def _joint_fit(curves) -> tuple[float, float]:
    """Exponents (a, b) of the least-squares fit log regret = log A + a log d + b log T_data."""
    X = np.concatenate([np.stack([np.ones(len(t)), np.log(np.full(len(t), d)), np.log(t)], 1)
                        for d, (t, _) in curves.items()])
    y = np.concatenate([np.log(np.maximum(r, 1e-300)) for _, r in curves.values()])
    _, a, b = np.linalg.lstsq(X, y, rcond=None)[0]
    return a, b


def _component_rates(results) -> list[float]:
    """Per seed: mean over d of the log-log slope of the component regret r_t against T_data(t), over the
    whole exploration phase (fast rate −1, slow rate −½)."""
    out = []
    for res in results:
        slopes = []
        for row in res["rows"]:
            pts = [(p["t_data"], p["component_regret"]) for p in row["curve"] if "component_regret" in p]
            if len(pts) >= 3:
                slopes.append(loglog_slope([t for t, _ in pts], [max(r, 1e-300) for _, r in pts]))
        if slopes:
            out.append(float(np.mean(slopes)))
    return out


def fast_rate(results: list[dict], cfg) -> Claim:
    curves = _mean_curves(results, cfg)
    rate = {d: loglog_slope(t, np.maximum(r, 1e-300)) for d, (t, r) in curves.items()}
    a, b = _joint_fit(curves)
    comp = _component_rates(results)
    return separation_claim(
        "Regret decays like 1/T_data (fast rate 1/(βε), not the slow 1/ε²)",
        "Foster et al. 2025, Thm 3.1",
        "slope of log component regret vs log T_data over exploration, mean over d per seed: "
        f"{fmt_ci(comp)}; prefix-averaged regret (second half): "
        + ", ".join(f"d={d}: {v:.2f}" for d, v in rate.items())
        + f"; joint fit regret ∝ d^{a:.2f}·T_data^{b:.2f}",
        comp, -1.0, -0.5,
        note_before="the component r_t = J(π⋆) − J(π_{θ^t}) is fitted, not the prefix average: the "
        "average of c/T_data(t) with T_data(t) = n₀ + 2t (n₀ = spanner data) is ≈ (c/2t)·log(1 + 2t/n₀), "
        "whose slope is nearer −½ until 2t ≫ n₀, i.e. it would mimic the slow rate. ",
    )


def spanner_size(results: list[dict], cfg) -> Claim:
    span = [loglog_slope([r["d"] for r in res["rows"]], [max(r["spanner_size"], 1) for r in res["rows"]])
            for res in results]
    return separation_claim(
        "The spanner size grows like d/ν² ∝ d² when ν follows the theory's d^{−1/2}",
        "Foster et al. 2025, Lemma G.8",
        f"slope of |Ψ_span| in d: {fmt_ci(span)} (ν ∝ d^−{cfg.nu_power:g})",
        span, 2.0, 1.0,
        note_before="elliptic-potential bound |Ψ_span| ≲ d·log(1 + 1/(νλ))/ν²; alternative: a ν that ignores "
        "d gives ∝ d. ",
    )


def t_data_in_d(results: list[dict], cfg) -> Claim:
    a, _ = _joint_fit(_mean_curves(results, cfg))
    rows = [r for res in results for r in res["rows"]]
    ratios = [r["reach"]["t_data"] * cfg.beta * cfg.epsilon / r["d"] ** 2 for r in rows]
    censored = sum(r["reach"]["censored"] for r in rows)
    dslopes = [
        loglog_slope([r["d"] for r in res["rows"]], [max(r["reach"]["t_data"], 1) for r in res["rows"]])
        for res in results
    ]
    return separation_claim(
        "T_data to reach ε grows like d² (Theorem 3.1's d²/(βε))",
        "Foster et al. 2025, Thm 3.1",
        f"slope in d of T_data(ε={cfg.epsilon}): {fmt_ci(dslopes)}; joint fit regret ∝ d^{a:.2f} at fixed "
        f"T_data; T_data·βε/d² in [{min(ratios):.3g}, {max(ratios):.3g}]; {censored} censored",
        dslopes, 2.0, 1.0,
        note_before="Theorem 3.1 is a worst-case upper bound. Its d² is (i) the spanner size d/ν² and (ii) "
        "the high-probability least-squares radius ε_stat² ∝ d; the alternative d¹ is (ii) alone. On these "
        "random instances (fixed C_cov, features spread on the sphere) the spanner phase alone fits θ to "
        "near ε at large d, so T_data(ε) is dominated by the spanner offset at large d and by reward noise "
        "at small d. ",
        note_after="; no censoring",
        require=censored == 0,
    )


CLAIMS = (fast_rate, spanner_size, t_data_in_d)


def claims(results: list[dict], cfg) -> list[Claim]:
    return [claim(results, cfg) for claim in CLAIMS]


def plot(results: list[dict], cfg, outdir) -> list:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for i, d in enumerate(cfg.dims):
        for k, res in enumerate(results):
            c = res["rows"][i]["curve"]
            ax.plot([p["t_data"] for p in c], [p["regret"] for p in c], color=f"C{i}", alpha=0.7,
                    label=f"d={d}" if k == 0 else None)
    ax.axhline(cfg.epsilon, color="k", ls=":", lw=1)
    return finish(
        fig,
        outdir,
        "spanner_rates.png",
        ax,
        xscale="log",
        yscale="log",
        xlabel="T_data (reward queries)",
        ylabel="averaged regret E_t[J(π⋆) − J(π̂ᵗ)]",
        title="SpannerSampling rates (Foster et al. Thm 3.1)",
        legend=8,
    )
