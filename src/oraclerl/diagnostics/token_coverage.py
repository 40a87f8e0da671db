"""Token-level and sequence-level coverage on token MDPs, exact (Foster et al. 2025, Eq. 3, Eq. 13, Def. I.4).

    C_cond(π) = max_h sup_x sup_{a_{1:h}} π_h(a_h|x, a_{1:h−1}) / π_{h,ref}(a_h|x, a_{1:h−1})     (Eq. 13)
    C_cov(π)  = sup_x sup_{a_{1:H}} π(a_{1:H}|x) / π_ref(a_{1:H}|x) = sup Π_h (π_h/π_{h,ref})(a_h|x_h) (Eq. 3)

The suprema run over prompts with ρ(x) > 0 and over prefixes that π_ref can produce (so every state the
supremum visits is a real prefix). C_cond is a max over the reachable states of each layer; C_cov is a
max-product dynamic programme, L_h(s) = max_a [log(π_h/π_{h,ref})(a|s) + L_{h+1}(s∘a)], so both are exact
even when |A|^H is far too large to enumerate. C_cond ≤ C_cov ≤ C_cond^H.
"""

from __future__ import annotations

import math

import torch


def reachable_states(model, prompt_weights: torch.Tensor | None = None) -> list:
    """Boolean masks [S_h] of states reachable under π_ref from prompts with ρ(x) > 0."""
    X = model.num_prompts
    w = torch.ones(X, dtype=torch.bool, device=model.device) if prompt_weights is None else prompt_weights > 0
    r = torch.zeros(model.num_states[0], dtype=torch.bool, device=model.device)
    r[model.init_state[w]] = True
    out = [r]
    for h in range(model.horizon - 1):
        ok = r[:, None] & (model.log_ref[h] > -math.inf)
        r = torch.zeros(model.num_states[h + 1], dtype=torch.bool, device=model.device)
        r[model.transitions[h][ok]] = True
        out.append(r)
    return out


def _log_ratios(model, log_policy: list) -> list:
    """log(π_h/π_{h,ref})(a|s) where π_h(a|s) > 0, −inf elsewhere."""
    return [torch.where(lp > -math.inf, lp - lr, torch.full_like(lp, -math.inf))
            for lp, lr in zip(log_policy, model.log_ref)]


def log_conditional_coverage(model, log_policy: list, prompt_weights: torch.Tensor | None = None) -> float:
    """log C_cond(π) (Eq. 13) for per-layer tables log π_h [S_h, A]; ``inf`` if π_h ≪̸ π_{h,ref}."""
    reach = reachable_states(model, prompt_weights)
    best = -math.inf
    for h, lr in enumerate(_log_ratios(model, log_policy)):
        if reach[h].any():
            best = max(best, float(lr[reach[h]].max()))
    return best


def log_sequence_coverage(model, log_policy: list, prompt_weights: torch.Tensor | None = None) -> float:
    """log C_cov(π) (Eq. 3) over A^H, by the max-product recursion (no enumeration)."""
    X = model.num_prompts
    w = torch.ones(X, dtype=torch.bool, device=model.device) if prompt_weights is None else prompt_weights > 0
    nxt = None
    for h, lr in reversed(list(enumerate(_log_ratios(model, log_policy)))):
        tot = lr if nxt is None else lr + nxt[model.transitions[h]]
        nxt = tot.max(dim=-1).values
    return float(nxt[model.init_state[w]].max())


def conditional_coverage(instance, log_policy: list | None = None) -> float:
    """C_cond(π) on a :class:`~oraclerl.problems.token_mdp.TokenMDPInstance` (π = π⋆_β by default)."""
    lp = instance.optimal.log_policy if log_policy is None else log_policy
    return math.exp(log_conditional_coverage(instance.model, lp, instance.prompt_weights))


def sequence_coverage(instance, log_policy: list | None = None) -> float:
    """C_cov(π) on a :class:`~oraclerl.problems.token_mdp.TokenMDPInstance` (π = π⋆_β by default)."""
    lp = instance.optimal.log_policy if log_policy is None else log_policy
    return math.exp(log_sequence_coverage(instance.model, lp, instance.prompt_weights))
