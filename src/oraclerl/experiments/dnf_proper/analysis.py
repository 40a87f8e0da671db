"""dnf-proper analysis: the claims and the figure, read from the stored results only (one function per claim).

Why each verdict window is what it is, and why budgets are matched on reward queries:
docs/experiments/dnf-proper.md.
"""

from __future__ import annotations

import numpy as np

from ...runtime.reporting.figures import finish, pyplot
from ...runtime.reporting.stats import fmt_ci
from ...runtime.run.registry import EMPIRICAL, IDENTITY, Claim

ALGORITHMS = ("spanner", "online-dpo", "xpo")


def _frac(results, alg):
    return [r[alg]["clause_mass"] / r["opt_clause_mass"] for r in results]


def _common(results, cfg) -> str:
    budget = [r["spanner"]["ledger"]["t_data"] for r in results]
    return (
        f"β = {cfg.beta}, d = {cfg.num_vars}, m = {cfg.num_clauses}, k = {cfg.k}; same reward budget for all "
        f"(T_data = {budget}); sampling queries not matched (SpannerSampling's T_comp ∝ C_cov is the price "
        "of improper exploration; more rounds for a proper learner would also raise its reward budget, see "
        f"docs/experiments/dnf-proper.md); ratio = output clause mass / π⋆_β's clause mass; {len(results)} "
        "instances"
    )


def online_dpo_stays(results: list[dict], cfg) -> Claim:
    dpo = _frac(results, "online-dpo")
    ref = fmt_ci([r["ref_clause_mass"] / r["opt_clause_mass"] for r in results])
    return Claim(
        "OnlineDPO (proper, passive) keeps its mass on the null response",
        "Foster et al. 2025, Thm 4.1, Lemma H.2",
        f"clause-mass ratio {fmt_ci(dpo)} (π_ref: {ref})",
        max(dpo) <= 0.25,
        _common(results, cfg) + ". Verdict: ratio ≤ 0.25 on every instance",
        kind=EMPIRICAL,
    )


def xpo_stays(results: list[dict], cfg) -> Claim:
    xpo = _frac(results, "xpo")
    return Claim(
        "XPO (proper, exact partition function) keeps its mass on the null response",
        "Foster et al. 2025, Thm 4.1",
        f"clause-mass ratio {fmt_ci(xpo)}; val(sgn θ)/val(φ) = "
        f"{[r['xpo']['val_sgn'] / r['val'] for r in results]}",
        max(xpo) <= 0.25,
        _common(results, cfg) + ". Does not hold at this scale: the optimism term −α Σ log Z_θ is a smooth "
        "relaxation of Max-k-DNF, and with the exact partition function (|Y| = m + 1) and d = 10 projected "
        "gradient finds a (near-)maximising assignment within a few fits. Theorem 4.1 is a computational "
        "statement under ETH for large d and k(n) with gap instances; the needed computation (minimising "
        "XPO's non-convex objective) is exactly what the theorem says cannot be done efficiently in general. "
        "Verdict: ratio ≤ 0.25",
        kind=EMPIRICAL,
    )


def lemma_h2(results: list[dict], cfg) -> Claim:
    h2 = all(r[a]["clause_mass"] <= r[a]["h2_bound"] + 1e-12 for r in results for a in ("online-dpo", "xpo"))
    return Claim(
        "Every proper output obeys Lemma H.2: clause mass ≤ 2(val(sgn θ)/m + e^{−1/(βk)})",
        "Foster et al. 2025, Lemma H.2",
        f"holds on all {2 * len(results)} outputs" if h2 else "violated",
        h2,
        "exact clause masses",
        kind=IDENTITY,
    )


def spanner_moves(results: list[dict], cfg) -> Claim:
    sp = _frac(results, "spanner")
    return Claim(
        "SpannerSampling (improper) moves its mass off the null response with the same reward budget",
        "Foster et al. 2025, §4 (SpannerSampling is improper; Thm 3.1)",
        f"clause-mass ratio {fmt_ci(sp)}; regret {fmt_ci([r['spanner']['regret'] for r in results])} vs base "
        f"{fmt_ci([r['base_regret'] for r in results])}; "
        f"T_comp {fmt_ci([r['spanner']['ledger']['t_comp'] for r in results])}",
        min(sp) >= 0.5,
        _common(results, cfg) + f"; T_comp ∝ C_cov ≈ {np.mean([r['coverage'] for r in results]):.3g}. "
        "Verdict: ratio ≥ 0.5", kind=EMPIRICAL)


CLAIMS = (online_dpo_stays, xpo_stays, lemma_h2, spanner_moves)


def claims(results: list[dict], cfg) -> list[Claim]:
    return [claim(results, cfg) for claim in CLAIMS]


def plot(results: list[dict], cfg, outdir) -> list:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    vals = [np.mean([r[a]["clause_mass"] for r in results]) for a in ALGORITHMS]
    ax.bar(["π_ref", *ALGORITHMS, "π⋆_β"], [np.mean([r["ref_clause_mass"] for r in results]), *vals,
                                            np.mean([r["opt_clause_mass"] for r in results])],
           color=["grey", "C0", "C1", "C2", "k"])
    return finish(fig, outdir, "dnf_proper.png", ax, ylabel="mass off the null response Σ_{i≥1} π̂(i)",
                  title="Max-k-DNF instance (Foster et al. App. H.2)")
