"""Token-MDP instances with known ground truth (Foster et al. 2025, §5, App. I).

* :func:`coverage_gap_family` — binary tokens where the conditional coverage C_cond(π⋆_β) = 2 while the
  sequence coverage C_cov(π⋆_β) = 2^H (the separation stated after Eq. 13), realisable both
  autoregressively (Assumption I.1) and at the sequence level (Corollary 5.1).
* :func:`random_token_mdp` — random realisable instances: any |A|, H, d, built backwards so that
  Q⋆_h(x, a) − Q⋆_h(x, a′) = ⟨θ⋆_h, ϕ_h(x, a) − ϕ_h(x, a′)⟩ (Eq. 73) holds exactly while the sequence reward
  stays linear in ϕ^seq (Eq. 12).

Rewards: :class:`TokenMDPReward` is the sequence reward Σ_h r_h (outcome) with per-step process rewards;
:class:`StepReward` answers one per-step reward r_h(x, a_{1:h}) per query (the MDP reward oracle of
Definition I.3, one T_data each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from types import SimpleNamespace

import torch

from ..errors import ConfigError
from ..models.autoregressive_softmax import (
    AutoregressiveSoftmaxModel,
    policy_value,
    prefix_tree_transitions,
    sequence_log_probs,
    sequence_sums,
    soft_bellman,
)
from ..oracles import (
    AutoregressiveSampler,
    Budget,
    Ledger,
    PromptSource,
    RewardNoise,
    RewardOracle,
    WeakSampler,
)
from ..validation import check_int, check_positive, check_range


class TokenMDPReward:
    """Sequence reward r⋆(x, a_{1:H}) = Σ_h r_h(x, a_{1:h}) with per-step process rewards."""

    def __init__(self, model: AutoregressiveSoftmaxModel, step_rewards: list, r_max: float):
        self.model, self.step_rewards, self.r_max = model, step_rewards, float(r_max)

    def process_mean(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        """r_h(x, a_{1:h}) for every h: [B, n, H] (responses [B, n, H])."""
        s = self.model.state_path(prompts, responses)
        return torch.stack([self.step_rewards[h][s[..., h], responses[..., h]]
                            for h in range(responses.shape[-1])], dim=-1)

    def mean(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        """Σ_h r_h: [B, n]."""
        return self.process_mean(prompts, responses).sum(-1)


class StepReward:
    """Per-step reward r_h(x, a_{1:h}) of the last token of a prefix: ``mean(prompts, prefixes [B, n, h])``."""

    def __init__(self, model: AutoregressiveSoftmaxModel, step_rewards: list):
        self.model, self.step_rewards = model, step_rewards
        self.r_max = max(float(r.max()) for r in step_rewards)

    def mean(self, prompts: torch.Tensor, prefixes: torch.Tensor) -> torch.Tensor:
        h = prefixes.shape[-1]
        if not 1 <= h <= self.model.horizon:
            raise ConfigError("prefixes", f"length must be in [1, {self.model.horizon}], got {h}")
        s = self.model.states(prompts, prefixes[..., :-1])
        return self.step_rewards[h - 1][s, prefixes[..., -1]]


@dataclass
class TokenMDPInstance:
    """A realisable KL-regularised token MDP with every quantity exact (Foster et al. App. I)."""

    model: AutoregressiveSoftmaxModel
    """The base model π_ref with step features ϕ_h and β."""
    step_rewards: list
    """Mean per-step rewards r_h(state, a): H tensors [S_h, A], each in [0, R_max]."""
    theta_star: torch.Tensor
    """[H, d]: θ⋆_h with π⋆_{h,β} = π^auto_{h,θ⋆} (Assumption I.1)."""
    theta_seq: torch.Tensor
    """[d·H]: θ⋆ of the sequence-level class, r⋆ − ⟨θ_seq, ϕ^seq⟩ depends on x only (Eq. 12)."""
    prompt_weights: torch.Tensor
    """The prompt law ρ over [X]."""
    B: float
    """Radius of the per-layer parameter sets Θ_h = B_d(B) (max_h ‖θ⋆_h‖)."""
    noise: RewardNoise = field(default_factory=RewardNoise)
    """Noise of the reward oracles."""
    name: str = "token-mdp"
    meta: dict = field(default_factory=dict)

    @property
    def beta(self) -> float:
        return self.model.beta

    @property
    def horizon(self) -> int:
        return self.model.horizon

    @property
    def num_actions(self) -> int:
        return self.model.num_actions

    @cached_property
    def reward(self) -> TokenMDPReward:
        return TokenMDPReward(self.model, self.step_rewards, sum(float(r.max()) for r in self.step_rewards))

    @cached_property
    def step_reward(self) -> StepReward:
        return StepReward(self.model, self.step_rewards)

    @property
    def r_max(self) -> float:
        return self.reward.r_max

    @cached_property
    def optimal(self) -> SimpleNamespace:
        """Q⋆, V⋆ and log π⋆_β per layer (soft Bellman DP, Definition I.2)."""
        Q, V, logpi = soft_bellman(self.model, self.step_rewards)
        return SimpleNamespace(Q=Q, V=V, log_policy=logpi)

    def _tables(self, policy) -> list:
        if isinstance(policy, (list, tuple)):
            return list(policy)
        if hasattr(policy, "log_prob_tables"):
            return policy.log_prob_tables(self.model)
        raise ConfigError("policy", f"must be a list of [S_h, A] log-prob tables or have log_prob_tables(); got {type(policy).__name__}")

    def J(self, policy) -> float:
        """Exact J_β(π) = E_{x~ρ}[E^π Σ_h r_h − β Σ_h KL(π_h ‖ π_{h,ref})] (Eq. 69) by DP."""
        _, W = policy_value(self.model, self.step_rewards, self._tables(policy))
        return float((self.prompt_weights.to(W[0].dtype) * W[0][self.model.init_state]).sum())

    def J_star(self) -> float:
        return float((self.prompt_weights.to(self.model.dtype) * self.optimal.V[0][self.model.init_state]).sum())

    def regret(self, policy) -> float:
        """J_β(π⋆_β) − J_β(π̂), exact."""
        return self.J_star() - self.J(policy)

    def oracles(self, budget: Budget | None = None, reveal=None, allow_anchor_features: bool = True) -> SimpleNamespace:
        """Fresh oracles sharing one ledger.

        ``auto`` (weak autoregressive sampler with anchor feature queries, Definition I.3), ``step_reward``
        (one T_data per per-step reward), ``reward`` (sequence outcome/process rewards), ``weak`` (weak
        sequence-level sampler with features ϕ^seq/√H, the features of :meth:`sequence_instance`; one T_comp
        per sequence = H autoregressive queries), ``prompts`` and ``ledger``.
        """
        ledger = Ledger(budget)
        return SimpleNamespace(
            ledger=ledger,
            prompts=PromptSource(self.prompt_weights, ledger),
            auto=AutoregressiveSampler(self.model, ledger, reveal=reveal, allow_anchor_features=allow_anchor_features),
            step_reward=RewardOracle(self.step_reward, ledger, self.noise),
            reward=RewardOracle(self.reward, ledger, self.noise),
            weak=WeakSampler(self.model.sequence_model(1.0 / math.sqrt(self.horizon)), ledger, reveal=reveal),
        )

    def sequence_instance(self):
        """The same problem as a sequence-level :class:`~oraclerl.problems.LinearSoftmaxInstance` over Y = A^H.

        Enumerates A^H (lexicographic order of :func:`~oraclerl.models.autoregressive_softmax.enumerate_sequences`);
        features are ϕ^seq ∈ ℝ^{dH}. Sampling it is equal in law to sampling token by token.
        """
        from ..models.autoregressive_softmax import enumerate_sequences
        from ..models.linear_softmax import LinearSoftmaxModel
        from ..models.rewards import TableReward
        from .instance import LinearSoftmaxInstance

        m = self.model
        seqs = enumerate_sequences(m.num_actions, m.horizon, m.device)
        X = m.num_prompts
        prompts = torch.arange(X, device=m.device)
        resp = seqs[None].expand(X, -1, -1)
        phi = m.features(prompts, resp)
        # ‖ϕ^seq‖ ≤ √H: rescale so that ‖ϕ‖ ≤ 1 (Assumption 2.1) and θ by the same factor.
        scale = math.sqrt(m.horizon)
        base = LinearSoftmaxModel(sequence_log_probs(m), phi / scale, m.beta)
        reward = TableReward(sequence_sums(m, self.step_rewards), self.r_max)
        theta = self.theta_seq * scale
        return LinearSoftmaxInstance(base=base, reward=reward, theta_star=theta, prompt_weights=self.prompt_weights,
                                     r_max=self.r_max, B=float(theta.norm()), noise=self.noise,
                                     name=f"{self.name}/sequence", meta={"feature_scale": scale, **self.meta})

    def describe(self) -> dict:
        from ..diagnostics.token_coverage import log_conditional_coverage, log_sequence_coverage

        logpi = self.optimal.log_policy
        return {"name": self.name, "num_prompts": self.model.num_prompts, "num_actions": self.num_actions,
                "horizon": self.horizon, "d": self.model.feature_dim, "beta": self.beta, "r_max": self.r_max,
                "B": self.B, "states": sum(self.model.num_states),
                "c_cond": math.exp(log_conditional_coverage(self.model, logpi, self.prompt_weights)),
                "c_cov": math.exp(log_sequence_coverage(self.model, logpi, self.prompt_weights)), **self.meta}


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-300)


def coverage_gap_family(horizon: int, beta: float = 0.5, p_good: float = 0.25, d: int = 2, num_prompts: int = 1,
                        signal: float = 0.6, noise: float = 0.0, seed: int = 0,
                        dtype: torch.dtype = torch.float64) -> TokenMDPInstance:
    """Binary-token family with C_cond(π⋆_β) = 2 and C_cov(π⋆_β) = 2^H.

    At every prefix one of the two tokens is *good*: g_1 = k_1(x), g_{h+1} = k_{h+1}(x) XOR a_h for a hidden
    random key k (so the good token depends on the prefix). π_{h,ref}(good) = p_good ≤ 1/2 and the good token
    earns r_h = β·log(2(1 − p)/(1 − 2p)), which makes π⋆_{h,β}(good) = 2p exactly, hence a per-token density
    ratio of 2 on the good token ((1 − 2p)/(1 − p) < 1 on the other) and 2^H on the all-good sequence.
    Every state looks the same to the future, so V⋆_{h+1} is constant and π⋆_β is autoregressive linear with
    θ⋆_h = (r_good/signal, 0, …): ϕ_h(x, a_{1:h}) = (signal·1[a_h good], distractor) with a random distractor of
    norm √(1 − signal²) in the other d − 1 coordinates (‖ϕ_h‖ = 1; with d = 1 the signal is 1).
    """
    H = check_int("horizon", horizon, low=1, high=64)
    beta = check_positive("beta", beta)
    p = check_range("p_good", p_good, low=0.0, high=0.5, low_open=True, high_open=True)
    d = check_int("d", d, low=1)
    X = check_int("num_prompts", num_prompts, low=1)
    signal = check_range("signal", signal, low=0.0, high=1.0, low_open=True)
    if d == 1 and signal != 1.0:
        signal = 1.0
    noise = check_range("noise", noise, low=0.0)
    gen = torch.Generator().manual_seed(check_int("seed", seed, low=0))
    key = torch.randint(0, 2, (X, H), generator=gen)
    r_good = beta * math.log(2 * (1 - p) / (1 - 2 * p))
    states = torch.arange(2 * X)                         # state 2x + g: prompt x, good token g
    x_of, g_of = states // 2, states % 2
    acts = torch.arange(2)
    good = (acts[None, :] == g_of[:, None])              # [2X, 2]
    log_ref = torch.where(good, torch.tensor(math.log(p), dtype=dtype), torch.tensor(math.log(1 - p), dtype=dtype))
    log_refs, phis, rewards, trans = [], [], [], []
    for h in range(H):
        dist = _unit_rows(torch.randn(2 * X, 2, d - 1, generator=gen, dtype=dtype)) * math.sqrt(1 - signal ** 2)
        phi = torch.cat([signal * good.to(dtype)[..., None], dist], dim=-1)
        log_refs.append(log_ref.clone())
        phis.append(phi)
        rewards.append(r_good * good.to(dtype))
        if h + 1 < H:
            trans.append(2 * x_of[:, None] + (key[x_of, h + 1][:, None] ^ acts[None, :]))
    init = 2 * torch.arange(X) + key[:, 0]
    model = AutoregressiveSoftmaxModel(log_refs, phis, trans, init, beta)
    theta = torch.zeros(H, d, dtype=dtype)
    theta[:, 0] = r_good / signal
    return TokenMDPInstance(model=model, step_rewards=rewards, theta_star=theta, theta_seq=theta.reshape(-1),
                            prompt_weights=torch.full((X,), 1.0 / X, dtype=dtype), B=r_good / signal,
                            noise=RewardNoise("gaussian", noise) if noise > 0 else RewardNoise(),
                            name=f"coverage-gap(H={H})",
                            meta={"p_good": p, "r_good": r_good, "c_cond_theory": 2.0, "c_cov_theory": 2.0 ** H})


def random_token_mdp(num_actions: int = 3, horizon: int = 4, d: int = 4, beta: float = 0.5, num_prompts: int = 2,
                     reward_scale: float = 1.0, ref_spread: float = 1.0, num_states: int | None = None,
                     noise: float = 0.0, seed: int = 0, dtype: torch.dtype = torch.float64) -> TokenMDPInstance:
    """A random realisable token MDP (Assumption I.1 and sequence-level realisability both hold exactly).

    Construction, backwards in h: ψ_h(x, a_{1:h}) random with ‖ψ_h‖ ∈ [½, 1]/√2 in ℝ^{d−1}, u_h uniform on the
    sphere of radius ``reward_scale``, per-step reward r_h = ⟨u_h, ψ_h⟩ + c_h (c_h ≥ 0 makes r_h ≥ 0), and
    ϕ_h = (ψ_h, (V⋆_{h+1}(x a_{1:h}) − m_h)/(√2·V_max)): the last coordinate carries the soft value of the
    next state, so Q⋆_h = ⟨θ⋆_h, ϕ_h⟩ + const with θ⋆_h = (u_h, √2·V_max). The sequence reward Σ_h r_h =
    ⟨(u_h, 0)_h, ϕ^seq⟩ + const is linear in ϕ^seq. ``num_states=None`` uses the prefix tree (the law depends
    on the whole prefix; |A|^{H−1}·X states at the last layer); an integer uses a random automaton with that
    many states per layer, so H can be large.
    """
    A = check_int("num_actions", num_actions, low=2)
    H = check_int("horizon", horizon, low=1)
    d = check_int("d", d, low=2)
    beta = check_positive("beta", beta)
    X = check_int("num_prompts", num_prompts, low=1)
    reward_scale = check_positive("reward_scale", reward_scale)
    ref_spread = check_range("ref_spread", ref_spread, low=0.0)
    noise = check_range("noise", noise, low=0.0)
    gen = torch.Generator().manual_seed(check_int("seed", seed, low=0))
    if num_states is None:
        if X * A ** (H - 1) > 10 ** 6:
            raise ConfigError("horizon", f"the prefix tree has X·|A|^(H−1) = {X * A ** (H - 1)} > 1e6 states at the "
                              "last layer; pass num_states for an automaton model")
        init, trans = prefix_tree_transitions(X, A, H)
        sizes = [X * A ** h for h in range(H)]
    else:
        S = check_int("num_states", num_states, low=1)
        sizes = [S] * H
        init = torch.randint(0, S, (X,), generator=gen)
        trans = [torch.randint(0, S, (S, A), generator=gen) for _ in range(H - 1)]
    log_ref, psi, u = [], [], []
    for h in range(H):
        log_ref.append(torch.log_softmax(ref_spread * torch.randn(sizes[h], A, generator=gen, dtype=dtype), -1))
        radii = 0.5 + 0.5 * torch.rand(sizes[h], A, 1, generator=gen, dtype=dtype)
        psi.append(_unit_rows(torch.randn(sizes[h], A, d - 1, generator=gen, dtype=dtype)) * radii / math.sqrt(2))
        u.append(reward_scale * _unit_rows(torch.randn(d - 1, generator=gen, dtype=dtype)))
    lin = [psi[h] @ u[h] for h in range(H)]
    v_next, nxt = None, [None] * H
    for h in reversed(range(H)):
        nxt[h] = torch.zeros_like(lin[h]) if v_next is None else v_next[trans[h]]
        v_next = beta * torch.logsumexp(log_ref[h] + (lin[h] + nxt[h]) / beta, dim=-1)
    centred = [n - 0.5 * (n.max() + n.min()) for n in nxt]
    v_max = max(float(c.abs().max()) for c in centred)
    coef = math.sqrt(2) * v_max
    phis = [torch.cat([psi[h], (centred[h] / coef if v_max > 0 else centred[h])[..., None]], -1) for h in range(H)]
    theta = torch.stack([torch.cat([u[h], torch.tensor([coef], dtype=dtype)]) for h in range(H)])
    theta_seq = torch.stack([torch.cat([u[h], torch.zeros(1, dtype=dtype)]) for h in range(H)]).reshape(-1)
    rewards = [lin[h] - lin[h].min() for h in range(H)]
    model = AutoregressiveSoftmaxModel(log_ref, phis, trans, init, beta)
    return TokenMDPInstance(model=model, step_rewards=rewards, theta_star=theta, theta_seq=theta_seq,
                            prompt_weights=torch.full((X,), 1.0 / X, dtype=dtype), B=float(theta.norm(dim=-1).max()),
                            noise=RewardNoise("gaussian", noise) if noise > 0 else RewardNoise(),
                            name=f"random-token-mdp(A={A},H={H},d={d})",
                            meta={"reward_scale": reward_scale, "automaton_states": num_states})
