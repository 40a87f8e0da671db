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

Provenance (issue 16 §5): the ledger also remembers which (prompt, response) pairs its samplers have returned
— whole responses of the sequence-level samplers, states x∘a_{1:h} of the autoregressive one — and which were
granted (:class:`Provenance`, one 8-byte key each), so the reward oracle can refuse to score anything else.
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


def ledger_totals(*oracles) -> dict[str, int]:
    """The counters of the distinct ledgers behind ``oracles``, summed key by key (one shared ledger, the
    usual case, is counted once; an oracle without a ledger is skipped)."""
    seen = {id(o.ledger): o.ledger for o in oracles if getattr(o, "ledger", None) is not None}
    tot: dict[str, int] = {}
    for led in seen.values():
        for k, v in led.snapshot().items():
            tot[k] = tot.get(k, 0) + v
    return tot


# low 31 bits: (x >> 33) & _LOW31 is the logical shift of int64 x
_LOW31 = (1 << 31) - 1
_LOW32 = (1 << 32) - 1
_F1 = 0xFF51AFD7ED558CCD - (1 << 64)          # the MurmurHash3 64-bit finaliser's odd multipliers, as int64
_F2 = 0xC4CEB9FE1A85EC53 - (1 << 64)
# odd constants (golden ratio, splitmix64) seeding positions/prompts
_GOLD = 0x9E3779B97F4A7C15 - (1 << 64)
_SEED_POS = 0x2545F4914F6CDD1D
_SEED_LEN = 0xBF58476D1CE4E5B9 - (1 << 64)


def _fmix(x: torch.Tensor) -> torch.Tensor:
    """MurmurHash3's 64-bit finaliser on int64 words (wrapping arithmetic): a bijection of 64-bit words."""
    x = x ^ ((x >> 33) & _LOW31)
    x = x * _F1
    x = x ^ ((x >> 33) & _LOW31)
    x = x * _F2
    return x ^ ((x >> 33) & _LOW31)


def _spread(x: torch.Tensor) -> torch.Tensor:
    """One xorshift-multiply round (a bijection) that carries the high bits into the low ones, which pick a
    key's hash-table slot; the lowest bit is then set (odd keys: 0 marks an empty slot, 63 bits distinguish
    keys)."""
    return (x ^ ((x >> 32) & _LOW32)) * _F1 | 1


def _as_int64(t: torch.Tensor) -> torch.Tensor:
    if t.is_floating_point():
        return t.to(torch.float64).contiguous().view(torch.int64)
    return t.to(torch.int64)


_MULTIPLIERS: dict = {}


def _multipliers(L: int, device) -> torch.Tensor:
    """m_1..m_L: pseudo-random odd 64-bit words, one per position (fixed constants of the key; cached)."""
    key = (L, str(device))
    if key not in _MULTIPLIERS:
        if len(_MULTIPLIERS) > 64:
            _MULTIPLIERS.clear()
        _MULTIPLIERS[key] = (
            _fmix(torch.arange(1, L + 1, dtype=torch.int64, device=device) * _GOLD + _SEED_POS) | 1
        )
    return _MULTIPLIERS[key]


def response_keys(prompts: torch.Tensor, responses: torch.Tensor, prefixes: bool = False) -> torch.Tensor:
    """64-bit keys of the pairs (x_b, y_{b,j}) for prompts [B] and responses [B, n, ...] (trailing axes
    flattened to one token axis of length L): [B, n], or [B, n, L] keys of every prefix y_{1:ℓ}, ℓ = 1..L,
    with ``prefixes=True`` (the last one is the whole response).

    The key of (x, y_{1:ℓ}) is spread(S_ℓ + fmix(x·G) + ℓ·G') with the multilinear sum S_ℓ = Σ_{s≤ℓ} y_s·m_s
    mod 2⁶⁴ (m_s: :func:`_multipliers`; fmix: MurmurHash3's finaliser; :func:`_spread`: a bijection, then the
    lowest bit set, which costs one bit: double the bounds below; G, G' odd constants); float tokens enter as
    fmix of their float64 bits. A fixed number of tensor operations whatever B, n and L (one multiply and one
    ``sum``/``cumsum`` over the tokens, the rest on [B, n]).

    Collisions, for a prompt and length in common (Carter–Wegman universal hashing, with the m_s as the
    random keys): S(y) − S(y') = Σ_s (y_s − y'_s)·m_s; if 2^v is the largest power of two dividing every
    token difference, P[collision] ≤ 2^{v+1−64}, and 0 when only one position has the lowest valuation v
    (in particular when y, y' differ in a single token: an odd multiplier is a bijection). Token ids below
    2^b differ by less than 2^b, so v < b = log₂ vocabulary (≤ 2⁻⁴⁶ per pair at the worst with a 2¹⁷
    vocabulary, ~2⁻⁶⁴ for a difference with an odd entry). Another prompt shifts S by a pseudo-random word
    (~2⁻⁶⁴); the same prompt and another length by a non-zero multiple of the odd G', which S's difference
    matches with probability ≤ 2^{v+1−64} as above. Unlike a polynomial hash y_s·P^s mod 2⁶⁴, independent
    multipliers have no Thue–Morse collisions (a known attack on 64-bit rolling hashes: the Thue–Morse
    string of length 2048 and its complement collide for every odd P)."""
    B, n = responses.shape[:2]
    L = math.prod(responses.shape[2:])
    if L == 0:
        raise ConfigError(
            "responses", f"must have at least one token per response, got shape {tuple(responses.shape)}"
        )
    flat = _as_int64(responses).reshape(B, n, L)
    if responses.is_floating_point():
        # float bits differ high up: spread them over the word first
        flat = _fmix(flat)
    dev = flat.device
    terms = flat * _multipliers(L, dev)                                             # [B, n, L]
    tag = _fmix(_as_int64(torch.as_tensor(prompts)).reshape(B, 1).to(dev) * _GOLD)
    if prefixes:
        ell = torch.arange(1, L + 1, dtype=torch.int64, device=dev)
        return _spread(terms.cumsum(2) + (tag[:, :, None] + ell * _SEED_LEN))
    length = (L * _SEED_LEN + (1 << 63)) % (1 << 64) - (1 << 63)                  # ℓ·G' wrapped to int64
    return _spread(terms.sum(2) + (tag + length))


class Provenance:
    """The set of (prompt, response) keys that the samplers of one ledger returned or its reward oracles were
    granted (see :func:`response_keys`).

    What is stored (issue 16 §5), one key per pair: a response drawn by a sequence-level sampler (its prefixes
    are *not* stored: a process-reward query takes the whole response and is checked on it), a state x∘a_{1:h}
    returned by the autoregressive oracle (one per token drawn or anchor-queried), and a granted pair. Hence
    ``len(self) ≤ t_comp + t_comp_token + t_feature + t_grant`` of the ledger (fewer with repeats).

    Layout: an open-addressing hash table (linear probing) in one int64 tensor whose size is a power of two
    kept at most ½ full and doubled when a batch would pass that, so the memory is at most 32 bytes per key or
    per key of the largest batch added (≥ 8 KiB), 1.5 times that while it doubles. Lookups and inserts are
    vectorised over the batch and probe 8 slots at a time; their Python loop runs once per 8 probes (once or
    twice at this load), never per key. Keys are stored with their lowest bit set (:func:`response_keys` makes
    them odd): 0 marks an empty slot.
    """

    _MIN = 1024
    _W = 8                                                      # slots probed at once

    def __init__(self):
        self._table: torch.Tensor | None = None
        self._n = 0
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None   # private copy of a remembered batch

    def __len__(self) -> int:
        return self._n

    def _window(self, pos: torch.Tensor) -> torch.Tensor:
        """[A, W] contents of the W slots from each of ``pos`` on (wrapping)."""
        offs = torch.arange(self._W, device=pos.device)
        return self._table[(pos[:, None] + offs) & (self._table.numel() - 1)]

    def _insert(self, keys: torch.Tensor) -> int:
        """Place the distinct non-zero ``keys`` that are not in the table yet; returns how many were
        placed."""
        mask, W = self._table.numel() - 1, self._W
        pos, placed = keys & mask, torch.zeros((), dtype=torch.int64, device=keys.device)
        while keys.numel():
            win = self._window(pos)
            empty = win == 0
            first = torch.where(empty.any(1), empty.to(torch.uint8).argmax(1), W)    # end of the probe chain
            before = torch.arange(W, device=keys.device)[None, :] < first[:, None]
            present = ((win == keys[:, None]) & before).any(1)
            claim = ~present & (first < W)
            slot = (pos + first) & mask
            # a slot claimed twice: one key wins, the other probes on
            self._table[slot[claim]] = keys[claim]
            won = claim & (self._table[slot] == keys)
            placed += won.sum()
            keep = ~present & ~won
            pos = torch.where(first < W, pos, (pos + W) & mask)
            keys, pos = keys[keep], pos[keep]
        return int(placed)

    def add_keys(self, keys: torch.Tensor) -> None:
        keys = keys.reshape(-1)
        if self._table is not None:
            keys = keys.to(self._table.device)
        if not keys.numel():
            return
        keys = torch.unique(keys | 1)
        cap = self._MIN if self._table is None else self._table.numel()
        if self._table is None or 2 * (self._n + keys.numel()) > cap:      # keep the table at most half full
            while 2 * (self._n + keys.numel()) > cap:
                cap *= 2
            old = self._table
            self._table = torch.zeros(cap, dtype=torch.int64, device=keys.device)
            if old is not None:
                self._insert(old[old != 0])
        self._n += self._insert(keys)

    def contains_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """Bool tensor of keys' shape: True where the key was added."""
        if self._table is None or not keys.numel():
            return torch.zeros(keys.shape, dtype=torch.bool, device=keys.device)
        q = keys.reshape(-1).to(self._table.device) | 1
        mask = self._table.numel() - 1
        found = torch.zeros(q.shape, dtype=torch.bool, device=q.device)
        idx, pos = torch.arange(q.numel(), device=q.device), q & mask
        while idx.numel():
            win = self._window(pos)
            hit = (win == q[idx, None]).any(1)
            found[idx[hit]] = True
            go = ~hit & (win != 0).all(1)                       # no empty slot yet: the chain goes on
            idx, pos = idx[go], (pos[go] + self._W) & mask
        return found.reshape(keys.shape).to(keys.device)

    def add(self, prompts, responses, prefixes: bool = False, remember: bool = False) -> None:
        """Remember the pairs (prompts [B], responses [B, n, ...]); with ``prefixes`` every prefix of each too
        (L keys per response: only for a caller whose prefixes may legitimately be queried alone; no oracle
        does so).

        ``remember`` (the sequence-level samplers) also keeps a private copy of this batch when its prompts
        and tokens are integers, replacing the previous copy: see :meth:`contains`."""
        if responses.numel():
            self.add_keys(response_keys(prompts, responses, prefixes))
            p = torch.as_tensor(prompts)
            if remember and not any(t.is_floating_point() or t.is_complex() for t in (p, responses)):
                self._last = (p.clone(), responses.clone())

    def _is_last(self, prompts, responses) -> bool:
        """True when (prompts, responses) equal the remembered batch in dtype, shape, device and every
        value."""
        p = torch.as_tensor(prompts)
        return self._last is not None and all(
            a.dtype == b.dtype and a.shape == b.shape and a.device == b.device and torch.equal(a, b)
            for a, b in zip((p, responses), self._last))

    def contains(self, prompts, responses) -> torch.Tensor:
        """[B, n] bool: which (prompt, response) pairs were added.

        A query equal to the remembered batch (:meth:`add` with ``remember``: the reward query that follows
        a sampler's draw) answers all True without computing its keys. That is the answer of the key
        lookup: the batch was added pair by pair and keys are never removed. The comparison is against a
        private copy, so it cannot be fooled by writes into the tensors the sampler returned (even through
        ``.numpy()``, which ``_version`` does not see); integer tensors only, where equal values are equal
        keys (floats: −0.0 = 0.0)."""
        if self._is_last(prompts, responses):
            return torch.ones(responses.shape[:2], dtype=torch.bool, device=responses.device)
        return self.contains_keys(response_keys(prompts, responses))
