"""lm-barrier-real analysis: the claims and the figure, read from the stored results only (one function per
claim; every claim is n/a with the reason when the runs were skipped for want of the model).

The verdicts are on paired per-problem differences; why each window is what it is:
docs/experiments/lm-barrier-real.md.
"""

from __future__ import annotations

import math

import numpy as np

from ...runtime.reporting.figures import finish, pyplot, style
from ...runtime.reporting.stats import mean_ci
from ...runtime.run.registry import EMPIRICAL, Claim
from .experiment import LQ_LEVELS, LMBarrierRealConfig


def _pooled(results: list[dict], method: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Correct counts c [problems] (pooled over seeds) of the base model (``method=None``) or after
    ``method``."""
    ev = [r["base"] if method is None else r["methods"][method]["eval"] for r in results]
    return np.concatenate([np.asarray(e["correct"], float) for e in ev]), np.asarray(ev[0]["ks"])


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    return mean_ci(list(values)) if len(values) > 1 else (float(values.mean()), -math.inf, math.inf)


def _fmt(m, lo, hi) -> str:
    return f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def verdict_pass1_gain(c0: np.ndarray, c1: np.ndarray, n: int) -> tuple[bool | None, bool, str]:
    """(holds, informative, text): does pass@1 rise? Paired per-problem Δ = (c1 − c0)/n, 95% t-interval over
    problems; holds when the interval is above 0, fails when it is below or the mean is ≤ 0 with an interval
    that excludes 0, not informative when the interval straddles 0."""
    d = (c1 - c0) / n
    m, lo, hi = _interval(d)
    text = f"Δpass@1 = {_fmt(m, lo, hi)} (paired over {len(d)} problems)"
    if lo > 0:
        return True, True, text
    if hi < 0:
        return False, True, text
    return m > 0, False, text + " straddles 0"


def verdict_barrier(c0: np.ndarray, c1: np.ndarray, n: int) -> tuple[bool | None, bool, str]:
    """(holds, informative, text): outcome PG raises pass@1 but not pass@n (n = samples per problem).

    pass@n from n samples is 1[c ≥ 1]. Prediction (the barrier): Δpass@n < Δpass@1 by more than the noise;
    alternative (RL finds new answers as fast as it sharpens): Δpass@n ≥ Δpass@1. Decided on the paired
    per-problem e = Δpass@n − Δpass@1: holds when its 95% interval is below 0, fails when it is above 0; not
    informative when the interval straddles 0, when pass@1 did not rise significantly (the premise) or when
    every problem is already solved by the base model (pass@n cannot rise: a ceiling)."""
    d1 = (c1 - c0) / n
    dn = (c1 >= 1).astype(float) - (c0 >= 1).astype(float)
    m1, lo1, _ = _interval(d1)
    e = dn - d1
    m, lo, hi = _interval(e)
    text = (f"Δpass@1 = {m1:+.3f} (lower 95% bound {lo1:+.3f}), Δpass@{n} = {dn.mean():+.3f}; "
            f"Δpass@{n} − Δpass@1 = {_fmt(m, lo, hi)}")
    if not lo1 > 0:
        return None, False, text + "; pass@1 did not rise significantly, so the barrier is not tested"
    if (c0 >= 1).all():
        return hi < 0, False, text + f"; base pass@{n} = 1 on every problem (ceiling: pass@{n} cannot rise)"
    if hi < 0:
        return True, True, text
    if lo > 0:
        return False, True, text
    return m < 0, False, text + " straddles 0"


def verdict_process_on_unsolved(c0: np.ndarray, c_out: np.ndarray, c_proc: np.ndarray, n: int):
    """(holds, informative, text) on the problems U with base pass@n = 0 (c0 = 0): process rewards solve more
    of them (c ≥ 1 after training) than outcome rewards; ties on pass@1 over U as well are not informative."""
    u = c0 == 0
    if not u.any():
        return None, True, f"no held-out problem has base pass@{n} = 0 at this scale"
    so, sp = int((c_out[u] >= 1).sum()), int((c_proc[u] >= 1).sum())
    po, pp = float(c_out[u].mean() / n), float(c_proc[u].mean() / n)
    text = (
        f"{int(u.sum())} problems with base pass@{n} = 0; solved after outcome PG {so}, after process PG "
        f"{sp}; pass@1 on them {po:.3f} vs {pp:.3f}"
    )
    if sp != so:
        return sp > so, True, text
    if pp != po:
        return pp > po, False, text + " (same count solved: decided on pass@1 alone, not informative)"
    return None, False, text + " (neither separates the two at this scale)"


GAIN = (
    "Outcome-reward PG on the real LM raises held-out pass@1",
    "issue 11; Mousavi-Hosseini & Erdogdu 2026, §3",
)
BARRIER = ("Outcome-reward PG moves pass@1 but not pass@k at large k (the base-model barrier)",
           "Mousavi-Hosseini & Erdogdu 2026, §6 (MATH-500, Qwen3), Cor. 3.4-3.6")
PROCESS = ("Process rewards do better than outcome rewards on problems whose base pass@64 is 0",
           "Mousavi-Hosseini & Erdogdu 2026, Thm 4.1 vs Cor. 3.6")
REPORTED = ("Base model: per-problem likelihood quantile and pass@k curve (reported)",
            "Mousavi-Hosseini & Erdogdu 2026, §4.1")


def _not_run(results: list[dict], title: tuple[str, str]) -> Claim | None:
    """The n/a claim with the reason when any run was skipped (no model), else None."""
    skipped = [r["skipped"] for r in results if "skipped" in r]
    if not skipped:
        return None
    return Claim(
        *title, f"not run: {skipped[0]}", None, "the experiment needs the real model", kind=EMPIRICAL
    )


def pass1_gain(results: list[dict], cfg: LMBarrierRealConfig) -> Claim | None:
    if (na := _not_run(results, GAIN)) or "outcome" not in cfg.methods:
        return na
    n = cfg.samples
    c0, _ = _pooled(results, None)
    co, _ = _pooled(results, "outcome")
    holds, inf, text = verdict_pass1_gain(c0, co, n)
    base, after = c0.mean() / n, co.mean() / n
    return Claim(*GAIN, f"pass@1 {base:.3f} → {after:.3f}; {text}", holds,
                 f"{cfg.pg_steps} PG steps × {cfg.batch_prompts * cfg.group_size} responses, lr {cfg.lr:g}; "
                 "same sampling uniforms before and after (paired)", kind=EMPIRICAL, informative=inf)


def barrier(results: list[dict], cfg: LMBarrierRealConfig) -> Claim | None:
    if (na := _not_run(results, BARRIER)) or "outcome" not in cfg.methods:
        return na
    c0, _ = _pooled(results, None)
    co, _ = _pooled(results, "outcome")
    holds, inf, text = verdict_barrier(c0, co, cfg.samples)
    return Claim(*BARRIER, text, holds, "verdict on the paired difference of the pass@n and pass@1 gains",
                 kind=EMPIRICAL, informative=inf)


def process_on_unsolved(results: list[dict], cfg: LMBarrierRealConfig) -> Claim | None:
    if (na := _not_run(results, PROCESS)) or not {"outcome", "process"} <= set(cfg.methods):
        return na
    c0, _ = _pooled(results, None)
    co, _ = _pooled(results, "outcome")
    cp, _ = _pooled(results, "process")
    holds, inf, text = verdict_process_on_unsolved(c0, co, cp, cfg.samples)
    return Claim(*PROCESS, text, holds, "Thm 4.1: process rewards explore per token, outcome rewards need "
                 "≈ 1/q₀(y⋆|x) samples per correct answer", kind=EMPIRICAL, informative=inf)


def base_model_curves(results: list[dict], cfg: LMBarrierRealConfig) -> Claim:
    if na := _not_run(results, REPORTED):
        return na
    _, ks = _pooled(results, None)
    lq = np.mean([r["base"]["lq"] for r in results], 0)
    pk = np.mean([r["base"]["pass_at_k"] for r in results], 0)
    curve = ", ".join(f"@{k} {v:.2f}" for k, v in zip(ks, pk))
    levels = ", ".join(f"LQ({e:g}) {v:.2g}" for e, v in zip(LQ_LEVELS, lq))
    return Claim(
        *REPORTED,
        f"{levels}; pass{curve}",
        None,
        "q₀ = teacher-forced likelihood of the canonical answer tokens (a lower bound on the success "
        "probability: other tokenisations and spacings also verify)",
        kind=EMPIRICAL,
    )


CLAIMS = (pass1_gain, barrier, process_on_unsolved, base_model_curves)


def claims(results: list[dict], cfg: LMBarrierRealConfig) -> list[Claim]:
    return [c for c in (claim(results, cfg) for claim in CLAIMS) if c is not None]


def plot(results: list[dict], cfg: LMBarrierRealConfig, outdir) -> list:
    runs = [r for r in results if "skipped" not in r]
    if not runs:
        return []
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    colors = {"base": "k", "outcome": "tab:red", "process": "tab:blue"}
    evs = {"base": [r["base"] for r in runs]}
    evs.update({m: [r["methods"][m]["eval"] for r in runs] for m in cfg.methods})
    for name, ev in evs.items():
        ks = ev[0]["ks"]
        axes[0].plot(ks, np.mean([e["pass_at_k"] for e in ev], 0), "o-", color=colors[name], label=name)
        lq = np.sort(np.concatenate([np.asarray(e["log_q"]) for e in ev])) / math.log(10)
        axes[1].step((np.arange(len(lq)) + 1) / len(lq), lq, where="post", color=colors[name], label=name)
    axes[0].set_xscale("log", base=2)
    style(axes[0], xlabel="k", ylabel="pass@k (held-out)", legend=8)
    style(axes[1], xlabel="ε (fraction of held-out problems)", ylabel="log10 LQ(ε): likelihood of the answer",
          legend=8)
    fig.suptitle(f"{runs[0]['model']}: few-shot {cfg.task}, outcome vs process PG ({cfg.pg_steps} steps)")
    return finish(fig, outdir, "lm_barrier_real.png")
