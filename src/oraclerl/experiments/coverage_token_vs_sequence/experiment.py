"""Token-level vs sequence-level coverage across the horizon (Foster et al. 2025, Eq. 3 vs Eq. 13, §5).

MTSS pays for the conditional (token-level) coverage C_cond(π⋆_β) = max_h sup π⋆_h/π_{h,ref}, SpannerSampling
on whole sequences for the sequence coverage C_cov(π⋆_β) = sup π⋆_β(y|x)/π_ref(y|x). Both are computed exactly
(C_cond as a max over automaton states, C_cov by a max-product dynamic programme, no enumeration of A^H), for
the coverage-gap family (binary tokens, π_ref(good) = 1/4, π⋆(good) = 1/2; the paper's example with C_cond ≤ 2
and C_cov ≥ 2^H) and for random realisable token MDPs (random automata with |A| actions). The growth rate of
log C per token is the slope of a least-squares fit of log C against H.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...common.config import param
from ...diagnostics.token_coverage import conditional_coverage, sequence_coverage
from ...problems.token_mdp import coverage_gap_family, random_token_mdp


@dataclass
class CoverageTokenVsSequenceConfig:
    horizons: list[int] = param([1, 2, 4, 6, 8, 12, 16], "horizons H", low=1, high=24)
    beta: float = param(0.5, "KL-regularisation β", low=0.0, low_open=True)
    p_good: float = param(
        0.25,
        "π_ref mass of the good token in the family (π⋆(good) = 2p)",
        low=0.0,
        high=0.5,
        low_open=True,
        high_open=True,
    )
    d: int = param(4, "step-feature dimension d", low=2, high=2 ** 10)
    num_actions: list[int] = param([2, 4], "|A| of the random instances", low=2, high=2 ** 10)
    num_states: int = param(
        16,
        "automaton states per layer of the random instances (H up to 16 without enumeration)",
        low=1,
        high=2**12,
    )
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
                inst = random_token_mdp(
                    num_actions=A,
                    horizon=H,
                    d=cfg.d,
                    beta=cfg.beta,
                    num_prompts=cfg.num_prompts,
                    reward_scale=cfg.reward_scale,
                    num_states=cfg.num_states,
                    seed=ctx.seeds.int(f"random/{A}/{H}/{k}") % 2**31,
                )
                rows.append(
                    {
                        "kind": f"random |A|={A}",
                        "H": H,
                        "num_actions": A,
                        "c_cond": conditional_coverage(inst),
                        "c_cov": sequence_coverage(inst),
                    }
                )
        ctx.log(H, **{"coverage/family_c_cov": rows[-1 - len(cfg.num_actions) * cfg.num_random]["c_cov"]})
        ctx.progress(len(rows) / total, f"H={H}")
    return {"rows": rows}


SCALES = {
    "toy": {"horizons": [1, 2, 4], "num_actions": [2], "num_random": 1},
    "quick": {},
    "paper": {"horizons": list(range(1, 17)), "num_random": 16, "num_actions": [2, 4, 16]},
}
