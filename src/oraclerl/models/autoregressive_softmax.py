"""Autoregressive linear-softmax token MDPs with exact soft Bellman dynamic programming (Foster et al. 2025,
§5, App. I).

Responses are token sequences y = a_{1:H} ∈ A^H. The base model factorises,
π_ref(a_{1:H}|x) = Π_h π_{h,ref}(a_h | x, a_{1:h−1}), and carries step features ϕ_h(x, a_{1:h}) ∈ ℝ^d, so that

    π^auto_{h,θ}(a_h|x, a_{1:h−1}) ∝ π_{h,ref}(a_h|x, a_{1:h−1}) · exp(⟨θ_h, ϕ_h(x, a_{1:h})⟩ / β)   (Eq. 11)

and the sequence feature is ϕ^seq = (ϕ_1, …, ϕ_H) ∈ ℝ^{dH} (Eq. 12).

Representation. The law of the next token and its features depend on the prefix x_h = (x, a_{1:h−1}) only
through a *state* s_h of a deterministic automaton: s_1 = init_state[x], s_{h+1} = transitions[h][s_h, a_h].
With the prefix-tree automaton (:func:`prefix_tree_transitions`, state = the whole prefix) this is the general
token MDP and every computation below is dynamic programming over prefixes; a smaller automaton gives the
same model class with fewer distinct states, so the DP stays exact for horizons where |A|^H is not enumerable.
All per-layer quantities are tables [S_h, A] and every DP step is one batched tensor operation per layer.

Exact quantities (evaluation code; algorithms reach the model only through oracles):

* :func:`soft_bellman` — Q⋆_h(x, a) = r_h(x, a) + V⋆_{h+1}(x a), V⋆_h(x) = β log Σ_a π_ref e^{Q⋆_h/β},
  π⋆_{h,β} ∝ π_{h,ref} e^{Q⋆_h/β} (Definition I.2, Eq. 72);
* :func:`policy_value` — J_β(π) = E^π[Σ_h r_h − β Σ_h KL(π_h(x_h) ‖ π_{h,ref}(x_h))] (Eq. 69) and the soft
  Q-function Q^π_h of any Markov policy given by per-layer tables;
* :func:`sequence_log_probs` — the law of whole sequences, by enumeration (tests, sequence-level baselines);
* :func:`monte_carlo_value` — J_β(π) by roll-outs, for where a DP is not available.
"""

from __future__ import annotations

import torch

from ..common.validation import check_log_probabilities, check_positive
from ..errors import ConfigError
from .linear_softmax import sample_from_log_probs


def _sample_from_cdf(cdf: torch.Tensor, n: int, generator) -> torch.Tensor:
    """n inverse-CDF draws per row of cdf [B, A] (rows end at 1): [B, n]. Comparison counting for small A."""
    u = torch.rand((cdf.shape[0], n), generator=generator, dtype=cdf.dtype, device=cdf.device) * cdf[:, -1:]
    if cdf.shape[1] <= 16:
        idx = (u[:, :, None] >= cdf[:, None, :]).sum(-1)
    else:
        idx = torch.searchsorted(cdf, u, right=True)
    return idx.clamp_(max=cdf.shape[1] - 1)


def prefix_tree_transitions(
    num_prompts: int, num_actions: int, horizon: int, device=None
) -> tuple[torch.Tensor, list]:
    """The prefix-tree automaton: state s_h = index of (x, a_{1:h−1}) = x·A^{h−1} + Σ a_i A^{h−1−i}.

    Returns (init_state [X], transitions: H−1 tensors [S_h, A] with S_h = X·A^{h−1}).
    """
    init = torch.arange(num_prompts, device=device)
    trans = []
    for h in range(1, horizon):
        s = num_prompts * num_actions ** (h - 1)
        trans.append(torch.arange(s * num_actions, device=device).reshape(s, num_actions))
    return init, trans


class AutoregressiveSoftmaxModel:
    """A token MDP over A^H with base policy π_{h,ref}, step features ϕ_h and temperature β.

    Parameters
    ----------
    log_ref:
        H tensors [S_h, A]: log π_{h,ref}(a | state), normalised over a.
    phi:
        H tensors [S_h, A, d]: ϕ_h(x, a_{1:h}) for the prefix in state s_h followed by a.
    transitions:
        H−1 long tensors [S_h, A] with values in [0, S_{h+1}): the next state.
    init_state:
        [X] long tensor: the state of the empty prefix of each prompt.
    beta:
        KL-regularisation / temperature β > 0.

    It is an :class:`~oraclerl.oracles.protocols.AutoregressiveModel` (``feature_dim`` = the per-step d) and
    draws whole sequences too (``sample`` → [B, n, H], ``features`` → ϕ^seq [B, n, d·H], ``ref_log_prob``);
    because ``feature_dim`` is the per-step d, give :meth:`sequence_model` (a
    :class:`~oraclerl.oracles.protocols.FeatureModel` with ``feature_dim`` = d·H) to a sequence-level oracle.
    """

    default_reveal = None

    def __init__(self, log_ref: list, phi: list, transitions: list, init_state: torch.Tensor, beta: float,
                 validate: bool = True):
        self.beta = check_positive("beta", beta)
        H = len(log_ref)
        if H < 1 or len(phi) != H or len(transitions) != H - 1:
            raise ConfigError("transitions", f"need H tables of log_ref and phi and H−1 transition tables; "
                              f"got {len(log_ref)}, {len(phi)}, {len(transitions)}")
        A = log_ref[0].shape[-1]
        d = phi[0].shape[-1]
        init_state = torch.as_tensor(init_state, dtype=torch.long)
        if validate:
            for h in range(H):
                if log_ref[h].dim() != 2 or log_ref[h].shape[1] != A:
                    raise ConfigError(
                        "log_ref", f"layer {h + 1} must have shape (S_h, {A}), got {tuple(log_ref[h].shape)}"
                    )
                check_log_probabilities(f"log_ref[{h}]", log_ref[h], dim=-1)
                if tuple(phi[h].shape) != (log_ref[h].shape[0], A, d) or not torch.isfinite(phi[h]).all():
                    raise ConfigError(
                        "phi", f"layer {h + 1} must be finite with shape ({log_ref[h].shape[0]}, {A}, {d})"
                    )
            for h in range(H - 1):
                t = transitions[h]
                if (
                    tuple(t.shape) != (log_ref[h].shape[0], A)
                    or t.min() < 0
                    or t.max() >= log_ref[h + 1].shape[0]
                ):
                    raise ConfigError(
                        "transitions", f"layer {h + 1} must be [S_h, A] with values in [0, S_{{h+1}})"
                    )
            if init_state.dim() != 1 or init_state.min() < 0 or init_state.max() >= log_ref[0].shape[0]:
                raise ConfigError(
                    "init_state", f"must be a 1-D tensor with values in [0, {log_ref[0].shape[0]})"
                )
        self.log_ref = list(log_ref)
        self.phi = [p.to(log_ref[0].dtype) for p in phi]
        self.transitions = [t.long() for t in transitions]
        self.init_state = init_state.to(log_ref[0].device)
        self._ref_cdf = [torch.cumsum(lr.exp(), dim=-1) for lr in self.log_ref]

    # -- shapes -------------------------------------------------------------------------------------
    @property
    def horizon(self) -> int:
        return len(self.log_ref)

    @property
    def num_actions(self) -> int:
        return self.log_ref[0].shape[1]

    @property
    def num_prompts(self) -> int:
        return self.init_state.numel()

    @property
    def feature_dim(self) -> int:
        return self.phi[0].shape[-1]

    @property
    def num_states(self) -> list[int]:
        return [t.shape[0] for t in self.log_ref]

    @property
    def device(self) -> torch.device:
        return self.log_ref[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.log_ref[0].dtype

    # -- prefixes -> states ---------------------------------------------------------------------------
    def states(self, prompts: torch.Tensor, prefixes: torch.Tensor) -> torch.Tensor:
        """State of (x, a_{1:L}) for prompts [B] and prefixes [B, ..., L] (L < H): shape [B, ...]."""
        prefixes = torch.as_tensor(prefixes, dtype=torch.long, device=self.device)
        L = prefixes.shape[-1]
        if L >= self.horizon:
            raise ConfigError("prefixes", f"length must be < horizon {self.horizon}, got {L}")
        s = self.init_state[prompts.to(self.device)].reshape((-1,) + (1,) * (prefixes.dim() - 2))
        s = s.expand(prefixes.shape[:-1])
        for h in range(L):
            s = self.transitions[h][s, prefixes[..., h]]
        return s

    # -- autoregressive oracle back-end (Definition 5.1) ----------------------------------------------
    def _next_logits(self, h: int, s: torch.Tensor, theta) -> torch.Tensor:
        logits = self.log_ref[h][s]
        if theta is None:
            return logits
        theta = torch.as_tensor(theta, dtype=self.dtype, device=self.device)
        score = (
            self.phi[h][s] @ theta if theta.dim() == 1 else torch.einsum("bad,bd->ba", self.phi[h][s], theta)
        )
        return torch.log_softmax(logits + score / self.beta, dim=-1)

    def sample_next(self, prompts, prefixes, n: int, generator=None, theta=None) -> torch.Tensor:
        """a_h ~ π_{h,ref}(·|x, a_{1:h−1}) (or π^auto_{h,θ} when θ_h is given): [B, n]."""
        s = self.states(prompts, prefixes)
        h = prefixes.shape[-1]
        if theta is None:
            return _sample_from_cdf(self._ref_cdf[h][s], n, generator)
        return sample_from_log_probs(self._next_logits(h, s, theta), n, generator)

    def step_features(self, prompts, prefixes, tokens) -> torch.Tensor:
        """ϕ_h(x, a_{1:h−1}, a) for tokens [B, n]: [B, n, d]."""
        s = self.states(prompts, prefixes)
        return self.phi[prefixes.shape[-1]][s[:, None], tokens]

    def next_log_prob(self, prompts, prefixes, tokens, theta=None) -> torch.Tensor:
        """log π_{h,ref}(a|x, a_{1:h−1}) (or log π^auto_{h,θ}) for tokens [B, n]: [B, n]."""
        s = self.states(prompts, prefixes)
        return self._next_logits(prefixes.shape[-1], s, theta).gather(1, tokens)

    # -- sequence-level weak-oracle back-end (Corollary 5.1) ------------------------------------------
    def state_path(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        """States s_1..s_L of every prefix of responses [B, n, L]: [B, n, L]."""
        B, n, L = responses.shape
        s = self.init_state[prompts.to(self.device)][:, None].expand(B, n)
        out = [s]
        for h in range(L - 1):
            s = self.transitions[h][s, responses[..., h]]
            out.append(s)
        return torch.stack(out, dim=-1)

    def sample(self, prompts: torch.Tensor, n: int, generator=None) -> torch.Tensor:
        """y = a_{1:H} ~ π_ref(·|x), token by token: [B, n, H]."""
        B = prompts.numel()
        s = self.init_state[prompts.to(self.device)].repeat_interleave(n)
        toks = []
        for h in range(self.horizon):
            a = _sample_from_cdf(self._ref_cdf[h][s], 1, generator)[:, 0]
            toks.append(a)
            if h + 1 < self.horizon:
                s = self.transitions[h][s, a]
        return torch.stack(toks, -1).reshape(B, n, self.horizon)

    def features(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        """ϕ^seq(x, y) = (ϕ_1, …, ϕ_H): [B, n, d·H]."""
        s = self.state_path(prompts, responses)
        return torch.cat(
            [self.phi[h][s[..., h], responses[..., h]] for h in range(responses.shape[-1])], dim=-1
        )

    def ref_log_prob(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        """log π_ref(y|x) = Σ_h log π_{h,ref}(a_h|x_h): [B, n]."""
        s = self.state_path(prompts, responses)
        return sum(self.log_ref[h][s[..., h], responses[..., h]] for h in range(responses.shape[-1]))

    def sequence_model(self, feature_scale: float = 1.0) -> SequenceModel:
        """A view with ``feature_dim = d·H`` for sequence-level oracles (WeakSampler on whole sequences);
        features are ``feature_scale``·ϕ^seq (1/√H makes ‖ϕ^seq‖ ≤ 1, Assumption 2.1)."""
        return SequenceModel(self, feature_scale)


class SequenceModel:
    """Sequence-level view of an :class:`AutoregressiveSoftmaxModel` (feature ϕ^seq ∈ ℝ^{dH}, Eq. 12).

    One sequence sample costs H autoregressive queries (T^auto_comp ≤ H·T_comp, Definition 5.1).
    """

    default_reveal = None

    def __init__(self, model: AutoregressiveSoftmaxModel, feature_scale: float = 1.0):
        self.model = model
        self.feature_scale = check_positive("feature_scale", feature_scale)
        self.beta = model.beta
        self.num_prompts = model.num_prompts
        self.feature_dim = model.feature_dim * model.horizon
        self.device = model.device
        self.horizon = model.horizon

    def sample(self, prompts, n, generator=None):
        return self.model.sample(prompts, n, generator)

    def features(self, prompts, responses):
        f = self.model.features(prompts, responses)
        return f if self.feature_scale == 1.0 else f * self.feature_scale

    def ref_log_prob(self, prompts, responses):
        return self.model.ref_log_prob(prompts, responses)


# -- exact dynamic programming (evaluation code) ---------------------------------------------------------
def _next_values(model: AutoregressiveSoftmaxModel, h: int, v_next: torch.Tensor | None) -> torch.Tensor:
    """V_{h+1}(s_h ∘ a) as an [S_h, A] table (zero after the last layer)."""
    if v_next is None:
        return torch.zeros_like(model.log_ref[h])
    return v_next[model.transitions[h]]


def soft_bellman(model: AutoregressiveSoftmaxModel, step_rewards: list) -> tuple[list, list, list]:
    """Soft-optimal Q⋆_h [S_h, A], V⋆_h [S_h] and log π⋆_{h,β} [S_h, A] (Definition I.2, Eq. 72).

    ``step_rewards[h]`` is the mean per-step reward r_{h+1}(state, a) [S_h, A]; the sequence reward is
    their sum along the path.
    """
    beta = model.beta
    Q, V, logpi = [None] * model.horizon, [None] * model.horizon, [None] * model.horizon
    v_next = None
    for h in reversed(range(model.horizon)):
        Q[h] = step_rewards[h] + _next_values(model, h, v_next)
        logits = model.log_ref[h] + Q[h] / beta
        V[h] = beta * torch.logsumexp(logits, dim=-1)
        logpi[h] = torch.log_softmax(logits, dim=-1)
        v_next = V[h]
    return Q, V, logpi


def policy_value(
    model: AutoregressiveSoftmaxModel, step_rewards: list, log_policy: list
) -> tuple[list, list]:
    """Soft values of a Markov policy given as per-layer tables log π_h [S_h, A] (Eq. 69).

    Returns (Q^π_h [S_h, A], W^π_h [S_h]) with Q^π_h(x, a) = r_h(x, a) + W^π_{h+1}(x a) and
    W^π_h(x) = Σ_a π_h(a|x) [Q^π_h(x, a) − β log(π_h/π_{h,ref})(a|x)], so J_β(π) = E_{x~ρ} W^π_1(s_1(x)).
    """
    beta = model.beta
    Q, W = [None] * model.horizon, [None] * model.horizon
    w_next = None
    for h in reversed(range(model.horizon)):
        Q[h] = step_rewards[h] + _next_values(model, h, w_next)
        lp = log_policy[h]
        p = lp.exp()
        kl_term = torch.where(p > 0, lp - model.log_ref[h], torch.zeros_like(lp))
        W[h] = torch.where(p > 0, p * (Q[h] - beta * kl_term), torch.zeros_like(p)).sum(-1)
        w_next = W[h]
    return Q, W


def state_occupancy(
    model: AutoregressiveSoftmaxModel, log_policy: list, prompt_weights: torch.Tensor
) -> list:
    """d^π_h(s): probability of reaching state s at layer h under ρ and π (a list of [S_h])."""
    d = torch.zeros(model.num_states[0], dtype=model.dtype, device=model.device)
    d.index_add_(0, model.init_state, prompt_weights.to(model.dtype))
    out = [d]
    for h in range(model.horizon - 1):
        mass = d[:, None] * log_policy[h].exp()
        d = torch.zeros(model.num_states[h + 1], dtype=model.dtype, device=model.device)
        d.index_add_(0, model.transitions[h].reshape(-1), mass.reshape(-1))
        out.append(d)
    return out


def monte_carlo_value(model: AutoregressiveSoftmaxModel, step_rewards: list, log_policy: list,
                      prompt_weights: torch.Tensor, n: int, generator=None) -> tuple[float, float]:
    """Monte Carlo estimate of J_β(π) with its standard error, from n roll-outs of π (x ~ ρ).

    Each roll-out scores Σ_h [r_h(x_h, a_h) − β log(π_h/π_{h,ref})(a_h|x_h)], whose mean is J_β(π) (Eq. 69):
    the estimator to use where no DP is available; on exact models it cross-checks :func:`policy_value`.
    """
    x = torch.multinomial(prompt_weights.to(model.dtype), n, replacement=True, generator=generator)
    s = model.init_state[x]
    total = torch.zeros(n, dtype=model.dtype, device=model.device)
    for h in range(model.horizon):
        lp = log_policy[h][s]
        a = sample_from_log_probs(lp, 1, generator)[:, 0]
        rows = torch.arange(n, device=model.device)
        total += step_rewards[h][s, a] - model.beta * (lp[rows, a] - model.log_ref[h][s, a])
        if h + 1 < model.horizon:
            s = model.transitions[h][s, a]
    return float(total.mean()), float(total.std() / n ** 0.5)


def enumerate_sequences(num_actions: int, horizon: int, device=None) -> torch.Tensor:
    """All of A^H in lexicographic order: [A^H, H] long."""
    if num_actions ** horizon > 10 ** 7:
        raise ConfigError("horizon", f"|A|^H = {num_actions}^{horizon} is too large to enumerate (limit 1e7)")
    grids = torch.cartesian_prod(*[torch.arange(num_actions, device=device)] * horizon)
    return grids.reshape(-1, horizon)


def sequence_log_probs(model: AutoregressiveSoftmaxModel, log_policy: list | None = None) -> torch.Tensor:
    """log π(a_{1:H}|x) for every prompt and every sequence of A^H (lexicographic): [X, A^H].

    ``log_policy=None`` gives π_ref. Enumeration: only for small |A|^H.
    """
    log_policy = model.log_ref if log_policy is None else log_policy
    seqs = enumerate_sequences(model.num_actions, model.horizon, model.device)
    X = model.num_prompts
    resp = seqs[None].expand(X, -1, -1)
    s = model.state_path(torch.arange(X, device=model.device), resp)
    return sum(log_policy[h][s[..., h], resp[..., h]] for h in range(model.horizon))


def sequence_sums(model: AutoregressiveSoftmaxModel, tables: list) -> torch.Tensor:
    """Σ_h table_h(s_h, a_h) for every prompt and sequence of A^H: [X, A^H] (e.g. the sequence reward)."""
    return sequence_log_probs(model, tables)


__all__ = [
    "AutoregressiveSoftmaxModel", "SequenceModel", "prefix_tree_transitions", "soft_bellman", "policy_value",
    "state_occupancy", "monte_carlo_value", "enumerate_sequences", "sequence_log_probs", "sequence_sums",
]
