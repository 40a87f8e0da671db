"""Tests written to kill mutmut survivors in ``oraclerl.oracles`` (docs/testing.md, "Triage").

The ledger is the framework's accounting: each counter, each budget edge (exactly at the limit, one past it,
zero budgets), and each error's field name and message are checked, since a mutated comparison or a dropped
message leaves the happy path of the algorithm tests unchanged.
"""

from __future__ import annotations

import pytest

from oraclerl.errors import BudgetExceeded, ConfigError
from oraclerl.oracles.ledger import COUNTERS, Budget, Ledger


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_budget_rejects_non_integers_and_negatives_naming_the_field(bad):
    with pytest.raises(ConfigError, match=rf"budget\.t_data: must be a non-negative integer or None, got {bad!r}"):
        Budget(t_data=bad)


def test_budget_accepts_zero_and_none_on_every_counter():
    b = Budget(**dict.fromkeys(COUNTERS, 0))
    assert all(getattr(b, c) == 0 for c in COUNTERS)
    assert all(getattr(Budget(), c) is None for c in COUNTERS)


def test_every_counter_has_its_own_property_and_budget():
    led = Ledger()
    for i, c in enumerate(COUNTERS):
        led.charge(c, i + 1)
    for i, c in enumerate(COUNTERS):
        assert getattr(led, c) == i + 1 == led[c]
    assert led.snapshot() == {c: i + 1 for i, c in enumerate(COUNTERS)}
    snap = led.snapshot()
    snap["t_comp"] = 99                                    # a copy, not the ledger's own dict
    assert led.t_comp == 1


@pytest.mark.parametrize("counter", COUNTERS)
def test_budget_edge_exactly_at_the_limit_then_one_past(counter):
    led = Ledger(Budget(**{counter: 5}))
    led.charge(counter, 3)
    assert led.remaining(counter) == 2
    led.check(counter, 2)                                  # exactly reaching the limit is allowed
    led.charge(counter, 2)
    assert led.remaining(counter) == 0
    led.charge(counter, 0)                                 # a zero charge at the limit is fine
    with pytest.raises(BudgetExceeded) as e:
        led.charge(counter, 1)
    assert (e.value.budget, e.value.limit, e.value.used, e.value.requested) == (counter, 5, 5, 1)
    assert led[counter] == 5                               # nothing was added by the refused charge
    others = [c for c in COUNTERS if c != counter]
    assert all(led.remaining(c) is None for c in others)


def test_zero_budget_refuses_the_first_unit():
    led = Ledger(Budget(t_comp=0))
    with pytest.raises(BudgetExceeded):
        led.charge("t_comp", 1)
    assert led.t_comp == 0


def test_check_errors_name_the_field_and_what_is_allowed():
    led = Ledger()
    with pytest.raises(ConfigError, match=r"^counter: must be one of \('t_comp'.*got 'tokens'$"):
        led.check("tokens", 1)
    with pytest.raises(ConfigError, match=r"^n: must be >= 0, got -2$"):
        led.charge("t_comp", -2)


def test_repr_lists_the_non_zero_counters():
    led = Ledger()
    assert repr(led) == "Ledger(empty)"
    led.charge("t_comp", 128)
    led.charge("prompts", 16)
    assert repr(led) == "Ledger(t_comp=128, prompts=16)"


def test_response_keys_are_prefix_consistent_dtype_invariant_and_collision_free():
    """Keys of every prefix equal the keys of the truncated responses; int32/float responses key like int64 ones;
    10⁴ distinct (prompt, response) pairs get 10⁴ distinct keys (a weakened mix, e.g. + for · with the
    position multipliers, collides)."""
    import torch

    from oraclerl.oracles.ledger import response_keys

    g = torch.Generator().manual_seed(0)
    prompts = torch.arange(50)
    y = torch.randint(0, 4, (50, 200, 6), generator=g)
    pre = response_keys(prompts, y, prefixes=True)
    assert pre.shape == (50, 200, 6) and pre.dtype == torch.int64
    for ell in (1, 3, 6):
        assert torch.equal(pre[:, :, ell - 1], response_keys(prompts, y[:, :, :ell]))
    whole = response_keys(prompts, y)
    assert whole.shape == (50, 200)
    assert torch.equal(whole, response_keys(prompts.int(), y.int()))
    yf = y.to(torch.float32)
    assert torch.equal(response_keys(prompts, yf), response_keys(prompts, yf.double()))
    assert not torch.equal(response_keys(prompts, yf), whole)           # floats are keyed by their bits
    flat = y.reshape(-1, 6)
    ids = prompts.repeat_interleave(200)
    distinct = torch.unique(torch.cat([ids[:, None], flat], 1), dim=0).shape[0]
    assert torch.unique(whole.reshape(-1)).numel() == distinct
    # the prompt is part of the key: the same response under another prompt is another pair
    assert not torch.equal(response_keys(prompts[:1], y[:1]), response_keys(prompts[1:2], y[:1]))
    with pytest.raises(ConfigError, match=r"^responses: must have at least one token per response, got shape "
                                          r"\(2, 3, 0\)$"):
        response_keys(prompts[:2], torch.zeros(2, 3, 0, dtype=torch.long))


def test_provenance_set_semantics_len_dedup_and_prefixes():
    """Provenance is a set: re-adding the same pairs does not grow it, disjoint batches are all found, pairs never
    added are not, and ``prefixes=True`` registers every prefix (a reset/extend must find them)."""
    import torch

    from oraclerl.oracles.ledger import Provenance

    g = torch.Generator().manual_seed(1)
    prompts = torch.arange(8)
    a = torch.randint(0, 50, (8, 3, 5), generator=g)
    b = torch.randint(50, 100, (8, 4, 5), generator=g)                 # disjoint from a
    p = Provenance()
    assert len(p) == 0 and not p.contains(prompts, a).any()
    p.add(prompts, a)
    assert len(p) == 24
    p.add(prompts, a)                                                    # same pairs again
    assert len(p) == 24
    p.add(prompts, b)
    assert len(p) == 24 + 32
    assert p.contains(prompts, a).all() and p.contains(prompts, b).all()
    assert not p.contains(prompts, a + 100).any()
    p.add(prompts, a[:, :1])                             # known pairs, smaller than the last block: no new block
    assert len(p) == 24 + 32
    assert not p.contains(prompts, a[:, :, :3]).any()                  # prefixes were not registered
    for _ in range(5):                                                   # many blocks: merging keeps everything
        p.add(prompts, torch.randint(100, 10**6, (8, 16, 5), generator=g))
        assert p.contains(prompts, a).all() and p.contains(prompts, b).all()
    q = Provenance()
    q.add(prompts, a, prefixes=True)
    assert len(q) == 24 * 5
    assert all(q.contains(prompts, a[:, :, :ell]).all() for ell in range(1, 6))
    q.add(prompts, a[:, :, :0])                                          # an empty batch adds nothing
    assert len(q) == 24 * 5


def _distinct_pairs(prompts, seqs, lengths):
    """Exact number of distinct (prompt, y_{1:ℓ}) triples, independently of the hash (tokens padded with −1)."""
    import torch

    pos = torch.arange(seqs.shape[1])
    padded = torch.where(pos[None, :] < lengths[:, None], seqs, -1)
    return torch.unique(torch.cat([prompts[:, None], lengths[:, None], padded], 1), dim=0).shape[0]


def test_response_keys_distinct_on_adversarial_inputs():
    """No collision among (a) every prefix of 600 binary sequences of length 128 under 3 prompts (76 800 pairs, half of
    them sharing 100-token prefixes), (b) all 8! permutations of 0..7, (c) all 2¹⁶ binary strings, (d) every single-token
    substitution of a length-128 sequence, (e) the Thue–Morse string of length 2048 and its complement — which
    collide under a plain polynomial hash mod 2⁶⁴ for every odd base (checked here). Position-free terms make (b)
    collide, dropping the prompt term makes (a) collide, a polynomial hash makes (e) collide."""
    import itertools

    import torch

    from oraclerl.oracles.ledger import response_keys

    g = torch.Generator().manual_seed(3)
    y = torch.randint(0, 2, (600, 128), generator=g)
    y[300:, :100] = y[:300, :100]                                      # long shared prefixes
    prompts = torch.arange(600) % 3                                    # rows i and 300 + i: same prompt
    keys = response_keys(prompts, y[:, None, :], prefixes=True).reshape(-1)
    L = torch.arange(1, 129).repeat(600)
    expect = _distinct_pairs(prompts.repeat_interleave(128), y.repeat_interleave(128, 0), L)
    assert torch.unique(keys).numel() == expect and expect > 40_000
    perms = torch.tensor(list(itertools.permutations(range(8))))
    assert torch.unique(response_keys(torch.zeros(1, dtype=torch.long), perms[None])).numel() == perms.shape[0]
    bits = (torch.arange(1 << 16)[:, None] >> torch.arange(16)) & 1
    assert torch.unique(response_keys(torch.zeros(1, dtype=torch.long), bits[None])).numel() == 1 << 16
    base = torch.randint(0, 5, (128,), generator=g)
    subs = base.repeat(128 * 4 + 1, 1)
    rows = torch.arange(128 * 4)
    subs[rows, rows // 4] = (base[rows // 4] + 1 + rows % 4) % 5       # every other token at every position
    assert torch.unique(response_keys(torch.zeros(1, dtype=torch.long), subs[None])).numel() == subs.shape[0]
    tm = torch.zeros(1, dtype=torch.long)
    for _ in range(11):
        tm = torch.cat([tm, 1 - tm])
    pair = torch.stack([tm, 1 - tm])                                   # [2, 2048]
    for base_p in (3, 0x9E3779B97F4A7C15 - (1 << 64), 1_000_003):     # the attack: a polynomial hash collides
        powers = torch.full((2048,), base_p, dtype=torch.long).cumprod(0)
        poly = ((pair + 1) * powers).sum(1)
        assert poly[0] == poly[1]
    k = response_keys(torch.zeros(1, dtype=torch.long), pair[None])
    assert k[0, 0] != k[0, 1]


def test_provenance_memory_is_one_key_per_drawn_response_not_per_prefix():
    """Sequence samplers store the whole response only (Provenance's bound: ≤ t_comp + t_comp_token + t_feature +
    t_grant keys); re-registering every prefix (L = 6 keys per response) breaks the bound."""
    import torch

    from oraclerl.problems.token_mdp import random_token_mdp

    inst = random_token_mdp(num_actions=4, horizon=6, d=3, num_prompts=3, seed=2)
    o = inst.oracles()
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        s = o.weak.sample(torch.arange(3), 50, gen)
        o.reward.process(s.prompts, s.responses, gen)
    pre = torch.zeros(3, 0, dtype=torch.long)
    for _ in range(3):
        pre = torch.cat([pre, o.auto.next_token(torch.arange(3), pre, generator=gen).responses[:, :1]], 1)
    led = o.ledger
    assert 0 < len(led.provenance) <= led.t_comp + led.t_comp_token + led.t_feature + led.t_grant == 600 + 9
    assert len(led.provenance) > 9                                       # the drawn responses are there


def test_provenance_long_probe_chains_duplicates_and_growth():
    """Keys that share their hash-table slot form a chain far longer than one probe window: every one is found,
    absent keys of the same slot are not, re-adding any of them (or a batch with repeats) does not grow the set,
    and the set survives the table doubling (a lookup that stops at a full window, or a rehash that drops the old
    keys, fails here)."""
    import torch

    from oraclerl.oracles.ledger import Provenance

    chain = (torch.arange(1, 41) << 24) | 7                          # 40 odd keys, one slot in any table < 2²⁴
    p = Provenance()
    p.add_keys(chain[:30])
    p.add_keys(torch.cat([chain[:30], chain[30:], chain[30:]]))    # known ones and repeats within the batch
    assert len(p) == 40 and p.contains_keys(chain).all()
    assert not p.contains_keys((torch.arange(41, 60) << 24) | 7).any()
    big = torch.randint(-(2**62), 2**62, (5000,), generator=torch.Generator().manual_seed(4)) | 1
    p.add_keys(big)                                                  # forces the table to double (≥ 2·5040 slots)
    assert len(p) == 5040 and p.contains_keys(chain).all() and p.contains_keys(big).all()
    assert p._table.numel() >= 2 * len(p)                            # at most half full
