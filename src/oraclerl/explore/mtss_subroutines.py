"""Subroutines of MTSS (Foster et al. 2025, App. J): truncated scores, policy roll-outs, FitValue (Alg. 5),
UncertainStateAction (Alg. 6). FitValue's regression is the shared
:func:`~oraclerl.explore.linear_regression.constrained_least_squares`.

Layers are 0-based in code (layer l = prefix length = the paper's h − 1). A *state* is a (prompt, prefix)
pair: prompts [B] and prefixes [B, l]. Everything here reaches the model through the weak autoregressive
oracle (samples with features, anchor feature queries) and the per-step reward oracle only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..inference.softmax_sampler import autoregressive_draw, sampler_log_law, softmax_sampler
from .linear_regression import constrained_least_squares
from .truncated_softmax import truncated_score


@dataclass
class TruncatedSoftmaxPolicy:
    """π̂_{1:H}: π̂_h(·|x) = SoftmaxSampler_{β,M,δ}(⟨φ̄_h(x, ·), θ_h⟩; x, π_ref) (Alg. 4, inner loop).

    φ_h(x, a) = ϕ_h(x, a) − ϕ_h(x, 𝔞) and φ̄_h = φ_h·1{‖φ_h‖²_{Σ_h⁻¹} ≤ ν²}. The ideal (target) law is
    π̂_h(a|x) ∝ π_{h,ref}(a|x)·exp(⟨φ̄_h(x, a), θ_h⟩/β); the sampler draws it exactly on an event of
    probability ≥ 1 − δ when M ≥ 4·‖π̂_h/π_ref‖_∞ (Theorem F.2).
    """

    theta: torch.Tensor
    """[H, d]: θ_h."""
    sigma_inv: torch.Tensor
    """[H, d, d]: Σ_h⁻¹ of the truncation."""
    nu: float
    """Truncation radius ν."""
    beta: float
    """Temperature β."""
    anchor: int
    """Anchor action 𝔞."""
    M: float
    """Envelope constant M of SoftmaxSampler."""
    delta: float
    """Failure probability δ of SoftmaxSampler."""
    chunk: int | None = None
    """Candidates per row per step of SoftmaxSampler (None = ceil(M))."""

    @property
    def horizon(self) -> int:
        return self.theta.shape[0]

    def scores(self, layer: int, phi: torch.Tensor, phi_anchor: torch.Tensor) -> torch.Tensor:
        """⟨φ̄_h(x, a), θ_h⟩ for features ϕ_h(x, a) [B, n, d] and anchor features ϕ_h(x, 𝔞) [B, d]: [B, n]."""
        return truncated_score(self.theta[layer], self.sigma_inv[layer], self.nu, phi, phi_anchor)

    def token_scores(self, layer: int, tokens: torch.Tensor, phi: torch.Tensor, phi_anchor: torch.Tensor,
                     num_actions: int) -> torch.Tensor:
        """:meth:`scores` of n draws per row [B, n] (features [B, n, d]), computed once per (row, token).

        ϕ_h(x, a) is a function of the state and the token, so the n ≫ |A| draws of a row carry at most |A|
        distinct feature vectors: they are written into a [B, |A|, d] table (equal values where tokens
        repeat), scored there and gathered back. Same values as ``scores(layer, phi, phi_anchor)``, with the
        per-draw work a copy and a gather instead of the quadratic form.
        """
        B, n = tokens.shape
        if n <= num_actions:
            return self.scores(layer, phi, phi_anchor)
        tab = phi.new_zeros(B, num_actions, phi.shape[-1])
        tab[torch.arange(B)[:, None].expand(B, n), tokens] = phi
        return self.scores(layer, tab, phi_anchor).gather(1, tokens)

    def step(self, auto, prompts: torch.Tensor, prefixes: torch.Tensor, generator=None):
        """Draw a_h ~ π̂_h at the states (prompts, prefixes) with SoftmaxSamplerDensity (Alg. 2).

        Returns (tokens [B], φ_h(x, a) [B, d], log ρ [B], ϕ_h(x, 𝔞) [B, d]); queries the anchor features
        ϕ_h(x, 𝔞) once per state (t_feature).
        """
        layer = prefixes.shape[1]
        B = prompts.numel()
        anchor_feat = auto.anchor_features(
            prompts, prefixes, torch.full((B,), self.anchor, dtype=torch.long)
        )[:, 0]

        num_actions = auto.num_actions

        def score(s, rows=None):
            a = anchor_feat if rows is None else anchor_feat[rows]
            return self.token_scores(layer, s.responses, s.features, a, num_actions)

        out = softmax_sampler(autoregressive_draw(auto, prompts, prefixes, generator), score, self.beta,
                              self.M, self.delta, generator=generator, chunk=self.chunk)
        return (
            out.samples.responses[:, 0],
            out.samples.features[:, 0] - anchor_feat,
            out.log_density,
            anchor_feat,
        )

    def sample(self, auto, prompts: torch.Tensor, generator=None) -> torch.Tensor:
        """Sample whole responses token by token through the weak oracle (inference-time, improper): [B,
        H]."""
        prompts = torch.as_tensor(prompts, dtype=torch.long)
        prefixes = torch.zeros(prompts.numel(), 0, dtype=torch.long)
        for _ in range(self.horizon):
            a = self.step(auto, prompts, prefixes, generator)[0]
            prefixes = torch.cat([prefixes, a[:, None]], dim=1)
        return prefixes

    def log_prob_tables(self, model, law: str = "sampler", normaliser: str = "exact") -> list:
        """log π̂_h(a|s) per automaton state, [S_h, A] per layer (evaluation code: reads the model).

        ``law="sampler"`` (default, issue 16 §1): the law :meth:`step` really draws, SoftmaxSampler_{β,M,δ}
        with its clipping at M and failure branch
        (:func:`~oraclerl.inference.softmax_sampler.sampler_log_law`; Ẑ = Z with ``normaliser="exact"``,
        averaged over the sampler's own Ẑ with ``"estimated"``, tiny instances only); ``law="target"``: the
        ideal truncated softmax π_ref·e^{f/β}/Z.
        """
        return [
            self.log_prob_rows(h, model.log_ref[h], model.phi[h], law, normaliser)
            for h in range(self.horizon)
        ]

    def log_prob_rows(self, layer: int, log_ref: torch.Tensor, phi: torch.Tensor, law: str = "sampler",
                      normaliser: str = "exact") -> torch.Tensor:
        """log π̂_h(a|s) [n, A] for a block of states at layer ``layer`` given their log π_{h,ref} [n, A] and
        features ϕ_h [n, A, d] (the rows of :meth:`log_prob_tables`, for a DP over blocks of states)."""
        if law not in ("sampler", "target"):
            raise ConfigError("law", f"must be 'sampler' or 'target', got {law!r}")
        phi = phi.to(self.theta.dtype)
        f = self.scores(layer, phi, phi[:, self.anchor])
        if law == "sampler":
            return sampler_log_law(log_ref, f, self.beta, self.M, self.delta, normaliser)
        return torch.log_softmax(log_ref + f / self.beta, dim=-1)


def elliptic_norm2(rel: torch.Tensor, sigma_inv: torch.Tensor) -> torch.Tensor:
    """‖φ‖²_{Σ⁻¹} = φᵀ Σ⁻¹ φ along the last axis."""
    return ((rel @ sigma_inv) * rel).sum(-1)


@dataclass
class CoreSet:
    """A multiset C_h of state–action pairs at one layer, with the relative features the learner observed."""

    prompts: torch.Tensor
    prefixes: torch.Tensor
    actions: torch.Tensor
    rel: torch.Tensor
    """φ_h(x, a) = ϕ_h(x, a) − ϕ_h(x, 𝔞) for each pair (zero for the anchor pairs)."""

    @classmethod
    def empty(cls, layer: int, d: int, dtype) -> CoreSet:
        z = torch.zeros(0, dtype=torch.long)
        return cls(z, torch.zeros(0, layer, dtype=torch.long), z.clone(), torch.zeros(0, d, dtype=dtype))

    def __len__(self) -> int:
        return self.prompts.numel()

    def add(self, prompt, prefix, action, rel, anchor: int) -> None:
        """C_h += {(x, a), (x, 𝔞)} (Alg. 4)."""
        self.prompts = torch.cat([self.prompts, prompt.reshape(1), prompt.reshape(1)])
        self.prefixes = torch.cat([self.prefixes, prefix.reshape(1, -1), prefix.reshape(1, -1)])
        self.actions = torch.cat([self.actions, action.reshape(1), torch.tensor([anchor])])
        self.rel = torch.cat([self.rel, rel.reshape(1, -1), torch.zeros_like(rel).reshape(1, -1)])


def fit_value(layer: int, core: CoreSet, policy: TruncatedSoftmaxPolicy, auto, step_reward, n_reg: int,
              radius: float, generator, counts: dict) -> torch.Tensor:
    """FitValue_h (Algorithm 5): θ̂_h from Monte-Carlo soft-Q differences against the anchor.

    For each core pair (x_h, a_h) and each of the N repetitions, two roll-outs restart at x_h (reset): one
    takes a_h, the other 𝔞; both then follow π̂_{h+1:H} with SoftmaxSamplerDensity, and the target is z_h =
    [r′_h + Σ_{ℓ>h}(r′_ℓ − β log ρ′_ℓ)] − [r″_h + Σ_{ℓ>h}(r″_ℓ − β log ρ″_ℓ)], whose mean is Q^π̂_h(x_h, a_h)
    − Q^π̂_h(x_h, 𝔞) up to the density-estimate error. Rewards at h are redrawn per repetition
    (docs/papers/foster2025_exploration.md §6.1 [impl]). Anchor pairs have φ_h = 0: their squared loss does
    not depend on θ, so they are skipped (the argmin is unchanged). ``policy`` supplies θ_{h+1:H} and
    Σ_{h+1:H}.
    """
    keep = core.actions != policy.anchor
    d = core.rel.shape[1]
    if not keep.any():
        return torch.zeros(d, dtype=core.rel.dtype)
    R = int(keep.sum()) * n_reg
    prompts = core.prompts[keep].repeat_interleave(n_reg)
    prefixes = core.prefixes[keep].repeat_interleave(n_reg, dim=0)
    first = torch.cat([core.actions[keep].repeat_interleave(n_reg), torch.full((R,), policy.anchor)])
    prompts2 = torch.cat([prompts, prompts])
    states = torch.cat([torch.cat([prefixes, prefixes]), first[:, None]], dim=1)  # x′_{h+1}, x″_{h+1}
    # 2R restarts at x_h, counted by the oracle
    auto.reset(prompts2, torch.cat([prefixes, prefixes]))
    ret = step_reward.outcome(prompts2, states[:, None, :], generator)[:, 0]
    counts["transitions"] += 2 * R
    for _ in range(layer + 1, policy.horizon):
        a, _, log_rho, _ = policy.step(auto, prompts2, states, generator)
        states = torch.cat([states, a[:, None]], dim=1)
        ret = ret + step_reward.outcome(prompts2, states[:, None, :], generator)[:, 0] - policy.beta * log_rho
        counts["transitions"] += 2 * R
    z = ret[:R] - ret[R:]
    phi = core.rel[keep].repeat_interleave(n_reg, dim=0)
    # argmin_{‖θ‖ ≤ B} Σ (⟨φ_h, θ⟩ − z)² (no ridge: λ = 0; a singular Gram gives the min-norm solution)
    return constrained_least_squares(phi.T @ phi, phi.T @ z, 0.0, radius)


@dataclass
class UncertainPick:
    """The most uncertain pair found at one layer: (x̂, â), φ_h(x̂, â) and κ² = ‖φ_h‖²_{Σ_h⁻¹}."""

    prompt: torch.Tensor
    prefix: torch.Tensor
    action: torch.Tensor
    rel: torch.Tensor
    kappa2: float


def uncertain_state_actions(cores: list, policy: TruncatedSoftmaxPolicy, auto, prompt_source, n_span: int,
                            n_bar_span: int, generator, counts: dict) -> list:
    """UncertainStateAction_h (Algorithm 6) for every layer h at once.

    Roll-ins start N_span times from the dummy root (a fresh prompt x ~ ρ) and from every core pair
    (x_ℓ, a_ℓ) ∈ C_ℓ (reset to x_ℓ∘a_ℓ), and follow π̂ to the last layer; at each reached layer h the
    candidates are the sampled pair (x_h, a_h) and N̄_span actions ā ~ π_{h,ref}(·|x_h), and the pair with the
    largest ‖φ_h‖_{Σ_h⁻¹} over all roll-ins from C_{0:h−1} wins. One roll-in serves every layer deeper than
    its start: its prefix up to h has the law P^{π̂_{ℓ+1:h}}[·|x_ℓ, a_ℓ] that Alg. 6 draws for layer h, so each
    layer's search is Alg. 6's (the layers' searches share roll-ins instead of drawing separate ones).
    """
    H = policy.horizon
    picks = [None] * H
    prompts = torch.zeros(0, dtype=torch.long)
    states = torch.zeros(0, 0, dtype=torch.long)
    for layer in range(H):
        if layer == 0:
            new_p, new_s = prompt_source.draw(n_span, generator), torch.zeros(n_span, 0, dtype=torch.long)
        else:
            c = cores[layer - 1]
            new_p = c.prompts.repeat_interleave(n_span)
            new_s = torch.cat([c.prefixes, c.actions[:, None]], dim=1).repeat_interleave(n_span, dim=0)
            # restarts at x_ℓ∘a_ℓ, counted by the oracle
            auto.reset(new_p, new_s)
        prompts, states = torch.cat([prompts, new_p]), torch.cat([states, new_s])
        a, rel, _, anchor_feat = policy.step(auto, prompts, states, generator)
        counts["transitions"] += prompts.numel()
        cand_a, cand_rel = a[:, None], rel[:, None, :]
        if n_bar_span > 0:
            ref = auto.next_token(prompts, states, n_bar_span, generator=generator)
            cand_a = torch.cat([cand_a, ref.responses], dim=1)
            cand_rel = torch.cat([cand_rel, ref.features - anchor_feat[:, None, :]], dim=1)
        k2 = elliptic_norm2(cand_rel, policy.sigma_inv[layer])  # [B, 1 + N̄]
        flat = int(torch.argmax(k2.reshape(-1)))
        row, col = divmod(flat, k2.shape[1])
        picks[layer] = UncertainPick(prompts[row], states[row], cand_a[row, col], cand_rel[row, col],
                                     float(k2[row, col]))
        states = torch.cat([states, a[:, None]], dim=1)
    return picks
