"""Tests written to kill mutmut survivors in ``oraclerl.oracles`` (docs/testing.md, "Triage").

The ledger is the framework's accounting: each counter, each budget edge (exactly at the limit, one past it,
zero budgets), and each error's field name and message are checked, since a mutated comparison or a dropped
message leaves the happy path of the algorithm tests unchanged.
"""

from __future__ import annotations

import re

import pytest
import torch

from oraclerl.errors import BudgetExceeded, ConfigError
from oraclerl.oracles.ledger import COUNTERS, Budget, Ledger


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_budget_rejects_non_integers_and_negatives_naming_the_field(bad):
    with pytest.raises(
        ConfigError, match=rf"budget\.t_data: must be a non-negative integer or None, got {bad!r}"
    ):
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
    """Keys of every prefix equal the keys of the truncated responses; int32/float responses key like int64
    ones; 10⁴ distinct (prompt, response) pairs get 10⁴ distinct keys (a weakened mix, e.g. + for · with
    the position multipliers, collides)."""
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
    """Provenance is a set: re-adding the same pairs does not grow it, disjoint batches are all found,
    pairs never added are not, and ``prefixes=True`` registers every prefix (a reset/extend must find
    them)."""
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
    # known pairs, smaller than the last block: no new block
    p.add(prompts, a[:, :1])
    assert len(p) == 24 + 32
    assert not p.contains(prompts, a[:, :, :3]).any()                  # prefixes were not registered
    # many blocks: merging keeps everything
    for _ in range(5):
        p.add(prompts, torch.randint(100, 10**6, (8, 16, 5), generator=g))
        assert p.contains(prompts, a).all() and p.contains(prompts, b).all()
    q = Provenance()
    q.add(prompts, a, prefixes=True)
    assert len(q) == 24 * 5
    assert all(q.contains(prompts, a[:, :, :ell]).all() for ell in range(1, 6))
    q.add(prompts, a[:, :, :0])                                          # an empty batch adds nothing
    assert len(q) == 24 * 5


def _distinct_pairs(prompts, seqs, lengths):
    """Exact number of distinct (prompt, y_{1:ℓ}) triples, independently of the hash (tokens padded with
    −1)."""
    import torch

    pos = torch.arange(seqs.shape[1])
    padded = torch.where(pos[None, :] < lengths[:, None], seqs, -1)
    return torch.unique(torch.cat([prompts[:, None], lengths[:, None], padded], 1), dim=0).shape[0]


def test_response_keys_distinct_on_adversarial_inputs():
    """No collision among (a) every prefix of 600 binary sequences of length 128 under 3 prompts (76 800
    pairs, half of them sharing 100-token prefixes), (b) all 8! permutations of 0..7, (c) all 2¹⁶ binary
    strings, (d) every single-token substitution of a length-128 sequence, (e) the Thue–Morse string of
    length 2048 and its complement — which collide under a plain polynomial hash mod 2⁶⁴ for every odd base
    (checked here). Position-free terms make (b) collide, dropping the prompt term makes (a) collide, a
    polynomial hash makes (e) collide."""
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
    assert (
        torch.unique(response_keys(torch.zeros(1, dtype=torch.long), perms[None])).numel() == perms.shape[0]
    )
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
    """Sequence samplers store the whole response only (Provenance's bound: ≤ t_comp + t_comp_token +
    t_feature + t_grant keys); re-registering every prefix (L = 6 keys per response) breaks the bound."""
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
    """Keys that share their hash-table slot form a chain far longer than one probe window: every one is
    found, absent keys of the same slot are not, re-adding any of them (or a batch with repeats) does not
    grow the set, and the set survives the table doubling (a lookup that stops at a full window, or a
    rehash that drops the old keys, fails here)."""
    import torch

    from oraclerl.oracles.ledger import Provenance

    # 40 odd keys, one slot in any table < 2²⁴
    chain = (torch.arange(1, 41) << 24) | 7
    p = Provenance()
    p.add_keys(chain[:30])
    p.add_keys(torch.cat([chain[:30], chain[30:], chain[30:]]))    # known ones and repeats within the batch
    assert len(p) == 40 and p.contains_keys(chain).all()
    assert not p.contains_keys((torch.arange(41, 60) << 24) | 7).any()
    big = torch.randint(-(2**62), 2**62, (5000,), generator=torch.Generator().manual_seed(4)) | 1
    # forces the table to double (≥ 2·5040 slots)
    p.add_keys(big)
    assert len(p) == 5040 and p.contains_keys(chain).all() and p.contains_keys(big).all()
    assert p._table.numel() >= 2 * len(p)                            # at most half full


# ----------------------------------------------------------------------------------------------------
# oracles/rewards.py
# ----------------------------------------------------------------------------------------------------


class _TableFn:
    """A reward function r⋆(x, y) = table[x, y] with process rewards r⋆(x, y_{1:i}) = Σ_{s≤i} table[x, y_s]
    (plain indexing, the reference for every oracle output below)."""

    def __init__(self, table, r_max=None, process=True):
        import torch

        self.table = torch.as_tensor(table)
        self.r_max = r_max
        self.calls = []
        if process:
            self.process_mean = self._process_mean

    def mean(self, prompts, responses):
        self.calls.append(("mean", prompts.dtype, tuple(responses.shape)))
        return self.table[prompts[:, None], responses if responses.dim() == 2 else responses[..., -1]]

    def _process_mean(self, prompts, responses):
        self.calls.append(("process_mean", prompts.dtype, tuple(responses.shape)))
        return self.table[prompts[:, None, None], responses].cumsum(-1)


class _NoMean:
    pass


def _drawn(ledger, prompts, responses):
    """Register (prompts, responses) on ``ledger`` the way a sampler does (whole responses)."""
    ledger.provenance.add(prompts, responses)
    return prompts, responses


def test_reward_noise_draws_exactly_its_stated_law_from_the_given_generator():
    """Gaussian: mean + scale·randn(shape, generator, mean's dtype); Bernoulli: r_max·[rand(...) <
    mean/r_max]; none: the mean itself. Compared draw for draw with torch's own stream (kills apply_5/6/7
    (kind, sign), _10/_14 (generator dropped), _11/_15 (randn in float32 for a float64 mean), _44/_48 (rand
    without the generator), _45/_49 (rand in float32))."""
    import torch

    from oraclerl.oracles import RewardNoise

    mean = torch.tensor([[0.25, 1.5, 0.0], [2.0, 0.75, 1.0]], dtype=torch.float64)
    out = RewardNoise("gaussian", 0.5).apply(mean, None, torch.Generator().manual_seed(7))
    ref = mean + 0.5 * torch.randn((2, 3), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert out.dtype == torch.float64 and torch.equal(out, ref)
    m32 = mean.float()
    out32 = RewardNoise("gaussian", 2.0).apply(m32, None, torch.Generator().manual_seed(8))
    ref32 = m32 + 2.0 * torch.randn((2, 3), generator=torch.Generator().manual_seed(8), dtype=torch.float32)
    assert out32.dtype == torch.float32 and torch.equal(out32, ref32)
    big = mean.repeat(1, 200)                                             # [2, 600]: many Bernoulli draws
    out = RewardNoise("bernoulli").apply(big, 2.0, torch.Generator().manual_seed(9))
    u = torch.rand((2, 600), generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    assert out.dtype == torch.float64 and torch.equal(out, (u < big / 2.0).double() * 2.0)
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert RewardNoise().apply(mean, None, None) is mean


def test_bernoulli_noise_accepts_rounding_at_the_ends_and_rejects_the_rest():
    """r⋆/r_max ∈ [−1e-9, 1 + 1e-9] is accepted (both ends included; 0 and 1 too), anything beyond is
    rejected with the exact message (kills apply_28 (`and`), _29/_32 (strict ends), _30/_31/_33/_34/_35
    (constants), _18.._25 and _36.._41 (field / message))."""
    import torch

    from oraclerl.oracles import RewardNoise

    noise = RewardNoise("bernoulli")
    g = torch.Generator().manual_seed(0)
    for ok in (-1e-9, 0.0, 0.5, 1.0, 1 + 1e-9):
        out = noise.apply(torch.tensor([[ok]], dtype=torch.float64), 1.0, g)
        assert out.item() in (0.0, 1.0)
    assert noise.apply(torch.tensor([[1 + 1e-9]], dtype=torch.float64), 1.0, g).item() == 1.0   # u < 1 always
    assert noise.apply(torch.tensor([[-1e-9]], dtype=torch.float64), 1.0, g).item() == 0.0
    for bad in (-2e-9, -0.5, 1 + 3e-9, 1.5, 2.5):
        with pytest.raises(ConfigError, match=r"^reward: bernoulli noise needs rewards in \[0, 1\.0\]$"):
            noise.apply(torch.tensor([[0.5, bad]], dtype=torch.float64), 1.0, g)
    with pytest.raises(ConfigError, match=r"^reward: bernoulli noise needs rewards in \[0, 4\.0\]$"):
        noise.apply(torch.tensor([[5.0]], dtype=torch.float64), 4.0, g)
    with pytest.raises(
        ConfigError, match=r"^noise\.kind: bernoulli noise needs a reward function with a known r_max$"
    ):
        noise.apply(torch.tensor([[0.5]], dtype=torch.float64), None, g)


def test_bernoulli_of_zero_never_fires_even_when_the_uniform_is_exactly_zero():
    """Seed 34 draws an exact 0.0 at index 298 484 of a float32 uniform stream (P = 2⁻²⁴ per draw):
    Bernoulli(0) must still return 0 there, the Bradley–Terry comparison with P(first ≻ second) = 0 must
    return 0 (`u < p`, not `u <= p`: kills apply_53 and compare_69)."""
    import torch

    from oraclerl.oracles import PreferenceOracle, RewardNoise

    N = 298_485
    u = torch.rand((1, N), generator=torch.Generator().manual_seed(34), dtype=torch.float32)
    assert u[0, -1].item() == 0.0                                       # the precondition: an exact zero
    zero = torch.zeros(1, N, dtype=torch.float32)
    assert not RewardNoise("bernoulli").apply(zero, 1.0, torch.Generator().manual_seed(34)).any()
    fn = _TableFn(torch.tensor([[0.0, 200.0]], dtype=torch.float32), process=False)
    first, second = torch.zeros(1, N, dtype=torch.long), torch.ones(1, N, dtype=torch.long)
    pref = PreferenceOracle(fn)                                          # private ledger: grants everything
    out = pref.compare(torch.zeros(1, dtype=torch.long), first, second, torch.Generator().manual_seed(34))
    assert out.dtype == torch.float32 and not out.any()                 # σ(−200) = 0 exactly in float32


def test_reward_noise_config_errors_name_their_field():
    """Kills __post_init___7 (kind's field name) and _15/_19/_20 (scale's field name)."""
    from oraclerl.oracles import RewardNoise

    with pytest.raises(
        ConfigError,
        match=r"^noise\.kind: must be one of \['none', 'gaussian', 'bernoulli'\], got 'laplace'$",
    ):
        RewardNoise("laplace")
    with pytest.raises(ConfigError, match=r"^noise\.scale: must be >= 0, got -1\.0$"):
        RewardNoise("gaussian", -1.0)
    assert RewardNoise("gaussian", 0.0).scale == 0.0


def test_reward_oracle_errors_name_their_field_and_the_offending_shape():
    """Exact messages of the constructor (kills RewardOracle.__init___8.._14), of ``_check_shape`` (grant
    and process: a [B] tensor and a wrong B are both rejected: kills _check_shape_1 (`and`) and _6.._12),
    of ``outcome``'s first-dim check (kills outcome_8.._14) and of ``process`` without process rewards
    (kills process_2/_6/_7)."""
    import torch

    from oraclerl.oracles import RewardOracle

    with pytest.raises(
        ConfigError, match=r"^reward: _NoMean does not provide RewardFunction \(missing mean, r_max\)$"
    ):
        RewardOracle(_NoMean())
    ora = RewardOracle(_TableFn(torch.zeros(3, 4)))
    x = torch.tensor([0, 1])
    with pytest.raises(
        ConfigError, match=r"^responses: must be \[B, n, \.\.\.\] with B = 2 prompts, got \(2,\)$"
    ):
        ora.grant(x, torch.tensor([0, 1]))  # dim 1 with the right B: still refused
    with pytest.raises(
        ConfigError, match=r"^responses: must be \[B, n, \.\.\.\] with B = 2 prompts, got \(3, 1\)$"
    ):
        ora.process(x, torch.zeros(3, 1, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"^responses: first dim must match prompts \(2\), got \(3, 1\)$"):
        ora.outcome(x, torch.zeros(3, 1, dtype=torch.long))
    bare = RewardOracle(_TableFn(torch.zeros(3, 4), process=False))
    with pytest.raises(ConfigError, match=r"^reward: _TableFn has no process rewards \(process_mean\)$"):
        bare.process(x, torch.zeros(2, 1, dtype=torch.long))
    assert ora.has_process and not bare.has_process and ora.reward_name == "_TableFn"


def test_reward_oracles_read_prompts_as_integer_ids_whatever_their_dtype():
    """Prompts given as a float tensor are ids (cast to int64), not float bits: a pair drawn with int64
    prompts is found, the reward function gets int64 ids, and a grant with float prompts registers the
    int64 pair (kills grant_3/_5, outcome_3/_5, process_10/_12, compare_3/_5: without the cast the
    provenance key differs)."""
    import torch

    from oraclerl.oracles import Ledger, PreferenceOracle, RewardOracle

    table = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    led = Ledger()
    fn = _TableFn(table)
    ora = RewardOracle(fn, led)
    x, y = _drawn(led, torch.tensor([0, 2]), torch.tensor([[1, 3], [0, 2]]))
    xf = x.double()
    assert torch.equal(ora.outcome(xf, y), table[x[:, None], y])
    assert torch.equal(ora.process(xf, y[..., None]), table[x[:, None], y][..., None])
    assert all(c[1] == torch.int64 for c in fn.calls)
    won = PreferenceOracle(fn, led).compare(xf, y, y.flip(1), torch.Generator().manual_seed(0))
    p = torch.sigmoid(table[x[:, None], y] - table[x[:, None], y.flip(1)])
    assert torch.equal(
        won,
        (torch.rand((2, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64) < p).double(),
    )
    assert ora.grant(torch.tensor([1.0]), torch.tensor([[3]])) == 1
    ora.outcome(torch.tensor([1]), torch.tensor([[3]]))                  # found under its int64 prompt
    assert led.t_grant == 1


def test_outcome_checks_the_data_budget_before_granting_anything():
    """The T_data budget is checked before the provenance check/grant: a refused query grants nothing
    (t_grant stays 0) and exactly reaching the limit is allowed (kills outcome_21 (B/n) and _22 (n·n),
    compare_21/_22, with B = 3 > n = 2 so that both wrong counts pass the limit of 5)."""
    import torch

    from oraclerl.errors import BudgetExceeded
    from oraclerl.oracles import Budget, Ledger, PreferenceOracle, RewardOracle

    fn = _TableFn(torch.zeros(3, 4))
    x, y = torch.arange(3), torch.zeros(3, 2, dtype=torch.long)
    for make in (lambda led: RewardOracle(fn, led, grant_all=True).outcome(x, y),
                 lambda led: PreferenceOracle(fn, led, grant_all=True).compare(x, y, y + 1)):
        led = Ledger(Budget(t_data=5))
        with pytest.raises(BudgetExceeded):
            make(led)
        assert led.snapshot()["t_grant"] == 0 and led.t_data == 0 and len(led.provenance) == 0
        led = Ledger(Budget(t_data=6))
        make(led)
        assert led.t_data == 6


def test_provenance_errors_name_the_query_the_pair_and_the_remedy():
    """Exact message of a refused pair: the oracle method, [b, j], the prompt and the grant remedy (kills
    outcome_34/_35/ _36, process_27/_28/_29, compare_34/_35/_36, _require_drawn_19.._23)."""
    import torch

    from oraclerl.oracles import Ledger, PreferenceOracle, RewardOracle
    from oraclerl.oracles.ledger import ProvenanceError

    led = Ledger()
    fn = _TableFn(torch.zeros(3, 4))
    x, y = _drawn(led, torch.tensor([2, 1]), torch.tensor([[0, 1], [2, 3]]))
    bad = y.clone()
    # response [1, 1] of prompt 1: not drawn
    bad[1, 1] = 0
    for meth, arg in (("outcome", bad), ("process", bad[..., None])):
        msg = (
            rf"^RewardOracle\.{meth}: response \[1, 1\] of prompt 1 was not drawn by a sampler on this "
            r"ledger; score only sampled responses, or grant it explicitly \(RewardOracle\.grant\(prompts, "
            r"responses\), counted in t_grant\)$"
        )
        with pytest.raises(ProvenanceError, match=msg):
            getattr(RewardOracle(fn, led), meth)(x, arg)
    with pytest.raises(
        ProvenanceError,
        match=r"^PreferenceOracle\.compare: response \[1, 1\] of prompt 1 was not "
        r"drawn by a sampler on this ledger; ",
    ):
        PreferenceOracle(fn, led).compare(x, y, bad)
    assert led.t_data == 0


def test_nan_rewards_are_refused_naming_the_reward_method():
    """Kills _check_finite_rewards_2.._7, outcome_48/_55/_56, process_32/_39/_40; ±∞ is passed through
    unchanged."""
    import torch

    from oraclerl.oracles import RewardOracle

    table = torch.tensor([[0.0, float("nan"), float("inf"), -float("inf")]])
    ora = RewardOracle(_TableFn(table))
    x = torch.zeros(1, dtype=torch.long)
    with pytest.raises(ConfigError, match=r"^reward: reward\.mean returned NaN$"):
        ora.outcome(x, torch.tensor([[0, 1, 2]]))
    with pytest.raises(ConfigError, match=r"^reward: reward\.process_mean returned NaN$"):
        ora.process(x, torch.tensor([[[0, 1]]]))
    assert ora.outcome(x, torch.tensor([[0, 2, 3]])).tolist() == [[0.0, float("inf"), -float("inf")]]


def test_outcome_and_process_pass_r_max_and_the_generator_to_the_noise():
    """Outcome and process rewards with Bernoulli noise equal r_max·[u < r⋆/r_max] for u drawn from the
    caller's generator (kills outcome_59, process_48 (r_max dropped: 'known r_max' error) and _49
    (generator dropped)); a grant_all oracle's process query grants the pair (kills process_20) and counts
    B·n·H queries."""
    import torch

    from oraclerl.oracles import RewardNoise, RewardOracle

    table = torch.tensor([[0.25, 0.5, 0.0, 0.75], [0.5, 0.25, 0.5, 0.0]], dtype=torch.float64)
    fn = _TableFn(table, r_max=2.0)
    ora = RewardOracle(fn, noise=RewardNoise("bernoulli"))               # private ledger: grant_all
    x = torch.tensor([0, 1])
    y = torch.randint(0, 4, (2, 300, 2), generator=torch.Generator().manual_seed(1))
    out = ora.process(x, y, torch.Generator().manual_seed(5))
    ref_mean = table[x[:, None, None], y].cumsum(-1)
    u = torch.rand(ref_mean.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert torch.equal(out, (u < ref_mean / 2.0).double() * 2.0)
    assert ora.ledger.t_data == 2 * 300 * 2 and ora.ledger.t_grant == torch.unique(
        torch.cat([x.repeat_interleave(300)[:, None], y.reshape(-1, 2)], 1), dim=0).shape[0]
    out = ora.outcome(x, y[..., 0], torch.Generator().manual_seed(6))
    u = torch.rand((2, 300), generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    assert torch.equal(out, (u < table[x[:, None], y[..., 0]] / 2.0).double() * 2.0)


def test_preference_oracle_is_bradley_terry_draw_for_draw():
    """compare = [u < σ((r⋆(x, y₁) − r⋆(x, y₂))/τ)] with u from the caller's generator in the rewards'
    dtype (kills compare_58 (·τ), _61/_65 (generator dropped), _62/_66 (float32 u)); the default private
    ledger exists, grants everything and counts (kills __init___5 (no ledger) and _15 (grant_all default));
    a given ledger does not grant unless asked, and grant_all=1 is read as True; τ's error names the field
    (kills __init___8/_12/_13)."""
    import torch

    from oraclerl.oracles import Ledger, PreferenceOracle
    from oraclerl.oracles.ledger import ProvenanceError

    table = torch.tensor([[0.0, 1.0, -2.0, 3.5]], dtype=torch.float64)
    x = torch.zeros(1, dtype=torch.long)
    g = torch.Generator().manual_seed(3)
    first = torch.randint(0, 4, (1, 500), generator=g)
    second = torch.randint(0, 4, (1, 500), generator=g)
    pref = PreferenceOracle(_TableFn(table), temperature=2.0)
    assert pref.grant_all and isinstance(pref.ledger, Ledger)
    out = pref.compare(x, first, second, torch.Generator().manual_seed(4))
    p = torch.sigmoid((table[0, first] - table[0, second]) / 2.0)
    u = torch.rand((1, 500), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    assert out.dtype == torch.float64 and torch.equal(out, (u < p).double())
    assert pref.ledger.t_data == 500 and pref.ledger.t_grant > 0
    led = Ledger()
    assert not PreferenceOracle(_TableFn(table), led).grant_all
    with pytest.raises(ProvenanceError):
        PreferenceOracle(_TableFn(table), led).compare(x, first, second)
    assert PreferenceOracle(_TableFn(table), led, grant_all=1).grant_all is True
    with pytest.raises(ConfigError, match=r"^temperature: must be > 0, got 0\.0$"):
        PreferenceOracle(_TableFn(table), temperature=0.0)
    with pytest.raises(
        ConfigError, match=r"^second: must have the shape of first \(1, 500\), got \(1, 499\)$"
    ):
        pref.compare(x, first, second[:, 1:])


# ----------------------------------------------------------------------------------------------------
# oracles/samplers.py
# ----------------------------------------------------------------------------------------------------


class _SeqFake:
    """A sequence-level model over 3 prompts and 5 responses with d = 2 that records every call. Responses
    come from the generator it is given; features ϕ(x, y) = (x, y), log π_ref(y|x) = −(x + y/10), log
    π_θ(y|x) = log π_ref + θ₀·y − θ₁ (θ per prompt), so a wrong argument anywhere changes a value."""

    num_prompts, feature_dim, beta, default_reveal = 3, 2, 0.5, None
    device = torch.device("cpu")

    def __init__(self):
        self.calls = []

    def sample(self, prompts, n, generator):
        self.calls.append(("sample", prompts.clone(), n, generator))
        return torch.randint(0, 5, (prompts.numel(), n), generator=generator)

    def sample_tilted(self, prompts, theta, n, generator):
        self.calls.append(("sample_tilted", prompts.clone(), theta, n, generator))
        return torch.randint(0, 5, (prompts.numel(), n), generator=generator)

    def features(self, prompts, responses):
        self.calls.append(("features",))
        return torch.stack([prompts[:, None].expand_as(responses), responses], -1).to(torch.float64)

    def ref_log_prob(self, prompts, responses):
        self.calls.append(("ref_log_prob",))
        return -(prompts[:, None] + responses.double() / 10)

    def tilted_log_prob(self, prompts, responses, theta):
        self.calls.append(("tilted_log_prob",))
        th = theta if theta.dim() == 2 else theta.expand(prompts.numel(), -1)
        return -(prompts[:, None] + responses.double() / 10) + th[:, :1] * responses - th[:, 1:]


class _WeakOnly(_SeqFake):
    """A FeatureModel without the strong oracle's methods."""

    sample_tilted = tilted_log_prob = property(lambda self: (_ for _ in ()).throw(AttributeError("no π_θ")))


class _ARFake:
    """An autoregressive model (H = 3, A = 4, 3 prompts, d = 2) that records its calls: tokens from the given
    generator, ϕ_h(x, a_{1:h−1}, a) = (x + Σ prefix, a), log π = −(x + Σ prefix + a/10 + Σθ)."""

    horizon, num_actions, num_prompts, feature_dim, beta, default_reveal = 3, 4, 3, 2, 1.0, None
    device = torch.device("cpu")

    def __init__(self):
        self.calls = []

    def sample_next(self, prompts, prefixes, n, generator, theta):
        self.calls.append(("sample_next", prompts.clone(), prefixes.dtype, n, generator, theta))
        return torch.randint(0, 4, (prompts.numel(), n), generator=generator)

    def step_features(self, prompts, prefixes, tokens):
        self.calls.append(("step_features", prefixes.dtype, tokens.dtype))
        base = (prompts + prefixes.sum(1))[:, None].expand_as(tokens)
        return torch.stack([base, tokens], -1).to(torch.float64)

    def next_log_prob(self, prompts, prefixes, tokens, theta):
        self.calls.append(("next_log_prob",))
        extra = 0.0 if theta is None else float(theta.sum())
        return -((prompts + prefixes.sum(1))[:, None] + tokens.double() / 10 + extra)


class _NoStepFeatures(_ARFake):
    step_features = property(lambda self: (_ for _ in ()).throw(AttributeError("step_features")))


def _names(model):
    return [c[0] for c in model.calls]


def test_weak_sampler_passes_its_arguments_and_computes_only_what_it_reveals():
    """Responses are the model's draws from the caller's generator (kills WeakSampler.sample_28/_31), n
    defaults to 1 (kills _1), features / log-probabilities are computed only when revealed (kills
    _package_7/_18, which call the model anyway) and equal the model's; the error names the oracle (kills
    _package_27); T_comp = B·n and the drawn pairs are in the ledger's provenance."""
    import torch

    from oraclerl.errors import RevealError
    from oraclerl.oracles import WeakSampler

    m = _SeqFake()
    x = torch.tensor([2, 0])
    g = torch.Generator().manual_seed(11)
    s = WeakSampler(m, reveal=()).sample(x, generator=g)
    assert s.responses.shape == (2, 1) and s.n == 1 and len(s) == 2
    assert _names(m) == ["sample"] and m.calls[0][3] is g and m.calls[0][2] == 1
    assert torch.equal(s.responses, torch.randint(0, 5, (2, 1), generator=torch.Generator().manual_seed(11)))
    with pytest.raises(RevealError, match=r"^WeakSampler does not reveal features \(reveal=\[\]\)$"):
        _ = s.features
    with pytest.raises(
        RevealError,
        match=r"^WeakSampler does not reveal log-probabilities \(reveal=\[\]\); construct it "
        r"with reveal=\{'features', 'log_probs'\} \(the generalised oracle, Def\. C\.1\)$",
    ):
        _ = s.log_probs
    m.calls.clear()
    w = WeakSampler(m, reveal={"features", "log_probs"})
    s = w.sample(x, 3, torch.Generator().manual_seed(12))
    assert _names(m) == ["sample", "features", "ref_log_prob"]
    y = s.responses.tolist()
    assert s.features.tolist() == [[[float(x[b]), float(y[b][j])] for j in range(3)] for b in range(2)]
    assert s.log_probs.tolist() == [[-(int(x[b]) + y[b][j] / 10) for j in range(3)] for b in range(2)]
    assert torch.equal(s.prompts, x) and w.ledger.t_comp == 6
    assert w.ledger.provenance.contains(x, s.responses).all()
    with pytest.raises(ConfigError, match=r"^n: must be >= 1, got 0$"):
        w.sample(x, 0)
    assert w.ledger.t_comp == 6


def test_strong_sampler_passes_theta_and_the_generator_and_reveals_tilted_log_probs():
    """sample_tilted gets θ and the caller's generator (kills StrongSampler.sample_58/_60/_64); log π_θ of
    the drawn responses under that θ (kills _68, _74.._81); ``reveal`` is honoured (kills __init___17); the
    messages name the oracle and the field (kills _69, _82.._84, __init___8.._14); n defaults to 1 and n =
    0 is refused (kills _1, _3, _5, _8, _9, _10); prompt ids are range-checked against the model (kills
    _14)."""
    import torch

    from oraclerl.errors import RevealError
    from oraclerl.oracles import StrongSampler

    with pytest.raises(
        ConfigError,
        match=r"^model: _WeakOnly does not provide TiltedModel \(missing sample_tilted, tilted_log_prob\)$",
    ):
        StrongSampler(_WeakOnly())
    m = _SeqFake()
    st = StrongSampler(m, reveal={"features", "log_probs"})
    x = torch.tensor([1, 2])
    theta = torch.tensor([[0.5, 1.0], [-1.0, 2.0]], dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    s = st.sample(x, theta, generator=g)
    assert s.responses.shape == (2, 1) and st.ledger.t_comp == 2
    call = m.calls[0]
    assert call[0] == "sample_tilted" and call[2] is theta and call[3] == 1 and call[4] is g
    assert torch.equal(s.responses, torch.randint(0, 5, (2, 1), generator=torch.Generator().manual_seed(5)))
    y = s.responses.tolist()
    want = [
        [-(int(x[b]) + y[b][0] / 10) + float(theta[b, 0]) * y[b][0] - float(theta[b, 1])] for b in range(2)
    ]
    assert s.log_probs.tolist() == want
    s1 = StrongSampler(m).sample(x, theta[0], 2, torch.Generator().manual_seed(6))
    with pytest.raises(
        RevealError, match=r"^StrongSampler does not reveal log-probabilities \(reveal=\['features'\]\)"
    ):
        _ = s1.log_probs
    for bad_n in (0, -1):
        with pytest.raises(ConfigError, match=rf"^n: must be >= 1, got {bad_n}$"):
            st.sample(x, theta, bad_n)
    with pytest.raises(ConfigError, match=r"^prompts: ids must be in \[0, 2\], got range \[1, 3\]$"):
        st.sample(torch.tensor([1, 3]), theta)


@pytest.mark.parametrize(
    "shape,ok",
    [
        ((2,), True),
        ((3, 2), True),
        ((3,), False),
        ((4, 2), False),
        ((2, 2), False),
        ((3, 3), False),
        ((1, 3, 2), False),
        ((), False),
    ],
)
def test_strong_sampler_theta_shape_is_d_or_b_by_d(shape, ok):
    """θ is [d] or [B, d] with B = 3 prompts and d = 2 (B ≠ d so that a swapped axis is seen): kills
    StrongSampler.sample_29 (`and`: [4, 2] accepted), _30 ([3] accepted), _32 ([-2:]: [3, 2] refused), _36
    (dims {1, 3}), _39 (dim 3), _40 (shape[1]), _41 (`==`), _43/_46 (field / message)."""
    import torch

    from oraclerl.oracles import StrongSampler

    st = StrongSampler(_SeqFake())
    x = torch.tensor([0, 1, 2])
    theta = torch.zeros(shape, dtype=torch.float64)
    if ok:
        assert st.sample(x, theta, 2).responses.shape == (3, 2)
    else:
        with pytest.raises(
            ConfigError, match=rf"^theta: must have shape \(2,\) or \(3, 2\), got {re.escape(str(shape))}$"
        ):
            st.sample(x, theta, 2)
        assert st.ledger.t_comp == 0


def test_strong_sampler_of_a_model_without_features_refuses_every_theta():
    """``feature_dim = None``: d is None and every θ is refused with the field named (kills
    StrongSampler.sample_25)."""
    import torch

    from oraclerl.oracles import StrongSampler

    class NoFeatures(_SeqFake):
        feature_dim = None

    st = StrongSampler(NoFeatures(), reveal=())
    with pytest.raises(ConfigError, match=r"^theta: must have shape \(None,\) or \(1, None\), got \(2,\)$"):
        st.sample(torch.tensor([0]), torch.zeros(2))


def test_oracle_properties_come_from_the_model_and_the_reveal_set():
    """feature_dim only when features are revealed, β, the number of prompts and the device of the model; a
    model without features reveals none by default and refuses reveal={'features'} (kills
    _Oracle.__init___11, _30, _32.._42), one with ``num_prompts = None`` is sampled without a range check
    on its device (kills _as_prompts_25, _49, _52, _53), ``default_reveal`` lowers the default (kills _16,
    _22, _23); an unknown field is named (kills _reveal_set_9, _12); a model that does not declare an
    attribute of the protocol is refused, the attribute named."""
    import torch

    from oraclerl.oracles import WeakSampler

    w = WeakSampler(_SeqFake())
    assert (w.feature_dim, w.beta, w.num_prompts, w.device, w.reveal) == (2, 0.5, 3, torch.device("cpu"),
                                                                            frozenset({"features"}))
    assert WeakSampler(_SeqFake(), reveal={"log_probs"}).feature_dim is None

    class Plain:
        num_prompts = feature_dim = beta = default_reveal = None
        device = torch.device("cpu")

        def sample(self, prompts, n, generator):
            return torch.zeros(prompts.numel(), n, dtype=torch.long)

        def ref_log_prob(self, prompts, responses):
            raise AssertionError("not reached")

    p = WeakSampler(Plain())
    assert (
        p.reveal == frozenset()
        and p.beta is None
        and p.num_prompts is None
        and p.device == torch.device("cpu")
    )
    s = p.sample(torch.tensor([7, 0]), 2)  # num_prompts None: no range check
    assert (
        s.prompts.tolist() == [7, 0]
        and s.prompts.device == torch.device("cpu")
        and s.responses.shape == (2, 2)
    )
    with pytest.raises(ConfigError, match=r"^reveal: Plain has no features to reveal$"):
        WeakSampler(Plain(), reveal={"features"})
    with pytest.raises(
        ConfigError,
        match=r"^reveal: must be a subset of \['features', 'log_probs'\], got unknown "
        r"\['logits', 'weights'\]$",
    ):
        WeakSampler(_SeqFake(), reveal={"weights", "logits", "features"})

    class Quiet(_SeqFake):
        default_reveal = frozenset()

    assert WeakSampler(Quiet()).reveal == frozenset()

    class Undeclared(Plain):
        device = property(lambda self: (_ for _ in ()).throw(AttributeError("device")))

    with pytest.raises(
        ConfigError, match=r"^model: Undeclared does not provide BaseModel \(missing device\)$"
    ):
        WeakSampler(Undeclared())


def test_prompt_ids_are_a_checked_one_d_tensor():
    """A scalar id is one prompt (kills _as_prompts_8.._10), a 2-D tensor is refused (kills _13.._19), ids
    are checked against [0, X − 1] at both ends (0 and X − 1 accepted, −1 and X refused: kills _34, _36,
    _39, _41, _42) and returned as int64 (kills _3, _5)."""
    import torch

    from oraclerl.oracles import WeakSampler

    w = WeakSampler(_SeqFake(), reveal=())
    s = w.sample(2, 2, torch.Generator().manual_seed(0))
    assert s.prompts.tolist() == [2] and s.prompts.dtype == torch.int64 and s.responses.shape == (1, 2)
    assert w.sample([0.0, 2.0], 1).prompts.dtype == torch.int64
    for bad, lo, hi in (([0, 3], 0, 3), ([-1, 2], -1, 2)):
        with pytest.raises(
            ConfigError, match=rf"^prompts: ids must be in \[0, 2\], got range \[{lo}, {hi}\]$"
        ):
            w.sample(torch.tensor(bad), 1)
    with pytest.raises(
        ConfigError, match=r"^prompts: must be a 1-D tensor of prompt ids, got shape \(1, 2\)$"
    ):
        w.sample(torch.tensor([[0, 1]]), 1)
    assert w.sample(torch.zeros(0, dtype=torch.long), 1).responses.shape == (0, 1)


def test_autoregressive_sampler_passes_its_arguments_and_computes_only_what_it_reveals():
    """Tokens are the model's draws from the caller's generator with the caller's θ (kills
    next_token_73/_74); n defaults to 1 (kills _1); ϕ and log π are computed only when revealed and equal
    the model's for these prompts, prefixes, tokens and θ (kills _89, _100.._114); the returned Samples
    carry the prompts and the oracle's name (kills _115, _118, _120, _127.._129); ``reveal`` and ``strong``
    are honoured (kills __init___21, _29)."""
    import torch

    from oraclerl.errors import RevealError
    from oraclerl.oracles import AutoregressiveSampler

    m = _ARFake()
    auto = AutoregressiveSampler(m, reveal=(), strong=True)
    assert auto.strong is True and auto.horizon == 3 and auto.num_actions == 4 and not auto.local_simulator
    x, pre = torch.tensor([2, 1]), torch.tensor([[1, 3], [0, 2]])
    g = torch.Generator().manual_seed(21)
    s = auto.next_token(x, pre, generator=g)
    assert (
        _names(m) == ["sample_next"] and m.calls[0][3] == 1 and m.calls[0][4] is g and m.calls[0][5] is None
    )
    assert torch.equal(s.responses, torch.randint(0, 4, (2, 1), generator=torch.Generator().manual_seed(21)))
    with pytest.raises(
        RevealError, match=r"^AutoregressiveSampler does not reveal features \(reveal=\[\]\)$"
    ):
        _ = s.features
    m.calls.clear()
    auto = AutoregressiveSampler(m, reveal={"features", "log_probs"}, strong=True)
    theta = torch.tensor([0.25, 0.5], dtype=torch.float64)
    s = auto.next_token(x, pre, 3, theta, torch.Generator().manual_seed(22))
    assert _names(m) == ["sample_next", "step_features", "next_log_prob"] and m.calls[0][5] is theta
    a = s.responses.tolist()
    base = [int(x[b]) + int(pre[b].sum()) for b in range(2)]
    assert s.features.tolist() == [[[float(base[b]), float(a[b][j])] for j in range(3)] for b in range(2)]
    assert s.log_probs.tolist() == [[-(base[b] + a[b][j] / 10 + 0.75) for j in range(3)] for b in range(2)]
    assert torch.equal(s.prompts, x) and auto.ledger.t_comp_token == 6
    s = auto.next_token(x, pre, 1, None, torch.Generator().manual_seed(23))
    assert s.log_probs.tolist() == [[-(base[b] + s.responses[b, 0].item() / 10)] for b in range(2)]


def test_autoregressive_sampler_errors_name_the_field_and_the_shape():
    """Exact messages: not autoregressive (each missing method; kills __init___12.._18), n (kills
    next_token_3, _5, _8, _9, _10), prefixes of the wrong rank or batch (kills _25 (`and`), _30.._36,
    reset_14, _19.._25), too long (kills _40, _43), θ on a weak oracle (kills _50, _51), anchor queries not
    allowed (kills anchor_features_3, _4); prompt ids are range-checked against the model (kills
    next_token_14, reset_3, anchor_features_8); nothing is counted."""
    import torch

    from oraclerl.errors import RevealError
    from oraclerl.oracles import AutoregressiveSampler

    with pytest.raises(
        ConfigError,
        match=r"^model: _SeqFake does not provide AutoregressiveModel \(missing horizon, "
        r"next_log_prob, num_actions, sample_next, step_features\)$",
    ):
        AutoregressiveSampler(_SeqFake())
    with pytest.raises(
        ConfigError,
        match=r"^model: _NoStepFeatures does not provide AutoregressiveModel \(missing step_features\)$",
    ):
        AutoregressiveSampler(_NoStepFeatures())
    auto = AutoregressiveSampler(_ARFake())
    x = torch.tensor([0, 1])
    e = torch.zeros(2, 0, dtype=torch.long)
    for bad_n in (0, -2):
        with pytest.raises(ConfigError, match=rf"^n: must be >= 1, got {bad_n}$"):
            auto.next_token(x, e, bad_n)
    for pre in (torch.zeros(3, 1, dtype=torch.long), torch.zeros(2, dtype=torch.long)):
        shape = re.escape(str(tuple(pre.shape)))
        with pytest.raises(ConfigError, match=rf"^prefixes: must have shape \(2, h-1\), got {shape}$"):
            auto.next_token(x, pre)
        with pytest.raises(ConfigError, match=rf"^prefixes: must have shape \(2, l\), got {shape}$"):
            auto.reset(x, pre)
    with pytest.raises(ConfigError, match=r"^prefixes: length must be < horizon 3, got 3$"):
        auto.next_token(x, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(
        RevealError,
        match=r"^this AutoregressiveSampler is weak: it samples π_ref only \(pass strong=True for π_θ\)$",
    ):
        auto.next_token(x, e, theta=torch.zeros(2))
    with pytest.raises(
        RevealError,
        match=r"^feature queries for unsampled actions need allow_anchor_features=True "
        r"\(MDP oracle, Def\. I\.3\)$",
    ):
        auto.anchor_features(x, e, torch.tensor([0, 1]))
    x3 = torch.tensor([0, 3])
    with pytest.raises(ConfigError, match=r"^prompts: ids must be in \[0, 2\], got range \[0, 3\]$"):
        auto.next_token(x3, e)
    with pytest.raises(ConfigError, match=r"^prompts: ids must be in \[0, 2\], got range \[0, 3\]$"):
        auto.reset(x3, e)
    anchored = AutoregressiveSampler(_ARFake(), allow_anchor_features=True)
    with pytest.raises(ConfigError, match=r"^prompts: ids must be in \[0, 2\], got range \[0, 3\]$"):
        anchored.anchor_features(x3, e, torch.tensor([0, 1]))
    assert auto.ledger.snapshot() == dict.fromkeys(auto.ledger.snapshot(), 0)


def test_local_simulator_flag_and_its_messages_name_the_query_and_the_row():
    """``local_simulator`` defaults to ``allow_anchor_features`` and an explicit value wins either way
    (kills __init___33, _35); a refused prefix is the first unvisited row (row 1 here: kills
    _require_visited_14, reset_41) and the message names the query (kills _require_visited_21.._23,
    next_token_55, _59.._61, anchor_features_31, _35.._37)."""
    import torch

    from oraclerl.oracles import AutoregressiveSampler
    from oraclerl.oracles.ledger import ProvenanceError

    assert AutoregressiveSampler(_ARFake(), allow_anchor_features=True).local_simulator
    assert not AutoregressiveSampler(
        _ARFake(), allow_anchor_features=True, local_simulator=False
    ).local_simulator
    auto = AutoregressiveSampler(_ARFake(), local_simulator=1)
    assert auto.local_simulator is True and not auto.allow_anchor_features
    x = torch.tensor([0, 1])
    a = auto.next_token(
        x, torch.zeros(2, 0, dtype=torch.long), 1, generator=torch.Generator().manual_seed(0)
    ).responses
    pre = a.clone()
    pre[1, 0] = (pre[1, 0] + 1) % 4                                    # row 0 visited, row 1 not
    tail = "(the local simulator only continues or resets to visited states, Def. I.3)"
    msg = rf"prefix \[{int(pre[1, 0])}\] of prompt 1 was never visited"
    with pytest.raises(
        ProvenanceError, match=rf"^AutoregressiveSampler\.next_token: {msg} {re.escape(tail)}$"
    ):
        auto.next_token(x, pre)
    with pytest.raises(ProvenanceError, match=rf"^AutoregressiveSampler\.reset: {msg}$"):
        auto.reset(x, pre)
    anchored = AutoregressiveSampler(_ARFake(), auto.ledger, allow_anchor_features=True)
    with pytest.raises(
        ProvenanceError, match=rf"^AutoregressiveSampler\.anchor_features: {msg} {re.escape(tail)}$"
    ):
        anchored.anchor_features(x, pre, torch.tensor([0, 0]))
    assert auto.ledger.t_reset == 0 and auto.ledger.t_feature == 0 and auto.ledger.t_comp_token == 2


def test_prefixes_and_actions_are_read_as_integer_tokens():
    """Prefixes and anchor actions given as float tensors are token ids (cast to int64) for the provenance
    check and for the model (kills next_token_20/_23, reset_9/_12, anchor_features_14/_17/_21/_24: a float
    prefix is keyed by its bits and is never 'visited'); an anchor query counts one t_feature per action
    and registers x∘a_{1:h−1}∘𝔞."""
    import torch

    from oraclerl.oracles import AutoregressiveSampler

    m = _ARFake()
    auto = AutoregressiveSampler(m, allow_anchor_features=True)
    x = torch.tensor([0, 2])
    a = auto.next_token(x, torch.zeros(2, 0), 1, generator=torch.Generator().manual_seed(3)).responses
    assert m.calls[-1][2] == torch.int64
    af = a.double()
    auto.next_token(x, af, 2, generator=torch.Generator().manual_seed(4))
    assert m.calls[-1][2] == torch.int64
    auto.reset(x, af)
    assert auto.ledger.t_reset == 2
    f = auto.anchor_features(x, af, torch.tensor([3.0, 1.0]))
    assert m.calls[-1] == ("step_features", torch.int64, torch.int64)
    assert f.tolist() == [[[float(x[b] + a[b, 0]), float(t)]] for b, t in ((0, 3), (1, 1))]
    assert auto.ledger.t_feature == 2
    states = torch.cat([a, torch.tensor([[3], [1]])], 1)[:, None, :]
    assert auto.ledger.provenance.contains(x, states).all()
    auto.next_token(x, states[:, 0].double(), 1)                         # the anchored states are visited now


def test_prompt_source_weights_and_draws():
    """An int gives the uniform law on that many prompts (kills CategoricalPrompts.__init___1.._3, _5, _6,
    _8.._16); weights are float64 whatever their input dtype and normalised (kills _21, _23, _45); zero
    entries are allowed, an all-zero, negative, infinite, NaN or 2-D vector is refused with the exact
    message (kills _24, _29, _33, _36.._43); draws are torch.multinomial's from the caller's generator
    (kills draw_20, _24) and n ≥ 1 is checked by name (kills draw_2, _4, _7.._10)."""
    import torch

    from oraclerl.oracles import PromptSource
    from oraclerl.oracles.samplers import CategoricalPrompts

    src = CategoricalPrompts(4)
    assert src.num_prompts == 4 and src.weights.dtype == torch.float64 and src.weights.tolist() == [0.25] * 4
    assert CategoricalPrompts(1).weights.tolist() == [1.0] and PromptSource(4).num_prompts == 4
    for bad in (0, -3):
        with pytest.raises(ConfigError, match=rf"^num_prompts: must be >= 1, got {bad}$"):
            PromptSource(bad)
    for w, want in (([1, 3], [0.25, 0.75]), (torch.tensor([0.0, 2.0], dtype=torch.float32), [0.0, 1.0])):
        s = CategoricalPrompts(w)
        assert s.weights.dtype == torch.float64 and s.weights.tolist() == want
    msg = r"^weights: must be a 1-D non-negative, finite, non-zero vector \(the prompt law ρ\)$"
    for bad in ([0.0, 0.0], [1.0, -0.5], [1.0, float("inf")], [float("nan"), 1.0], [[0.5, 0.5]]):
        with pytest.raises(ConfigError, match=msg):
            PromptSource(torch.tensor(bad))
    src = PromptSource(torch.tensor([0.2, 0.0, 0.8]))
    g = torch.Generator().manual_seed(8)
    x = src.draw(50, g)
    ref = torch.multinomial(torch.tensor([0.2, 0.0, 0.8], dtype=torch.float64), 50, replacement=True,
                            generator=torch.Generator().manual_seed(8))
    assert torch.equal(x, ref) and 1 not in x.tolist() and src.ledger.prompts == 50
    assert src.draw(1, g).shape == (1,) and src.ledger.prompts == 51
    for bad in (0, -1):
        with pytest.raises(ConfigError, match=rf"^n: must be >= 1, got {bad}$"):
            src.draw(bad, g)
    assert src.ledger.prompts == 51


# ----------------------------------------------------------------------------------------------------
# oracles/ledger.py (re-run after the provenance rework)
# ----------------------------------------------------------------------------------------------------

_M64 = 1 << 64


def _ref_fmix(x):
    """MurmurHash3's 64-bit finaliser on an unsigned Python int (the reference for ledger._fmix)."""
    x ^= x >> 33
    x = x * 0xFF51AFD7ED558CCD % _M64
    x ^= x >> 33
    x = x * 0xC4CEB9FE1A85EC53 % _M64
    return x ^ (x >> 33)


def _ref_key(prompt, tokens):
    """The documented key of (x, y_{1:ℓ}): spread(Σ_s y_s·m_s + fmix(x·G) + ℓ·G') mod 2⁶⁴ with m_s =
    fmix(s·G + P) | 1, spread(z) = ((z ^ z >> 32)·F1 mod 2⁶⁴) | 1; float tokens enter as fmix of their
    float64 bits. Plain Python ints, returned as a signed int64."""
    import struct

    G, P, G2 = 0x9E3779B97F4A7C15, 0x2545F4914F6CDD1D, 0xBF58476D1CE4E5B9
    s = 0
    for i, y in enumerate(tokens, start=1):
        w = (
            _ref_fmix(struct.unpack("<Q", struct.pack("<d", float(y)))[0])
            if isinstance(y, float)
            else y % _M64
        )
        s += w * (_ref_fmix((i * G + P) % _M64) | 1)
    z = (s + _ref_fmix(prompt * G % _M64) + len(tokens) * G2) % _M64
    z = ((z ^ (z >> 32)) * 0xFF51AFD7ED558CCD % _M64) | 1
    return z - _M64 if z >= 1 << 63 else z


def test_response_keys_equal_the_documented_formula_computed_in_plain_python():
    """Every key (whole responses, every prefix, float tokens, negative and large token ids) equals the
    formula of :func:`response_keys`' docstring computed with Python integers mod 2⁶⁴. The multiplier cache
    is emptied first: a process that already keyed responses of these lengths would otherwise never run the
    code that builds the multipliers (mutmut forks its test processes after a clean run). Kills
    _fmix_2.._18 (a shift, mask or xor changed), _spread_3.._7, _multipliers_3 (`key in`), _6.._12, _15,
    _16, _19.._22, response_keys_57.._61 (the prefix path), _65.._80 (the length term), _as_int64_1/_2
    (float bits)."""
    from oraclerl.oracles import ledger as L

    L._MULTIPLIERS.clear()
    prompts = torch.tensor([0, 5, 2**40])
    y = torch.tensor(
        [[[3, 0, 7, 1], [2**62, -1, 5, 9]], [[1, 1, 1, 1], [0, 0, 0, 0]], [[4, 3, 2, 1], [9, 8, 7, 6]]]
    )
    keys = L.response_keys(prompts, y)
    assert keys.tolist() == [
        [_ref_key(int(prompts[b]), y[b, j].tolist()) for j in range(2)] for b in range(3)
    ]
    pre = L.response_keys(prompts, y, prefixes=True)
    assert pre.tolist() == [[[_ref_key(int(prompts[b]), y[b, j, :ell].tolist()) for ell in range(1, 5)]
                             for j in range(2)] for b in range(3)]
    L._MULTIPLIERS.clear()
    yf = torch.tensor([[[0.5, -2.0, 1e300]], [[0.0, 3.0, 7.25]]], dtype=torch.float32).double()
    kf = L.response_keys(torch.tensor([1, 0]), yf)
    assert kf.tolist() == [[_ref_key(1, yf[0, 0].tolist())], [_ref_key(0, yf[1, 0].tolist())]]
    # float32 keyed by its float64 value
    assert torch.equal(kf, L.response_keys(torch.tensor([1, 0]), yf.float()))


def test_multiplier_cache_holds_at_most_65_lengths():
    """The cache of position multipliers is cleared when a 66th length arrives and keeps the first 65 (kills
    _multipliers_4 (`>= 64`) and _5 (`> 65`)); keys are unchanged by the clearing."""
    from oraclerl.oracles import ledger as L

    L._MULTIPLIERS.clear()
    x = torch.zeros(1, dtype=torch.long)
    first = L.response_keys(x, torch.ones(1, 1, 3, dtype=torch.long))
    for ell in range(1, 66):
        L.response_keys(x, torch.ones(1, 1, ell, dtype=torch.long))
    assert len(L._MULTIPLIERS) == 65
    L.response_keys(x, torch.ones(1, 1, 66, dtype=torch.long))
    assert len(L._MULTIPLIERS) == 1
    assert torch.equal(L.response_keys(x, torch.ones(1, 1, 3, dtype=torch.long)), first)


def test_provenance_lookup_of_a_long_chain_mixed_with_short_ones():
    """One lookup batch mixing keys at the end of a probe chain longer than a window with keys whose window
    has an empty slot: each row follows its own chain (kills contains_keys_44, `.all(None)` over the whole
    batch)."""
    from oraclerl.oracles.ledger import Provenance

    chain = (torch.arange(1, 41) << 24) | 7                          # one slot, a 40-key chain
    lone = torch.tensor([(1 << 30) | 301, (1 << 31) | 501])            # other slots, chains of one
    p = Provenance()
    p.add_keys(torch.cat([chain, lone]))
    q = torch.cat([lone, chain[-5:], lone + 2])                         # lone + 2: absent, same slots + 2
    assert p.contains_keys(q).tolist() == [True] * 7 + [False] * 2


def test_provenance_table_grows_by_doubling_exactly_when_a_batch_would_pass_half_full():
    """The documented layout rule, replayed in plain Python: the table starts at 1024 slots and, when a
    batch of b distinct keys arrives with n stored, doubles while 2·(n + b) > size (n + b exactly half is
    fine; a batch of known keys counts in b, so a rebuilt table is never shrunk later). Kills add_keys_15
    (the size recomputed from 1024: shrinks after a batch of repeats), _19.._26 (2/·, 3·, n − b, `>=`), _29
    (×3: not a power of two)."""
    from oraclerl.oracles.ledger import Provenance

    g = torch.Generator().manual_seed(5)
    pool = torch.unique(torch.randint(-(2**62), 2**62, (20_000,), generator=g) | 1)
    batches = [pool[:512], pool[:512], pool[512:513], pool[513:3513], pool[513:3513], pool[3513:3523],
               pool[3523:11_715]]
    p, size, n, seen = Provenance(), 1024, 0, set()
    for b in batches:
        p.add_keys(b)
        while 2 * (n + b.numel()) > size:
            size *= 2
        new = set(b.tolist()) - seen
        seen |= new
        n += len(new)
        assert (p._table.numel(), len(p)) == (size, n)
    assert p.contains_keys(pool[:11_715]).all() and not p.contains_keys(pool[11_715:11_800]).any()


def test_provenance_keeps_every_odd_key_through_a_rebuild_including_one():
    """``add_keys`` takes any int64 words (made odd): the word 1 (from 0 or 1) is a key like any other and
    survives the table's doubling (kills add_keys_41, a rebuild that re-inserts ``old[old != 1]``)."""
    from oraclerl.oracles.ledger import Provenance

    p = Provenance()
    p.add_keys(torch.tensor([0, 3]))                                   # 0 | 1 = 1
    assert len(p) == 2 and p.contains_keys(torch.tensor([1, 3, 0])).tolist() == [True, True, True]
    more = torch.unique(torch.randint(2, 2**62, (2000,), generator=torch.Generator().manual_seed(6)) | 1)
    p.add_keys(more)                                                     # forces a rebuild (2·2002 > 1024)
    assert p._table.numel() == 4096 and len(p) == 2 + more.numel() and 3 not in more.tolist()
    assert p.contains_keys(torch.tensor([1, 3])).all()


def test_provenance_contains_answers_a_bool_mask_on_the_last_batch_shortcut():
    """``Provenance.contains`` is a bool [B, n] mask on both paths: the last-batch shortcut (the batch a
    sampler just returned) and the key lookup (a copy with another dtype). Kills
    ``xǁProvenanceǁcontains__mutmut_6`` and ``_9`` (the shortcut's mask built as float ones)."""
    from oraclerl.problems import linear_softmax

    inst = linear_softmax(d=2, num_prompts=3, num_responses=5, beta=0.5, target_coverage=2.0, seed=0)
    o = inst.oracles()
    g = torch.Generator().manual_seed(0)
    s = o.weak.sample(torch.tensor([0, 1, 2]), 4, g)
    prov = o.ledger.provenance
    fast = prov.contains(s.prompts, s.responses)
    slow = prov.contains(s.prompts.to(torch.int32), s.responses.to(torch.int32))
    for got in (fast, slow):
        assert got.dtype == torch.bool and got.shape == (3, 4) and bool(got.all())
