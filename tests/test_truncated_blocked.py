"""The blocked exact evaluation of the truncated softmax laws (explore/truncated_softmax.py, issue 15 item 4).

The pair axis (y, y′) is processed in [b, b] blocks of bounded memory; these tests force small blocks on tiny
instances (several blocks per prompt, the mask stored between the passes or recomputed) and compare with
independent computations: the dense [k, y′, y] sampler law through ``sampler_log_law`` (its own formula, no
matrix products), and explicit loops over (x, y′, y) for the ideal law. Tolerance 1e-12 in log-probability
(float64; the sums are reordered, nothing else changes).
"""

import math

import pytest
import torch

from oraclerl.explore.linear_regression import InverseGram
from oraclerl.explore.truncated_softmax import (
    _block_plan,
    truncated_log_marginal,
    truncated_sampler_log_marginal,
)
from oraclerl.inference.softmax_sampler import sampler_log_law
from oraclerl.problems import linear_softmax

torch.set_num_threads(1)

# block budgets (bytes) for Y = 150: the default (one block), several blocks with the mask stored, several
# blocks with the distances recomputed in the second pass
BUDGETS = {"one block": 1 << 28, "stored mask": 120_000, "recomputed": 24 * 33 * 33}


def _setup(seed=3, Y=150, d=5, X=2, nu=1.2, scale=3.0):
    inst = linear_softmax(d=d, num_prompts=X, num_responses=Y, beta=0.5, target_coverage=2.0, seed=seed)
    g = torch.Generator().manual_seed(seed)
    gram = InverseGram(d, 0.5)
    for v in torch.randn(6, d, generator=g, dtype=torch.float64):
        gram.add(v)
    thetas = scale * torch.randn(3, d, generator=g, dtype=torch.float64)
    return inst.base, gram.inv, thetas, nu


def _dense_rows(base, sigma_inv, theta, nu):
    """Per prompt: the truncation mask [y′, y] by the direct form (ϕ_y − ϕ_y′)ᵀΣ⁻¹(ϕ_y − ϕ_y′) ≤ ν² and the
    truncated scores f[y′, y] = ⟨θ, ϕ_y − ϕ_y′⟩·mask."""
    rel = base.phi[:, None, :, :] - base.phi[:, :, None, :]                      # [X, y′, y, d]
    keep = torch.einsum("xabi,ij,xabj->xab", rel, sigma_inv, rel) <= nu * nu
    return keep, torch.where(keep, rel @ theta, torch.zeros((), dtype=torch.float64))


def _dense_sampler(base, sigma_inv, thetas, nu, M, delta):
    """Σ_y′ π_ref(y′)·sampler_log_law(f[y′, ·]) for every component, [K, X, Y] (log)."""
    out = []
    for th in thetas:
        _, f = _dense_rows(base, sigma_inv, th, nu)
        law = sampler_log_law(base.log_ref[:, None, :], f, base.beta, M, delta, "exact")  # [X, y′, y]
        out.append(torch.logsumexp(base.log_ref[:, :, None] + law, dim=1))
    return torch.stack(out)


def _dense_ideal(base, sigma_inv, thetas, nu):
    """Σ_y′ π_ref(y′)·softmax_y(log π_ref(y) + f[y′, y]/β), [K, X, Y] (log)."""
    out = []
    for th in thetas:
        _, f = _dense_rows(base, sigma_inv, th, nu)
        cond = torch.log_softmax(base.log_ref[:, None, :] + f / base.beta, dim=-1)
        out.append(torch.logsumexp(base.log_ref[:, :, None] + cond, dim=1))
    return torch.stack(out)


def _clip_fraction(base, sigma_inv, thetas, nu, M):
    """Fraction of (component, prompt, y′) rows on which the envelope M clips: max_y π̄(y|y′)/π_ref(y) > M."""
    fr = []
    for th in thetas:
        _, f = _dense_rows(base, sigma_inv, th, nu)
        cond = torch.log_softmax(base.log_ref[:, None, :] + f / base.beta, dim=-1) - base.log_ref[:, None, :]
        fr.append((cond.max(-1).values > math.log(M)).double())
    return float(torch.stack(fr).mean())


def test_block_plans_are_what_the_tests_force():
    """The budgets above give one block, several blocks with a stored mask, several with recomputation."""
    assert _block_plan(150, BUDGETS["one block"]) == (150, True)
    b, store = _block_plan(150, BUDGETS["stored mask"])
    assert store and 64 <= b < 150
    assert _block_plan(150, BUDGETS["recomputed"]) == (33, False)
    # the budget bounds the temporaries: 3 float64 [b, b] buffers + the stored upper-triangle mask
    for Y, budget in ((16384, 1 << 28), (4096, 1 << 28), (150, 120_000), (150, 30_000)):
        b, store = _block_plan(Y, budget)
        assert 24 * b * b + (store * (Y * Y + Y * b)) / 2 <= budget


@pytest.mark.parametrize("budget", list(BUDGETS))
def test_blocked_ideal_law_matches_the_dense_form(budget):
    base, sigma_inv, thetas, nu = _setup()
    tab = truncated_log_marginal(
        base.log_ref, base.phi, thetas, sigma_inv, nu, base.beta, block_bytes=BUDGETS[budget]
    )
    ref = _dense_ideal(base, sigma_inv, thetas, nu)
    assert float((tab - ref).abs().max()) < 1e-12
    keep, _ = _dense_rows(base, sigma_inv, thetas[0], nu)
    assert bool(keep.any()) and not bool(keep.all())          # ν truncates some pairs and keeps others


@pytest.mark.parametrize("budget", list(BUDGETS))
@pytest.mark.parametrize("M", [1.0, 30.0, 1e4])
def test_blocked_sampler_law_matches_the_dense_law(budget, M):
    """M = 1: every row clips; M = 30: 70% of the rows clip (elementwise rows and product rows mixed); M =
    1e4: none."""
    base, sigma_inv, thetas, nu = _setup()
    frac = _clip_fraction(base, sigma_inv, thetas, nu, M)
    assert {1.0: frac == 1.0, 30.0: 0.05 < frac < 0.95, 1e4: frac == 0.0}[M], frac
    tab = truncated_sampler_log_marginal(base.log_ref, base.phi, thetas, sigma_inv, nu, base.beta, M, 0.05,
                                         block_bytes=BUDGETS[budget])
    ref = _dense_sampler(base, sigma_inv, thetas, nu, M, 0.05)
    assert float((tab - ref).abs().max()) < 1e-12
    assert float((tab.exp().sum(-1) - 1).abs().max()) < 1e-12


def test_blocked_equals_unblocked_and_is_bit_identical_across_calls():
    base, sigma_inv, thetas, nu = _setup(seed=5, Y=120, nu=0.9)
    for fn, args in ((truncated_log_marginal, ()), (truncated_sampler_log_marginal, (6.0, 0.05))):
        one = fn(base.log_ref, base.phi, thetas, sigma_inv, nu, base.beta, *args)
        small = fn(base.log_ref, base.phi, thetas, sigma_inv, nu, base.beta, *args, block_bytes=24 * 20 * 20)
        assert float((one - small).abs().max()) < 1e-12
        again = fn(base.log_ref, base.phi, thetas, sigma_inv, nu, base.beta, *args, block_bytes=24 * 20 * 20)
        assert torch.equal(small, again)


@pytest.mark.parametrize("quantile", [0.003, 0.995])
def test_sparse_masks_match_the_dense_laws(quantile):
    """ν² at the 0.3% / 99.5% quantile of the pair distances: K, resp. K̄, has ≤ 1% of each block's entries
    (but not none) and is added entry by entry instead of as a product; both laws still equal the dense
    forms."""
    base, sigma_inv, thetas, _ = _setup(seed=7, Y=150)
    rel = base.phi[:, None, :, :] - base.phi[:, :, None, :]
    sq = torch.einsum("xabi,ij,xabj->xab", rel, sigma_inv, rel)
    srt = sq.flatten().sort().values
    k = int(quantile * srt.numel())
    k += int((srt[k:] - srt[k] > 1e-6).to(torch.int8).argmax())    # the next gap (symmetric pairs come twice)
    nu = float(((srt[k - 1] + srt[k]) / 2).sqrt())                     # ν² between two distances: no tie at ν
    kept = float((sq <= nu * nu).double().mean())
    assert 0.0 < min(kept, 1 - kept) < 0.01, kept
    for budget in ("one block", "stored mask"):
        bb = BUDGETS[budget]
        ideal = truncated_log_marginal(
            base.log_ref, base.phi, thetas, sigma_inv, nu, base.beta, block_bytes=bb
        )
        assert float((ideal - _dense_ideal(base, sigma_inv, thetas, nu)).abs().max()) < 1e-12
        for M in (1.0, 30.0):
            tab = truncated_sampler_log_marginal(
                base.log_ref, base.phi, thetas, sigma_inv, nu, base.beta, M, 0.05, block_bytes=bb
            )
            assert float((tab - _dense_sampler(base, sigma_inv, thetas, nu, M, 0.05)).abs().max()) < 1e-12
