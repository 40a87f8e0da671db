"""SpannerSampling (Foster, Mhammedi & Rohatgi 2025, Algorithm 3, Theorem 3.1).

Exploration for KL-regularised linear-softmax alignment through a *weak* sampling oracle (y ~ π_ref with
ϕ(x, y)) and a reward oracle, with T_data independent of the coverage C_cov(π⋆_β)::

    # spanner phase: at most one tuple per prompt; Σ_span = λI + Σ φφᵀ
    for t = 1..T_prompt:  x ~ ρ;  for i = 1..T_span:  (y₁, y₂) ~ π_ref(x);
        if ‖φ(x, y₁, y₂)‖_{Σ_span⁻¹} > ν:  query r₁, r₂;  add (x, y₁, y₂, r₁, r₂);  Σ_span += φφᵀ;  break
    # exploration phase (Σ_span frozen)
    for t = 1..T_exp:
        θ^t = argmin_{θ∈Θ} Σ_{D_span ∪ D_exp} (⟨θ, φ(x, y₁, y₂)⟩ − (r₁ − r₂))²                (Eq. 49)
        r^t(x, y, y′) = ⟨θ^t, φ(x, y, y′)⟩·1{‖φ(x, y, y′)‖_{Σ_span⁻¹} ≤ ν}                      (Eq. 50)
        x ~ ρ;  y₂ ~ π_ref(x), query r₂;  y₁ ~ SoftmaxSampler_{β,M_rej,δ_rej}(r^t(x, ·, y₂)), query r₁
    return π̂ ~ Unif(π̂^1..π̂^{T_exp})   (improper: y′ ~ π_ref, then the SoftmaxSampler; see truncated_softmax)

API::

    cfg = SpannerSamplingConfig(epsilon=0.05, delta=0.1, coverage_bound=16, B=inst.B, nu=0.5, T_prompt=256,
                                T_span=64, T_exp=512)          # None fields take the theory schedule
    out = SpannerSampling(cfg).run(weak, reward, prompts, generator)
    out.policy.sample(new_prompts, n, generator)                # improper output, through the weak oracle
    out.policy.average_regret(inst); regret(out.policy, inst)   # Thm 3.1's average / the mixture, exact
    out.ledger, out.spanner_size, out.history, out.schedule

The algorithm touches the world only through ``weak.sample`` (and the ``.features`` of what it drew),
``reward.outcome`` and ``prompts.draw``; responses may be ids or token sequences [B, n, H] (Corollary 5.1: a
weak autoregressive oracle wrapped as a sequence sampler). ``β`` and ``d`` come from the config or the
oracle's ``beta`` / ``feature_dim``; R_max from the config or ``reward.r_max`` (give all three in the config
for oracles that expose none of them, e.g. an LM with a learned feature map).

Implementation notes (vectorisation, not in the paper): the spanner phase handles ``span_block`` prompts at
a time and draws ``span_chunk`` trials per prompt per oracle call; decisions are taken in prompt order and
re-checked after every addition to Σ_span (norms only shrink as Σ_span grows, so this is exactly the
sequential algorithm on the same draws), and the only extra draws are the trials after the accepted one
inside its chunk (≤ span_chunk − 1 per spanner element), all charged to the ledger. ``exp_batch`` rounds
share one θ (theory: 1); the regression is the exact constrained least squares of
:mod:`oraclerl.explore.linear_regression` over Θ (Eq. 49 has no ridge; ``reg_lam`` defaults to 1e-6 only to
make the argmin unique, while λ = (R_max/B)² is the ridge of Σ_span, line 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..common.config import param, validate
from ..errors import ConfigError
from ..inference.softmax_sampler import softmax_sampler, weak_draw
from ..oracles.ledger import ledger_totals
from .linear_regression import InverseGram, LeastSquaresState, constrained_least_squares
from .truncated_softmax import SpannerSamplingPolicy, truncated_score


@dataclass
class SpannerSamplingConfig:
    """Theory schedule (from ε, δ, Ĉ) plus practical knobs; ``None`` knobs take their theory value."""

    epsilon: float = param(0.05, "target regret ε of the theory schedule (Thm 3.1)", low=0.0, low_open=True)
    delta: float = param(
        0.1, "failure probability δ of the theory schedule", low=0.0, high=1.0, low_open=True, high_open=True
    )
    coverage_bound: float = param(
        16.0, "Ĉ ≥ C_cov(π⋆_β), an upper bound on the coverage (e^{R_max/β} always works)", low=1.0
    )
    B: float = param(1.0, "radius of Θ (‖θ‖ ≤ B, Assumption 2.1)", low=0.0, low_open=True)
    theta_set: str = param("l2", "shape of Θ: l2 ball or linf box (the ETH instance)", choices=("l2", "linf"))
    r_max: float | None = param(None, "R_max; None = reward.r_max", low=0.0, low_open=True)
    beta: float | None = param(None, "β; None = weak.beta", low=0.0, low_open=True)
    d: int | None = param(None, "feature dimension; None = weak.feature_dim", low=1)
    c_stat: float = param(
        1.0,
        "absolute constant c in ε_stat = c·sqrt(d R_max² log(B T_exp/(R_max δ))) (Alg. 3 line 1; "
        "unspecified in the paper)",
        low=0.0,
        low_open=True,
    )
    nu: float | None = param(
        None, "truncation / spanner radius ν; theory β/ε_stat (line 2)", low=0.0, low_open=True
    )
    lam: float | None = param(
        None, "ridge λ of Σ_span = λI + Σφφᵀ; theory (R_max/B)² (line 2)", low=0.0, low_open=True
    )
    reg_lam: float = param(
        1e-6,
        "ridge added to the regression of Eq. 49 (theory 0: constrained least squares over Θ; a tiny value "
        "makes the argmin unique)",
        low=0.0,
    )
    T_prompt: int | None = param(None, "spanner prompts; theory ⌈(R_max/β)²·T_exp⌉ (App. G.4.2)", low=1)
    T_span: int | None = param(None, "trials (pairs) per spanner prompt; theory ⌈Ĉ·T_exp⌉", low=1)
    T_exp: int | None = param(None, "exploration rounds; theory ⌈d² R_max² log²(1/δ)/(β·min(ε, β))⌉", low=1)
    M_rej: float | None = param(None, "rejection envelope; theory 8e²·Ĉ (line 3, Lemma G.6)", low=1.0)
    delta_rej: float | None = param(
        None,
        "rejection failure prob.; theory 1/T_exp (line 3)",
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
    )
    exp_batch: int = param(1, "exploration rounds sharing one θ (theory 1: θ refit every round)", low=1)
    span_block: int = param(64, "spanner prompts processed together (implementation; exact)", low=1)
    span_chunk: int = param(
        16,
        "spanner trials drawn per prompt per call (costs ≤ span_chunk−1 extra trials per spanner element)",
        low=1,
    )
    chunk: int | None = param(None, "SoftmaxSampler candidates per chunk (None = ceil(M_rej))", low=1)

    def __post_init__(self):
        validate(self)

    @classmethod
    def scheduled(
        cls, c_hat: float, *, span_factor: float, m_factor: float, **knobs
    ) -> SpannerSamplingConfig:
        """The coverage schedule of Alg. 3 line 3 and App. G.4.2 at coverage bound Ĉ = ``c_hat``:
        ``coverage_bound`` = Ĉ, T_span = ⌈κ·Ĉ⌉ (κ = ``span_factor``; theory κ = T_exp) and
        M_rej = max(1, m·Ĉ) (m = ``m_factor``; theory 8e²), so T_comp ∝ Ĉ by construction. ``knobs`` are the
        other fields (B, ν, T_prompt, T_exp, ...)."""
        return cls(coverage_bound=c_hat, T_span=math.ceil(span_factor * c_hat),
                   M_rej=max(1.0, m_factor * c_hat), **knobs)


@dataclass
class SpannerSchedule:
    """Resolved parameters of one run, with the theory value of each and the predicted bounds."""

    d: int
    beta: float
    r_max: float
    eps_stat: float
    nu: float
    lam: float
    T_prompt: int
    T_span: int
    T_exp: int
    M_rej: float
    delta_rej: float
    theory: dict = field(default_factory=dict)

    @property
    def spanner_size_bound(self) -> int:
        """Deterministic |Ψ_span| bound (Lemma G.8 via the elliptic potential lemma with ‖φ‖ ≤ 2): every
        added φ has ‖φ‖²_{Σ⁻¹} > ν², so n·min(1, ν²) ≤ 2d·log(1 + 4n/(dλ)); the largest such n (the left
        side minus the right is convex in n, so the feasible n form an interval found by bisection), capped
        at T_prompt."""
        a = min(1.0, self.nu ** 2)

        def ok(n: int) -> bool:
            return n * a <= 2 * self.d * math.log1p(4 * n / (self.d * self.lam))

        if ok(self.T_prompt):
            return self.T_prompt
        lo, hi = 0, self.T_prompt                      # ok(lo), not ok(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        return lo

    @property
    def t_data_bound(self) -> int:
        """T_data ≤ 2(|Ψ_span| + T_exp) (App. G.4.2 accounting)."""
        return 2 * (self.spanner_size_bound + self.T_exp)

    @property
    def t_comp_bound(self) -> int:
        """T_comp ≤ 2·T_prompt·T_span + T_exp·(2⌈4M_rej log(4/δ_rej)⌉ + 2) (every trial 2 draws; round: y₂
        + Alg. 1)."""
        n = math.ceil(4 * self.M_rej * math.log(4 / self.delta_rej))
        return 2 * self.T_prompt * self.T_span + self.T_exp * (2 * n + 2)

    def as_dict(self) -> dict:
        keys = (
            "d",
            "beta",
            "r_max",
            "eps_stat",
            "nu",
            "lam",
            "T_prompt",
            "T_span",
            "T_exp",
            "M_rej",
            "delta_rej",
        )
        return {k: getattr(self, k) for k in keys} | {"theory": dict(self.theory),
                                                       "t_data_bound": self.t_data_bound}


def theory_schedule(cfg: SpannerSamplingConfig, d: int, beta: float, r_max: float) -> SpannerSchedule:
    """Theorem 3.1's parameter choices (App. G.4.2, constants 1), overridden by the config's practical
    knobs."""
    eps, dl, C = cfg.epsilon, cfg.delta, cfg.coverage_bound
    t_exp = math.ceil(d * d * r_max ** 2 * math.log(1 / dl) ** 2 / (beta * min(eps, beta)))
    T_exp = cfg.T_exp or t_exp

    def eps_stat_of(T: int) -> float:
        return cfg.c_stat * math.sqrt(d * r_max ** 2 * max(1.0, math.log(cfg.B * T / (r_max * dl))))

    eps_stat = eps_stat_of(T_exp)
    theory = {
        "T_exp": t_exp, "T_prompt": math.ceil((r_max / beta) ** 2 * t_exp), "T_span": math.ceil(C * t_exp),
        "nu": beta / eps_stat_of(t_exp), "lam": (r_max / cfg.B) ** 2, "M_rej": 8 * math.e ** 2 * C,
        "delta_rej": 1.0 / t_exp,
    }
    return SpannerSchedule(
        d=d, beta=beta, r_max=r_max, eps_stat=eps_stat,
        nu=cfg.nu or beta / eps_stat, lam=cfg.lam or (r_max / cfg.B) ** 2,
        T_prompt=cfg.T_prompt or math.ceil((r_max / beta) ** 2 * T_exp),
        T_span=cfg.T_span or math.ceil(C * T_exp), T_exp=T_exp,
        M_rej=cfg.M_rej or 8 * math.e ** 2 * C, delta_rej=cfg.delta_rej or 1.0 / T_exp, theory=theory,
    )


@dataclass
class SpannerSamplingResult:
    policy: SpannerSamplingPolicy
    """The improper output π̂ (uniform mixture of the T_exp truncated-softmax samplers)."""
    ledger: dict
    """Oracle counts of the run (t_comp, t_data, prompts, ...)."""
    spanner_size: int
    """|Ψ_span|."""
    schedule: SpannerSchedule
    """The resolved parameters (with their theory values and the predicted T_data / T_comp bounds)."""
    history: list = field(default_factory=list)
    """Per exploration batch: {"round", "t_data", "t_comp", "prompts"} (cumulative)."""
    span_phase: dict = field(default_factory=dict)
    """Ledger at the end of the spanner phase."""


def spanner_block(pairs, num: int, T_span: int, nu: float, gram: InverseGram, chunk: int):
    """Spanner construction (Alg. 3, lines 5-13) for ``num`` prompts in prompt order, updating ``gram`` in
    place.

    ``pairs(pos, c)`` draws c trials (y₁, y₂) for each block position in ``pos`` and returns
    (φ [len(pos), c, d], responses [len(pos), c, 2, ...]); trials of one position come in order over calls.
    Yields (position, φ, (y₁, y₂)) for every prompt that adds a spanner tuple. Equivalent to the sequential
    loop on the same trials: a prompt's decision is taken when every earlier prompt is final, under the
    Σ_span of that moment; trials found below ν stay below ν as Σ_span grows, so drawing ahead for later
    prompts never changes a decision (only trials after an accepted one are wasted, < chunk per tuple).
    """
    nu2 = nu * nu
    pend = torch.arange(num)                       # pending positions, in prompt order
    drawn = torch.zeros(num, dtype=torch.long)     # trials drawn so far per position
    phi = resp = None                              # latest chunk of trials of each pending position
    while pend.numel():
        if phi is not None:
            exceed = (gram.sq_norm(phi) > nu2).cpu()  # re-checked under the current Σ_span
            has = exceed.any(1)
        else:
            has = torch.zeros(pend.numel(), dtype=torch.bool)
        if has[0]:                                  # the head prompt adds its first exceeding trial
            j = int(exceed[0].to(torch.int8).argmax())
            gram.add(phi[0, j])
            yield int(pend[0]), phi[0, j].clone(), resp[0, j].clone()
            pend, phi, resp = pend[1:], phi[1:], resp[1:]
            continue
        done = ~has & (drawn[pend] >= T_span)       # exhausted with no exceeding trial: final (no tuple)
        if done.any():
            keep = ~done
            pend = pend[keep]
            phi = None if phi is None else phi[keep]
            resp = None if resp is None else resp[keep]
            continue
        need = (~has).nonzero().squeeze(1).cpu()    # the head and every other prompt without an exceedance
        c = min(chunk, int((T_span - drawn[pend[need]]).min()))
        new_phi, new_resp = pairs(pend[need], c)
        drawn[pend[need]] += c
        if phi is None:
            phi = new_phi.new_zeros(pend.numel(), c, new_phi.shape[-1])
            resp = new_resp.new_zeros(pend.numel(), c, *new_resp.shape[2:])
        elif phi.shape[1] < c:                      # widen (zero-padded trials never exceed ν)
            wide = phi.new_zeros(phi.shape[0], c, phi.shape[2])
            wide[:, :phi.shape[1]] = phi
            wresp = resp.new_zeros(resp.shape[0], c, *resp.shape[2:])
            wresp[:, :resp.shape[1]] = resp
            phi, resp = wide, wresp
        phi[need] = 0.0
        phi[need, :c] = new_phi.to(phi.dtype)
        resp[need, :c] = new_resp


class SpannerSampling:
    """Algorithm 3 of Foster et al. (2025); see the module docstring."""

    def __init__(self, config: SpannerSamplingConfig | None = None):
        self.config = config or SpannerSamplingConfig()

    def schedule(self, weak, reward) -> SpannerSchedule:
        cfg = self.config
        beta = cfg.beta or weak.beta
        r_max = cfg.r_max or reward.r_max
        d = cfg.d or weak.feature_dim
        for name, v in (("beta", beta), ("r_max", r_max), ("weak.feature_dim", d)):
            if v is None:
                raise ConfigError(name, "must be given (the oracle does not expose it)")
        return theory_schedule(cfg, int(d), float(beta), float(r_max))

    # -- spanner construction phase (lines 4-13) -----------------------------------------------------------
    def _spanner(self, sch: SpannerSchedule, weak, prompts, gen):
        cfg = self.config
        gram = InverseGram(sch.d, sch.lam)
        kept_x, kept_y, kept_phi = [], [], []
        for b0 in range(0, sch.T_prompt, cfg.span_block):
            xs = prompts.draw(min(cfg.span_block, sch.T_prompt - b0), gen)

            def pairs(pos: torch.Tensor, c: int, xs=xs):
                s = weak.sample(xs[pos], 2 * c, gen)
                f = s.features.reshape(pos.numel(), c, 2, -1)
                return f[:, :, 0] - f[:, :, 1], s.responses.reshape(pos.numel(), c, 2, *s.responses.shape[2:])

            for pos, phi, resp in spanner_block(pairs, xs.numel(), sch.T_span, sch.nu, gram, cfg.span_chunk):
                kept_x.append(xs[pos])
                kept_y.append(resp)
                kept_phi.append(phi)
        if kept_x:
            return gram, torch.stack(kept_x), torch.stack(kept_y), torch.stack(kept_phi)
        return gram, None, None, None

    def run(self, weak, reward, prompts, generator: torch.Generator | None = None) -> SpannerSamplingResult:
        """Run Algorithm 3 with the oracles ``weak`` (π_ref), ``reward`` and the prompt source ``prompts``."""
        cfg, gen = self.config, generator
        sch = self.schedule(weak, reward)
        gram, sx, sy, sphi = self._spanner(sch, weak, prompts, gen)
        ls = LeastSquaresState(sch.d)
        if sx is not None:                                      # rewards of both responses of every tuple
            r = reward.outcome(sx, sy, gen)
            ls.add(sphi, r[:, 0] - r[:, 1])
        span_ledger = ledger_totals(weak, reward, prompts)
        sigma_inv = gram.inv.clone()
        thetas, history = [], []
        for t0 in range(0, sch.T_exp, cfg.exp_batch):           # exploration phase (lines 14-20)
            nb = min(cfg.exp_batch, sch.T_exp - t0)
            theta = constrained_least_squares(ls.G, ls.h, cfg.reg_lam, cfg.B, cfg.theta_set)
            xs = prompts.draw(nb, gen)
            ref = weak.sample(xs, 1, gen)                       # y₂ ~ π_ref
            r2 = reward.outcome(xs, ref.responses, gen)[:, 0]
            phi2 = ref.features[:, 0]

            def score(s, rows=None, theta=theta, phi2=phi2):
                return truncated_score(
                    theta, sigma_inv, sch.nu, s.features, phi2 if rows is None else phi2[rows]
                )

            out = softmax_sampler(weak_draw(weak, xs, gen), score, sch.beta, sch.M_rej, sch.delta_rej,
                                  generator=gen, chunk=cfg.chunk)
            r1 = reward.outcome(xs, out.samples.responses, gen)[:, 0]
            ls.add(out.samples.features[:, 0] - phi2, r1 - r2)
            thetas.append(theta.expand(nb, -1))
            tot = ledger_totals(weak, reward, prompts)
            history.append(
                {
                    "round": t0 + nb,
                    "t_data": tot.get("t_data", 0),
                    "t_comp": tot.get("t_comp", 0),
                    "prompts": tot.get("prompts", 0),
                    "rejection_failures": int((~out.accepted).sum()),
                }
            )
        policy = SpannerSamplingPolicy(
            torch.cat(thetas),
            sigma_inv,
            sch.nu,
            sch.beta,
            sch.M_rej,
            sch.delta_rej,
            weak=weak,
            prompt_source=prompts,
            chunk=cfg.chunk,
        )
        return SpannerSamplingResult(policy=policy, ledger=ledger_totals(weak, reward, prompts),
                                     spanner_size=0 if sx is None else sx.shape[0], schedule=sch,
                                     history=history, span_phase=span_ledger)
