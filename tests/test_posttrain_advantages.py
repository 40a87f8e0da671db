"""Advantage estimators vs their definitions computed element by element (plain Python loops)."""

import itertools
import math

import pytest
import torch

from oraclerl.errors import ConfigError
from oraclerl.posttrain.advantages import (
    ALL_ESTIMATORS,
    ESTIMATORS,
    advantages,
    outcome_advantages,
    process_advantages,
)

GROUP_LOCAL = [e for e in ALL_ESTIMATORS if e != "pass_at_k"]


def _loop(r, est, mask=None, eps=1e-4):
    """Reference: the definitions, one entry at a time."""
    r = r.double()
    m = torch.ones_like(r) if mask is None else mask.double()
    out = torch.zeros_like(r)
    B, n = r.shape[:2]
    rest = r.shape[2:]
    for idx in (range(rest[0]) if rest else [None]):
        def get(t, b, j, idx=idx):
            return float(t[b, j] if idx is None else t[b, j, idx])
        allv = [get(r, b, j) for b in range(B) for j in range(n) if get(m, b, j)]
        for b in range(B):
            group = [get(r, b, j) for j in range(n) if get(m, b, j)]
            for j in range(n):
                if not get(m, b, j):
                    continue
                x = get(r, b, j)
                if est == "none":
                    a = x
                elif est == "batch_mean":
                    a = x - sum(allv) / len(allv)
                elif est == "dr_grpo":
                    a = x - sum(group) / len(group)
                elif est == "leave_one_out":
                    others = [get(r, b, jj) for jj in range(n) if jj != j and get(m, b, jj)]
                    a = x - (sum(others) / len(others) if others else 0.0)
                else:
                    mu = sum(group) / len(group)
                    sd = math.sqrt(sum((g - mu) ** 2 for g in group) / max(len(group) - 1, 1))
                    a = (x - mu) / (sd + eps)
                if idx is None:
                    out[b, j] = a
                else:
                    out[b, j, idx] = a
    return out


@pytest.mark.parametrize("est", GROUP_LOCAL)
def test_outcome_matches_definition(est):
    g = torch.Generator().manual_seed(0)
    r = (torch.rand(5, 4, generator=g) < 0.4).double() * 2 - 1
    assert torch.allclose(outcome_advantages(r, est), _loop(r, est), atol=1e-12)


@pytest.mark.parametrize("est", GROUP_LOCAL)
def test_process_matches_definition_with_mask(est):
    g = torch.Generator().manual_seed(1)
    r = torch.randn(3, 4, 6, generator=g, dtype=torch.float64)
    mask = torch.rand(3, 4, 6, generator=g) < 0.8
    got = process_advantages(r, est, mask=mask)
    assert torch.allclose(got, _loop(r, est, mask), atol=1e-12)
    assert (got[~mask] == 0).all()


def test_rloo_is_unbiased_baseline_and_group_zero_sum():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    a = advantages(r, "leave_one_out")
    # RLOO advantages sum to n/(n-1)·Σ(r - mean) = 0 per group; all-failure groups give 0
    assert torch.allclose(a.sum(1), torch.zeros(2), atol=1e-6)
    assert (a[1] == 0).all()
    assert a[0, 0].item() == pytest.approx(1 - 1 / 3)
    gn = advantages(r, "group_normalised")
    assert (gn[1] == 0).all()


def test_all_failure_batch_mean_is_zero():
    r = -torch.ones(8, 1)
    assert (advantages(r, "batch_mean") == 0).all()
    assert (advantages(r, "none") == -1).all()


def test_bad_input():
    with pytest.raises(ConfigError, match="estimator"):
        advantages(torch.zeros(2, 2), "ppo")
    with pytest.raises(ConfigError, match="rewards"):
        advantages(torch.zeros(2), "none")
    with pytest.raises(ConfigError, match="n >= 2"):
        advantages(torch.zeros(3, 1), "leave_one_out")
    with pytest.raises(ConfigError, match="mask"):
        advantages(torch.zeros(3, 2), "none", mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ConfigError, match="outcome"):
        outcome_advantages(torch.zeros(3, 2, 2))


def test_trainer_choices_are_a_subset():
    assert set(ESTIMATORS) <= set(ALL_ESTIMATORS) and "pass_at_k" not in ESTIMATORS


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_pass_at_k_matches_subset_definition(k):
    """A_j = n/C(n,k)·Σ_{K ∋ j, |K|=k} max_K r, by enumerating the subsets (ties and real rewards
    included)."""
    r = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.3], [2.0, -1.0, 0.5, 0.5, 1.0]], dtype=torch.float64)
    n = r.shape[1]
    ref = torch.tensor(
        [
            [
                n
                * sum(max(float(r[b, l]) for l in K) for K in itertools.combinations(range(n), k) if j in K)
                / math.comb(n, k)
                for j in range(n)
            ]
            for b in range(2)
        ],
        dtype=torch.float64,
    )
    assert torch.allclose(advantages(r, "pass_at_k", k=k), ref, atol=1e-12)
    if k == 1:
        assert torch.allclose(advantages(r, "pass_at_k", k=1), r, atol=1e-12)   # pass@1 is REINFORCE
