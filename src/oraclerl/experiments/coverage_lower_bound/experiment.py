"""Coverage is necessary for computational efficiency (Foster et al. 2025, Theorem 2.1, App. E).

On the hard instance of App. E, a learner that sees the base model only through sampling oracles must
draw about min(C⋆, e^{1/(2β)}) responses before a near-optimal response (y⋆) is even *seen*, while the
number of reward queries stays O(1): the learner asks the reward oracle once per distinct response it
has seen (two distinct responses have positive mass). We measure the first-hit time with the weak
oracle (y ~ π_ref) and with a strong oracle queried at parameters θ drawn independently of θ⋆
(the "uninformed" learner of the proof), for d ≥ β⁻³ so that Eq. 7 reads min{e^{1/(2β)}, C⋆}. The search
learner tests the instance, not an algorithm, so two real weak-oracle algorithms run on the same instances
(with a small feature dimension: a weak-oracle learner's hardness is ε_ref alone): best-of-n, whose exact
regret gives the smallest n = 2^j reaching regret ε, and SpannerSampling, whose coverage knob Ĉ = 2^j
(T_span ∝ Ĉ, M_rej ∝ Ĉ) is doubled until its regret reaches ε; we record the sampling and reward queries
each needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...common.config import param
from ...diagnostics import coverage_coefficient, regret
from ...explore.baselines import BestOfNPolicy
from ...explore.evaluation import spanner_at
from ...problems import coverage_lower_bound


@dataclass
class CoverageLowerBoundConfig:
    c_stars: list[float] = param(
        [4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0],
        "coverage bounds C⋆ of the instance family",
        low=1.0,
        high=2.0**24,
    )
    betas: list[float] = param(
        [0.05, 0.125], "KL-regularisation β values (e^{1/(2β)} caps the hardness)", low=0.0, low_open=True
    )
    num_responses: int = param(
        64, "|Y| of the instance (y⋆ hidden among |Y|−1 candidates)", low=2, high=2**20
    )
    d_min: int = param(
        16, "feature dimension is max(d_min, ⌈β⁻³⌉) so that e^{β²d/2} ≥ e^{1/(2β)}", low=1, high=2**20
    )
    trials: int = param(200, "independent searches per (C⋆, β, sampler)", low=1, high=10 ** 6)
    chunk: int = param(256, "responses drawn per oracle call (batched)", low=1, high=2 ** 16)
    max_draws: int = param(2_000_000, "censoring limit on draws per search", low=1, high=10 ** 9)
    samplers: list[str] = param(
        ["weak", "strong-uninformed"],
        "which sampling oracles search (strong-informed, θ = θ⋆, "
        "is the negative control of the strong-oracle claim)",
        choices=("weak", "strong-uninformed", "strong-informed"),
    )
    algorithms: list[str] = param(["best-of-n", "spanner"], "exploration algorithms run on the hard instance",
                                  choices=("best-of-n", "spanner"))
    algo_d: int = param(4, "feature dimension of the instances the algorithms run on", low=1, high=2 ** 10)
    algo_epsilon: float = param(0.1, "regret ε the algorithms must reach (R_max = 1)", low=0.0, low_open=True)
    algo_max_log2: int = param(
        13,
        "search limit: n and Ĉ take the values 1, 2, …, 2^this (≤ 24: 2^11× the default 2^13)",
        low=0,
        high=24,
    )
    span_T_prompt: int = param(4, "SpannerSampling spanner prompts", low=1, high=2 ** 16)
    span_factor: float = param(1.0, "SpannerSampling T_span = ⌈κ·Ĉ⌉", low=0.0, low_open=True, high=1000.0)
    span_m_factor: float = param(
        1.0, "SpannerSampling M_rej = max(1, m·Ĉ)", low=0.0, low_open=True, high=1000.0
    )
    span_T_exp: int = param(16, "SpannerSampling exploration rounds", low=1, high=2 ** 16)
    span_nu: float = param(
        0.8,
        "SpannerSampling ν: ϕ(y⋆) (‖·‖_{Σ⁻¹} = 1 at λ = 1) enters the spanner since 1 > ν, "
        "and one copy leaves 1/√2 ≈ 0.71 ≤ ν, so y⋆'s score is not truncated",
        low=0.0,
        low_open=True,
    )


def _search(inst, sampler: str, trials: int, chunk: int, max_draws: int, gen: torch.Generator):
    """Per-trial number of responses drawn until one with reward ≥ r_max/2 is seen (censored at max_draws)."""
    ora = inst.oracles(reveal=())  # this learner needs no features
    d, Y = inst.base.feature_dim, inst.base.num_responses
    if sampler == "strong-uninformed":
        # θ uniform in the unit ball, independent of θ⋆.
        g = torch.randn(trials, d, generator=gen, dtype=inst.base.dtype)
        r = torch.rand(trials, 1, generator=gen, dtype=inst.base.dtype) ** (1.0 / d)
        thetas = g / g.norm(dim=1, keepdim=True) * r
    elif sampler == "strong-informed":
        # Negative control: θ = θ⋆ (a learner that already knows the answer), so π_θ(y⋆) ≈ 1.
        thetas = inst.theta_star.expand(trials, d).clone()
    seen = torch.zeros(trials, Y, dtype=torch.bool)
    good = torch.zeros(trials, Y, dtype=torch.bool)
    hit = torch.full((trials,), -1, dtype=torch.long)
    data = torch.zeros(trials, dtype=torch.long)
    drawn = 0
    active = torch.arange(trials)
    while active.numel() and drawn < max_draws:
        prompts = torch.zeros(active.numel(), dtype=torch.long)
        if sampler == "weak":
            s = ora.weak.sample(prompts, chunk, gen)
        else:
            s = ora.strong.sample(prompts, thetas[active], chunk, gen)
        resp = s.responses
        present = torch.zeros(active.numel(), Y, dtype=torch.bool).scatter_(1, resp, True)
        new = present & ~seen[active]
        rows, ys = new.nonzero(as_tuple=True)
        if rows.numel():
            r = ora.reward.outcome(torch.zeros(rows.numel(), dtype=torch.long), ys[:, None], gen)[:, 0]
            idx = active[rows]
            good[idx, ys] = r >= inst.r_max / 2
            data.index_add_(0, idx, torch.ones_like(idx))
        seen[active] |= present
        is_good = good[active].gather(1, resp)
        found = is_good.any(1)
        first = torch.argmax(is_good.to(torch.int8), dim=1)
        hit[active[found]] = drawn + first[found] + 1
        drawn += chunk
        active = active[~found]
    censored = hit < 0
    hit[censored] = max_draws
    return hit.numpy(), int(censored.sum()), data.numpy(), ora.ledger.snapshot()


def run(cfg: CoverageLowerBoundConfig, ctx) -> dict:
    rows = []
    total = len(cfg.betas) * len(cfg.c_stars) * len(cfg.samplers)
    done = 0
    for beta in cfg.betas:
        d = max(cfg.d_min, math.ceil(beta ** -3))
        for c_star in cfg.c_stars:
            inst = coverage_lower_bound(
                cfg.num_responses, d, beta, c_star, seed=ctx.seeds.int(f"inst/{beta}/{c_star}") % 2**31
            )
            cov = coverage_coefficient(inst)
            for sampler in cfg.samplers:
                gen = ctx.generator(f"search/{beta}/{c_star}/{sampler}")
                hits, censored, data, ledger = _search(
                    inst, sampler, cfg.trials, cfg.chunk, cfg.max_draws, gen
                )
                row = {
                    "beta": beta, "c_star": c_star, "d": d, "sampler": sampler,
                    "eps_ref": inst.meta["eps_ref"], "predicted": min(c_star, math.exp(1 / (2 * beta))),
                    "coverage": cov, "mean_draws": float(hits.mean()), "median_draws": float(np.median(hits)),
                    "censored": censored, "mean_t_data": float(data.mean()), "max_t_data": int(data.max()),
                    "ledger": ledger,
                }
                rows.append(row)
                ctx.log(len(rows), **{"oracle/t_comp": ledger["t_comp"], "oracle/t_data": ledger["t_data"],
                                      "draws/mean": row["mean_draws"]})
                done += 1
                ctx.progress(done / total, f"β={beta} C⋆={c_star:g} {sampler}")
    return {"rows": rows, "algorithms": _algorithm_rows(cfg, ctx)}


def _algorithm_rows(cfg: CoverageLowerBoundConfig, ctx) -> list[dict]:
    """Best-of-n (exact law) and SpannerSampling (doubling Ĉ) on the hard instance: what each needs to
    reach ε."""
    rows = []
    for beta in cfg.betas:
        for c_star in cfg.c_stars:
            inst = coverage_lower_bound(cfg.num_responses, cfg.algo_d, beta, c_star,
                                        seed=ctx.seeds.int(f"algo-inst/{beta}/{c_star}") % 2**31)
            base = {"beta": beta, "c_star": c_star, "predicted": min(c_star, math.exp(1 / (2 * beta)))}
            if "best-of-n" in cfg.algorithms:
                n_reach = next((2 ** j for j in range(cfg.algo_max_log2 + 1)
                                if regret(BestOfNPolicy(2 ** j), inst) <= cfg.algo_epsilon), None)
                # n weak samples and n reward queries per prompt served
                rows.append(
                    base
                    | {
                        "algorithm": "best-of-n",
                        "knob": n_reach,
                        "t_comp": n_reach,
                        "t_data": n_reach,
                        "reached": n_reach is not None,
                    }
                )
            if "spanner" in cfg.algorithms:
                rec = None
                for j in range(cfg.algo_max_log2 + 1):
                    out, reach = spanner_at(inst, float(2 ** j), nu=cfg.span_nu, T_prompt=cfg.span_T_prompt,
                                            span_factor=cfg.span_factor, m_factor=cfg.span_m_factor,
                                            T_exp=cfg.span_T_exp, exp_batch=8, epsilon=cfg.algo_epsilon,
                                            gen=ctx.generator(f"spanner/{beta}/{c_star}/{j}"))
                    rec = {"knob": 2.0 ** j, "t_comp": reach["t_comp"], "t_data": reach["t_data"],
                           "reached": not reach["censored"], "ledger": out.ledger}
                    if rec["reached"]:
                        break
                rows.append(base | {"algorithm": "spanner"} | rec)
    return rows


def memory(cfg: CoverageLowerBoundConfig) -> int:
    """Estimated peak bytes of one run: the dominant float64/int64 tensors of the search at the largest
    feature dimension d = max(d_min, ⌈β⁻³⌉) (instance features [|Y|, d], θ and noise [trials, d], draws
    [trials, chunk], seen/good masks [trials, |Y|]) and the algorithms' instance ([|Y|, algo_d]), times 1.5.
    Measured (ru_maxrss of ``run_one`` at betas=0.02, c_stars=4, trials=200, so d = 125000): 722 MiB above
    the process's start, 1.14× this count; checked before any run by ``Experiment.make_config``."""
    d = max(cfg.d_min, math.ceil(min(cfg.betas) ** -3))
    count = (
        cfg.num_responses * d
        + 3 * cfg.trials * d
        + 2 * cfg.trials * cfg.chunk
        + cfg.trials * cfg.num_responses
        + 3 * cfg.num_responses * cfg.algo_d
    )
    return int(1.5 * 8 * count)


SCALES = {
    "toy": {"trials": 20, "c_stars": [4.0, 16.0], "betas": [0.125], "samplers": ["weak"]},
    "quick": {},
    "paper": {"trials": 2000, "c_stars": [2.0 ** k for k in range(1, 15)], "betas": [0.05, 0.1, 0.2]},
}
