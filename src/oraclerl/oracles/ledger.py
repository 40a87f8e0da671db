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
* ``t_reset``: resets of an autoregressive roll-out to a previously visited prefix (local simulator).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import BudgetExceeded, ConfigError

COUNTERS = ("t_comp", "t_comp_token", "t_data", "prompts", "t_feature", "t_reset")


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

    def snapshot(self) -> dict[str, int]:
        """A plain-dict copy of the counters (JSON-serialisable)."""
        return dict(self._counts)

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v}" for k, v in self._counts.items() if v)
        return f"Ledger({body or 'empty'})"
