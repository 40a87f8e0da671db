"""Linear autoregressive model over a fixed feature map (Mousavi-Hosseini & Erdogdu 2026, §2, Eq. 1).

    p_w(y_i = y | x, y_{1:i−1}) = softmax_y ⟨w, ϕ(x, y_{1:i−1}, y)⟩,
    p_w(y | x) = Π_{i=1}^N p_w(y_i | x, y_{<i}).

The paper's experiments use the context-bigram map (:class:`ContextBigramFeatures`)

    ϕ(x, y_{<i}, y) = concat(vec(x e_yᵀ), vec(e_y e_{y_{i−1}}ᵀ)) ∈ R^{dk+k²}   (second block 0 at i = 1),

so that, viewing w as W₁ = w[:dk].view(d, k) and W₂ = w[dk:].view(k, k), the next-token logits are
(xᵀW₁)_j + 1[i ≥ 2]·W₂[j, y_{i−1}]. For this map every next-token distribution is one row of a per-context
*transition table* ``T[b, prev, :]`` ([B, k+1, k]; row k is position 1, which has no previous token), so
xW₁ is computed once per context and sampling, exact likelihoods and gradients are table look-ups. Any other
:class:`FeatureMap` runs through the generic (per-position, explicit-feature) path. Weights start at zero.
"""

from __future__ import annotations

import torch

from ..common.forwarding import forwarded
from ..common.validation import check_int
from ..errors import ConfigError
from .kernels import bigram_counts, bigram_walk, cdf_walk


class FeatureMap:
    """Interface of a feature map ϕ(x, y_{<i}, y) ∈ R^D of a linear autoregressive model.

    Subclasses set ``context_dim`` (d), ``num_actions`` (k), ``dim`` (D) and implement ``__call__(x, prefix)``
    returning ϕ(x, prefix, y) for every token y: shape [B, k, D], for contexts ``x`` [B, d] and prefixes
    [B, i−1] (long; i−1 may be 0).
    """

    context_dim: int
    num_actions: int
    dim: int

    def __call__(self, x: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise TypeError(f"{type(self).__name__} must implement __call__(x, prefix) -> [B, k, D]")


class ContextBigramFeatures(FeatureMap):
    """ϕ(x, y_{<i}, y) = concat(vec(x e_yᵀ), vec(e_y e_{y_{i−1}}ᵀ)) (paper §6; README of the authors'
    code)."""

    def __init__(self, context_dim: int, num_actions: int):
        self.context_dim = check_int("context_dim", context_dim, low=1)
        self.num_actions = check_int("num_actions", num_actions, low=2)
        self.dim = self.context_dim * self.num_actions + self.num_actions ** 2

    def __call__(self, x: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        B, d, k = x.shape[0], self.context_dim, self.num_actions
        eye = torch.eye(k, dtype=x.dtype, device=x.device)
        first = (x[:, None, :, None] * eye[None, :, None, :]).reshape(B, k, d * k)  # entry (y, a·k + y) = x_a
        second = torch.zeros(B, k, k, k, dtype=x.dtype, device=x.device)          # entry (y, y·k + prev) = 1
        if prefix.shape[1] > 0:
            prev = prefix[:, -1]
            second[torch.arange(B, device=x.device)[:, None], torch.arange(k, device=x.device)[None, :],
                   torch.arange(k, device=x.device)[None, :], prev[:, None]] = 1.0
        return torch.cat([first, second.reshape(B, k, k * k)], dim=-1)


class LinearARModel:
    """p_w(y | x) for a linear autoregressive model (paper Eq. 1); fast table path for the bigram map.

    Args:
        feature_map: a :class:`FeatureMap` (k and D come from it).
        horizon: response length N.
        w: initial weights [D] (default zeros: step 0 is the uniform policy, as in the paper's code).
        dtype, device: of the weights and every computation (float32 is what the authors use).

    Sequences ``y`` are long tensors [B, L] or [B, n, L] (n responses per context, L ≤ N); contexts ``x`` are
    [B, d]. ``w`` is a plain tensor that training code updates in place.
    """

    def __init__(self, feature_map: FeatureMap, horizon: int, w: torch.Tensor | None = None,
                 dtype: torch.dtype = torch.float32, device: str | torch.device | None = None):
        if not isinstance(feature_map, FeatureMap):
            raise ConfigError("feature_map", f"must be a FeatureMap, got {type(feature_map).__name__}")
        self.feature_map = feature_map
        self.horizon = check_int("horizon", horizon, low=1)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        D = feature_map.dim
        if w is None:
            w = torch.zeros(D, dtype=dtype, device=self.device)
        w = torch.as_tensor(w).to(dtype=dtype, device=self.device)
        if w.shape != (D,):
            raise ConfigError("w", f"must have shape ({D},), got {tuple(w.shape)}")
        self.w = w.clone()
        self.fast = type(feature_map) is ContextBigramFeatures
        self._factor_cache = None          # (x, w, factors, Z) of the last _factors call (see _factors)

    # ---- shape helpers -------------------------------------------------------------------------------------
    num_actions = forwarded("feature_map")
    context_dim = forwarded("feature_map")
    feature_dim = forwarded("feature_map", "dim")

    def copy(self, w: torch.Tensor | None = None) -> LinearARModel:
        """A model with the same features and a copy of ``w`` (or of these weights)."""
        return LinearARModel(
            self.feature_map, self.horizon, self.w if w is None else w, self.dtype, self.device
        )

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, device=self.device)
        if x.dim() != 2 or x.shape[1] != self.context_dim:
            raise ConfigError("x", f"contexts must have shape [B, {self.context_dim}], got {tuple(x.shape)}")
        return x.to(self.dtype)

    def _check_y(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, bool]:
        y = torch.as_tensor(y, device=self.device)
        squeeze = y.dim() == 2
        if squeeze:
            y = y[:, None, :]
        if y.dim() != 3 or y.shape[0] != x.shape[0] or y.shape[2] > self.horizon or y.shape[2] < 1:
            raise ConfigError(
                "y",
                f"must be [B, L] or [B, n, L] with B={x.shape[0]}, 1 <= L <= {self.horizon}, "
                f"got {tuple(y.shape)}",
            )
        if y.dtype not in (torch.long, torch.int32, torch.int16, torch.uint8):
            raise ConfigError("y", f"must hold integer token ids, got dtype {y.dtype}")
        y = y.long()
        if y.numel() and (y.min() < 0 or y.max() >= self.num_actions):
            raise ConfigError("y", f"token ids must be in [0, {self.num_actions - 1}]")
        return y, squeeze

    @property
    def W1(self) -> torch.Tensor:
        """W₁ = w[:dk].view(d, k) (bigram map only)."""
        d, k = self.context_dim, self.num_actions
        return self.w[: d * k].view(d, k)

    @property
    def W2(self) -> torch.Tensor:
        """W₂ = w[dk:].view(k, k); logit of token j after token p is W₂[j, p] (bigram map only)."""
        d, k = self.context_dim, self.num_actions
        return self.w[d * k:].view(k, k)

    # ---- exact distributions
    # ----------------------------------------------------------------------------------
    def transition_logits(self, x: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        """Bigram map: logits table [B, k+1, k]; row p < k follows token p, row k is position 1."""
        if not self.fast:
            raise ConfigError("feature_map", "transition tables exist for ContextBigramFeatures only")
        w = self.w if w is None else w
        d, k = self.context_dim, self.num_actions
        xw = x.to(w.dtype) @ w[: d * k].view(d, k)                       # [B, k], once per context
        w2t = torch.cat([w[d * k:].view(k, k).T, torch.zeros(1, k, dtype=w.dtype, device=w.device)], 0)
        return xw[:, None, :] + w2t[None, :, :]

    def transition_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Bigram map: log p_w(· | x, prev) for every prev, [B, k+1, k] (row k: first position)."""
        return torch.log_softmax(self.transition_logits(self._check_x(x)), dim=-1)

    def next_log_probs(self, x: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Exact next-token law log p_w(· | x, y_{<i}) for prefixes [B, i−1]: shape [B, k]."""
        x = self._check_x(x)
        prefix = torch.as_tensor(prefix, dtype=torch.long, device=self.device)
        if prefix.dim() != 2 or prefix.shape[0] != x.shape[0] or prefix.shape[1] >= self.horizon:
            raise ConfigError(
                "prefix", f"must be [B, i-1] with i-1 < {self.horizon}, got {tuple(prefix.shape)}"
            )
        if self.fast:
            table = self.transition_log_probs(x)
            row = (
                prefix[:, -1]
                if prefix.shape[1]
                else torch.full((x.shape[0],), self.num_actions, device=self.device)
            )
            return table[torch.arange(x.shape[0], device=self.device), row]
        return torch.log_softmax(self.feature_map(x, prefix) @ self.w, dim=-1)

    @staticmethod
    def _prev(y: torch.Tensor, k: int) -> torch.Tensor:
        """Previous-token index of every position (k at position 1): same shape as y."""
        start = torch.full_like(y[..., :1], k)
        return torch.cat([start, y[..., :-1]], dim=-1)

    def token_log_probs(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """log p_w(y_i | x, y_{<i}) for every position: [B, L] or [B, n, L] like ``y``."""
        x = self._check_x(x)
        y, squeeze = self._check_y(x, y)
        B, n, L = y.shape
        k = self.num_actions
        if self.fast:
            table = torch.log_softmax(self.transition_logits(x), dim=-1).reshape(B, (k + 1) * k)
            cell = self._prev(y, k) * k + y
            out = table.gather(1, cell.reshape(B, n * L)).reshape(B, n, L)
        else:
            xs = x.repeat_interleave(n, 0)
            yf = y.reshape(B * n, L)
            cols = [torch.log_softmax(self.feature_map(xs, yf[:, :i]) @ self.w, -1).gather(1, yf[:, i:i + 1])
                    for i in range(L)]
            out = torch.cat(cols, 1).reshape(B, n, L)
        return out[:, 0] if squeeze else out

    def log_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Exact log p_w(y | x) (sum over positions): [B] or [B, n] like ``y``'s leading dims."""
        return self.token_log_probs(x, y).sum(-1)

    # ---- sampling
    # ----------------------------------------------------------------------------------------------
    def sample(self, x: torch.Tensor, n: int = 1, generator: torch.Generator | None = None,
               length: int | None = None) -> torch.Tensor:
        """Draw ``n`` sequences of length ``length`` (default N) per context: long [B, n, L].

        Bigram map: inverse-CDF walks over the per-context transition law (:meth:`_sample_bigram`; one
        compiled pass with numba, else one vectorised step per position for all B·n sequences). Other maps:
        one feature evaluation per position.
        """
        x = self._check_x(x)
        n = check_int("n", n, low=1)
        L = self.horizon if length is None else check_int("length", length, low=1, high=self.horizon)
        B, k = x.shape[0], self.num_actions
        u = torch.rand((B, n, L), generator=generator, dtype=self.dtype, device=self.device)
        if self.fast:
            return self._sample_bigram(x, u).view(B, n, L)
        y = torch.empty((B, n, L), dtype=torch.long, device=self.device)
        xs = x.repeat_interleave(n, 0)
        yf = y.view(B * n, L)
        uf = u.view(B * n, L)
        for i in range(L):
            logits = self.feature_map(xs, yf[:, :i]) @ self.w
            cdf = torch.cumsum(torch.exp(logits - logits.max(-1, keepdim=True).values), -1)
            yf[:, i] = torch.searchsorted(cdf, (uf[:, i] * cdf[:, -1])[:, None], right=True)[:, 0].clamp_(
                max=k - 1
            )
        return y

    def _sample_bigram(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Bigram map: inverse-CDF walks with the uniforms u [B, n, L], using exp(logits) = E₁[b, j]·E₂[prev,
        j].

        E₁ = exp(xW₁ − max) and E₂ = exp([W₂ᵀ; 0] − max) (float64) are all the exponentials needed; the law of
        a row is its normalised product (:func:`~oraclerl.models.kernels.bigram_walk`, compiled when numba is
        installed, with the same result). If a row's normaliser underflows (logit gaps beyond ≈ 640 in both
        factors), the whole table is built from the joint logits instead: the same law, another stream.
        """
        B, n, L = u.shape
        k = self.num_actions
        E1, E2, Z = self._normalisers(x)
        uf = u.reshape(B * n, L)
        if bool(Z.min() > 1e-280):
            return bigram_walk(E1, E2, uf, n)
        xw, w2t, _, _ = self._factors(x)
        cdf = torch.softmax(xw[:, None, :] + w2t[None], -1).cumsum(-1)                   # [B, k+1, k]
        cdf[..., -1] = 2.0
        base = (torch.arange(B, device=self.device) * (k + 1)).repeat_interleave(n)
        return cdf_walk(cdf.view(B * (k + 1), k), base, uf.to(torch.float64), k)

    def sample_next(self, x: torch.Tensor, prefix: torch.Tensor, n: int = 1,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` next tokens per (context, prefix) from the exact law: long [B, n]."""
        logp = self.next_log_probs(x, prefix)
        cdf = torch.cumsum(torch.exp(logp - logp.max(-1, keepdim=True).values), -1)
        u = (
            torch.rand((logp.shape[0], n), generator=generator, dtype=cdf.dtype, device=cdf.device)
            * cdf[:, -1:]
        )
        return torch.searchsorted(cdf, u, right=True).clamp_(max=self.num_actions - 1)

    # ---- features and gradients
    # --------------------------------------------------------------------------------
    def sequence_features(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Σ_i ϕ(x, y_{<i}, y_i) ([B, D] or [B, n, D]): log p_w(y|x) = ⟨w, Σϕ⟩ − Σ_i log Z_i."""
        x = self._check_x(x)
        y, squeeze = self._check_y(x, y)
        B, n, L = y.shape
        xs, yf = x.repeat_interleave(n, 0), y.reshape(B * n, L)
        out = torch.zeros(B * n, self.feature_dim, dtype=self.dtype, device=self.device)
        for i in range(L):
            phi = self.feature_map(xs, yf[:, :i])
            out += phi[torch.arange(B * n, device=self.device), yf[:, i]]
        out = out.reshape(B, n, -1)
        return out[:, 0] if squeeze else out

    def grad_log_likelihood(
        self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """∇_w Σ_{b,j,i} a_{bji} log p_w(y_{bji} | x_b, y_{bj,<i}) in closed form: [D].

        ``weights`` a is [B, n, L] (per token, e.g. process advantages), [B, n] (per sequence, e.g. outcome
        advantages) or None (all ones). Each token contributes a·(ϕ(x, y_{<i}, y_i) − E_{y'∼p_w}ϕ(x, y_{<i},
        y')). Bigram map: see :meth:`_grad_bigram` (weighted counts and two small matmuls, no [B, k+1, k]
        table).
        """
        x = self._check_x(x)
        y, squeeze = self._check_y(x, y)
        B, n, L = y.shape
        if weights is None:
            a = torch.ones(B, n, L, dtype=self.dtype, device=self.device)
        else:
            a = torch.as_tensor(weights, device=self.device).to(self.dtype)
            if squeeze and a.dim() in (1, 2) and a.shape[0] == B and (a.dim() == 1 or a.shape[1] == L):
                a = a.reshape(B, 1, -1)
            if a.dim() == 2:
                a = a[..., None]
            if a.shape not in ((B, n, L), (B, n, 1)):
                raise ConfigError("weights", f"must be [B, n, L] or [B, n] for y of shape {(B, n, L)}, got "
                                             f"{tuple(torch.as_tensor(weights).shape)}")
            a = a.expand(B, n, L)
        if self.fast:
            return self._grad_bigram(x, y, a)
        xs, yf, af = x.repeat_interleave(n, 0), y.reshape(B * n, L), a.reshape(B * n, L)
        g = torch.zeros(self.feature_dim, dtype=self.dtype, device=self.device)
        rows = torch.arange(B * n, device=self.device)
        for i in range(L):
            phi = self.feature_map(xs, yf[:, :i])                                      # [Bn, k, D]
            p = torch.softmax(phi @ self.w, -1)
            g += (af[:, i, None] * (phi[rows, yf[:, i]] - (p[..., None] * phi).sum(1))).sum(0)
        return g

    def _factors(self, x: torch.Tensor):
        """Bigram map: (xW₁, [W₂ᵀ; 0], E₁, E₂) in float64 with exp(logits[b, prev, j]) ∝ E₁[b, j]·E₂[prev, j].

        The last result is kept with copies of its x and w and returned again while both are equal to them (a
        PG step samples and then differentiates at the same (x, w)): equal inputs give these very values, so
        the cache changes no result; it holds one [B, d] and a few [B, k] tensors. The returned tensors are
        shared: callers must not write into them (none does).
        """
        c = self._factor_cache
        if c is not None and all(a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
                                 and torch.equal(a, b) for a, b in ((c[1], self.w), (c[0], x))):
            return c[2]
        f64, k = torch.float64, self.num_actions
        xw = x.to(f64) @ self.W1.to(f64)                                                   # [B, k]
        w2t = torch.cat([self.W2.T.to(f64), torch.zeros(1, k, dtype=f64, device=self.device)], 0)  # [k+1, k]
        out = (xw, w2t, torch.exp(xw - xw.max(1, keepdim=True).values),
               torch.exp(w2t - w2t.max(1, keepdim=True).values))
        self._factor_cache = [x.clone(), self.w.clone(), out, None]
        return out

    def _normalisers(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(E₁, E₂, Z = E₁E₂ᵀ [B, k+1], the per-row normalisers) of :meth:`_factors`, Z cached with them."""
        _, _, E1, E2 = self._factors(x)
        c = self._factor_cache
        if c[3] is None:
            c[3] = E1 @ E2.T
        return E1, E2, c[3]

    def _grad_bigram(self, x: torch.Tensor, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Closed-form gradient for the bigram map, using exp(logits) = E₁[b, j]·E₂[prev, j].

        With E₁ = exp(xW₁ − max), E₂ = exp([W₂ᵀ; 0] − max) and Z = E₁E₂ᵀ ([B, k+1], the per-row normalisers),
        p_w(j | x_b, prev) = E₁[b, j]E₂[prev, j]/Z[b, prev]. With c[b, prev] = Σ a·1[prev] (weighted visits),
        the expected-feature terms are E₁ ⊙ ((c/Z)E₂) for W₁'s rows and E₂ ⊙ ((c/Z)ᵀE₁) for W₂; the observed
        terms are weighted token counts. Everything is O(B·n·L + B·k²); float64 internally.
        """
        B, n, L = y.shape
        k = self.num_actions
        f64 = torch.float64
        E1, E2, Z = self._normalisers(x)                                                    # Z: [B, k+1]
        c, obs1, obs2 = bigram_counts(y, a, k)                 # one compiled pass with numba (a in float64)
        cz = c / Z
        exp1 = E1 * (cz @ E2)                                                               # [B, k]
        # [k+1 (prev), k (j)]
        exp2 = E2 * (cz.T @ E1)
        g1 = x.to(f64).T @ (obs1 - exp1)                                                    # [d, k]
        g2 = obs2[:, :k] - exp2[:k].T                                                       # [j, prev]
        return torch.cat([g1.reshape(-1), g2.reshape(-1)]).to(self.dtype)


class PromptBoundPolicy:
    """Adapter that lets the foundation's sampling oracles serve a :class:`LinearARModel` by prompt id.

    ``contexts`` is any object with ``lookup(ids) -> x [B, d]`` (e.g.
    :class:`~oraclerl.problems.teacher.TeacherContexts`). Wrap it in
    :class:`~oraclerl.oracles.WeakSampler` (whole responses, counts T_comp per response) or
    :class:`~oraclerl.oracles.AutoregressiveSampler` (one token, counts T_comp_token). The model is held by
    reference: a learner that trains ``model.w`` in place samples its current policy. It is a
    :class:`~oraclerl.oracles.protocols.FeatureModel` and an
    :class:`~oraclerl.oracles.protocols.AutoregressiveModel` (no β; ids are the contexts' running counter).
    """

    beta = None
    num_prompts = None
    default_reveal = None

    def __init__(self, model: LinearARModel, contexts):
        self.model = model
        self.contexts = contexts

    device = forwarded("model")
    feature_dim = forwarded("model")
    horizon = forwarded("model")
    num_actions = forwarded("model")

    def sample(self, prompts, n, generator=None):
        return self.model.sample(self.contexts.lookup(prompts), n, generator)

    def features(self, prompts, responses):
        return self.model.sequence_features(self.contexts.lookup(prompts), responses)

    def ref_log_prob(self, prompts, responses):
        return self.model.log_likelihood(self.contexts.lookup(prompts), responses)

    def sample_next(self, prompts, prefixes, n, generator=None, theta=None):
        if theta is not None:
            raise ConfigError("theta", "a LinearARModel has no tilted law; pass theta=None")
        return self.model.sample_next(self.contexts.lookup(prompts), prefixes, n, generator)

    def next_log_prob(self, prompts, prefixes, tokens, theta=None):
        logp = self.model.next_log_probs(self.contexts.lookup(prompts), prefixes)
        return logp.gather(1, tokens)

    def step_features(self, prompts, prefixes, tokens):
        # [B, k, D]
        phi = self.model.feature_map(self.contexts.lookup(prompts).to(self.model.dtype), prefixes)
        return phi.gather(1, tokens[..., None].expand(*tokens.shape, phi.shape[-1]))

