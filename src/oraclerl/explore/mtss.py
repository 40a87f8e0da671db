"""MTSS — Multi-Turn Spanner Sampling (Foster, Mhammedi & Rohatgi 2025, §5, Algorithm 4, App. J).

Exploration in a KL-regularised token MDP whose soft-optimal policy is autoregressive linear softmax
(Assumption I.1), with a *weak* autoregressive oracle (a ~ π_{h,ref}(·|x_h) with ϕ_h(x_h, a)), reset access to
visited prefixes, feature queries for the anchor action 𝔞 and a per-step reward oracle (Definition I.3)::

    Σ^1_h := λI;  C^1_h := ∅;  C_0 := {root}
    for t = 1..T:
        for h = H..1:   θ^t_h := FitValue_h(C^t_h, θ^t_{h+1:H}, Σ^t_{h+1:H})                    (Alg. 5)
                        π̂^t_h(·|x) := SoftmaxSampler_{β,M,δ}(⟨φ̄^t_h(x, ·), θ^t_h⟩; x, π_ref)
        for h = 1..H:   (x^t_h, a^t_h) := UncertainStateAction_h(C^t_{0:h−1}, π̂^t_{1:h}, Σ^t_h)  (Alg. 6)
                        C^{t+1}_h += {(x^t_h, a^t_h), (x^t_h, 𝔞)};  Σ^{t+1}_h += φ_h φ_hᵀ
        if max_h ‖φ_h(x^t_h, a^t_h)‖²_{(Σ^t_h)⁻¹} ≤ ν²/4:  j := t
    return π̂^j

with φ_h(x, a) = ϕ_h(x, a) − ϕ_h(x, 𝔞) and φ̄ its truncation at ‖φ‖_{Σ⁻¹} ≤ ν. The sampling cost scales
with the token-level coverage C_cond(π⋆_β) (through M_rej ∝ C_cond²), not with the sequence-level C_cov
(Theorem 5.1 / J.1). Oracle accounting (ledger): ``t_comp_token`` weak token draws, ``t_feature`` anchor
feature queries, ``t_data`` per-step reward queries, ``t_reset`` restarts at visited prefixes, ``prompts``
fresh episodes; the paper's T_data (reward + transition + reset queries) is ``t_data + t_reset +
transitions`` with ``transitions`` reported in :class:`MTSSResult` (token-MDP transitions are free
concatenations, counted per roll-out step).

Parameters: :meth:`MTSSConfig.theory` gives the schedule of App. J.1.4 (polynomial but astronomically
large at 𝔠 ≥ 1); the defaults are practical knobs, each documented beside its theory value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..common.config import param, validate
from ..errors import ConfigError
from .linear_regression import InverseGram
from .mtss_subroutines import CoreSet, TruncatedSoftmaxPolicy, fit_value, uncertain_state_actions


@dataclass
class MTSSConfig:
    """Parameters of MTSS (Algorithm 4); theory values from App. J.1.4 with 𝔠 = polylog(d, C_cond, 1/δ,
    1/ε, H, B)."""

    T: int = param(16, "outer iterations T (= T_prompt); theory dH²𝔠", low=1)
    nu: float = param(0.5, "truncation radius ν of φ̄; theory 1/2", low=0.0, low_open=True)
    lam: float = param(1.0, "ridge λ of Σ_h = λI + Σ φφᵀ; theory ε/(𝔠B²)", low=0.0, low_open=True)
    B: float = param(1.0, "radius of Θ_h = B_d(B) (problem input, ‖θ⋆_h‖ ≤ B)", low=0.0, low_open=True)
    M_rej: float = param(
        16.0, "envelope M of SoftmaxSamplerDensity; theory C_cond²T²H²B⁴𝔠/ε (≥ 4C_cond² for Thm F.1)", low=1.0
    )
    delta_rej: float = param(0.05, "failure probability δ of SoftmaxSamplerDensity; theory ε/(H²B³T𝔠)",
                             low=0.0, high=1.0, low_open=True, high_open=True)
    N_reg: int = param(8, "FitValue repetitions per core pair; theory H²B⁴dT𝔠/ε", low=1)
    N_span: int = param(8, "UncertainStateAction roll-ins per core pair; theory TH²B⁴𝔠/ε", low=1)
    N_bar_span: int = param(
        4, "UncertainStateAction π_ref actions per reached state; theory TH⁴B⁴C_cond𝔠/ε", low=0
    )
    anchor: int = param(0, "anchor action 𝔞 (features queried explicitly, Remark J.4)", low=0)
    sampler_chunk: int | None = param(
        None, "SoftmaxSampler candidates per row per step (None = ceil(M)); not in the paper"
    )

    @classmethod
    def theory(
        cls, d: int, H: int, B: float, epsilon: float, c_cond: float, frak_c: float = 1.0
    ) -> MTSSConfig:
        """The parameter table of App. J.1.4 (ε_reg² = ε, ν = 1/2), rounded up to integers where needed."""
        T = math.ceil(d * H ** 2 * frak_c)
        return cls(T=T, nu=0.5, lam=epsilon / (frak_c * B ** 2), B=B,
                   M_rej=c_cond ** 2 * T ** 2 * H ** 2 * B ** 4 * frak_c / epsilon,
                   delta_rej=min(0.5, epsilon / (H ** 2 * B ** 3 * T * frak_c)),
                   N_reg=math.ceil(H ** 2 * B ** 4 * d * T * frak_c / epsilon),
                   N_span=math.ceil(T * H ** 2 * B ** 4 * frak_c / epsilon),
                   N_bar_span=math.ceil(T * H ** 4 * B ** 4 * c_cond * frak_c / epsilon))


@dataclass
class MTSSResult:
    """What MTSS returns."""

    policy: TruncatedSoftmaxPolicy
    """π̂^j: sampleable token by token through the weak oracle; exact law of that sampler via
    ``log_prob_tables`` (``law="target"`` for the ideal truncated softmax)."""
    j: int
    """The returned iteration (1-based)."""
    j_in_span: bool
    """True when j ∈ J_span (max_h κ²_h ≤ ν²/4, Lemma M.1); False: J_span was empty and j minimises max_h
    κ²_h."""
    uncertainty: list = field(default_factory=list)
    """Per iteration t: max_h ‖φ_h(x^t_h, a^t_h)‖²_{(Σ^t_h)⁻¹}."""
    iterates: list = field(default_factory=list)
    """Per iteration t: the policy π̂^t (for learning curves)."""
    ledger: dict = field(default_factory=dict)
    """Ledger snapshot at the end of the run."""
    transitions: int = 0
    """Environment steps taken in roll-outs (the paper counts them in T_data)."""

    @property
    def t_data_paper(self) -> int:
        """T_data as Definition I.3 counts it: reward + transition + reset queries."""
        return self.ledger.get("t_data", 0) + self.ledger.get("t_reset", 0) + self.transitions


class MTSS:
    """Algorithm 4 of Foster et al. (2025): ``MTSS(MTSSConfig(...)).run(auto, step_reward, prompts, gen)``."""

    def __init__(self, config: MTSSConfig | None = None):
        # validated here, not on construction: ``theory`` returns the App. J.1.4 table as printed, whose
        # M_rej may fall below 1 at toy sizes
        self.config = validate(config or MTSSConfig())

    def run(self, auto, step_reward, prompt_source, generator: torch.Generator | None = None,
            keep_iterates: bool = False) -> MTSSResult:
        """Run MTSS with a weak :class:`~oraclerl.oracles.AutoregressiveSampler`
        (``allow_anchor_features``), a per-step :class:`~oraclerl.oracles.RewardOracle` (``outcome(prompts,
        prefixes [B, 1, h])`` = r_h of the last token) and a :class:`~oraclerl.oracles.PromptSource`."""
        cfg = self.config
        H, d, A = auto.horizon, auto.feature_dim, auto.num_actions
        if d is None:
            raise ConfigError("auto", "MTSS needs an autoregressive oracle that reveals features")
        if cfg.anchor >= A:
            raise ConfigError("anchor", f"must be in [0, {A - 1}] (|A| = {A}), got {cfg.anchor}")
        dtype = torch.float64
        beta = auto.beta
        grams = [InverseGram(d, cfg.lam, dtype) for _ in range(H)]  # Σ_h = λI + Σ φφᵀ, Sherman–Morrison
        cores = [CoreSet.empty(h, d, dtype) for h in range(H)]
        counts = {"transitions": 0}
        best = (math.inf, 0, None)  # (max κ², t, policy) over all iterations
        j, j_policy = 0, None
        uncertainty, iterates = [], []
        for t in range(1, cfg.T + 1):
            sigma_inv = torch.stack([g.inv for g in grams])
            policy = TruncatedSoftmaxPolicy(
                torch.zeros(H, d, dtype=dtype),
                sigma_inv,
                cfg.nu,
                beta,
                cfg.anchor,
                cfg.M_rej,
                cfg.delta_rej,
                cfg.sampler_chunk,
            )
            for h in reversed(range(H)):  # FitValue, dynamic programming from the last layer
                policy.theta[h] = fit_value(
                    h, cores[h], policy, auto, step_reward, cfg.N_reg, cfg.B, generator, counts
                )
            picks = uncertain_state_actions(cores, policy, auto, prompt_source, cfg.N_span, cfg.N_bar_span,
                                            generator, counts)
            kappa = max(p.kappa2 for p in picks)
            for h, p in enumerate(picks):
                cores[h].add(p.prompt, p.prefix, p.action, p.rel, cfg.anchor)
                grams[h].add(p.rel)
            uncertainty.append(kappa)
            if keep_iterates:
                iterates.append(policy)
            if kappa <= cfg.nu ** 2 / 4:
                j, j_policy = t, policy
            if kappa <= best[0]:
                best = (kappa, t, policy)
        in_span = j_policy is not None
        if not in_span:
            _, j, j_policy = best
        return MTSSResult(policy=j_policy, j=j, j_in_span=in_span, uncertainty=uncertainty, iterates=iterates,
                          ledger=auto.ledger.snapshot(), transitions=counts["transitions"])
