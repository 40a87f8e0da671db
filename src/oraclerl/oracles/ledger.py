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

Provenance (issue 16 §5): the ledger also remembers which (prompt, response) pairs its samplers have returned —
whole responses of the sequence-level samplers, states x∘a_{1:h} of the autoregressive one — and which were granted
(:class:`Provenance`, one 8-byte key each), so the reward oracle can refuse to score anything else.
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


_LOW31 = (1 << 31) - 1                        # low 31 bits: (x >> 33) & _LOW31 is the logical shift of int64 x
_F1 = 0xFF51AFD7ED558CCD - (1 << 64)          # the MurmurHash3 64-bit finaliser's odd multipliers, as int64
_F2 = 0xC4CEB9FE1A85EC53 - (1 << 64)
_GOLD = 0x9E3779B97F4A7C15 - (1 << 64)        # odd constants (golden ratio, splitmix64) seeding positions/prompts
_SEED_POS = 0x2545F4914F6CDD1D
_SEED_LEN = 0xBF58476D1CE4E5B9 - (1 << 64)


def _fmix(x: torch.Tensor) -> torch.Tensor:
    """MurmurHash3's 64-bit finaliser on int64 words (wrapping arithmetic): a bijection of 64-bit words."""
    x = x ^ ((x >> 33) & _LOW31)
    x = x * _F1
    x = x ^ ((x >> 33) & _LOW31)
    x = x * _F2
    return x ^ ((x >> 33) & _LOW31)


def _as_int64(t: torch.Tensor) -> torch.Tensor:
    if t.is_floating_point():
        return t.to(torch.float64).contiguous().view(torch.int64)
    return t.to(torch.int64)


def response_keys(prompts: torch.Tensor, responses: torch.Tensor, prefixes: bool = False) -> torch.Tensor:
    """64-bit keys of the pairs (x_b, y_{b,j}) for prompts [B] and responses [B, n, ...] (trailing axes flattened
    to one token axis of length L): [B, n], or [B, n, L] keys of every prefix y_{1:ℓ}, ℓ = 1..L, with
    ``prefixes=True`` (the last one is the whole response). Floats are keyed by their float64 bits.

    The key of (x, y_{1:ℓ}) is fmix(S_ℓ ⊕ fmix(fmix(x·G) + ℓ·G')), with S_ℓ = Σ_{s≤ℓ} fmix(y_s ⊕ c_s) mod 2⁶⁴ and
    c_s = fmix(s·G + c) a pseudo-random word per position (fmix: MurmurHash3's finaliser, a bijection). A fixed
    number of tensor operations whatever B, n and L (the prefix sums are one ``cumsum``). Each position's term is
    a bijection of the token, so two responses of the same length and prompt that differ in exactly one token
    never collide; otherwise a collision needs a pseudo-random 64-bit sum to vanish, probability ~2⁻⁶⁴ per pair
    (≤ 10⁻⁶ over the 10¹⁶ pairs of 10⁸ keys). The per-position salt is what a plain polynomial hash mod 2⁶⁴ lacks:
    Thue–Morse sequences collide for *every* odd base there (a known attack on 64-bit rolling hashes)."""
    B, n = responses.shape[:2]
    L = math.prod(responses.shape[2:])
    if L == 0:
        raise ConfigError("responses", f"must have at least one token per response, got shape {tuple(responses.shape)}")
    flat = _as_int64(responses).reshape(B, n, L)
    dev = flat.device
    pos = torch.arange(1, L + 1, dtype=torch.int64, device=dev)
    terms = _fmix(flat ^ _fmix(pos * _GOLD + _SEED_POS))                          # [B, n, L]
    tag = _fmix(_as_int64(torch.as_tensor(prompts)).reshape(B, 1, 1).to(dev) * _GOLD)
    if prefixes:
        return _fmix(terms.cumsum(2) ^ _fmix(tag + pos * _SEED_LEN))
    length = (L * _SEED_LEN + (1 << 63)) % (1 << 64) - (1 << 63)                  # ℓ·G' wrapped to int64
    return _fmix(terms.sum(2) ^ _fmix(tag[:, :, 0] + length))


class Provenance:
    """The set of (prompt, response) keys that the samplers of one ledger returned or its reward oracles were granted
    (see :func:`response_keys`).

    What is stored (issue 16 §5), one 8-byte key per pair: a response drawn by a sequence-level sampler (its
    prefixes are *not* stored: a process-reward query takes the whole response and is checked on it), a state
    x∘a_{1:h} returned by the autoregressive oracle (one per token drawn or anchor-queried), and a granted pair.
    Hence ``len(self) ≤ t_comp + t_comp_token + t_feature + t_grant`` of the ledger (fewer with repeats) and the
    memory is 8 bytes per key, transiently twice that while two runs merge.

    Layout: disjoint sorted int64 runs, each more than twice the size of the next (so at most log₂ len + 1 runs);
    a new batch becomes a run and equal-sized neighbours merge (every key is re-sorted O(log len) times). A lookup
    is one binary search per run. A batch of keys already present adds nothing.
    """

    def __init__(self):
        self._runs: list[torch.Tensor] = []

    def __len__(self) -> int:
        return sum(r.numel() for r in self._runs)

    def add_keys(self, keys: torch.Tensor) -> None:
        keys = keys.reshape(-1)
        if self._runs:
            keys = keys.to(self._runs[0].device)
        if not keys.numel():
            return
        keys = torch.unique(keys)                                               # sorted
        keys = keys[~self.contains_keys(keys)]
        if not keys.numel():
            return
        self._runs.append(keys)
        while len(self._runs) > 1 and self._runs[-2].numel() <= 2 * self._runs[-1].numel():
            b, a = self._runs.pop(), self._runs.pop()
            self._runs.append(torch.sort(torch.cat([a, b])).values)             # disjoint: no duplicates

    def contains_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """Bool tensor of keys' shape: True where the key was added."""
        found = torch.zeros(keys.numel(), dtype=torch.bool, device=keys.device)
        if not self._runs or not keys.numel():
            return found.reshape(keys.shape)
        flat = keys.reshape(-1).to(self._runs[0].device)
        found = found.to(flat.device)
        for r in self._runs:
            found |= r[torch.searchsorted(r, flat).clamp_(max=r.numel() - 1)] == flat
        return found.reshape(keys.shape).to(keys.device)

    def add(self, prompts, responses, prefixes: bool = False) -> None:
        """Remember the pairs (prompts [B], responses [B, n, ...]); with ``prefixes`` every prefix of each too (L keys
        per response: only for a caller whose prefixes may legitimately be queried alone; no oracle does so)."""
        if responses.numel():
            self.add_keys(response_keys(prompts, responses, prefixes))

    def contains(self, prompts, responses) -> torch.Tensor:
        """[B, n] bool: which (prompt, response) pairs were added."""
        return self.contains_keys(response_keys(prompts, responses))
