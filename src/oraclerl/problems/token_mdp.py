"""Token-MDP instances with known ground truth (Foster et al. 2025, §5, App. I).

* :func:`coverage_gap_family` — binary tokens where the conditional coverage C_cond(π⋆_β) = 2 while the
  sequence coverage C_cov(π⋆_β) = 2^H (the separation stated after Eq. 13), realisable both
  autoregressively (Assumption I.1) and at the sequence level (Corollary 5.1).
* :func:`random_token_mdp` — random realisable instances: any |A|, H, d, built backwards so that
  Q⋆_h(x, a) − Q⋆_h(x, a′) = ⟨θ⋆_h, ϕ_h(x, a) − ϕ_h(x, a′)⟩ (Eq. 73) holds exactly while the sequence reward
  stays linear in ϕ^seq (Eq. 12).
* :func:`prefix_tree_token_mdp` — the same construction on the full prefix tree with per-prefix tables
  computed on
  demand (one float64 stored per prefix) and the exact DP evaluated level by level in blocks: |A| = 4, H = 12
  (1.1·10^7 prefixes) in ≈ 85 MiB.

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

from ..common.forwarding import forwarded
from ..common.validation import check_int, check_positive, check_range
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
from ..oracles.protocols import ExactTokenPolicy


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
    """Per-step reward r_h(x, a_{1:h}) of the last token of a prefix: ``mean(prompts, prefixes [B, n,
    h])``."""

    def __init__(self, model: AutoregressiveSoftmaxModel, step_rewards: list):
        self.model, self.step_rewards = model, step_rewards
        self.r_max = max(float(r.max()) for r in step_rewards)

    def mean(self, prompts: torch.Tensor, prefixes: torch.Tensor) -> torch.Tensor:
        h = prefixes.shape[-1]
        if not 1 <= h <= self.model.horizon:
            raise ConfigError("prefixes", f"length must be in [1, {self.model.horizon}], got {h}")
        s = self.model.states(prompts, prefixes[..., :-1])
        return self.step_rewards[h - 1][s, prefixes[..., -1]]


class _ModelShape:
    """β, H and |A| of an instance, read from its ``model`` (one definition for both instance classes)."""

    beta = forwarded("model")
    horizon = forwarded("model")
    num_actions = forwarded("model")


class _TokenInstance(_ModelShape):
    """The oracle set shared by both instance classes (each has ``model``, ``prompt_weights``, ``noise`` and
    a ``step_reward``)."""

    def oracles(
        self, budget: Budget | None = None, reveal=None, allow_anchor_features: bool = True
    ) -> SimpleNamespace:
        """Fresh ``auto`` (weak autoregressive MDP oracle), ``step_reward``, ``prompts`` and ``ledger``
        (one ledger)."""
        ledger = Ledger(budget)
        return SimpleNamespace(
            ledger=ledger,
            prompts=PromptSource(self.prompt_weights, ledger),
            auto=AutoregressiveSampler(
                self.model, ledger, reveal=reveal, allow_anchor_features=allow_anchor_features
            ),
            step_reward=RewardOracle(self.step_reward, ledger, self.noise),
        )


@dataclass
class TokenMDPInstance(_TokenInstance):
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
        if isinstance(policy, ExactTokenPolicy):
            return policy.log_prob_tables(self.model)
        raise ConfigError(
            "policy",
            "must be a list of [S_h, A] log-prob tables or have log_prob_tables(); got "
            f"{type(policy).__name__}",
        )

    def J(self, policy) -> float:
        """Exact J_β(π) = E_{x~ρ}[E^π Σ_h r_h − β Σ_h KL(π_h ‖ π_{h,ref})] (Eq. 69) by DP."""
        _, W = policy_value(self.model, self.step_rewards, self._tables(policy))
        return float((self.prompt_weights.to(W[0].dtype) * W[0][self.model.init_state]).sum())

    def J_star(self) -> float:
        return float(
            (self.prompt_weights.to(self.model.dtype) * self.optimal.V[0][self.model.init_state]).sum()
        )

    def regret(self, policy) -> float:
        """J_β(π⋆_β) − J_β(π̂), exact."""
        return self.J_star() - self.J(policy)

    def oracles(
        self, budget: Budget | None = None, reveal=None, allow_anchor_features: bool = True
    ) -> SimpleNamespace:
        """Fresh oracles sharing one ledger.

        ``auto`` (weak autoregressive sampler with anchor feature queries, Definition I.3), ``step_reward``
        (one T_data per per-step reward), ``reward`` (sequence outcome/process rewards), ``weak`` (weak
        sequence-level sampler with features ϕ^seq/√H, the features of :meth:`sequence_instance`; one T_comp
        per sequence = H autoregressive queries), ``prompts`` and ``ledger``.
        """
        o = super().oracles(budget, reveal, allow_anchor_features)
        o.reward = RewardOracle(self.reward, o.ledger, self.noise)
        seq_model = self.model.sequence_model(1.0 / math.sqrt(self.horizon))
        o.weak = WeakSampler(seq_model, o.ledger, reveal=reveal)
        return o

    def sequence_instance(self):
        """The same problem as a sequence-level :class:`~oraclerl.problems.LinearSoftmaxInstance` over Y =
        A^H.

        Enumerates A^H (lexicographic order of
        :func:`~oraclerl.models.autoregressive_softmax.enumerate_sequences`); features are ϕ^seq ∈ ℝ^{dH}.
        Sampling it is equal in law to sampling token by token.
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
        return LinearSoftmaxInstance(
            base=base,
            reward=reward,
            theta_star=theta,
            prompt_weights=self.prompt_weights,
            r_max=self.r_max,
            B=float(theta.norm()),
            noise=self.noise,
            name=f"{self.name}/sequence",
            meta={"feature_scale": scale, **self.meta},
        )

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


def _reward_noise(noise: float) -> RewardNoise:
    """Gaussian reward noise of scale ``noise`` (no noise at 0)."""
    return RewardNoise("gaussian", noise) if noise > 0 else RewardNoise()


def _uniform_prompts(X: int, dtype: torch.dtype) -> torch.Tensor:
    """The uniform prompt law ρ over [X]."""
    return torch.full((X,), 1.0 / X, dtype=dtype)


def _check_common_args(num_actions, horizon, d, beta, num_prompts, reward_scale, ref_spread, noise,
                       pool=None) -> tuple:
    """The validated (|A|, H, d, β, X, reward_scale, ref_spread, pool, noise) of the random builders, checked
    in that order (``pool`` only when given, else None)."""
    return (
        check_int("num_actions", num_actions, low=2),
        check_int("horizon", horizon, low=1),
        check_int("d", d, low=2),
        check_positive("beta", beta),
        check_int("num_prompts", num_prompts, low=1),
        check_positive("reward_scale", reward_scale),
        check_range("ref_spread", ref_spread, low=0.0),
        None if pool is None else check_int("pool", pool, low=1),
        check_range("noise", noise, low=0.0),
    )


def _draw_layer(P: int, A: int, d: int, ref_spread: float, reward_scale: float, gen: torch.Generator,
                dtype: torch.dtype) -> tuple:
    """One layer's random tables for P rows, drawn from ``gen`` in this order: log π_{h,ref} [P, A]
    (log-softmax of ``ref_spread``·N(0, 1)), the radii in [½, 1] and directions of ψ_h [P, A, d−1]
    (‖ψ_h‖ ∈ [½, 1]/√2) and u_h [d−1] uniform on the sphere of radius ``reward_scale``.

    Returns (log_ref, ψ_h, u_h).
    """
    log_ref = torch.log_softmax(ref_spread * torch.randn(P, A, generator=gen, dtype=dtype), -1)
    radii = 0.5 + 0.5 * torch.rand(P, A, 1, generator=gen, dtype=dtype)
    psi = _unit_rows(torch.randn(P, A, d - 1, generator=gen, dtype=dtype)) * radii / math.sqrt(2)
    u = reward_scale * _unit_rows(torch.randn(d - 1, generator=gen, dtype=dtype))
    return log_ref, psi, u


def _theta(u: list, last: float, dtype: torch.dtype) -> torch.Tensor:
    """[H, d]: rows (u_h, last): θ⋆_h = (u_h, √2·V_max) with last = √2·V_max, θ_seq (Eq. 12) with last = 0."""
    return torch.stack([torch.cat([uh, torch.tensor([last], dtype=dtype)]) for uh in u])


def coverage_gap_family(
    horizon: int,
    beta: float = 0.5,
    p_good: float = 0.25,
    d: int = 2,
    num_prompts: int = 1,
    signal: float = 0.6,
    noise: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> TokenMDPInstance:
    """Binary-token family with C_cond(π⋆_β) = 2 and C_cov(π⋆_β) = 2^H.

    At every prefix one of the two tokens is *good*: g_1 = k_1(x), g_{h+1} = k_{h+1}(x) XOR a_h for a hidden
    random key k (so the good token depends on the prefix). π_{h,ref}(good) = p_good ≤ 1/2 and the good token
    earns r_h = β·log(2(1 − p)/(1 − 2p)), which makes π⋆_{h,β}(good) = 2p exactly, hence a per-token density
    ratio of 2 on the good token ((1 − 2p)/(1 − p) < 1 on the other) and 2^H on the all-good sequence. Every
    state looks the same to the future, so V⋆_{h+1} is constant and π⋆_β is autoregressive linear with θ⋆_h =
    (r_good/signal, 0, …): ϕ_h(x, a_{1:h}) = (signal·1[a_h good], distractor) with a random distractor of norm
    √(1 − signal²) in the other d − 1 coordinates (‖ϕ_h‖ = 1; with d = 1 the signal is 1).
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
    good = (acts[None, :] == g_of[:, None])  # [2X, 2]
    log_ref = torch.where(
        good, torch.tensor(math.log(p), dtype=dtype), torch.tensor(math.log(1 - p), dtype=dtype)
    )
    log_refs, phis, rewards, trans = [], [], [], []
    for h in range(H):
        dist = _unit_rows(torch.randn(2 * X, 2, d - 1, generator=gen, dtype=dtype)) * math.sqrt(1 - signal**2)
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
    return TokenMDPInstance(
        model=model,
        step_rewards=rewards,
        theta_star=theta,
        theta_seq=theta.reshape(-1),
        prompt_weights=_uniform_prompts(X, dtype),
        B=r_good / signal,
        noise=_reward_noise(noise),
        name=f"coverage-gap(H={H})",
        meta={"p_good": p, "r_good": r_good, "c_cond_theory": 2.0, "c_cov_theory": 2.0**H},
    )


def random_token_mdp(
    num_actions: int = 3,
    horizon: int = 4,
    d: int = 4,
    beta: float = 0.5,
    num_prompts: int = 2,
    reward_scale: float = 1.0,
    ref_spread: float = 1.0,
    num_states: int | None = None,
    noise: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> TokenMDPInstance:
    """A random realisable token MDP (Assumption I.1 and sequence-level realisability both hold exactly).

    Construction, backwards in h: ψ_h(x, a_{1:h}) random with ‖ψ_h‖ ∈ [½, 1]/√2 in ℝ^{d−1}, u_h uniform on the
    sphere of radius ``reward_scale``, per-step reward r_h = ⟨u_h, ψ_h⟩ + c_h (c_h ≥ 0 makes r_h ≥ 0), and
    ϕ_h = (ψ_h, (V⋆_{h+1}(x a_{1:h}) − m_h)/(√2·V_max)): the last coordinate carries the soft value of the
    next state, so Q⋆_h = ⟨θ⋆_h, ϕ_h⟩ + const with θ⋆_h = (u_h, √2·V_max). The sequence reward Σ_h r_h =
    ⟨(u_h, 0)_h, ϕ^seq⟩ + const is linear in ϕ^seq. ``num_states=None`` uses the prefix tree (the law depends
    on the whole prefix; |A|^{H−1}·X states at the last layer); an integer uses a random automaton with that
    many states per layer, so H can be large.
    """
    A, H, d, beta, X, reward_scale, ref_spread, _, noise = _check_common_args(
        num_actions, horizon, d, beta, num_prompts, reward_scale, ref_spread, noise
    )
    gen = torch.Generator().manual_seed(check_int("seed", seed, low=0))
    if num_states is None:
        if X * A ** (H - 1) > 10 ** 6:
            raise ConfigError(
                "horizon",
                f"the prefix tree has X·|A|^(H−1) = {X * A ** (H - 1)} > 1e6 states at the last layer; pass "
                "num_states for an automaton model, or use prefix_tree_token_mdp (tables on demand)",
            )
        init, trans = prefix_tree_transitions(X, A, H)
        sizes = [X * A ** h for h in range(H)]
    else:
        S = check_int("num_states", num_states, low=1)
        sizes = [S] * H
        init = torch.randint(0, S, (X,), generator=gen)
        trans = [torch.randint(0, S, (S, A), generator=gen) for _ in range(H - 1)]
    layers = [_draw_layer(S_h, A, d, ref_spread, reward_scale, gen, dtype) for S_h in sizes]
    log_ref, psi, u = (list(t) for t in zip(*layers))
    lin = [psi[h] @ u[h] for h in range(H)]
    v_next, nxt = None, [None] * H
    for h in reversed(range(H)):
        nxt[h] = torch.zeros_like(lin[h]) if v_next is None else v_next[trans[h]]
        v_next = beta * torch.logsumexp(log_ref[h] + (lin[h] + nxt[h]) / beta, dim=-1)
    centred = [n - 0.5 * (n.max() + n.min()) for n in nxt]
    v_max = max(float(c.abs().max()) for c in centred)
    coef = math.sqrt(2) * v_max
    phis = [
        torch.cat([psi[h], (centred[h] / coef if v_max > 0 else centred[h])[..., None]], -1) for h in range(H)
    ]
    theta = _theta(u, coef, dtype)
    theta_seq = _theta(u, 0.0, dtype).reshape(-1)
    rewards = [lin[h] - lin[h].min() for h in range(H)]
    model = AutoregressiveSoftmaxModel(log_ref, phis, trans, init, beta)
    return TokenMDPInstance(
        model=model,
        step_rewards=rewards,
        theta_star=theta,
        theta_seq=theta_seq,
        prompt_weights=_uniform_prompts(X, dtype),
        B=float(theta.norm(dim=-1).max()),
        noise=_reward_noise(noise),
        name=f"random-token-mdp(A={A},H={H},d={d})",
        meta={"reward_scale": reward_scale, "automaton_states": num_states},
    )


# -- implicit prefix-tree instances: H = 12, |A| = 4 in bounded memory (issue 15 item 4)
# ----------------------------
_LOW31 = (1 << 31) - 1
_LOW62 = (1 << 62) - 1
_GOLD = 0x9E3779B97F4A7C15 - (1 << 64)
_F1, _F2 = 0xFF51AFD7ED558CCD - (1 << 64), 0xC4CEB9FE1A85EC53 - (1 << 64)


def _fmix64(x: torch.Tensor) -> torch.Tensor:
    """MurmurHash3's 64-bit finaliser on int64 words (wrapping arithmetic, logical shifts by masking)."""
    x = x ^ ((x >> 33) & _LOW31)
    x = x * _F1
    x = x ^ ((x >> 33) & _LOW31)
    x = x * _F2
    return x ^ ((x >> 33) & _LOW31)


class PrefixTreeTokenModel:
    """A prefix-tree token model whose per-prefix tables are computed on demand, never stored.

    State s_h = x·A^h + Σ_i a_i A^{h−i} (the prefix-tree numbering of
    :func:`~oraclerl.models.autoregressive_softmax.prefix_tree_transitions`; its child by a is s·A + a). Each
    state has a *type* k_h(s) ∈ [P_h]: k = s while the layer has S_h ≤ ``pool`` states (every prefix its own
    row), a 64-bit hash of (s, layer key) mod P_h beyond. π_{h,ref}(·|s) and ψ_h(s, ·) are row k of per-layer
    pools [P_h, A] and [P_h, A, d−1]; the last feature coordinate carries the soft value of the child,
    (V_{h+1}(s·A + a) − m_h)/c, from one stored float64 per prefix. Memory: Σ_h S_h·8 bytes of values plus the
    pools (Σ_h P_h·A·(d + 2)·8 bytes), against Σ_h S_h·A·(d + 3)·8 for dense tables.

    It is an :class:`~oraclerl.oracles.protocols.AutoregressiveModel` (with ``states``) with the same draws as
    the dense :class:`~oraclerl.models.autoregressive_softmax.AutoregressiveSoftmaxModel` of :meth:`dense`
    (inverse CDF on the same rows, same generator calls), and :meth:`rows` (every table of a block of states)
    for the exact DP.
    """

    default_reveal = None

    def __init__(self, num_prompts: int, beta: float, log_ref_pool: list, psi_pool: list, lin_pool: list,
                 type_keys: list, values: list, centre: list, coef: float, pool: int):
        self.beta = float(beta)
        self.num_prompts = int(num_prompts)
        self.horizon = len(log_ref_pool)
        self.num_actions = log_ref_pool[0].shape[1]
        self.feature_dim = psi_pool[0].shape[2] + 1
        self.pool = int(pool)
        self.log_ref_pool, self.psi_pool, self.lin_pool = log_ref_pool, psi_pool, lin_pool
        self.cdf_pool = [torch.cumsum(lr.exp(), dim=-1) for lr in log_ref_pool]
        self.type_keys = type_keys
        self.values, self.centre, self.coef = values, centre, coef
        self.init_state = torch.arange(self.num_prompts)
        self._powers = self.num_actions ** torch.arange(self.horizon + 1)        # A^0 … A^H (int64)
        self.device = torch.device("cpu")
        self.dtype = log_ref_pool[0].dtype

    @property
    def num_states(self) -> list[int]:
        return [self.num_prompts * self.num_actions ** h for h in range(self.horizon)]

    def types(self, h: int, s: torch.Tensor) -> torch.Tensor:
        """k_h(s): the pool row of the states s at layer h."""
        P = self.log_ref_pool[h].shape[0]
        if self.num_prompts * self.num_actions ** h <= self.pool:
            return s
        return (_fmix64(s * _GOLD + self.type_keys[h]) & _LOW62) % P

    def states(self, prompts: torch.Tensor, prefixes: torch.Tensor) -> torch.Tensor:
        """State of (x, a_{1:L}) for prompts [B] and prefixes [B, L] (L < H): [B]."""
        prefixes = torch.as_tensor(prefixes, dtype=torch.long)
        L = prefixes.shape[-1]
        if L >= self.horizon:
            raise ConfigError("prefixes", f"length must be < horizon {self.horizon}, got {L}")
        s = torch.as_tensor(prompts, dtype=torch.long) * self._powers[L]
        return (s + (prefixes * self._powers[:L].flip(0)).sum(-1)) if L else s

    def _value_coord(self, h: int, s: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        """(V_{h+1}(s·A + a) − m_h)/c for tokens [B, n] ([B, A] for every action when tokens is None)."""
        A = self.num_actions
        if h + 1 == self.horizon:
            shape = (s.shape[0], A) if tokens is None else tokens.shape
            return torch.zeros(shape, dtype=self.dtype)
        child = s[:, None] * A + (torch.arange(A) if tokens is None else tokens)
        c = self.values[h + 1][child] - self.centre[h]
        return c / self.coef if self.coef > 0 else c

    def rows(self, h: int, s: torch.Tensor) -> SimpleNamespace:
        """Every table of layer h at the states s [n]: log_ref [n, A], phi [n, A, d], reward [n, A]."""
        k = self.types(h, s)
        phi = torch.cat([self.psi_pool[h][k], self._value_coord(h, s, None)[..., None]], dim=-1)
        return SimpleNamespace(log_ref=self.log_ref_pool[h][k], phi=phi, lin=self.lin_pool[h][k])

    def sample_next(self, prompts, prefixes, n: int, generator=None, theta=None) -> torch.Tensor:
        """a_h ~ π_{h,ref}(·|x, a_{1:h−1}) (or π^auto_{h,θ} when θ_h is given): [B, n]."""
        from ..models.autoregressive_softmax import _sample_from_cdf
        from ..models.linear_softmax import sample_from_log_probs

        s = self.states(prompts, prefixes)
        h = prefixes.shape[-1]
        if theta is None:
            return _sample_from_cdf(self.cdf_pool[h][self.types(h, s)], n, generator)
        return sample_from_log_probs(self._tilted(h, s, theta), n, generator)

    def _tilted(self, h: int, s: torch.Tensor, theta) -> torch.Tensor:
        r = self.rows(h, s)
        theta = torch.as_tensor(theta, dtype=self.dtype)
        score = r.phi @ theta if theta.dim() == 1 else torch.einsum("bad,bd->ba", r.phi, theta)
        return torch.log_softmax(r.log_ref + score / self.beta, dim=-1)

    def step_features(self, prompts, prefixes, tokens) -> torch.Tensor:
        """ϕ_h(x, a_{1:h−1}, a) for tokens [B, n]: [B, n, d]."""
        s = self.states(prompts, prefixes)
        rows = self.rows(prefixes.shape[-1], s).phi                          # [B, A, d]: once per state
        return rows.gather(1, tokens[..., None].expand(*tokens.shape, rows.shape[-1]))

    def next_log_prob(self, prompts, prefixes, tokens, theta=None) -> torch.Tensor:
        """log π_{h,ref}(a|x, a_{1:h−1}) (or log π^auto_{h,θ}) for tokens [B, n]: [B, n]."""
        s = self.states(prompts, prefixes)
        h = prefixes.shape[-1]
        lp = self.log_ref_pool[h][self.types(h, s)] if theta is None else self._tilted(h, s, theta)
        return lp.gather(1, tokens)


class PrefixTreeStepReward:
    """Per-step reward r_h(x, a_{1:h}) = ⟨u_h, ψ_h⟩ − min_h of the last token of a prefix (implicit
    tables)."""

    def __init__(self, model: PrefixTreeTokenModel, lin_min: list):
        self.model, self.lin_min = model, lin_min
        self.r_max = max(float(model.lin_pool[h].max()) - lin_min[h] for h in range(model.horizon))

    def mean(self, prompts: torch.Tensor, prefixes: torch.Tensor) -> torch.Tensor:
        h = prefixes.shape[-1]
        m = self.model
        if not 1 <= h <= m.horizon:
            raise ConfigError("prefixes", f"length must be in [1, {m.horizon}], got {h}")
        B, n = prefixes.shape[:2]
        flat = prefixes.reshape(B * n, h)
        s = m.states(torch.as_tensor(prompts, dtype=torch.long).repeat_interleave(n), flat[:, :-1])
        return (m.lin_pool[h - 1][m.types(h - 1, s), flat[:, -1]] - self.lin_min[h - 1]).reshape(B, n)


@dataclass
class PrefixTreeTokenMDPInstance(_TokenInstance):
    """A realisable token MDP on the full prefix tree whose tables are never stored
    (:func:`prefix_tree_token_mdp`).

    Exact evaluation is the soft-Bellman / policy-value DP of
    :func:`~oraclerl.models.autoregressive_softmax.policy_value`, level by level from the last layer and in
    blocks of ``chunk`` states (:meth:`J_many`): memory is one float64 per prefix of two adjacent layers per
    policy.
    """

    model: PrefixTreeTokenModel
    lin_min: list
    theta_star: torch.Tensor
    prompt_weights: torch.Tensor
    B: float
    chunk: int = 1 << 16
    noise: RewardNoise = field(default_factory=RewardNoise)
    name: str = "prefix-tree-token-mdp"
    meta: dict = field(default_factory=dict)

    @cached_property
    def step_reward(self) -> PrefixTreeStepReward:
        return PrefixTreeStepReward(self.model, self.lin_min)

    def J_star(self) -> float:
        """J_β(π⋆_β) = E_ρ V⋆_1 (V⋆_h = the construction's soft values shifted by the reward offsets
        Σ_{ℓ≥h} min_ℓ)."""
        v0 = self.model.values[0][self.model.init_state] - sum(self.lin_min)
        return float((self.prompt_weights * v0).sum())

    def _rule(self, policy, law: str):
        if isinstance(policy, str):
            if policy == "ref":
                return lambda h, r: r.log_ref
            if policy == "optimal":
                return lambda h, r: torch.log_softmax(
                    r.log_ref + (r.phi @ self.theta_star[h]) / self.beta, dim=-1
                )
            raise ConfigError("policy", f"must be 'ref', 'optimal' or have log_prob_rows(); got {policy!r}")
        if isinstance(policy, ExactTokenPolicy):
            return lambda h, r: policy.log_prob_rows(h, r.log_ref, r.phi, law=law)
        if callable(policy):
            return policy
        raise ConfigError(
            "policy", f"must be 'ref', 'optimal' or have log_prob_rows(); got {type(policy).__name__}"
        )

    def J_many(self, policies: list) -> list:
        """Exact J_β of each of ``policies`` (pairs (policy, law) or plain policies at the sampler law) in
        one DP pass."""
        rules = [self._rule(*(p if isinstance(p, tuple) else (p, "sampler"))) for p in policies]
        m, beta, A = self.model, self.beta, self.num_actions
        w_next = [None] * len(rules)
        for h in reversed(range(m.horizon)):
            S = m.num_states[h]
            w = [torch.empty(S, dtype=m.dtype) for _ in rules]
            for lo in range(0, S, self.chunk):
                hi = min(S, lo + self.chunk)
                r = m.rows(h, torch.arange(lo, hi))
                reward = r.lin - self.lin_min[h]
                for i, rule in enumerate(rules):
                    q = reward if w_next[i] is None else reward + w_next[i][lo * A:hi * A].reshape(hi - lo, A)
                    lp = rule(h, r)
                    p = lp.exp()
                    kl_term = torch.where(p > 0, lp - r.log_ref, torch.zeros_like(lp))
                    w[i][lo:hi] = torch.where(p > 0, p * (q - beta * kl_term), torch.zeros_like(p)).sum(-1)
            w_next = w
        return [float((self.prompt_weights * wi[m.init_state]).sum()) for wi in w_next]

    def J(self, policy, law: str = "sampler") -> float:
        """Exact J_β(π) by the chunked DP (``policy``: 'ref', 'optimal' or an object with
        ``log_prob_rows``)."""
        return self.J_many([(policy, law)])[0]

    def regret(self, policy, law: str = "sampler") -> float:
        """J_β(π⋆_β) − J_β(π), exact."""
        return self.J_star() - self.J(policy, law)

    def dense(self, max_states: int = 10 ** 6) -> TokenMDPInstance:
        """The same instance with its tables materialised (tests, small H): a :class:`TokenMDPInstance`."""
        m = self.model
        if sum(m.num_states) > max_states:
            raise ConfigError(
                "horizon", f"dense tables need {sum(m.num_states)} states > max_states = {max_states}"
            )
        rows = [m.rows(h, torch.arange(m.num_states[h])) for h in range(m.horizon)]
        init, trans = prefix_tree_transitions(m.num_prompts, m.num_actions, m.horizon)
        model = AutoregressiveSoftmaxModel(
            [r.log_ref for r in rows], [r.phi for r in rows], trans, init, m.beta
        )
        rewards = [r.lin - self.lin_min[h] for h, r in enumerate(rows)]
        return TokenMDPInstance(model=model, step_rewards=rewards, theta_star=self.theta_star,
                                theta_seq=torch.cat([self.theta_star[:, :-1], torch.zeros(m.horizon, 1,
                                                     dtype=m.dtype)], 1).reshape(-1),
                                prompt_weights=self.prompt_weights, B=self.B, noise=self.noise,
                                name=f"{self.name}/dense", meta=dict(self.meta))


def prefix_tree_token_mdp(
    num_actions: int = 4,
    horizon: int = 12,
    d: int = 8,
    beta: float = 0.5,
    num_prompts: int = 2,
    reward_scale: float = 1.0,
    ref_spread: float = 1.0,
    pool: int = 1 << 14,
    noise: float = 0.0,
    seed: int = 0,
    chunk: int = 1 << 16,
) -> PrefixTreeTokenMDPInstance:
    """A random realisable token MDP on the full prefix tree (X·|A|^{H−1} prefixes at the last layer) in
    bounded memory.

    The construction of :func:`random_token_mdp` (ψ_h with ‖ψ_h‖ ∈ [½, 1]/√2, u_h on the sphere of radius
    ``reward_scale``, r_h = ⟨u_h, ψ_h⟩ − min, ϕ_h = (ψ_h, (V⋆_{h+1}(x a_{1:h}) − m_h)/(√2·V_max)), θ⋆_h =
    (u_h, √2·V_max)), so Assumption I.1 holds exactly, with π_{h,ref}(·|s) and ψ_h(s, ·) drawn per *type*:
    every prefix its own row in layers with at most ``pool`` states, a hashed row of a pool of ``pool`` draws
    beyond (see :class:`PrefixTreeTokenModel`). V⋆ still differs per prefix (it sums its whole subtree), so
    the features and the optimal policy do too. The soft values are computed backwards in blocks of ``chunk``
    states: one float64 per prefix is kept (85 MiB at |A| = 4, H = 12, X = 2, d = 8, against ≈ 4.5 GiB of
    dense tables and soft-Bellman tables).
    """
    A, H, d, beta, X, reward_scale, ref_spread, pool, noise = _check_common_args(
        num_actions, horizon, d, beta, num_prompts, reward_scale, ref_spread, noise, pool=pool
    )
    chunk = check_int("chunk", chunk, low=1)
    if X * A ** (H - 1) > 1 << 36:
        raise ConfigError(
            "horizon",
            f"X·|A|^(H−1) = {X * A ** (H - 1)} prefixes at the last layer > 2^36 (memory: 8 "
            "bytes per prefix)",
        )
    dtype = torch.float64
    gen = torch.Generator().manual_seed(check_int("seed", seed, low=0))
    sizes = [X * A ** h for h in range(H)]
    layers, keys = [], []
    for S_h in sizes:
        layers.append(_draw_layer(min(S_h, pool), A, d, ref_spread, reward_scale, gen, dtype))
        keys.append(int(torch.randint(0, 1 << 62, (1,), generator=gen)))   # the layer's hash key, after u_h
    log_ref, psi, u = (list(t) for t in zip(*layers))
    lin = [psi[h] @ u[h] for h in range(H)]
    model = PrefixTreeTokenModel(X, beta, log_ref, psi, lin, keys, [None] * H, [0.0] * H, 0.0, pool)
    values, lin_min = [None] * H, [0.0] * H
    for h in reversed(range(H)):
        v = torch.empty(sizes[h], dtype=dtype)
        lmin = math.inf
        for lo in range(0, sizes[h], chunk):
            hi = min(sizes[h], lo + chunk)
            k = model.types(h, torch.arange(lo, hi))
            lh = lin[h][k]
            q = lh if h + 1 == H else lh + values[h + 1][lo * A:hi * A].reshape(hi - lo, A)
            v[lo:hi] = beta * torch.logsumexp(log_ref[h][k] + q / beta, dim=-1)
            lmin = min(lmin, float(lh.min()))
        values[h], lin_min[h] = v, lmin
    centre = [
        0.5 * (float(values[h + 1].max()) + float(values[h + 1].min())) if h + 1 < H else 0.0
        for h in range(H)
    ]
    v_max = max([0.0] + [float((values[h + 1] - centre[h]).abs().max()) for h in range(H - 1)])
    coef = math.sqrt(2) * v_max
    model.values, model.centre, model.coef = values, centre, coef
    theta = _theta(u, coef, dtype)
    return PrefixTreeTokenMDPInstance(
        model=model, lin_min=lin_min, theta_star=theta, prompt_weights=_uniform_prompts(X, dtype),
        B=float(theta.norm(dim=-1).max()), chunk=chunk, noise=_reward_noise(noise),
        name=f"prefix-tree-token-mdp(A={A},H={H},d={d})",
        meta={"reward_scale": reward_scale, "pool": pool, "prefix_values_bytes": 8 * sum(sizes)})
