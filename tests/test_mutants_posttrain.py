"""Tests written to kill mutmut survivors in ``oraclerl.posttrain`` (docs/testing.md, "Triage"), grouped by
module: advantages.py, then behaviour.py, kl_penalty.py, optim.py, pretrain.py, reference.py,
policy_gradient.py.

Every value is checked against an independent computation (plain-Python loops over the entries, or the
subset definition of the pass@k weights); every error is checked by its exact message and field, at the edges
of the allowed ranges (n = 1 rejected and n = 2 accepted, k ∈ {0, n + 1} and non-integer k rejected, eps = 0).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from oraclerl.errors import ConfigError
from oraclerl.oracles import PromptSource
from oraclerl.posttrain.advantages import advantages, outcome_advantages, process_advantages

R = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.3], [2.0, -1.0, 0.5, 0.5, 1.0]], dtype=torch.float64)


def _raises(field: str, msg: str, fn, *args, **kw) -> None:
    with pytest.raises(ConfigError) as e:
        fn(*args, **kw)
    assert e.value.field == field
    assert str(e.value) == f"{field}: {msg}"


def _pass_at_k_ref(r: torch.Tensor, k: int) -> list[list[float]]:
    """A_j = n/C(n,k)·Σ_{K ∋ j, |K| = k} max_K r by enumerating the subsets."""
    B, n = r.shape
    return [[n * sum(max(float(r[b, m]) for m in K) for K in itertools.combinations(range(n), k) if j in K)
             / math.comb(n, k) for j in range(n)] for b in range(B)]


def _group_normalised_ref(r: torch.Tensor, eps: float) -> list[list[float]]:
    out = []
    for row in r.tolist():
        mu = sum(row) / len(row)
        sd = math.sqrt(sum((x - mu) ** 2 for x in row) / (len(row) - 1))
        out.append([(x - mu) / (sd + eps) for x in row])
    return out


def test_default_estimator_is_reinforce_everywhere():
    r3 = R[:, :, None].repeat(1, 1, 2)
    assert torch.equal(advantages(R), R)
    assert torch.equal(outcome_advantages(R), R)
    assert torch.equal(process_advantages(r3), r3)


def test_default_k_of_pass_at_k_is_one():
    assert torch.allclose(advantages(R, "pass_at_k"), R, atol=1e-12)   # pass@1 = REINFORCE


def test_pass_at_k_in_float32_keeps_the_dtype_and_matches_the_subsets():
    r32 = R.float()
    for k in (1, 2, 4):
        got = advantages(r32, "pass_at_k", k=k)
        assert got.dtype == torch.float32
        assert torch.allclose(
            got.double(), torch.tensor(_pass_at_k_ref(R, k), dtype=torch.float64), atol=1e-5
        )


def test_integer_rewards_are_cast_to_the_default_dtype():
    ri = torch.tensor([[1, 0, 2], [0, 0, 3]])
    got = advantages(ri, "none")
    assert got.dtype == torch.get_default_dtype()
    assert got.tolist() == [[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]
    got = advantages(ri, "leave_one_out")
    assert got.dtype == torch.get_default_dtype()
    ref = [[x - (sum(row) - x) / 2 for x in row] for row in ri.tolist()]
    assert torch.allclose(got.double(), torch.tensor(ref, dtype=torch.float64), atol=1e-6)


def test_wrappers_pass_keyword_arguments_on():
    eps = 0.5
    got = outcome_advantages(R, "group_normalised", eps=eps)
    assert torch.allclose(got, torch.tensor(_group_normalised_ref(R, eps), dtype=torch.float64), atol=1e-12)
    assert torch.allclose(outcome_advantages(R, "pass_at_k", k=3),
                          torch.tensor(_pass_at_k_ref(R, 3), dtype=torch.float64), atol=1e-12)
    r3 = R[:, :, None].repeat(1, 1, 2)
    mask = torch.ones_like(r3, dtype=torch.bool)
    mask[0, 0, 1] = False
    got = process_advantages(r3, "dr_grpo", mask=mask)
    assert got[0, 0, 1] == 0.0
    rest = [float(R[0, j]) for j in range(1, 5)]
    assert float(got[0, 1, 1]) == pytest.approx(rest[0] - sum(rest) / 4, abs=1e-12)
    assert float(got[0, 1, 0]) == pytest.approx(float(R[0, 1]) - float(R[0].mean()), abs=1e-12)


@pytest.mark.parametrize("est", ["leave_one_out", "group_normalised", "dr_grpo"])
def test_group_estimators_need_two_responses_and_two_are_enough(est):
    _raises("rewards", f"estimator {est!r} needs n >= 2 responses per prompt (dim 1), got n=1",
            advantages, torch.zeros(3, 1), est)
    r = torch.tensor([[1.0, 0.0], [3.0, 3.0]], dtype=torch.float64)
    got = advantages(r, est)
    scale = {"leave_one_out": 2.0, "dr_grpo": 1.0, "group_normalised": 1 / (math.sqrt(0.5) + 1e-4)}[est]
    assert torch.allclose(
        got, torch.tensor([[0.5, -0.5], [0.0, 0.0]], dtype=torch.float64) * scale, atol=1e-12
    )


def test_error_messages_name_the_field():
    names = "['none', 'batch_mean', 'leave_one_out', 'group_normalised', 'dr_grpo', 'pass_at_k']"
    _raises("estimator", f"must be one of {names}, got 'ppo'", advantages, torch.zeros(2, 2), "ppo")
    _raises("rewards", "must have shape [B, n] (outcome) or [B, n, H] (process), got (2,)",
            advantages, torch.zeros(2), "none")
    _raises("rewards", "contains NaN", advantages, torch.tensor([[0.0, math.nan]]), "none")
    _raises("mask", "must have the shape of rewards (3, 2), got (3, 3)",
            advantages, torch.zeros(3, 2), "none", mask=torch.ones(3, 3, dtype=torch.bool))
    _raises(
        "rewards", "outcome rewards must be [B, n], got (3, 2, 2)", outcome_advantages, torch.zeros(3, 2, 2)
    )
    _raises("rewards", "process rewards must be [B, n, H], got (3, 2)", process_advantages, torch.zeros(3, 2))


def test_eps_must_be_positive_and_any_positive_eps_is_accepted():
    _raises("eps", "must be > 0, got 0.0", advantages, R, "group_normalised", eps=0.0)
    _raises("eps", "must be > 0, got -1.0", advantages, R, "group_normalised", eps=-1.0)
    got = advantages(R, "group_normalised", eps=1e-300)
    assert torch.allclose(got, torch.tensor(_group_normalised_ref(R, 0.0), dtype=torch.float64), atol=1e-12)


def test_pass_at_k_rejects_masks_process_rewards_and_bad_k():
    msg = "'pass_at_k' takes outcome rewards [B, n] without a mask"
    _raises("estimator", msg, advantages, R, "pass_at_k", mask=torch.ones(2, 5, dtype=torch.bool), k=2)
    _raises("estimator", msg, advantages, torch.zeros(2, 5, 3), "pass_at_k", k=2)
    for k in (0, 6, -1, 2.0, True, "2"):
        _raises(
            "k", f"must be an integer in [1, n=5] for 'pass_at_k', got {k!r}", advantages, R, "pass_at_k", k=k
        )
    assert torch.allclose(advantages(R, "pass_at_k", k=5),
                          torch.tensor(_pass_at_k_ref(R, 5), dtype=torch.float64), atol=1e-12)
# --- behaviour.py (Algorithms 1-2: best-of-m exploration) ---------------------------------------------------
#
# A tiny task with a deterministic q₀, so that the only randomness is the mixture's coin and uniform tokens;
# the plain-Python references below replay Algorithm 1 / Algorithm 2 row by row, fed the same generator stream
# (per round: one uniform per searching row for the coin, then the uniform candidates), and count every query.

K, NT = 3, 3  # vocabulary, horizon
YSTAR = [[0, 1, 2], [2, 2, 0], [1, 0, 1]]  # y*(x) of prompts 0, 1, 2
Q0SEQ = [[0, 1, 2], [2, 2, 1], [1, 0, 1]]  # q₀'s (deterministic) response: wrong for prompt 1
Q0TOK = [[0, 1, 2], [2, 0, 0], [1, 0, 0]]  # q₀'s next token at position h (prompt 1 wrong at 1)


class _Match:
    """1[y = y*] (or of the last prefix of y), ±1 with ``signed``; ``process_mean`` per prefix."""

    def __init__(self, signed: bool, r_max: float = 1.0):
        self.signed, self.r_max = signed, r_max

    def _map(self, ok):
        ok = ok.to(torch.float64)
        return ok * 2 - 1 if self.signed else ok

    def _ok(self, prompts, responses):
        ystar = torch.tensor(YSTAR)[torch.as_tensor(prompts)][:, None, : responses.shape[2]]
        return responses.long() == ystar

    def mean(self, prompts, responses):
        return self._map(self._ok(prompts, responses).all(-1))

    def process_mean(self, prompts, responses):
        return self._map(torch.cumprod(self._ok(prompts, responses).to(torch.uint8), -1).bool())


class _FixedQ0:
    """A deterministic base model: whole responses ``Q0SEQ``, next tokens ``Q0TOK`` (no randomness used)."""

    horizon, num_actions = NT, K
    num_prompts = feature_dim = beta = default_reveal = None
    device = torch.device("cpu")

    def ref_log_prob(self, prompts, responses):
        raise AssertionError("log-probabilities are not revealed")

    def next_log_prob(self, prompts, prefixes, tokens, theta=None):
        raise AssertionError("log-probabilities are not revealed")

    def sample(self, prompts, n, generator=None):
        return torch.tensor(Q0SEQ)[prompts][:, None, :].expand(prompts.numel(), n, NT).clone()

    def sample_next(self, prompts, prefixes, n, generator=None, theta=None):
        return torch.tensor(Q0TOK)[prompts, prefixes.shape[1]][:, None].expand(prompts.numel(), n).clone()

    def step_features(self, prompts, prefixes, tokens):
        raise AssertionError("features are not revealed")


def _explore_setup(signed: bool):
    from oraclerl.oracles.ledger import Ledger
    from oraclerl.oracles.rewards import RewardOracle
    from oraclerl.oracles.samplers import AutoregressiveSampler, WeakSampler

    led = Ledger()
    reward = RewardOracle(_Match(signed), led)
    return led, reward, WeakSampler(_FixedQ0(), led), AutoregressiveSampler(_FixedQ0(), led)


# ids [4], y [4, 2, 3]: rows (flat) 0-7; prompt of row = IDS[row // 2]
IDS = torch.tensor([0, 1, 2, 1])
Y0 = torch.tensor(
    [
        [[0, 1, 2], [1, 1, 2]],  # p0: correct, wrong at 0
        [[2, 0, 0], [2, 2, 2]],  # p1: wrong at 1, wrong at 2
        [[1, 0, 0], [0, 0, 0]],  # p2: wrong at 2, wrong at 0
        [[2, 2, 0], [0, 2, 0]],
    ]
)  # p1: correct, wrong at 0


def _ref_outcome(m: int, mix: float, signed: bool, seed: int):
    """Algorithm 1 row by row: returns (y, r, queries, q0 draws, grants)."""
    g = torch.Generator().manual_seed(seed)
    fail = -1.0 if signed else 0.0
    y = Y0.tolist()
    r = [[1.0 if y[b][j] == YSTAR[int(IDS[b])] else fail for j in range(2)] for b in range(4)]
    known = {(int(IDS[b]), tuple(y[b][j])) for b in range(4) for j in range(2)}
    active = [i for i in range(8) if r[i // 2][i % 2] < 1.0]
    queries = q0 = grants = 0
    for _ in range(m):
        if not active:
            break
        coin = (torch.rand(len(active), generator=g) < mix).tolist()
        uni = torch.randint(0, K, (len(active), NT), generator=g).tolist()
        cands = []
        for a, i in enumerate(active):
            p = int(IDS[i // 2])
            cands.append(Q0SEQ[p] if coin[a] else uni[a])
            if coin[a]:
                q0 += 1
                known.add((p, tuple(Q0SEQ[p])))
        new = {(int(IDS[i // 2]), tuple(c)) for i, c in zip(active, cands)} - known
        grants += len(new)
        known |= new
        still = []
        for i, c in zip(active, cands):
            queries += 1
            if c == YSTAR[int(IDS[i // 2])]:
                y[i // 2][i % 2], r[i // 2][i % 2] = list(c), 1.0
            else:
                still.append(i)
        active = still
    return y, r, queries, q0, grants


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("m,mix,seed", [(3, 1.0, 0), (2, 0.0, 1), (6, 0.5, 2), (1, 0.5, 3), (40, 0.0, 4)])
def test_explore_outcome_equals_algorithm_1_row_by_row(m, mix, signed, seed):
    """Kills behaviour.py mutants of ``explore_outcome`` / ``_mixture_tokens``: the rows searched (wrong ones
    only: ``< r_max``), the number of rounds (m), the stop at the first hit (``>= r_max``), the replaced
    response and reward, the mixture (coin ``< mix``; q₀ only for the coin rows; uniform tokens in [0, k)),
    the counts (one T_data per candidate, one T_comp per q₀ candidate, one T_grant per new uniform pair), and
    that the inputs are not modified."""
    from oraclerl.posttrain.behaviour import explore_outcome

    led, reward, seq, _ = _explore_setup(signed)
    y = Y0.clone()
    reward.grant(IDS, y)
    r = reward.outcome(IDS, y)
    y_in, r_in, before = y.clone(), r.clone(), led.snapshot()
    y2, r2 = explore_outcome(
        IDS, y, r, reward, seq, K, m=m, mix=mix, generator=torch.Generator().manual_seed(seed)
    )
    want_y, want_r, queries, q0, grants = _ref_outcome(m, mix, signed, seed)
    assert y2.tolist() == want_y and r2.tolist() == want_r
    assert y2.dtype == y.dtype and r2.dtype == r.dtype
    assert torch.equal(y, y_in) and torch.equal(r, r_in)  # inputs untouched
    after = led.snapshot()
    assert after["t_data"] - before["t_data"] == queries
    assert after["t_comp"] - before["t_comp"] == q0
    assert after["t_grant"] - before["t_grant"] == grants


def _ref_process(m: int, mix: float, signed: bool, seed: int):
    """Algorithm 2 row by row: returns (y, R, queries, q0 draws, grants)."""
    g = torch.Generator().manual_seed(seed)
    fail = -1.0 if signed else 0.0
    y = [row for b in range(4) for row in Y0[b].tolist()]  # flat rows
    pid = [int(IDS[i // 2]) for i in range(8)]

    def prefix_ok(i, L):
        return y[i][:L] == YSTAR[pid[i]][:L]

    R = [[1.0 if prefix_ok(i, h + 1) else fail for h in range(NT)] for i in range(8)]
    pos = [sum(1 for h in range(NT) if prefix_ok(i, h + 1)) for i in range(8)]
    alive = [p < NT for p in pos]
    known = {(pid[i], tuple(y[i])) for i in range(8)}
    queries = q0 = grants = 0
    for h in range(NT):
        rows = [i for i in range(8) if alive[i] and pos[i] == h]
        if not rows:
            continue
        todo, found = list(rows), set()
        for _ in range(m):
            if not todo:
                break
            coin = (torch.rand(len(todo), generator=g) < mix).tolist()
            uni = torch.randint(0, K, (len(todo),), generator=g).tolist()
            for a, i in enumerate(todo):
                y[i][h] = Q0TOK[pid[i]][h] if coin[a] else uni[a]
                if coin[a]:
                    q0 += 1
                    known.add((pid[i], tuple(y[i][: h + 1])))
            new = {(pid[i], tuple(y[i][: h + 1])) for i in todo} - known
            grants += len(new)
            known |= new
            still = []
            for i in todo:
                queries += 1
                (found.add(i) if prefix_ok(i, h + 1) else still.append(i))
            todo = still
        for i in rows:
            if i in found:
                R[i][h], pos[i] = 1.0, h + 1
            else:
                R[i][h:] = [fail] * (NT - h)
                alive[i] = False
    return (
        [y[2 * b : 2 * b + 2] for b in range(4)],
        [R[2 * b : 2 * b + 2] for b in range(4)],
        queries,
        q0,
        grants,
    )


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("m,mix,seed", [(3, 1.0, 0), (2, 0.0, 1), (4, 0.5, 2), (1, 0.5, 3), (30, 0.0, 4)])
def test_explore_process_equals_algorithm_2_row_by_row(m, mix, signed, seed):
    """Kills behaviour.py mutants of ``explore_process``: the verified prefix length (cumprod of ``>=
    r_max``), the positions visited (``pos == i``, ``alive``), the rounds per position (m), the candidate
    written at position i and the prefix queried (``: i + 1``), success (``r_max``) written at i and
    ``failure`` from i on when a row gives up, q₀ asked for the coin rows only (one T_comp_token each), grants
    of new uniform prefixes, one T_data per candidate, inputs not modified."""
    from oraclerl.posttrain.behaviour import explore_process

    led, reward, _, auto = _explore_setup(signed)
    y = Y0.clone()
    reward.grant(IDS, y)
    R = reward.process(IDS, y)
    y_in, R_in, before = y.clone(), R.clone(), led.snapshot()
    fail = -1.0 if signed else 0.0
    y2, R2 = explore_process(
        IDS, y, R, reward, auto, m=m, mix=mix, failure=fail, generator=torch.Generator().manual_seed(seed)
    )
    want_y, want_R, queries, q0, grants = _ref_process(m, mix, signed, seed)
    assert y2.tolist() == want_y and R2.tolist() == want_R
    assert y2.dtype == y.dtype and R2.dtype == R.dtype
    assert torch.equal(y, y_in) and torch.equal(R, R_in)
    after = led.snapshot()
    assert after["t_data"] - before["t_data"] == queries
    assert after["t_comp_token"] - before["t_comp_token"] == q0
    assert after["t_grant"] - before["t_grant"] == grants


def test_explore_process_searches_a_position_with_a_single_row():
    """Kills ``explore_process_41`` (``rows.numel() == 1`` skipped): one response, wrong at position 1, so its
    position 2 (rewarded as wrong after the first mistake) is searched too: one q₀ token at each."""
    from oraclerl.posttrain.behaviour import explore_process

    led, reward, _, auto = _explore_setup(False)
    ids, y = torch.tensor([0]), torch.tensor([[[0, 0, 2]]])
    reward.grant(ids, y)
    R = reward.process(ids, y)
    y2, R2 = explore_process(ids, y, R, reward, auto, m=2, mix=1.0, failure=0.0, generator=torch.Generator())
    assert y2.tolist() == [[[0, 1, 2]]] and R2.tolist() == [[[1.0, 1.0, 1.0]]] and led.t_comp_token == 2


def _random_q0_and_noisy_reward():
    """A random linear AR q₀ (it samples with the generator) and a reward oracle with Gaussian noise (it uses
    the generator too), on one ledger, for a teacher task with k = 2, N = 3."""
    from oraclerl.models.linear_ar import PromptBoundPolicy
    from oraclerl.oracles.ledger import Ledger
    from oraclerl.oracles.rewards import RewardNoise, RewardOracle
    from oraclerl.oracles.samplers import AutoregressiveSampler, WeakSampler
    from oraclerl.problems.teacher import TeacherReward

    task, ctx, q0 = _teacher(k=2, N=3)
    q0.w = torch.randn(q0.feature_dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = {}
    for kind in ("outcome", "process"):
        led = Ledger()
        reward = RewardOracle(TeacherReward(ctx, kind, "binary"), led, noise=RewardNoise("gaussian", 0.5))
        bound = PromptBoundPolicy(q0, ctx)
        out[kind] = (reward, WeakSampler(bound, led, reveal=()), AutoregressiveSampler(bound, led, reveal=()))
    ids = ctx.sample(12, torch.Generator().manual_seed(2))
    return ids, out


def test_explore_is_bit_identical_for_a_seed_and_uses_only_the_given_generator():
    """Same seed ⇒ the same (y, r) and counts, with a q₀ and a reward oracle that both draw from the
    generator: kills the mutants that drop the generator from q₀'s draw (``explore_outcome_45``, ``_48``,
    ``explore_process_78``, ``_82``) or from the reward query (``explore_outcome_58``, ``_61``,
    ``explore_process_96``, ``_99``), which then use torch's global stream (it is advanced between the two
    runs). Also ``generator=None`` runs on the CPU (kills ``_mixture_tokens_3``, ``_4``, ``_5``, ``_6``)."""
    from oraclerl.posttrain.behaviour import explore_outcome, explore_process

    ids, o = _random_q0_and_noisy_reward()
    y0 = torch.zeros(12, 2, 3, dtype=torch.long)  # all wrong unless y* = 000
    runs = []
    for seed in (5, 5, 6):
        torch.rand(7)  # the global stream moves between runs
        reward, seq, _ = o["outcome"]
        reward.grant(ids, y0)
        r = reward.outcome(ids, y0, torch.Generator().manual_seed(seed))
        a = explore_outcome(
            ids, y0, r, reward, seq, 2, m=4, mix=0.5, generator=torch.Generator().manual_seed(seed)
        )
        reward, _, auto = o["process"]
        reward.grant(ids, y0)
        R = reward.process(ids, y0, torch.Generator().manual_seed(seed))
        b = explore_process(
            ids, y0, R, reward, auto, m=4, mix=0.5, failure=0.0, generator=torch.Generator().manual_seed(seed)
        )
        runs.append([*a, *b, o["outcome"][0].ledger.snapshot(), o["process"][0].ledger.snapshot()])
    same = [torch.equal(u, v) for u, v in zip(runs[0][:4], runs[1][:4])]
    assert all(same) and not all(torch.equal(u, v) for u, v in zip(runs[0][:4], runs[2][:4]))
    reward, seq, auto = o["outcome"]
    y, r = explore_outcome(
        ids, y0, torch.zeros(12, 2, dtype=torch.float64), reward, seq, 2, m=2, mix=0.5
    )  # generator=None
    assert y.device.type == "cpu" and y.shape == (12, 2, 3)
    reward, seq, auto = o["process"]
    y, R = explore_process(
        ids, y0, torch.zeros(12, 2, 3, dtype=torch.float64), reward, auto, m=2, mix=0.5, failure=0.0
    )
    assert y.device.type == "cpu" and R.shape == (12, 2, 3)



def test_the_mixture_coin_is_strictly_below_mix():
    """Kills ``_mixture_tokens_14`` (``rand <= mix``): with mix equal to the coin's own uniform u, u < mix is
    false, so the one searching row draws a uniform candidate (a grant), not q₀'s (a T_comp)."""
    from oraclerl.posttrain.behaviour import explore_outcome

    led, reward, seq, _ = _explore_setup(False)
    u = float(torch.rand(1, generator=torch.Generator().manual_seed(0)))
    ids, y = torch.tensor([0]), torch.tensor([[[2, 2, 2]]])
    reward.grant(ids, y)
    r = reward.outcome(ids, y)
    before = led.snapshot()
    explore_outcome(ids, y, r, reward, seq, K, m=1, mix=u, generator=torch.Generator().manual_seed(0))
    assert led.t_comp == before["t_comp"] and led.t_data == before["t_data"] + 1
    above = float(torch.nextafter(torch.tensor(u), torch.tensor(1.0)))          # the next float32 above u
    explore_outcome(ids, y, r, reward, seq, K, m=1, mix=above, generator=torch.Generator().manual_seed(0))
    assert led.t_comp == before["t_comp"] + 1                                   # u < mix: q₀'s draw


# --- kl_penalty.py ------------------------------------------------------------------------------------------

LOGP = [-0.1, -2.0, -0.5, -1e-10, -3.0]
LOGP_REF = [-0.3, -0.5, -0.5, -2e-10, -0.01]


def test_kl_estimates_equal_their_formulas_in_plain_python():
    """Kills kl_penalty.py mutants of the three formulas (signs, ½, the square, ``expm1`` vs ``exp``, the
    default estimator k1): every entry against ``math`` at 1e-15 relative, including log r = −1e-10, where (r
    − 1) − log r ≈ 5e-21 is lost entirely by exp(log r) − 1."""
    from oraclerl.posttrain.kl_penalty import kl_estimate

    lp, lr = torch.tensor(LOGP, dtype=torch.float64), torch.tensor(LOGP_REF, dtype=torch.float64)
    want = {
        "k1": [a - b for a, b in zip(LOGP, LOGP_REF)],
        "k2": [0.5 * (b - a) ** 2 for a, b in zip(LOGP, LOGP_REF)],
        "k3": [math.expm1(b - a) - (b - a) for a, b in zip(LOGP, LOGP_REF)],
    }
    for est, vals in want.items():
        got = kl_estimate(lp, lr, est).tolist()
        assert got == pytest.approx(vals, rel=1e-15, abs=0.0), est
    assert kl_estimate(lp, lr).tolist() == pytest.approx(want["k1"], rel=1e-15, abs=0.0)  # default: k1
    assert kl_estimate(lp, lr, "k3")[3].item() == pytest.approx(0.5e-20, rel=1e-6)  # expm1, not exp − 1


def test_kl_estimate_broadcasts_takes_lists_and_differentiates_both_arguments():
    """Kills mutants of the ``as_tensor`` conversions and of the broadcast: Python lists are accepted, [3]
    with [2, 1] gives [2, 3]; the gradient through both arguments equals the closed form (k1: ±1; k2: ±log r;
    k3: ±(r − 1))."""
    from oraclerl.posttrain.kl_penalty import kl_estimate

    got = kl_estimate([-1.0, -2.0, -0.5], [[-1.0], [0.0]], "k2")
    assert got.shape == (2, 3)
    assert got.reshape(-1).tolist() == pytest.approx([0.0, 0.5, 0.125, 0.5, 2.0, 0.125], abs=1e-7)
    for est, dlogp in (("k1", lambda lr: 1.0), ("k2", lambda lr: -lr), ("k3", lambda lr: 1.0 - math.exp(lr))):
        a = torch.tensor(LOGP, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(LOGP_REF, dtype=torch.float64, requires_grad=True)
        kl_estimate(a, b, est).sum().backward()
        want = [dlogp(y - x) for x, y in zip(LOGP, LOGP_REF)]
        assert a.grad.tolist() == pytest.approx(want, rel=1e-9, abs=1e-12), est
        assert b.grad.tolist() == pytest.approx([-v for v in want], rel=1e-9, abs=1e-12), est


def test_kl_estimator_errors_name_the_field():
    """Kills the message / field mutants of ``check_kl_estimator`` and of the broadcast error; the checked
    name is returned unchanged."""
    from oraclerl.posttrain.kl_penalty import KL_ESTIMATORS, check_kl_estimator, kl_estimate

    assert KL_ESTIMATORS == ("k1", "k2", "k3")
    for k in KL_ESTIMATORS:
        assert check_kl_estimator(k) == k
    _raises("estimator", "must be one of ['k1', 'k2', 'k3'], got 'k4'", check_kl_estimator, "k4")
    _raises(
        "estimator",
        "must be one of ['k1', 'k2', 'k3'], got 'K1'",
        kl_estimate,
        torch.zeros(2),
        torch.zeros(2),
        "K1",
    )
    _raises(
        "logp_ref",
        "shape (4,) does not broadcast with logp (3,)",
        kl_estimate,
        torch.zeros(3),
        torch.zeros(4),
    )
    _raises(
        "logp_ref",
        "shape (2, 4) does not broadcast with logp (3,)",
        kl_estimate,
        torch.zeros(3),
        torch.zeros(2, 4),
        "k3",
    )


# --- optim.py -----------------------------------------------------------------------------------------------


def test_adaptive_step_uses_the_norm_of_all_gradients_in_float64():
    """Kills optim.py mutants of ``AdaptiveStep.step``: η = lr/(4 + 2‖g‖²) with ‖g‖² summed over every
    parameter that has a gradient (a parameter without one is left alone), in float64 (a float32 ‖g‖² = 9e38
    overflows to inf and would give η = 0), default lr 1, return value None, and no step at all when no
    parameter has a gradient."""
    from oraclerl.posttrain.optim import AdaptiveStep

    a, b, c = torch.zeros(2, dtype=torch.float64), torch.ones(1, dtype=torch.float64), torch.zeros(3)
    opt = AdaptiveStep([a, b, c], lr=0.5)
    assert opt.step() is None and a.tolist() == [0.0, 0.0] and b.tolist() == [1.0]  # no gradients: no step
    a.grad, b.grad = torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([3.0], dtype=torch.float64)
    assert opt.step() is None
    eta = 0.5 / (4 + 2 * (1 + 4 + 9))
    assert a.tolist() == pytest.approx([-eta, -2 * eta], rel=1e-15) and b.tolist() == pytest.approx(
        [1 - 3 * eta]
    )
    assert c.tolist() == [0.0, 0.0, 0.0]
    w = torch.zeros(1)
    w.grad = torch.tensor([3e19])  # float32
    AdaptiveStep([w]).step()  # default lr = 1
    assert float(w) == pytest.approx(-3e19 / (4 + 2 * 9e38), rel=1e-6) and float(w) != 0.0


def test_check_optimizer_accepts_torch_optimisers_only():
    """Kills the membership / subclass / ``is not Optimizer`` mutants of ``check_optimizer``, its message."""
    from oraclerl.posttrain.optim import OPTIMIZERS, check_optimizer

    assert OPTIMIZERS == ("adagrad", "adaptive", "sgd", "adam")
    for name in (*OPTIMIZERS, "RMSprop", "AdamW", "SGD", "LBFGS"):
        assert check_optimizer(name) == name
    msg = "must be one of ['adagrad', 'adaptive', 'sgd', 'adam'] or a torch.optim class name, got {!r}"
    for bad in ("Optimizer", "lion", "lr_scheduler", "Adagradx", "ADAM"):
        _raises("optimizer", msg.format(bad), check_optimizer, bad)


def test_make_optimizer_builds_the_named_class_with_lr():
    """Kills the name → class mutants of ``make_optimizer`` (each branch, its lr, the torch.optim fallback and
    its check)."""
    from oraclerl.posttrain.optim import AdaptiveStep, make_optimizer

    for name, cls in (
        ("adagrad", torch.optim.Adagrad),
        ("adaptive", AdaptiveStep),
        ("sgd", torch.optim.SGD),
        ("adam", torch.optim.Adam),
        ("RMSprop", torch.optim.RMSprop),
        ("AdamW", torch.optim.AdamW),
    ):
        w = torch.zeros(2)
        opt = make_optimizer(name, [w], 0.25)
        assert (
            type(opt) is cls and opt.param_groups[0]["lr"] == 0.25 and opt.param_groups[0]["params"][0] is w
        )
    _raises(
        "optimizer",
        "must be one of ['adagrad', 'adaptive', 'sgd', 'adam'] or a torch.optim class name, got 'Optimizer'",
        make_optimizer,
        "Optimizer",
        [torch.zeros(1)],
        0.1,
    )


def test_ascent_step_increases_the_objective_and_clears_the_gradient():
    """Kills the sign / ``w.grad = None`` mutants of ``ascent_step``: with SGD lr 0.5, w ← w + 0.5·g."""
    from oraclerl.posttrain.optim import ascent_step

    w = torch.tensor([1.0, -1.0], dtype=torch.float64)
    ascent_step(torch.optim.SGD([w], lr=0.5), w, torch.tensor([2.0, 4.0], dtype=torch.float64))
    assert w.tolist() == [2.0, 1.0] and w.grad is None


def test_random_iterate_draws_tau_uniformly_and_keeps_a_copy():
    """Kills ``RandomIterate`` mutants: τ = randint(0, T) from the given generator (every value of {0, 1, 2}
    is drawn over 60 seeds and never 3), disabled ⇒ τ = −1 and no random number used; ``observe`` keeps a
    detached copy of w_τ only (later in-place updates do not reach it); ``generator=None`` works (the "cpu"
    default)."""
    from oraclerl.posttrain.optim import RandomIterate

    taus = set()
    for s in range(60):
        g = torch.Generator().manual_seed(s)
        tau = RandomIterate(3, g).tau
        assert tau == int(torch.randint(0, 3, (1,), generator=torch.Generator().manual_seed(s)))
        taus.add(tau)
    assert taus == {0, 1, 2}
    g = torch.Generator().manual_seed(7)
    off = RandomIterate(5, g, enabled=False)
    assert off.tau == -1 and off.w is None
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=torch.Generator().manual_seed(7)))
    ri = RandomIterate(4, torch.Generator().manual_seed(0))
    w = torch.zeros(2, requires_grad=True)
    for t in range(4):
        ri.observe(t, w)
        with torch.no_grad():
            w += 1.0
    assert ri.w is not None and ri.w.tolist() == [float(ri.tau)] * 2 and not ri.w.requires_grad
    for _ in range(5):  # no generator: torch's global stream, on the CPU
        assert 0 <= RandomIterate(3, None).tau < 3


# --- pretrain.py --------------------------------------------------------------------------------------------


def _teacher(d=3, k=3, N=4, seed=0, dtype=torch.float64):
    from oraclerl.models.linear_ar import ContextBigramFeatures, LinearARModel
    from oraclerl.oracles.ledger import Ledger
    from oraclerl.problems.teacher import TeacherContexts, teacher_task

    task = teacher_task(d, k, N, num_mix=2, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    ctx = TeacherContexts(task, Ledger())
    return task, ctx, LinearARModel(ContextBigramFeatures(d, k), N, dtype=dtype)


def _autograd_ll(model, w, x, y, weights=None):
    """∇_w Σ weights·log p_w(y_i | x, y_<i) by autograd (independent of the closed-form gradient)."""
    w = w.clone().requires_grad_(True)
    m = model.copy()
    m.w = w
    lp = m.token_log_probs(x, y)
    (lp * (1.0 if weights is None else weights)).sum().backward()
    return w.grad


@pytest.mark.parametrize("norm", ["token_mean", "sequence_sum"])
def test_pretrain_sgd_steps_equal_the_log_loss_gradient_by_autograd(norm):
    """Kills pretrain.py mutants of the step (sign, the scale 1/(B·N) for token_mean and 1/B for sequence_sum,
    the batch size drawn), of the data order (one ``draw_labelled(B)`` per step from the given generator), the
    prompt count (steps·B), ``track`` (called at t = 0..T with the model), and of the default ``iterate =
    None``. Reference: plain SGD with lr 0.3 on the autograd gradient of the token log-likelihood, same draws.
    """
    from oraclerl.posttrain.pretrain import Pretrain, PretrainConfig

    task, ctx, model = _teacher()
    B, N, T, lr = 5, 4, 3, 0.3
    seen = []
    res = Pretrain(
        PretrainConfig(steps=T, batch_size=B, optimizer="sgd", lr=lr, loss_normalisation=norm)
    ).run(
        model,
        ctx,
        torch.Generator().manual_seed(4),
        track=lambda t, m: seen.append((t, m is model, m.w.clone())),
    )
    _, ctx2, ref = _teacher()
    g = torch.Generator().manual_seed(4)
    w = ref.w.clone()
    ws = [w.clone()]
    for _ in range(T):
        x, y = ctx2.draw_labelled(B, g)
        w = w + lr * _autograd_ll(ref, w, x, y) / (B * (N if norm == "token_mean" else 1))
        ws.append(w.clone())
    assert torch.allclose(model.w, w, atol=1e-12, rtol=0) and bool((w != 0).any())
    assert [t for t, _, _ in seen] == list(range(T + 1)) and all(same for _, same, _ in seen)
    assert all(torch.allclose(a, b, atol=1e-12, rtol=0) for (_, _, a), b in zip(seen, ws))
    assert res.model is model and res.iterate is None and ctx.ledger.prompts == T * B


def test_pretrain_random_iterate_returns_w_tau():
    """Kills the ``random_iterate`` mutants: τ is drawn first from the generator, then the data; ``iterate``
    holds w_τ (the weights *before* update τ) in a separate model."""
    from oraclerl.posttrain.pretrain import Pretrain, PretrainConfig

    task, ctx, model = _teacher()
    ws = []
    res = Pretrain(PretrainConfig(
            steps=6,
            batch_size=2,
            optimizer="adaptive",
            lr=1.0,
            loss_normalisation="sequence_sum",
            random_iterate=True,
        )).run(model, ctx, torch.Generator().manual_seed(1), track=lambda t, m: ws.append(m.w.clone()))
    tau = int(torch.randint(0, 6, (1,), generator=torch.Generator().manual_seed(1)))
    assert res.iterate is not None and res.iterate is not model
    assert torch.equal(res.iterate.w, ws[tau]) and not torch.equal(res.iterate.w, model.w)
    # the same run without the random iterate draws its data from the first random number: other weights
    _, ctx2, m2 = _teacher()
    Pretrain(PretrainConfig(
            steps=6, batch_size=2, optimizer="adaptive", lr=1.0, loss_normalisation="sequence_sum"
        )).run(m2, ctx2, torch.Generator().manual_seed(1))
    assert not torch.equal(m2.w, model.w)


def test_pretrain_defaults_are_the_papers():
    """Kills the default-value mutants of ``PretrainConfig`` (paper: 1000 steps, batch 256, Adagrad lr 0.1,
    token mean, no random iterate) and the bad-config checks (steps = 0, optimizer name) with their fields."""
    from oraclerl.posttrain.pretrain import Pretrain, PretrainConfig

    cfg = PretrainConfig()
    assert (cfg.steps, cfg.batch_size, cfg.optimizer, cfg.lr, cfg.loss_normalisation, cfg.random_iterate) == (
        1000,
        256,
        "adagrad",
        0.1,
        "token_mean",
        False,
    )
    task, ctx, model = _teacher()
    for bad, field in (
        (dict(steps=0), "steps"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr=0.0), "lr"),
        (dict(optimizer="Optimizer"), "optimizer"),
        (dict(loss_normalisation="mean"), "loss_normalisation"),
    ):
        with pytest.raises(ConfigError) as e:
            Pretrain(PretrainConfig(**bad)).run(model, ctx)
        assert e.value.field == field
    assert ctx.ledger.prompts == 0 and bool((model.w == 0).all())


# --- reference.py -------------------------------------------------------------------------------------------


def _plain_logits(w, x, prev, d, k):
    """xᵀW₁ + W₂[:, prev] entry by entry (W₁ = w[:dk] as [d, k], W₂ = w[dk:] as [k, k], row-major)."""
    return [
        [
            sum(float(x[b, i]) * float(w[i * k + a]) for i in range(d))
            + (0.0 if prev is None else float(w[d * k + a * k + int(prev[b])]))
            for a in range(k)
        ]
        for b in range(x.shape[0])
    ]


def test_reference_token_log_probs_and_sampler_against_plain_python():
    """Kills reference.py mutants of ``_logits_at`` (the W₁ / W₂ split at d·k, their shapes, ``W2[:,
    prev].T``, the first position without W₂), ``reference_token_log_probs`` (position i uses y_{i−1}, gathers
    y_i) and ``reference_sample`` (softmax of those logits, one multinomial draw per position from the
    generator, the drawn token fed back): log-softmax in plain Python, and the sampler replayed with the same
    generator."""
    from oraclerl.posttrain.reference import reference_sample, reference_token_log_probs

    d, k, N, B = 2, 3, 3, 4
    w = torch.randn(d * k + k * k, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x = torch.randn(B, d, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    y = torch.tensor([[0, 1, 2], [2, 2, 0], [1, 0, 1], [0, 0, 0]])
    got = reference_token_log_probs(w, x, y, k)
    for b in range(B):
        for i in range(N):
            lg = _plain_logits(w, x[b : b + 1], None if i == 0 else y[b : b + 1, i - 1], d, k)[0]
            want = lg[int(y[b, i])] - math.log(sum(math.exp(v) for v in lg))
            assert float(got[b, i]) == pytest.approx(want, rel=1e-12, abs=1e-12)
    g = torch.Generator().manual_seed(9)
    s = reference_sample(w, x, N, k, g)
    assert s.shape == (B, N) and s.dtype == torch.long
    g2, prev, cols = torch.Generator().manual_seed(9), None, []
    for _ in range(N):
        lg = torch.tensor(_plain_logits(w, x, prev, d, k), dtype=torch.float64)
        prev = torch.multinomial(torch.softmax(lg, -1), 1, generator=g2)[:, 0]
        cols.append(prev.tolist())
    assert s.T.tolist() == cols
    assert torch.equal(torch.rand(2, generator=g), torch.rand(2, generator=g2))  # same stream used


def test_reference_pretrain_is_sgd_on_the_token_mean_log_loss():
    """Kills ``reference_pretrain`` mutants: the loss −mean (not −sum: SGD sees the scale), ``zero_grad`` each
    step, the batch size and the data order, the weights written back, ``iterate`` None; and its refusal of
    the adaptive step and of the random iterate (field ``optimizer``, exact message)."""
    from oraclerl.posttrain.pretrain import PretrainConfig
    from oraclerl.posttrain.reference import reference_pretrain

    task, ctx, model = _teacher()
    B, N, T, lr = 5, 4, 3, 0.7
    res = reference_pretrain(
        model,
        ctx,
        PretrainConfig(steps=T, batch_size=B, optimizer="sgd", lr=lr),
        torch.Generator().manual_seed(2),
    )
    _, ctx2, ref = _teacher()
    g, w = torch.Generator().manual_seed(2), ref.w.clone()
    for _ in range(T):
        x, y = ctx2.draw_labelled(B, g)
        w = w + lr * _autograd_ll(ref, w, x, y) / (B * N)
    assert torch.allclose(model.w, w, atol=1e-12, rtol=0) and bool((w != 0).any())
    assert res.model is model and res.iterate is None and ctx.ledger.prompts == T * B
    msg = "the reference implementation covers torch optimisers without random iterate"
    _raises("optimizer", msg, reference_pretrain, model, ctx, PretrainConfig(steps=1, optimizer="adaptive"))
    _raises("optimizer", msg, reference_pretrain, model, ctx, PretrainConfig(steps=1, random_iterate=True))


@pytest.mark.parametrize(
    "kind,baseline", [("outcome", "none"), ("outcome", "batch_mean"), ("process", "batch_mean")]
)
def test_reference_policy_gradient_replayed_with_closed_form_gradients(kind, baseline):
    """Kills ``reference_policy_gradient`` mutants: the draws (contexts, then the per-token sampler, same
    generator), the rewards and advantages (ORM [B, 1] broadcast over tokens, PRM per token), the loss
    −mean(A·log p) over B·N, SGD on it, the history (mean reward, PRM: of the last prefix), ``track`` at t =
    0..T, the counts (B prompts and B T_data (ORM) / B·N (PRM) per step, no T_comp, the learner's draws
    granted: T_grant) — replayed with the closed-form gradient of the fast model instead of autograd."""
    from oraclerl.oracles.ledger import Ledger
    from oraclerl.oracles.rewards import RewardOracle
    from oraclerl.posttrain.policy_gradient import PGConfig
    from oraclerl.posttrain.reference import reference_policy_gradient, reference_sample
    from oraclerl.problems.teacher import TeacherReward

    task, ctx, model = _teacher(k=2, N=3)
    model.w = (
        torch.randn(model.feature_dim, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 0.1
    )
    start = model.w.clone()
    B, T, lr, N = 16, 3, 0.5, 3
    led = Ledger()
    seen = []
    cfg = PGConfig(steps=T, batch_size=B, reward=kind, advantage=baseline, optimizer="sgd", lr=lr)
    res = reference_policy_gradient(
        model,
        ctx,
        RewardOracle(TeacherReward(ctx, kind, "signed"), led),
        PromptSource(ctx, led),
        cfg,
        torch.Generator().manual_seed(8),
        track=lambda t, m: seen.append(t if m is model else None),
    )
    _, ctx2, ref = _teacher(k=2, N=3)
    ref.w = start.clone()
    fn = TeacherReward(ctx2, kind, "signed")
    g, hist, grants = torch.Generator().manual_seed(8), [], set()
    for _ in range(T):
        ids = ctx2.sample(B, g)
        x = ctx2.lookup(ids)
        y = reference_sample(ref.w, x, N, 2, g)[:, None, :]
        grants |= {(int(i), tuple(r)) for i, r in zip(ids, y[:, 0].tolist())}
        if kind == "outcome":
            r = fn.mean(ids, y)  # [B, 1]
            hist.append(float(r.mean()))
            A = (r if baseline == "none" else r - r.mean())[..., None].expand(B, 1, N)
        else:
            r = fn.process_mean(ids, y)  # [B, 1, N]
            hist.append(float(r[..., -1].mean()))
            A = r - r.mean((0, 1), keepdim=True)  # batch mean per position
        ref.w = ref.w + lr * ref.grad_log_likelihood(x, y, A) / (B * N)
    assert torch.allclose(model.w, ref.w, atol=1e-12, rtol=0) and not torch.allclose(model.w, start)
    assert res.mean_reward == pytest.approx(hist, abs=1e-15) and seen == list(range(T + 1))
    assert res.policy is model and res.iterate is None
    assert res.ledger == led.snapshot()
    assert (led.prompts, led.t_comp, led.t_data, led.t_grant) == (
        T * B,  # the contexts are drawn through the run's PromptSource, on its ledger
        0,  # the learner's own draws are granted (counted by the oracle in t_grant), never charged as T_comp
        T * B * (1 if kind == "outcome" else N),
        len(grants),
    )
    assert ctx.ledger.prompts == 0  # the context distribution itself counts nothing


def test_reference_policy_gradient_refuses_what_it_does_not_cover():
    """Kills the condition / message mutants of ``reference_policy_gradient``'s checks (each one alone)."""
    from oraclerl.oracles.ledger import Ledger
    from oraclerl.oracles.rewards import RewardOracle
    from oraclerl.posttrain.policy_gradient import PGConfig
    from oraclerl.posttrain.reference import reference_policy_gradient
    from oraclerl.problems.teacher import TeacherReward

    task, ctx, model = _teacher()
    rew = RewardOracle(TeacherReward(ctx, "outcome"), Ledger())
    msg = "the reference implementation covers on-policy PG, n = 1, torch optimisers"
    for bad in (dict(behaviour="best_of_m"), dict(group_size=2), dict(optimizer="adaptive")):
        _raises("behaviour", msg, reference_policy_gradient, model, ctx, rew, PromptSource(ctx, rew.ledger),
                PGConfig(steps=1, **bad))
    _raises(
        "loss_normalisation",
        "the reference implementation uses the authors' token mean",
        reference_policy_gradient,
        model,
        ctx,
        rew,
        PromptSource(ctx, rew.ledger),
        PGConfig(steps=1, loss_normalisation="sequence_sum"),
    )
    assert rew.ledger.snapshot() == Ledger().snapshot() and bool((model.w == 0).all())


# --- policy_gradient.py -------------------------------------------------------------------------------------


def _pg_setup(kind, form="signed", seed=5):
    from oraclerl.oracles.ledger import Ledger
    from oraclerl.oracles.rewards import RewardOracle
    from oraclerl.problems.teacher import TeacherReward

    task, ctx, model = _teacher(k=2, N=3)
    model.w = torch.randn(
        model.feature_dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    led = Ledger()
    return ctx, model, RewardOracle(TeacherReward(ctx, kind, form), led), led


def _pg(policy, contexts, reward, cfg, generator=None, base=None, **kw):
    """``policy_gradient`` with its sampling oracles built by the caller (``pg_oracles``, issue 16 §5)."""
    from oraclerl.posttrain.policy_gradient import PolicyGradient, pg_oracles

    oracles = pg_oracles(policy, contexts, reward, base=base)
    return PolicyGradient(cfg).run(policy, contexts, reward, oracles, generator, **kw)


def test_pg_oracles_reveal_nothing_and_count_on_the_reward_ledger():
    """Kills ``pg_oracles_5``, ``_8``, ``_28``, ``_31``, ``_34``, ``_37`` (``reveal=()`` → ``None`` or
    dropped: the samplers would then reveal the features of p_w and of q₀, computed on every draw; the
    control below shows that the default reveals them). The three oracles count on the reward oracle's
    ledger, each its own counter, so the reward oracle accepts their draws."""
    from oraclerl.models.linear_ar import PromptBoundPolicy
    from oraclerl.oracles.samplers import AutoregressiveSampler, RevealError, WeakSampler
    from oraclerl.posttrain.policy_gradient import pg_oracles

    ctx, model, reward, led = _pg_setup("outcome")
    o = pg_oracles(model, ctx, reward, base=model.copy())
    bound = PromptBoundPolicy(model, ctx)
    # control: the default reveals the features
    assert WeakSampler(bound, led).reveal == AutoregressiveSampler(bound, led).reveal == {"features"}
    assert o.sampler.reveal == o.base_sequences.reveal == o.base_tokens.reveal == frozenset()
    ids = ctx.sample(2, torch.Generator().manual_seed(0))
    s = o.sampler.sample(ids, 1, torch.Generator().manual_seed(1))
    with pytest.raises(RevealError):
        _ = s.features
    o.base_sequences.sample(ids, 1, torch.Generator().manual_seed(2))
    assert (led.t_comp, led.t_comp_token) == (4, 0)
    reward.outcome(ids, s.responses)  # drawn on this ledger: accepted without a grant
    assert led.t_grant == 0 and led.t_data == 2


def _pg_replay(kind, form, baseline, norm, n, steps, B, lr, seed, w0):
    """SGD PG replayed with the same draws (contexts, then n responses of the current policy), rewards
    straight from the reward function, advantages by plain formulas, the update from autograd: returns (w,
    history)."""
    from oraclerl.problems.teacher import TeacherReward

    _, ctx, ref = _teacher(k=2, N=3)
    ref.w = w0.clone()
    fn = TeacherReward(ctx, kind, form)
    g, hist, N = torch.Generator().manual_seed(seed), [], 3
    for _ in range(steps):
        ids = ctx.sample(B, g)
        x = ctx.lookup(ids)
        y = ref.sample(x, n, g)
        if kind == "outcome":
            r = fn.mean(ids, y)
            hist.append(float(r.mean()))
        else:
            r = fn.process_mean(ids, y)
            hist.append(float(r[..., -1].mean()))
        A = {
            "none": r,
            "batch_mean": r - r.mean((0, 1), keepdim=True),
            "leave_one_out": r - (r.sum(1, keepdim=True) - r) / (n - 1),
        }[baseline]
        Aw = A[..., None].expand(B, n, N) if kind == "outcome" else A
        scale = 1.0 / (B * n * (N if norm == "token_mean" else 1))
        ref.w = ref.w + lr * _autograd_ll(ref, ref.w, x, y, Aw) * scale
    return ref.w, hist


@pytest.mark.parametrize(
    "kind,form,baseline,norm,n",
    [
        ("outcome", "signed", "none", "token_mean", 1),
        ("outcome", "binary", "leave_one_out", "sequence_sum", 3),
        ("process", "signed", "batch_mean", "sequence_sum", 2),
        ("process", "binary", "none", "token_mean", 1),
    ],
)
def test_policy_gradient_equals_the_replayed_definition(kind, form, baseline, norm, n):
    """Kills policy_gradient.py mutants of the step: the draw order, n responses per context, the reward form,
    the advantage estimator, the scale 1/(B·n·N) (token_mean) or 1/(B·n) (sequence_sum), the ascent direction,
    the history (ORM: mean reward; PRM: mean of the last prefix's reward), the counts (prompts, T_comp = B·n,
    T_data = B·n or B·n·N per step) and the returned snapshot, policy and iterate (None by default)."""
    from oraclerl.posttrain.policy_gradient import PGConfig

    ctx, model, reward, led = _pg_setup(kind, form)
    w0 = model.w.clone()
    T, B, lr = 3, 8, 0.4
    cfg = PGConfig(
        steps=T,
        batch_size=B,
        group_size=n,
        reward=kind,
        reward_form=form,
        advantage=baseline,
        optimizer="sgd",
        lr=lr,
        loss_normalisation=norm,
    )
    res = _pg(model, ctx, reward, cfg, torch.Generator().manual_seed(11))
    w, hist = _pg_replay(kind, form, baseline, norm, n, T, B, lr, 11, w0)
    assert torch.allclose(model.w, w, atol=1e-12, rtol=0) and not torch.allclose(w, w0)
    assert res.mean_reward == pytest.approx(hist, abs=1e-15)
    assert res.policy is model and res.iterate is None
    want = {"t_comp": T * B * n, "t_data": T * B * n * (1 if kind == "outcome" else 3), "prompts": T * B}
    assert res.ledger == {**dict.fromkeys(led.snapshot(), 0), **want} == led.snapshot()
    assert ctx.ledger.prompts == 0  # drawn through the run's PromptSource, counted on the reward's ledger


def test_policy_gradient_track_stops_early_and_random_iterate():
    """Kills the ``track`` mutants (called at t = 0 and after every step with the policy; True at t = 0 runs
    no step, True at t = 2 stops after two) and the ``random_iterate`` ones (``iterate`` = w_τ, the weights
    before update τ, τ drawn first from the generator)."""
    from oraclerl.posttrain.policy_gradient import PGConfig

    ctx, model, reward, led = _pg_setup("process")
    w0 = model.w.clone()
    cfg = PGConfig(steps=5, batch_size=2, reward="process", advantage="none", optimizer="sgd", lr=0.3)
    res = _pg(model, ctx, reward, cfg, torch.Generator().manual_seed(0), track=lambda t, p: True)
    assert torch.equal(model.w, w0) and res.mean_reward == [] and ctx.ledger.prompts == 0
    seen = []
    res = _pg(
        model,
        ctx,
        reward,
        cfg,
        torch.Generator().manual_seed(0),
        track=lambda t, p: seen.append((t, p is model)) or t == 2,
    )
    assert (
        seen == [(0, True), (1, True), (2, True)] and len(res.mean_reward) == 2 and res.ledger["prompts"] == 4
    )
    seen.clear()
    res = _pg(
        model, ctx, reward, cfg, torch.Generator().manual_seed(0), track=lambda t, p: seen.append(t)
    )  # None: never stops
    assert seen == list(range(6)) and len(res.mean_reward) == 5
    ws = []
    cfg_r = PGConfig(
        steps=6,
        batch_size=2,
        reward="process",
        advantage="none",
        optimizer="sgd",
        lr=0.3,
        random_iterate=True,
    )
    w_start = model.w.clone()
    res = _pg(
        model, ctx, reward, cfg_r, torch.Generator().manual_seed(3), track=lambda t, p: ws.append(p.w.clone())
    )
    tau = int(torch.randint(0, 6, (1,), generator=torch.Generator().manual_seed(3)))
    assert res.iterate is not None and res.iterate is not model and torch.equal(res.iterate.w, ws[tau])
    # τ is drawn from the generator before the data: without the random iterate the same seed gives other
    # weights
    w_end = model.w.clone()
    model.w = w_start
    cfg_n = PGConfig(steps=6, batch_size=2, reward="process", advantage="none", optimizer="sgd", lr=0.3)
    _pg(model, ctx, reward, cfg_n, torch.Generator().manual_seed(3))
    assert not torch.equal(model.w, w_end)


def test_policy_gradient_is_bit_identical_under_reward_noise():
    """Kills the mutants that drop the generator from the reward queries (``policy_gradient_110``, ``_113``,
    ``_141``, ``_144``): with Gaussian reward noise, the same seed gives the same weights twice although
    torch's global stream moves between the runs."""
    from oraclerl.oracles.ledger import Ledger
    from oraclerl.oracles.rewards import RewardNoise, RewardOracle
    from oraclerl.posttrain.policy_gradient import PGConfig
    from oraclerl.problems.teacher import TeacherReward

    for kind in ("outcome", "process"):
        ws = []
        for _ in range(2):
            torch.rand(5)
            task, ctx, model = _teacher(k=2, N=3)
            rew = RewardOracle(
                TeacherReward(ctx, kind, "signed"), Ledger(), noise=RewardNoise("gaussian", 1.0)
            )
            cfg = PGConfig(steps=2, batch_size=4, reward=kind, advantage="none", optimizer="sgd", lr=0.5)
            _pg(model, ctx, rew, cfg, torch.Generator().manual_seed(3))
            ws.append(model.w)
        assert torch.equal(ws[0], ws[1]) and bool((ws[0] != 0).any())


def test_pg_config_defaults_and_errors():
    """Kills the default-value mutants of ``PGConfig`` (the paper's Figure-1 ORM run) and the message / field
    mutants of the two ``policy_gradient`` checks, and the reward-kind choice of the ``oracles`` check (a
    swapped ``base_tokens``/``base_sequences`` test lets the wrong half through); nothing is drawn before they
    fire."""
    from oraclerl.posttrain.policy_gradient import PGConfig, PGOracles, PolicyGradient, pg_oracles

    c = PGConfig()
    assert (
        c.steps,
        c.batch_size,
        c.group_size,
        c.reward,
        c.reward_form,
        c.advantage,
        c.behaviour,
        c.m,
        c.explore_mix,
        c.optimizer,
        c.lr,
        c.loss_normalisation,
        c.random_iterate,
    ) == (
        4000,
        1024,
        1,
        "outcome",
        "signed",
        "batch_mean",
        "on_policy",
        10,
        0.5,
        "adagrad",
        0.1,
        "token_mean",
        False,
    )
    ctx, model, orm, led = _pg_setup("outcome")
    _raises(
        "reward",
        "reward='process' needs a reward oracle with process rewards",
        _pg,
        model,
        ctx,
        orm,
        PGConfig(steps=1, reward="process"),
    )
    _raises(
        "oracles",
        "behaviour='best_of_m' needs q₀'s sampling oracles: pg_oracles(..., base=q₀)",
        _pg,
        model,
        ctx,
        orm,
        PGConfig(steps=1, behaviour="best_of_m"),
    )
    # the check asks for the sampler the reward kind uses: ORM explores with q₀'s sequences, PRM its tokens
    full = pg_oracles(model, ctx, orm, base=model.copy())
    only_tok = PGOracles(full.sampler, full.prompts, base_tokens=full.base_tokens)
    only_seq = PGOracles(full.sampler, full.prompts, base_sequences=full.base_sequences)
    _, _, prm, _ = _pg_setup("process")
    for rew, kind, oracles in ((orm, "outcome", only_tok), (prm, "process", only_seq)):
        with pytest.raises(ConfigError) as e:
            PolicyGradient(PGConfig(steps=1, reward=kind, behaviour="best_of_m")).run(model, ctx, rew,
                                                                                      oracles)
        assert e.value.field == "oracles"
    for bad, field in (
        (dict(steps=0), "steps"),
        (dict(m=0), "m"),
        (dict(explore_mix=1.5), "explore_mix"),
        (dict(optimizer="lion"), "optimizer"),
        (dict(group_size=0), "group_size"),
    ):
        with pytest.raises(ConfigError) as e:
            _pg(model, ctx, orm, PGConfig(**bad))
        assert e.value.field == field
    assert led.snapshot() == dict.fromkeys(led.snapshot(), 0) and ctx.ledger.prompts == 0


@pytest.mark.parametrize("kind", ["outcome", "process"])
def test_best_of_m_pg_feeds_the_explored_responses_to_the_update(kind):
    """Kills the ``best_of_m`` wiring mutants: the exploration gets q₀ (``base``, not the policy) through a
    sequence sampler (ORM) or a token sampler (PRM), k, m, mix and the failure value of the reward form; the
    update uses the explored (y, r) and the history the on-policy reward. Replay: on-policy draw, then
    :func:`explore_outcome` / :func:`explore_process` on fresh oracles with the same generator, the SGD step
    by autograd."""
    from oraclerl.models.linear_ar import PromptBoundPolicy
    from oraclerl.oracles.ledger import Ledger
    from oraclerl.oracles.rewards import RewardOracle
    from oraclerl.oracles.samplers import AutoregressiveSampler, WeakSampler
    from oraclerl.posttrain.behaviour import explore_outcome, explore_process
    from oraclerl.posttrain.policy_gradient import PGConfig
    from oraclerl.problems.teacher import TeacherReward

    for form in ("binary", "signed"):
        ctx, model, reward, led = _pg_setup(kind, form)
        _, _, base = _teacher(k=2, N=3)
        base.w = torch.randn(
            base.feature_dim, generator=torch.Generator().manual_seed(9), dtype=torch.float64
        )
        w0 = model.w.clone()
        T, B, lr, N = 2, 3, 0.5, 3
        cfg = PGConfig(
            steps=T,
            batch_size=B,
            reward=kind,
            reward_form=form,
            advantage="none",
            behaviour="best_of_m",
            m=2,
            explore_mix=0.7,
            optimizer="sgd",
            lr=lr,
            loss_normalisation="sequence_sum",
        )
        res = _pg(model, ctx, reward, cfg, torch.Generator().manual_seed(4), base=base)
        _, ctx2, ref = _teacher(k=2, N=3)
        ref.w = w0.clone()
        led2 = Ledger()
        rew2 = RewardOracle(TeacherReward(ctx2, kind, form), led2)
        pol_s = WeakSampler(PromptBoundPolicy(ref, ctx2), led2, reveal=())
        b_seq = WeakSampler(PromptBoundPolicy(base, ctx2), led2, reveal=())
        b_tok = AutoregressiveSampler(PromptBoundPolicy(base, ctx2), led2, reveal=())
        g, hist = torch.Generator().manual_seed(4), []
        for _ in range(T):
            ids = ctx2.sample(B, g)
            x = ctx2.lookup(ids)
            y = pol_s.sample(ids, 1, g).responses
            if kind == "outcome":
                r = rew2.outcome(ids, y, g)
                hist.append(float(r.mean()))
                y, r = explore_outcome(ids, y, r, rew2, b_seq, 2, 2, 0.7, g)
                Aw = r[..., None].expand(B, 1, N)
            else:
                r = rew2.process(ids, y, g)
                hist.append(float(r[..., -1].mean()))
                y, r = explore_process(ids, y, r, rew2, b_tok, 2, 0.7, -1.0 if form == "signed" else 0.0, g)
                Aw = r
            ref.w = ref.w + lr * _autograd_ll(ref, ref.w, x, y, Aw) / B
        assert torch.allclose(model.w, ref.w, atol=1e-12, rtol=0) and not torch.allclose(model.w, w0)
        assert (
            res.mean_reward == pytest.approx(hist, abs=1e-15)
            and {**res.ledger, "prompts": 0} == led2.snapshot()
            and res.ledger["prompts"] == T * B
        )
        assert led2.t_grant > 0 and (led2.t_comp > T * B if kind == "outcome" else led2.t_comp_token > 0)


def test_reference_casts_float32_contexts_to_the_model_dtype():
    """Kills ``reference_pretrain_39`` and ``reference_policy_gradient_56`` (``x.to(w.dtype)`` dropped):
    float32 contexts of a teacher task with a float64 model (x @ W₁ would raise on mixed dtypes)."""
    from oraclerl.models.linear_ar import ContextBigramFeatures, LinearARModel
    from oraclerl.oracles.ledger import Ledger
    from oraclerl.oracles.rewards import RewardOracle
    from oraclerl.posttrain.policy_gradient import PGConfig
    from oraclerl.posttrain.pretrain import PretrainConfig
    from oraclerl.posttrain.reference import reference_policy_gradient, reference_pretrain
    from oraclerl.problems.teacher import TeacherReward

    task, ctx, _ = _teacher(k=2, N=3, dtype=torch.float32)
    model = LinearARModel(ContextBigramFeatures(3, 2), 3, dtype=torch.float64)
    reference_pretrain(model, ctx, PretrainConfig(steps=2, batch_size=3), torch.Generator().manual_seed(0))
    assert model.w.dtype == torch.float64 and bool((model.w != 0).any())
    rew = RewardOracle(TeacherReward(ctx, "process", "signed"), Ledger())
    res = reference_policy_gradient(model, ctx, rew, PromptSource(ctx, rew.ledger),
                                    PGConfig(steps=2, batch_size=3, reward="process", advantage="none"),
                                    torch.Generator().manual_seed(1))
    assert model.w.dtype == torch.float64 and len(res.mean_reward) == 2


def test_reference_rewards_use_the_generator_and_a_sure_token_is_drawn():
    """Kills ``reference_policy_gradient_78``, ``_81``, ``_94``, ``_97`` (the reward query without the
    generator: with Gaussian reward noise, the same seed then gives other weights, torch's global stream being
    advanced between the runs). The sampler draws a token of probability 1 (a logit gap of 2000: the other
    token has probability 0 exactly) every time."""
    from oraclerl.oracles.ledger import Ledger
    from oraclerl.oracles.rewards import RewardNoise, RewardOracle
    from oraclerl.posttrain.policy_gradient import PGConfig
    from oraclerl.posttrain.reference import reference_policy_gradient, reference_sample
    from oraclerl.problems.teacher import TeacherReward

    for kind in ("outcome", "process"):
        ws = []
        for _ in range(2):
            torch.rand(5)
            task, ctx, model = _teacher(k=2, N=3)
            rew = RewardOracle(
                TeacherReward(ctx, kind, "signed"), Ledger(), noise=RewardNoise("gaussian", 1.0)
            )
            reference_policy_gradient(model, ctx, rew, PromptSource(ctx, rew.ledger),
                                      PGConfig(steps=2, batch_size=4, reward=kind, advantage="none",
                                               optimizer="sgd", lr=0.5),
                                      torch.Generator().manual_seed(3))
            ws.append(model.w)
        assert torch.equal(ws[0], ws[1]) and bool((ws[0] != 0).any())
    d, k = 1, 2
    w = torch.tensor([0.0, 2000.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)   # x·W₁ = (0, 2000x), W₂ = 0
    x = torch.ones(3, d, dtype=torch.float64)
    assert reference_sample(w, x, 4, k, torch.Generator().manual_seed(0)).tolist() == [[1] * 4] * 3
