"""Tests written to kill mutmut survivors in ``oraclerl.posttrain`` (docs/testing.md, "Triage").

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
        assert torch.allclose(got.double(), torch.tensor(_pass_at_k_ref(R, k), dtype=torch.float64), atol=1e-5)


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
    assert torch.allclose(got, torch.tensor([[0.5, -0.5], [0.0, 0.0]], dtype=torch.float64) * scale, atol=1e-12)


def test_error_messages_name_the_field():
    names = "['none', 'batch_mean', 'leave_one_out', 'group_normalised', 'dr_grpo', 'pass_at_k']"
    _raises("estimator", f"must be one of {names}, got 'ppo'", advantages, torch.zeros(2, 2), "ppo")
    _raises("rewards", "must have shape [B, n] (outcome) or [B, n, H] (process), got (2,)",
            advantages, torch.zeros(2), "none")
    _raises("rewards", "contains NaN", advantages, torch.tensor([[0.0, math.nan]]), "none")
    _raises("mask", "must have the shape of rewards (3, 2), got (3, 3)",
            advantages, torch.zeros(3, 2), "none", mask=torch.ones(3, 3, dtype=torch.bool))
    _raises("rewards", "outcome rewards must be [B, n], got (3, 2, 2)", outcome_advantages, torch.zeros(3, 2, 2))
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
        _raises("k", f"must be an integer in [1, n=5] for 'pass_at_k', got {k!r}", advantages, R, "pass_at_k", k=k)
    assert torch.allclose(advantages(R, "pass_at_k", k=5),
                          torch.tensor(_pass_at_k_ref(R, 5), dtype=torch.float64), atol=1e-12)
