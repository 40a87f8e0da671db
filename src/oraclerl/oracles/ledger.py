"""The call ledger: every oracle query is counted here, and budgets are enforced before any work.

Counters (Foster et al. 2025, §2 and Definition 2.1):

* ``t_comp``: sampling-oracle queries, one per response drawn (T_comp, the information-theoretic
  proxy for runtime).
* ``t_comp_token``: autoregressive sampling-oracle queries, one per token drawn (T^auto_comp, Def. 5.1).
* ``t_data``: reward-oracle queries, one per (prompt, response) outcome reward, one per (prompt, prefix)
  process reward, one per compared pair for preferences (T_data).
* ``prompts``: prompts drawn from the prompt distribution ρ.
* ``t_feature``: explicit feature queries ϕ(x, y) for responses that were *not* sampled (only the anchor
  queries of the MDP oracle, Definition I.3, are allowed to do this).
* ``t_reset``: resets of an autoregressive roll-out to a previously visited prefix (local simulator), made
  through :meth:`~oraclerl.oracles.AutoregressiveSampler.reset`.
* ``t_grant``: (prompt, response) pairs that no sampler on this ledger drew but that the caller granted to the
  reward oracle explicitly (:meth:`~oraclerl.oracles.RewardOracle.grant`), e.g. evaluation code or a learner
  that samples its own policy outside the oracles.

Provenance (issue 16 §5): the ledger also remembers which (prompt, response) pairs — and, for token sequences,
which (prompt, prefix) pairs — its samplers have returned (:class:`Provenance`), so the reward oracle can refuse
to score anything else.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from ..errors import BudgetExceeded, ConfigError, RevealError

COUNTERS = ("t_comp", "t_comp_token", "t_data", "prompts", "t_feature", "t_reset", "t_grant")


class ProvenanceError(RevealError):
    """A reward query on a response that no sampler on the same ledger drew (and that was not granted), or an
    autoregressive query at a prefix that was never visited."""


@dataclass(frozen=True)
class Budget:
    """Upper limits per counter; ``None`` means unlimited."""

    t_comp: int | None = None
    """Maximum number of responses drawn from sampling oracles (T_comp)."""
    t_comp_token: int | None = None
    """Maximum number of tokens drawn from autoregressive oracles (T^auto_comp)."""
    t_data: int | None = None
    """Maximum number of reward queries (T_data)."""
    prompts: int | None = None
    """Maximum number of prompts drawn from ρ."""
    t_feature: int | None = None
    """Maximum number of explicit feature queries (anchor action only)."""
    t_reset: int | None = None
    """Maximum number of resets to visited prefixes."""
    t_grant: int | None = None
    """Maximum number of granted (not sampled) responses the reward oracle may score."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ConfigError(f"budget.{f.name}", f"must be a non-negative integer or None, got {v!r}")


class Ledger:
    """Counts oracle calls and enforces a :class:`Budget`.

    A query that would exceed a budget raises :class:`BudgetExceeded` *before* the oracle does any
    work, so the counts never overshoot the budget. Several oracles can share one ledger (the usual
    case: one ledger per algorithm run).
    """

    def __init__(self, budget: Budget | None = None):
        self.budget = budget or Budget()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self.provenance = Provenance()

    def check(self, counter: str, n: int) -> None:
        """Raise :class:`BudgetExceeded` if ``n`` more units of ``counter`` would pass the budget."""
        if counter not in self._counts:
            raise ConfigError("counter", f"must be one of {COUNTERS}, got {counter!r}")
        if n < 0:
            raise ConfigError("n", f"must be >= 0, got {n}")
        limit = getattr(self.budget, counter)
        if limit is not None and self._counts[counter] + n > limit:
            raise BudgetExceeded(counter, limit, self._counts[counter], n)

    def charge(self, counter: str, n: int) -> None:
        """Check the budget, then add ``n`` to ``counter``."""
        n = int(n)
        self.check(counter, n)
        self._counts[counter] += n

    def remaining(self, counter: str) -> int | None:
        limit = getattr(self.budget, counter)
        return None if limit is None else limit - self._counts[counter]

    def __getitem__(self, counter: str) -> int:
        return self._counts[counter]

    @property
    def t_comp(self) -> int:
        return self._counts["t_comp"]

    @property
    def t_comp_token(self) -> int:
        return self._counts["t_comp_token"]

    @property
    def t_data(self) -> int:
        return self._counts["t_data"]

    @property
    def prompts(self) -> int:
        return self._counts["prompts"]

    @property
    def t_feature(self) -> int:
        return self._counts["t_feature"]

    @property
    def t_reset(self) -> int:
        return self._counts["t_reset"]

    @property
    def t_grant(self) -> int:
        return self._counts["t_grant"]

    def snapshot(self) -> dict[str, int]:
        """A plain-dict copy of the counters (JSON-serialisable)."""
        return dict(self._counts)

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v}" for k, v in self._counts.items() if v)
        return f"Ledger({body or 'empty'})"


_MUL = 0x9E3779B97F4A7C15 - (1 << 64)      # odd 64-bit multipliers (golden ratio, splitmix64), as signed int64
_MIX = 0xBF58476D1CE4E5B9 - (1 << 64)


def _as_int64(t: torch.Tensor) -> torch.Tensor:
    if t.is_floating_point():
        return t.to(torch.float64).contiguous().view(torch.int64)
    return t.to(torch.int64)


def response_keys(prompts: torch.Tensor, responses: torch.Tensor, prefixes: bool = False) -> torch.Tensor:
    """64-bit keys of the pairs (x_b, y_{b,j}) for prompts [B] and responses [B, n, ...] (wrapping polynomial hash
    over the flattened trailing axes, length included): [B, n], or [B, n, L] keys of every prefix y_{1:ℓ},
    ℓ = 1..L, with ``prefixes=True`` (the last one is the whole response). Collisions have probability ~2⁻⁶⁴ per
    pair of distinct inputs (negligible next to the ≤ 10⁹ pairs of a run)."""
    B, n = responses.shape[:2]
    L = math.prod(responses.shape[2:])
    if L == 0:
        raise ConfigError("responses", f"must have at least one token per response, got shape {tuple(responses.shape)}")
    flat = _as_int64(responses).reshape(B, n, L)
    h = (_as_int64(torch.as_tensor(prompts)).reshape(B, 1).to(flat.device) + 1) * _MIX
    h = h.expand(B, n)
    out = []
    for j in range(flat.shape[2]):
        h = (h ^ (flat[:, :, j] + 0x5BD1E995)) * _MUL
        h = h ^ (h >> 29)
        out.append(h)
    return torch.stack(out, dim=2) if prefixes else out[-1]


class Provenance:
    """The set of (prompt, response) keys that the samplers of one ledger have returned (see :func:`response_keys`).

    Stored as one sorted, de-duplicated int64 tensor plus a smaller sorted buffer of recent keys, merged into it
    when the buffer outgrows max(1024, 1/8 of it); a lookup is two binary searches (a fixed number of tensor
    operations), and a sampler run that draws the same responses again does not grow it.
    """

    def __init__(self):
        self._main = torch.zeros(0, dtype=torch.int64)
        self._recent: torch.Tensor | None = None

    def __len__(self) -> int:
        return self._main.numel() + (0 if self._recent is None else self._recent.numel())

    def add_keys(self, keys: torch.Tensor) -> None:
        keys = keys.reshape(-1).to(self._main.device)
        if not keys.numel():
            return
        keys = torch.unique(keys[~self.contains_keys(keys)])
        if not keys.numel():
            return
        self._recent = keys if self._recent is None else torch.unique(torch.cat([self._recent, keys]))
        if self._recent.numel() > max(1024, self._main.numel() // 8):
            self._main = torch.unique(torch.cat([self._main, self._recent]))
            self._recent = None

    def contains_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """Bool tensor of keys' shape: True where the key was added."""
        if self._main.numel() == 0 and self._recent is None:
            return torch.zeros(keys.shape, dtype=torch.bool, device=keys.device)
        if self._main.numel() == 0 and keys.numel():            # first keys decide the device
            self._main = self._main.to(keys.device)
        flat = keys.reshape(-1).to(self._main.device)
        m = self._main
        if m.numel():
            found = m[torch.searchsorted(m, flat).clamp_(max=m.numel() - 1)] == flat
        else:
            found = torch.zeros(flat.shape, dtype=torch.bool, device=flat.device)
        if self._recent is not None:
            r = self._recent
            found |= r[torch.searchsorted(r, flat).clamp_(max=r.numel() - 1)] == flat
        return found.reshape(keys.shape).to(keys.device)

    def add(self, prompts, responses, prefixes: bool = False) -> None:
        """Remember the pairs (prompts [B], responses [B, n, ...]); with ``prefixes`` every prefix of each too."""
        if responses.numel():
            self.add_keys(response_keys(prompts, responses, prefixes))

    def contains(self, prompts, responses) -> torch.Tensor:
        """[B, n] bool: which (prompt, response) pairs were added."""
        return self.contains_keys(response_keys(prompts, responses))
