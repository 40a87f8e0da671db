"""The strong (π_θ ∝ π_ref·exp(⟨θ, ϕ⟩/β)) and autoregressive oracle protocols of :class:`CausalLM`
(Foster et al. 2025, Def. 2.1 and Def. 5.1), as a mixin over its sampling, scoring and feature methods."""

from __future__ import annotations

import torch

from ...errors import ConfigError
from .sampling import _uniform, inverse_cdf

_OUT_DTYPE = torch.float64


class LinearSoftmaxProtocolMixin:
    """Strong-oracle and autoregressive-oracle methods; needs ``sample``, ``features``, ``ref_log_prob``,
    ``response_lengths``, ``_canonical``, ``_prompt_batch``, ``_processed``, ``hidden_states``, ``_run``,
    ``_project``."""

    # -- strong oracle: π_θ ∝ π_ref·exp(⟨θ, ϕ⟩/β) ------------------------------------------------------
    def _theta(self, theta, B):
        theta = torch.as_tensor(theta, dtype=_OUT_DTYPE, device=self.device)
        return theta.expand(B, -1) if theta.dim() == 1 else theta

    def sample_tilted(self, prompts, theta, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """y ~ π_θ(·|x) exactly, by rejection from π_ref with acceptance exp((⟨θ, ϕ⟩ − ‖θ‖)/β) (Foster et
        al. Def. 2.1, strong oracle). Rounds of n proposals per unfinished prompt; at most
        ``max_rejection_rounds``."""
        prompts = torch.as_tensor(prompts, dtype=torch.long, device=self.device)
        B, L = prompts.numel(), self.max_new_tokens
        theta = self._theta(theta, B)
        bound = theta.norm(dim=-1)  # sup_y ⟨θ, ϕ(x, y)⟩ since ‖ϕ‖ ≤ 1
        out = torch.full((B, n, L), self.pad_token_id, dtype=torch.long, device=self.device)
        count = torch.zeros(B, dtype=torch.long, device=self.device)
        todo = torch.arange(B, device=self.device)
        self.last_rejection_proposals = 0
        for _ in range(self.max_rejection_rounds):
            cand = self.sample(prompts[todo], n, generator)  # [R, n, L]
            score = (self.features(prompts[todo], cand) * theta[todo, None]).sum(-1)  # [R, n]
            log_acc = (score - bound[todo, None]) / self.beta
            acc = torch.log(_uniform(log_acc.shape, generator).to(self.device)) < log_acc
            self.last_rejection_proposals += cand.shape[0] * n
            slot = count[todo, None] + acc.long().cumsum(1) - 1
            ok = acc & (slot < n)
            r, j = ok.nonzero(as_tuple=True)
            out[todo[r], slot[r, j]] = cand[r, j]
            count[todo] = (count[todo] + acc.long().sum(1)).clamp(max=n)
            todo = todo[count[todo] < n]
            if todo.numel() == 0:
                return out
        raise ConfigError(
            "theta",
            f"rejection sampling of π_θ accepted too few proposals in {self.max_rejection_rounds} "
            f"rounds (acceptance ≥ exp(-2‖θ‖/β), ‖θ‖/β up to {float(bound.max() / self.beta):.3g}); "
            "use a smaller ‖θ‖ or raise max_rejection_rounds",
        )

    def enumerate_responses(self) -> torch.Tensor:
        """Every distinct response (canonical padded form) [M, L]; only when |V|^L ≤ ``max_enumerate``."""
        V, L = self.num_actions, self.max_new_tokens
        if V ** L > self.max_enumerate:
            raise ConfigError(
                "max_enumerate",
                f"the response space has |V|^L = {V}^{L} sequences, over the limit "
                f"{self.max_enumerate}; exact log Z_θ needs enumeration (raise max_enumerate)",
            )
        grid = torch.cartesian_prod(*[torch.arange(V, device=self.device)] * L).reshape(-1, L)
        return torch.unique(self._canonical(grid), dim=0)

    @torch.no_grad()
    def tilted_log_probs_all(self, prompts, theta) -> tuple[torch.Tensor, torch.Tensor]:
        """(responses [M, L], log π_θ(y|x) [B, M]) over the enumerated response space (exact)."""
        prompts = torch.as_tensor(prompts, dtype=torch.long, device=self.device)
        B = prompts.numel()
        ys = self.enumerate_responses()
        resp = ys.expand(B, -1, -1)
        score = self.ref_log_prob(prompts, resp)
        if theta is not None:
            score = (
                score + (self.features(prompts, resp) * self._theta(theta, B)[:, None]).sum(-1) / self.beta
            )
        return ys, score - torch.logsumexp(score, dim=-1, keepdim=True)

    def tilted_log_prob(self, prompts, responses: torch.Tensor, theta) -> torch.Tensor:
        """log π_θ(y|x) [B, n] = log π_ref + ⟨θ, ϕ⟩/β − log Z_θ(x), with log Z_θ exact by enumeration."""
        prompts = torch.as_tensor(prompts, dtype=torch.long, device=self.device)
        ys, table = self.tilted_log_probs_all(prompts, theta)
        canon = self._canonical(responses.to(self.device))
        match = (canon[:, :, None, :] == ys[None, None]).all(-1)  # [B, n, M]
        return torch.where(match, table[:, None, :], torch.full_like(table[:, None, :], float("-inf"))).amax(
            -1
        )

    # -- autoregressive oracle (Foster et al. §5, Def. 5.1) ---------------------------------------------
    def _prefix_logits(self, prompts, prefixes):
        """Next-token logits [B, V] and whether each prefix has already ended."""
        prompts = torch.as_tensor(prompts, dtype=torch.long, device=self.device)
        prefixes = torch.as_tensor(prefixes, dtype=torch.long, device=self.device)
        B, h1 = prefixes.shape
        ids, mask = self._prompt_batch(prompts)
        ids = torch.cat([ids, prefixes], 1)
        mask = torch.cat([mask, mask.new_ones(B, h1)], 1)
        keep = {"logits_to_keep": 1} if self._keeps_logits else {}
        with torch.no_grad():
            logits = self._run(
                input_ids=ids,
                attention_mask=mask,
                position_ids=(mask.cumsum(-1) - 1).clamp_min(0),
                use_cache=False,
                **keep,
            ).logits[:, -1]
        ended = (
            self.response_lengths(prefixes)[1] if h1 else torch.zeros(B, dtype=torch.bool, device=self.device)
        )
        return logits, ended

    def _next_log_probs(self, prompts, prefixes, theta=None) -> torch.Tensor:
        """log π_h(a | x, a_{1:h-1}) [B, V] (processed law; tilted by ⟨θ, ϕ_h⟩/β when ``theta`` is given,
        which scores every continuation a ∈ V: B·|V| forward rows, meant for small vocabularies). After the
        end of a response the next token is the pad token with probability 1."""
        logits, ended = self._prefix_logits(prompts, prefixes)
        lp = self._processed(logits).to(_OUT_DTYPE)
        if theta is not None:
            B, V = lp.shape
            acts = torch.arange(V, device=self.device).expand(B, V)
            lp = (
                lp
                + (self.step_features(prompts, prefixes, acts) * self._theta(theta, B)[:, None]).sum(-1)
                / self.beta
            )
            lp = lp - torch.logsumexp(lp, -1, keepdim=True)
        absorbed = torch.full_like(lp, float("-inf"))
        absorbed[:, self.pad_token_id] = 0.0
        return torch.where(ended[:, None], absorbed, lp)

    def sample_next(self, prompts, prefixes, n: int, generator=None, theta=None) -> torch.Tensor:
        """a_h ~ π_h(·|x, a_{1:h-1}) (or π^auto_{h,θ}): [B, n]."""
        lp = self._next_log_probs(prompts, prefixes, theta)
        return inverse_cdf(lp, _uniform((lp.shape[0], n), generator))

    def next_log_prob(self, prompts, prefixes, tokens, theta=None) -> torch.Tensor:
        """log π_h(a|x, a_{1:h-1}) for ``tokens`` [B, n]: [B, n] (float64)."""
        lp = self._next_log_probs(prompts, prefixes, theta)
        return lp.gather(-1, torch.as_tensor(tokens, device=self.device))

    @torch.no_grad()
    def step_features(self, prompts, prefixes, tokens) -> torch.Tensor:
        """ϕ_h(x, a_{1:h}) [B, n, d]: the projected last-layer hidden state at a_h (prefix + token)."""
        prompts = torch.as_tensor(prompts, dtype=torch.long, device=self.device)
        prefixes = torch.as_tensor(prefixes, dtype=torch.long, device=self.device)
        tokens = torch.as_tensor(tokens, dtype=torch.long, device=self.device)
        B, n = tokens.shape
        # [B*n, 1, h]
        seq = torch.cat([prefixes.repeat_interleave(n, 0), tokens.reshape(B * n, 1)], 1)[:, None]
        rows = prompts.repeat_interleave(n)
        hidden = self.hidden_states(rows, seq)
        return self._project(hidden[:, -1]).reshape(B, n, -1)
