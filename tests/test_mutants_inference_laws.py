"""Tests written to kill mutmut survivors in ``oraclerl.inference.tilt``,
``oraclerl.inference.softmax_sampler``, ``oraclerl.inference.sample_based`` and
``oraclerl.diagnostics.large_deviations`` (docs/testing.md, "Triage").

Every value is checked against an independent computation in plain Python (``math`` on lists of floats): the
tilted law π_ref·e^{λr}/Z and its KL / reward / log-MGF, λ_Δ by bisection on KL(φ_λ‖p) = Δ, the
SoftmaxSampler's law by enumeration of its rejection loop on a tiny instance, the samplers replayed draw for
draw from the same random streams, the rate function by a grid supremum. Errors are checked by their exact
message and field. Mutant names are mutmut's (``x_<function>__mutmut_<k>``, written ``<function>_<k>`` below).
"""

from __future__ import annotations

import importlib
import itertools
import math

import pytest
import torch

from oraclerl.diagnostics.large_deviations import (
    legendre_transform,
    log_mgf,
    rate_function,
    renyi_cross_entropy,
    scgf,
    scgf_renyi,
)
from oraclerl.errors import ConfigError, RevealError
from oraclerl.inference.sample_based import (
    BestOfN,
    BestOfNConfig,
    BestOfPoisson,
    BestOfPoissonConfig,
    RejectionSampling,
    RejectionSamplingConfig,
    SoftBestOfN,
    SoftBestOfNConfig,
)
from oraclerl.inference.softmax_sampler import (
    SoftmaxSampler,
    SoftmaxSamplerConfig,
    SoftmaxSamplerDensity,
    autoregressive_draw,
    max_draws,
    num_normaliser_draws,
    sampler_log_law,
    softmax_sampler,
    weak_draw,
)
from oraclerl.inference.tilt import kl_reward_frontier, monotone_root, reference_inputs, tilt, tilt_to_mean
from oraclerl.oracles import Ledger
from oraclerl.oracles.samplers import Samples

tilt_mod = importlib.import_module("oraclerl.inference.tilt")   # the package re-exports a function `tilt`
ss_mod = importlib.import_module("oraclerl.inference.softmax_sampler")
sb_mod = importlib.import_module("oraclerl.inference.sample_based")


def _raises(field, msg, fn, *a, **kw):
    """``fn(*a, **kw)`` raises ConfigError with this field and exactly this message."""
    with pytest.raises(ConfigError) as e:
        fn(*a, **kw)
    assert e.value.field == field
    assert str(e.value) == f"{field}: {msg}"


# ----------------------------------------------------------------------------------------------------
# plain-Python references of the tilt


def _py_tilt(p, r, lam):
    """(φ_λ, KL(φ_λ‖p), E_φλ r, log Σ p e^{λ(r − r_max)}) for lists p, r and a finite λ ≥ 0 (r_max on the
    support)."""
    top = max(ri for pi, ri in zip(p, r) if pi > 0)
    w = [pi * math.exp(lam * (ri - top)) if pi > 0 else 0.0 for pi, ri in zip(p, r)]
    z = sum(w)
    phi = [wi / z for wi in w]
    kl = sum(f * math.log(f / pi) for f, pi in zip(phi, p) if f > 0)
    return phi, kl, sum(f * ri for f, ri in zip(phi, r)), math.log(z)


def _py_lam(p, r, delta):
    """λ_Δ with KL(φ_λ‖p) = Δ, by bisection in plain Python (Δ < Δ_max)."""
    lo, hi = 0.0, 1.0
    while _py_tilt(p, r, hi)[1] < delta:
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if _py_tilt(p, r, mid)[1] < delta else (lo, mid)
    return 0.5 * (lo + hi)


def _close(a, b, tol):
    a = [float(x) for x in (a.tolist() if isinstance(a, torch.Tensor) else a)]
    b = [float(x) for x in b]
    assert len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b)), (a, b)


P4 = [0.4, 0.3, 0.2, 0.1]
R4 = [0.1, 1.0 / 3.0, -0.7, 1.3]


# ----------------------------------------------------------------------------------------------------
# inference/tilt.py


def test_tilt_error_messages_name_their_field():
    """Kills reference_inputs_8-11, _53-58, _69-75, _80-85, _92, _103-108 and tilt_5, _10-12, _45, _48-54,
    _62-69, kl_reward_frontier_11-17, _24-29 (message / field mutants): exact field and message of every
    error."""
    p, r = [0.5, 0.3, 0.2], [0.0, 1.0, 2.0]
    _raises(
        "p", "pass exactly one of p= (probabilities) or log_p= (log-probabilities)", reference_inputs, None, r
    )
    _raises("q", "pass exactly one of q= (probabilities) or log_q= (log-probabilities)", reference_inputs,
            p, r, log_p=[0.0, 0.0, 0.0], p_name="q")
    _raises("r", "rewards are required", reference_inputs, p, None)
    _raises("s", "rewards are required", reference_inputs, p, None, r_name="s")
    _raises("r", "must be a non-empty tensor [..., Y]", reference_inputs, p, torch.tensor(1.0))
    _raises("r", "must be a non-empty tensor [..., Y]", reference_inputs, p, torch.zeros(0))
    _raises("r", "rewards must be finite (found NaN or inf)", reference_inputs, p, [0.0, math.inf, 1.0])
    _raises("r", "rewards must be finite (found NaN or inf)", reference_inputs, p, [0.0, math.nan, 1.0])
    _raises("r", "last dim must match p (3), got (2,)", reference_inputs, p, [0.0, 1.0])
    _raises("r", "shape (3, 3) does not broadcast with p (2, 3)", reference_inputs,
            torch.tensor([p, p], dtype=torch.float64), torch.zeros(3, 3))
    _raises("log_p", "log-probabilities must be <= 0", reference_inputs, log_p=[0.5, -1.0, -2.0], r=r)
    _raises("kl", "pass exactly one of kl=Δ (constraint) or beta=β (penalty)", tilt, p, r)
    _raises("kl", "pass exactly one of kl=Δ (constraint) or beta=β (penalty)", tilt, p, r, kl=0.1, beta=1.0)
    _raises("kl", "must be >= 0, got -0.1", tilt, p, r, kl=-0.1)
    _raises("kl", "must be >= 0, got [0.1, nan]", tilt, p, r, kl=[0.1, math.nan])
    _raises("beta", "must be > 0, got 0.0", tilt, p, r, beta=0.0)
    _raises("beta", "must be > 0, got [1.0, -2.0]", tilt, p, r, beta=[1.0, -2.0])
    _raises("kl", "shape (3,) does not broadcast with the batch (2,)", tilt,
            torch.tensor([p, p], dtype=torch.float64), r, kl=[0.1, 0.2, 0.3])
    _raises("beta", "shape (4,) does not broadcast with the batch (2, 3)", tilt,
            torch.tensor([p] * 6, dtype=torch.float64).reshape(2, 3, 3), r, beta=[1.0, 2.0, 3.0, 4.0])
    _raises("p", "kl_reward_frontier takes one reference law [Y], got shape (2, 3)", kl_reward_frontier,
            torch.tensor([p, p], dtype=torch.float64), r)
    for bad in (1, 0, 2.0, 5.0, True, "3"):
        _raises("num", f"must be an integer >= 2, got {bad!r}", kl_reward_frontier, p, r, num=bad)


def test_tilt_small_beta_is_accepted_and_matches_the_gibbs_form():
    """Kills tilt_43 (β ≤ 1 rejected) and tilt_178 (Δ_max ≤ 1 treated as saturated in the β form): β = 0.25
    on a law whose top outcome has mass 0.4 (Δ_max = 0.92) is the finite tilt p·e^{r/β}/Z."""
    p, r = [0.4, 0.35, 0.25], [1.0, 0.25, -0.5]
    for beta in (0.25, 1.0, 3.0):
        res = tilt(p, r, beta=beta)
        phi, kl, rew, log_z = _py_tilt(p, r, 1 / beta)
        _close(res.probs, phi, 1e-14)
        assert float(res.lam) == pytest.approx(1 / beta, rel=1e-14)
        assert float(res.kl) == pytest.approx(kl, abs=1e-14)
        assert float(res.reward) == pytest.approx(rew, abs=1e-14)
        assert float(res.log_mgf_shifted) == pytest.approx(log_z, abs=1e-14)


def test_tilt_constant_reward_in_the_beta_form_reports_lambda_zero():
    """Kills tilt_175 / _177 (the β form does not treat a constant reward as saturated): Δ_max = 0 leaves p
    unchanged for every β and λ is reported as 0, KL as 0; a β that overflows 1/β (1e-310) is the saturated
    law p(·|argmax r)."""
    p = [0.5, 0.3, 0.2]
    res = tilt(p, [0.7, 0.7, 0.7], beta=0.5)
    assert float(res.lam) == 0.0 and float(res.kl) == 0.0
    _close(res.probs, p, 1e-15)
    assert float(res.reward) == pytest.approx(0.7, abs=1e-15)
    assert float(res.log_mgf_shifted) == pytest.approx(0.0, abs=1e-15)
    sat = tilt(p, [0.0, 2.0, 2.0], beta=1e-310)
    assert math.isinf(float(sat.lam))
    _close(sat.probs, [0.0, 0.6, 0.4], 1e-15)
    assert float(sat.kl) == pytest.approx(math.log(2), abs=1e-15)
    assert float(sat.log_mgf_shifted) == pytest.approx(math.log(0.5), abs=1e-15)


def test_tilt_input_dtypes_and_normalisation():
    """Kills reference_inputs_19 / _21 / _38 / _40 / _61 / _63 (p, log p or r read as float32 from Python
    lists), _24 / _28 / _31 (p not divided by its sum, or by a sum without keepdim), _42 / _49 (log p not
    normalised, or along dim 1): inputs off by 5e-7 of normalised, in [Y], [3, Y] and [2, 3, Y], against
    the normalised law."""
    delta = 0.35
    q = [x * (1 + 5e-7) for x in P4]                              # sums to 1 + 5e-7 (within the 1e-6 check)
    qn = [x / sum(q) for x in q]
    lam = _py_lam(qn, R4, delta)
    phi, _, rew, log_z = _py_tilt(qn, R4, lam)
    res = tilt(q, R4, kl=delta)                                   # Python lists: read in float64
    assert res.log_probs.dtype == torch.float64
    _close(res.probs, phi, 1e-12)
    assert float(res.reward) == pytest.approx(rew, abs=1e-12)
    assert float(res.lam) == pytest.approx(lam, rel=1e-9)
    assert float(res.log_mgf_shifted) == pytest.approx(log_z, abs=1e-12)
    logq = [math.log(x) for x in q]                               # logsumexp = 5e-7
    res = tilt(log_p=logq, r=R4, kl=delta)
    _close(res.probs, phi, 1e-12)
    assert float(res.reward) == pytest.approx(rew, abs=1e-12)
    # batched: rows of different normalisation errors, [3, Y] and [2, 3, Y]
    rows = [[x * (1 + e) for x in P4] for e in (5e-7, -4e-7, 2e-7)]
    want = []
    for row in rows:
        rn = [x / sum(row) for x in row]
        want.append(_py_tilt(rn, R4, _py_lam(rn, R4, delta))[0])
    got = tilt(torch.tensor(rows, dtype=torch.float64), R4, kl=delta).probs
    for g, w in zip(got, want):
        _close(g, w, 1e-12)
    # [2, 3, Y]
    lrows = torch.tensor([[[math.log(x) for x in row] for row in rows]] * 2, dtype=torch.float64)
    got = tilt(log_p=lrows, r=R4, kl=delta).probs
    for b in range(2):
        for g, w in zip(got[b], want):
            _close(g, w, 1e-12)
    # a float32 tensor p is read in float64 (its float32 values, not re-rounded results)
    p32 = torch.tensor(P4, dtype=torch.float32)
    p64 = [float(x) for x in p32.double()]
    p64 = [x / sum(p64) for x in p64]
    res = tilt(p32, torch.tensor(R4, dtype=torch.float32), kl=delta)
    r32 = [float(x) for x in torch.tensor(R4, dtype=torch.float32).double()]
    assert res.probs.dtype == torch.float64
    _close(res.probs, _py_tilt(p64, r32, _py_lam(p64, r32, delta))[0], 1e-12)


def test_tilt_reward_edges_single_outcome_and_broadcasting():
    """Kills reference_inputs_64 (a 0-d r accepted), _68 (one outcome rejected), _99-102 (p and r broadcast
    wrongly) and tilt_56 / _58 / _61 (the batch shape from Δ alone, or from p.shape[:-2])."""
    one = tilt([1.0], [2.0], kl=0.3)
    assert float(one.probs[0]) == 1.0 and float(one.kl) == 0.0 and float(one.reward) == 2.0
    p = torch.tensor([P4, [0.25, 0.25, 0.25, 0.25]], dtype=torch.float64)
    r2 = torch.tensor([R4, [1.0, 0.0, 0.5, -1.0]], dtype=torch.float64)
    for pp, rr, shape in ((p, R4, (2, 4)), (P4, r2, (2, 4)), (p, r2, (2, 4))):
        lp, rb = reference_inputs(pp, rr)
        assert tuple(lp.shape) == shape and tuple(rb.shape) == shape
        res = tilt(pp, rr, kl=0.2)                           # scalar Δ against a [2] batch
        assert tuple(res.probs.shape) == shape
        for b in range(2):
            pb = [float(x) for x in torch.as_tensor(pp, dtype=torch.float64).expand(shape)[b]]
            rbl = [float(x) for x in torch.as_tensor(rr, dtype=torch.float64).expand(shape)[b]]
            _close(res.probs[b], _py_tilt(pb, rbl, _py_lam(pb, rbl, 0.2))[0], 1e-12)
    # p [2, 3, Y] with Δ [3]: batch (2, 3)
    p3 = torch.tensor([[P4, [0.25] * 4, [0.1, 0.2, 0.3, 0.4]]] * 2, dtype=torch.float64)
    kl = torch.tensor([0.05, 0.2, 0.4], dtype=torch.float64)
    res = tilt(p3, R4, kl=kl)
    assert tuple(res.kl.shape) == (2, 3)
    _close(res.kl.reshape(-1), [0.05, 0.2, 0.4] * 2, 1e-12)
    for j in range(3):
        pj = [float(x) for x in p3[0, j]]
        _close(res.probs[1, j], _py_tilt(pj, R4, _py_lam(pj, R4, float(kl[j])))[0], 1e-12)


def test_tilt_zero_mass_outcome_with_the_top_reward():
    """Kills tilt_82 (`log_p >= -inf`: a zero-mass outcome counted in the support) and
    kl_reward_frontier_31 / _42 (the same in the frontier's Δ_max): the zero-mass outcome carries the
    largest reward, so r_max, Δ_max and the saturated law are those of the support only."""
    p, r = [0.5, 0.3, 0.2, 0.0], [0.0, 1.0, 2.0, 5.0]
    res = tilt(p, r, kl=0.5)
    lam = _py_lam(p, r, 0.5)
    phi, _, rew, log_z = _py_tilt(p, r, lam)
    _close(res.probs, phi, 1e-12)
    assert float(res.probs[3]) == 0.0 and math.isinf(float(res.log_probs[3]))
    assert float(res.log_mgf_shifted) == pytest.approx(log_z, abs=1e-12)     # Λ(λ) − λ·2, not − λ·5
    sat = tilt(p, r, kl=3.0)
    assert math.isinf(float(sat.lam))
    _close(sat.probs, [0.0, 0.0, 1.0, 0.0], 0.0)
    assert float(sat.kl) == pytest.approx(-math.log(0.2), abs=1e-15)
    assert float(sat.log_mgf_shifted) == pytest.approx(math.log(0.2), abs=1e-15)
    fr = kl_reward_frontier(p, r, num=5)
    _close(fr.kl, [i * -math.log(0.2) / 4 for i in range(5)], 1e-12)
    assert math.isinf(float(fr.lam[-1])) and float(fr.reward[-1]) == 2.0


def test_tilt_batched_rows_keep_their_own_reward_range():
    """Kills tilt_85 / _87 / _104 / _106 (r_max / r_min over the whole batch instead of per row): two rows
    with different reward ranges, one of them saturated, and two rows of reward ranges 1e-60 and 12 (a
    batch-wide scale would need λ ≈ 1e61 in the first row), against the per-row references."""
    p = torch.tensor([P4, [0.1, 0.2, 0.3, 0.4]], dtype=torch.float64)
    r = torch.tensor([R4, [10.0, 20.0, 15.0, 12.0]], dtype=torch.float64)
    kl = torch.tensor([0.3, 5.0], dtype=torch.float64)                    # row 1: Δ ≥ Δ_max = −log 0.2
    res = tilt(p, r, kl=kl)
    lam = _py_lam(P4, R4, 0.3)
    phi, _, rew, log_z = _py_tilt(P4, R4, lam)
    _close(res.probs[0], phi, 1e-12)
    assert float(res.lam[0]) == pytest.approx(lam, rel=1e-9)
    _close(res.log_mgf_shifted, [log_z, math.log(0.2)], 1e-12)
    _close(res.probs[1], [0.0, 1.0, 0.0, 0.0], 0.0)
    assert math.isinf(float(res.lam[1])) and float(res.reward[1]) == 20.0
    _close(res.kl, [0.3, -math.log(0.2)], 1e-12)
    # rows of reward ranges 1e-60 and 12 (the second one's r_min far below the first one's)
    tiny = [1e-60 * v for v in R4]
    r = torch.tensor([tiny, [-10.0, 0.0, 1.0, 2.0]], dtype=torch.float64)
    res = tilt(torch.tensor([P4, P4], dtype=torch.float64), r, kl=0.3)
    _close(res.probs[0], phi, 1e-12)
    assert float(res.lam[0]) == pytest.approx(lam * 1e60, rel=1e-9)
    lam1 = _py_lam(P4, [-10.0, 0.0, 1.0, 2.0], 0.3)
    _close(res.probs[1], _py_tilt(P4, [-10.0, 0.0, 1.0, 2.0], lam1)[0], 1e-12)


def test_tilt_is_invariant_under_affine_rewards_at_extreme_scales():
    """Kills tilt_124 and tilt_to_mean_17 (the reward range clamped at 1 instead of 1e-300: a range of
    1e-60 then needs λ ≈ 1e60, beyond the bracket) and tilt_to_mean_16 (`top + low`: negative rewards): the
    tilt of c·r + b is the tilt of r with λ/c, for c ∈ {1e-60, 1, 1e60} and b = −3."""
    base = tilt(P4, R4, kl=0.4)
    th = tilt_to_mean(torch.tensor(P4, dtype=torch.float64).log(), torch.tensor(R4, dtype=torch.float64),
                      torch.tensor([0.0, 0.9], dtype=torch.float64))
    for c in (1e-60, 1.0, 1e60):
        r = [c * x - 3.0 * c for x in R4]
        res = tilt(P4, r, kl=0.4)
        _close(res.probs, base.probs, 1e-12)
        assert float(res.lam) == pytest.approx(float(base.lam) / c, rel=1e-9)
        pen = tilt(P4, r, beta=c / float(base.lam))
        _close(pen.probs, base.probs, 1e-12)
        got = tilt_to_mean(torch.tensor(P4, dtype=torch.float64).log(), torch.tensor(r, dtype=torch.float64),
                           torch.tensor([c * 0.0 - 3.0 * c, c * 0.9 - 3.0 * c], dtype=torch.float64))
        _close(got * c, th, 1e-9 * float(th.abs().max()))


def test_kl_reward_frontier_grid_log_p_and_lambda():
    """Kills kl_reward_frontier_1 (default num 102), _5 / _8 (log_p= dropped), _19 / _20 (a float num
    accepted), _22 / _23 (num = 2 rejected), _49 / _53 / _57 / _59 (the Δ grid in float32), _54 (grid from
    1) and _73 (λ dropped): the default grid has 101 points from 0 to Δ_max in float64, λ by bisection in
    plain Python."""
    p, r = [0.6, 0.3, 0.1], [0.0, 1.0, 2.0]
    kmax = -math.log(0.1)
    fr = kl_reward_frontier(p, r)
    assert fr.kl.shape == (101,) and fr.kl.dtype == torch.float64
    _close(fr.kl, [kmax * i / 100 for i in range(101)], 1e-12)
    assert abs(float(fr.kl[0])) <= 1e-15 and float(fr.lam[0]) == 0.0
    assert float(fr.reward[0]) == pytest.approx(0.5, abs=1e-15)
    for i in (10, 50, 90):
        assert float(fr.lam[i]) == pytest.approx(_py_lam(p, r, kmax * i / 100), rel=1e-9)
    lfr = kl_reward_frontier(log_p=[math.log(x) for x in p], r=r, num=2)
    _close(lfr.kl, [0.0, kmax], 1e-12)
    assert math.isinf(float(lfr.lam[1])) and float(lfr.reward[1]) == 2.0
    given = kl_reward_frontier(p, r, kl=[0.1, 0.3])
    _close(given.kl, [0.1, 0.3], 1e-13)
    _close(given.lam, [_py_lam(p, r, 0.1), _py_lam(p, r, 0.3)], 1e-9)
    _close(given.reward, [_py_tilt(p, r, _py_lam(p, r, d))[2] for d in (0.1, 0.3)], 1e-12)


def _counting(fn):
    calls = [0]

    def wrapped(*a, **kw):
        calls[0] += 1
        return fn(*a, **kw)

    return wrapped, calls


def test_tilt_to_mean_batched_and_dtype():
    """Kills tilt_to_mean_3 / _5 (x read in float32), _7 / _11 (r_max / r_min over the batch: rows of
    scales 1e-60 and 1), _37 (the variance summed along dim 1 for an x of shape [2, 3])."""
    lp = torch.tensor(P4, dtype=torch.float64).log()
    r = torch.tensor(R4, dtype=torch.float64)
    x = [0.1, 1.0 / 3.0, -0.5, 1.2]
    th = tilt_to_mean(lp, r, x)                                              # a Python list: float64
    for ti, xi in zip(th.tolist(), x):
        w = [pi * math.exp(ti * ri) for pi, ri in zip(P4, R4)]
        assert sum(wi * ri for wi, ri in zip(w, R4)) / sum(w) == pytest.approx(xi, abs=1e-13)
    grid = torch.tensor([[0.1, 0.5, 1.0], [-0.6, 0.0, 1.25]], dtype=torch.float64)
    th2 = tilt_to_mean(lp, r, grid)
    assert th2.shape == (2, 3)
    _close(th2.reshape(-1), tilt_to_mean(lp, r, grid.reshape(-1)), 1e-12)
    rows_r = torch.tensor([[1e-60 * v for v in R4], R4], dtype=torch.float64)
    xs = torch.tensor([1e-60 * 0.5, 0.5], dtype=torch.float64)
    both = tilt_to_mean(lp.expand(2, 4), rows_r, xs)
    one = tilt_to_mean(lp, r, torch.tensor([0.5], dtype=torch.float64))
    assert float(both[0]) == pytest.approx(float(one[0]) * 1e60, rel=1e-9)
    assert float(both[1]) == pytest.approx(float(one[0]), rel=1e-12)



def test_tilt_saturates_at_and_one_ulp_below_delta_max():
    """Kills tilt_181 (Δ = Δ_max exactly not saturated) and tilt_182 (the rounding allowance 1e-14·Δ_max
    written 1e-14/Δ_max): with Δ_max = −log(4e-18) ≈ 40, Δ_max and its float64 predecessor both give λ = ∞
    and p(·|argmax r); 1e-12 below Δ_max is a finite tilt (KL = Δ)."""
    p, r = [0.6, 0.4, 4e-18], [0.0, 1.0, 2.0]
    kmax = -math.log(4e-18)
    for d in (kmax, math.nextafter(kmax, 0.0)):
        res = tilt(p, r, kl=d)
        assert math.isinf(float(res.lam)), d
        _close(res.probs, [0.0, 0.0, 1.0], 0.0)
        assert float(res.kl) == pytest.approx(kmax, rel=1e-15)
    res = tilt(p, r, kl=kmax - 1e-12)
    assert math.isfinite(float(res.lam)) and float(res.kl) == pytest.approx(kmax - 1e-12, abs=1e-13)


def test_tilt_tiny_delta_and_newton_evaluations(monkeypatch):
    """Kills monotone_root_39 (the residual tolerance clamped at 1 instead of 1e-300: Δ = 1e-12 stops 1e-3
    early) and tilt_205 / _207 (Var_φλ(r) written `* 2` or `** 3`: Newton's derivative is wrong, the
    safeguard falls back to bisection): λ_{1e-20} against the plain-Python bisection, and the root search
    of Δ ∈ {0.1, 0.9} takes at most 15 evaluations of the tilted law (measured: 10 and 8; bisection needs
    more than 40). Small Δ: KL(φ_λ‖p) = λ²Var_p(r)/2 + O(λ³), so λ_Δ = √(2Δ/Var_p r)·(1 + O(10⁻⁶)) at Δ =
    1e-12 (the float64 cancellation in λΛ' − Λ, about 1e-17, adds 5e-6)."""
    mean = sum(pi * ri for pi, ri in zip(P4, R4))
    var = sum(pi * (ri - mean) ** 2 for pi, ri in zip(P4, R4))
    res = tilt(P4, R4, kl=1e-12)
    assert float(res.lam) == pytest.approx(math.sqrt(2e-12 / var), rel=1e-4)
    wrapped, calls = _counting(tilt_mod._tilted)
    monkeypatch.setattr(tilt_mod, "_tilted", wrapped)
    for d in (0.1, 0.9):
        calls[0] = 0
        res = tilt(P4, R4, kl=d)
        assert calls[0] <= 15, (d, calls[0])
        assert float(res.lam) == pytest.approx(_py_lam(P4, R4, d), rel=1e-9)


def _recorded(fn):
    pts = []

    def g(x):
        pts.append(float(x[0]))
        return fn(x)

    return g, pts


def _T(*v):
    return torch.tensor(v, dtype=torch.float64)


def test_monotone_root_bracket_doubling_safeguard_and_stall():
    """Kills monotone_root_7 (bracket widened while value(hi) = target), _11 / _27 / _28 (the width not
    doubled: `hi + lo`, `2 / width`, `3 * width`), _31 (first iterate 1.5·(lo + hi), outside the bracket),
    _77 / _78 (a Newton step outside the bracket accepted), _73 / _75 (Newton step of the wrong sign), _98
    / _99 / _105 (the stall exit never taken, or returning None), _1 (max_iter 201). Documented behaviour:
    the bracket [lo, hi] is widened by doubling (hi = 1, 3, 7, 15, 31 from [0, 1]) until value(hi) ≥
    target, every later iterate stays inside the bracket, Newton converges in a few steps, at most max_iter
    = 200 iterations."""
    # atan(x − 20): a Newton step from 23 lands at 10.5, outside [15, 31]: bisection instead
    g, pts = _recorded(lambda x: (torch.atan(x - 20), 1 / (1 + (x - 20) ** 2)))
    x = monotone_root(g, _T(0.0), _T(0.0), _T(1.0))
    assert float(x[0]) == pytest.approx(20.0, abs=1e-13)
    assert pts[:5] == [1.0, 3.0, 7.0, 15.0, 31.0]
    assert all(15.0 < v < 31.0 for v in pts[5:]), pts
    assert len(pts) <= 16, len(pts)                                   # measured: 12
    # value(hi) equal to the target stops the widening: [15, 31] for the identity at 31
    g, pts = _recorded(lambda x: (x, torch.ones_like(x)))
    assert float(monotone_root(g, _T(31.0), _T(0.0), _T(1.0))[0]) == pytest.approx(31.0, abs=1e-13)
    assert pts[:5] == [1.0, 3.0, 7.0, 15.0, 31.0] and all(15.0 <= v <= 31.0 for v in pts[5:]), pts
    # e^x − 3 = 0 on [0, 1] → [1, 3]: the residual cannot reach 4 ulp of a zero target (it is 4e-16 at the
    # root) and the bracket stays wide (Newton approaches from above): only the stall test stops it
    g, pts = _recorded(lambda x: (torch.exp(x) - 3, torch.exp(x)))
    x = monotone_root(g, _T(0.0), _T(0.0), _T(1.0))
    assert x is not None and abs(float(x[0]) - math.log(3)) <= 4.5e-16
    assert len(pts) <= 12, len(pts)                                   # measured: 9
    # no root above lo (target below value(lo)): exactly 1 bracket check + max_iter = 200 iterations
    g, pts = _recorded(lambda x: (x, torch.ones_like(x)))
    x = monotone_root(g, _T(-3.0), _T(0.0), _T(1.0))
    assert len(pts) == 201 and 0.0 <= float(x[0]) < 1e-50
    g, pts = _recorded(lambda x: (x, torch.ones_like(x)))
    monotone_root(g, _T(-3.0), _T(0.0), _T(1.0), max_iter=7)
    assert len(pts) == 8


def test_monotone_root_small_negative_and_symmetric_brackets():
    """Kills monotone_root_39 / _65 / _70 / _101 (tolerances that stop early near a root of 1e-10: clamped
    at 1, or divided by |hi| / |x|), _63 (`hi + lo`: a negative bracket counts as converged) and _30 (first
    iterate 0.5/(lo + hi): infinite for a symmetric bracket)."""
    cube = lambda x: (x**3, 3 * x**2)  # noqa: E731
    assert float(monotone_root(cube, _T(1e-30), _T(0.0), _T(1.0))[0]) == pytest.approx(1e-10, rel=1e-13)
    assert float(monotone_root(cube, _T(-8.0), _T(-5.0), _T(-1.0))[0]) == pytest.approx(-2.0, rel=1e-15)
    x = float(monotone_root(lambda x: (x**3 + x, 3 * x**2 + 1), _T(0.5), _T(-1.0), _T(1.0))[0])
    assert x**3 + x == pytest.approx(0.5, abs=1e-15)
    # batched: each entry its own root
    got = monotone_root(cube, _T(1e-30, 8.0, 1e30), _T(0.0, 0.0, 0.0), _T(1.0, 1.0, 1.0))
    _close(got / _T(1e-10, 2.0, 1e10), [1.0, 1.0, 1.0], 1e-13)

# ----------------------------------------------------------------------------------------------------
# inference/softmax_sampler.py


class _TableDraw:
    """A weak oracle over a table π_ref [X, Y] (features and log π_ref revealed) that records every call."""

    def __init__(self, log_ref, prompts, seed, reveal=("features", "log_probs"), pairs=False):
        self.log_ref, self.prompts, self.pairs = log_ref, prompts, pairs
        X, Y = log_ref.shape
        self.feats = torch.arange(X * Y * 2, dtype=torch.float64).reshape(X, Y, 2) / 7
        self.gen = torch.Generator().manual_seed(seed)
        self.reveal = frozenset(reveal)
        self.calls = []

    def __call__(self, n, rows=None):
        p = self.prompts if rows is None else self.prompts[rows]
        y = torch.multinomial(self.log_ref[p].exp(), n, replacement=True, generator=self.gen)
        self.calls.append((n, None if rows is None else rows.tolist(), y.clone()))
        # [B, n, 2] token pairs, or [B, n]
        resp = torch.stack([y, 10 + y], -1) if self.pairs else y
        return Samples(p, resp, self.feats[p[:, None], y], self.log_ref[p[:, None], y], self.reveal, "Table")


def _replay(rec, f_of, beta, M, delta, coin_seed, chunk, row_aware):
    """Algorithm 1 in plain Python on the responses ``rec`` recorded and the coins of ``coin_seed`` (one
    float64 uniform per candidate, drawn per chunk for the rows still active, as documented): per row the
    response, acceptance flag, number of draws and log ρ; also checks which rows each call asked for."""
    N = math.ceil(4.0 * M * math.log(4.0 / delta))
    B = len(rec.prompts)
    chunk = min(N, max(1, math.ceil(M))) if chunk is None else min(N, chunk)
    coins = torch.Generator().manual_seed(coin_seed)
    calls = iter(rec.calls)
    n0, rows0, y0 = next(calls)
    assert n0 == N and rows0 is None
    log_z = []
    for b in range(B):
        v = [f_of(b, int(y)) / beta for y in y0[b]]
        top = max(v)
        log_z.append(top + math.log(sum(math.exp(x - top) for x in v)) - math.log(N))
    out = {b: None for b in range(B)}
    draws = [N] * B
    active, tried = list(range(B)), 0
    while active and tried < N:
        c = min(chunk, N - tried)
        n, rows, y = next(calls)
        assert n == c
        if row_aware:
            assert rows == (None if len(active) == B else active)
            ys = y
        else:
            assert rows is None
            ys = y[active]
        u = torch.rand((len(active), c), generator=coins, dtype=torch.float64).tolist()
        still = []
        for i, b in enumerate(active):
            draws[b] += c
            for k in range(c):
                yk = int(ys[i][k])
                fk = f_of(b, yk) / beta
                if math.log(u[i][k]) < min(0.0, fk - log_z[b] - math.log(M)):
                    out[b] = (yk, True, fk - log_z[b])
                    break
            else:
                still.append(b)
        active, tried = still, tried + c
    if active:
        n, rows, y = next(calls)
        assert n == 1 and rows == (None if len(active) == B or not row_aware else active)
        ys = y if row_aware else y[active]
        for i, b in enumerate(active):
            draws[b] += 1
            yk = int(ys[i][0])
            out[b] = (yk, False, f_of(b, yk) / beta - log_z[b])
    assert next(calls, None) is None
    return out, draws


def _check_replay(res, rec, out, draws, prompts):
    B = len(prompts)
    assert res.samples.responses.shape == ((B, 1, 2) if rec.pairs else (B, 1))
    for b in range(B):
        y, acc, log_rho = out[b]
        got = res.samples.responses[b, 0].tolist()
        assert got == ([y, 10 + y] if rec.pairs else y) and bool(res.accepted[b]) == acc, b
        assert int(res.draws[b]) == draws[b]
        assert float(res.log_density[b]) == pytest.approx(log_rho, abs=1e-12)
        x = int(prompts[b])
        assert torch.equal(res.samples.features[b, 0], rec.feats[x, y])
        assert float(res.samples.log_probs[b, 0]) == float(rec.log_ref[x, y])
    assert torch.equal(res.samples.prompts, prompts)
    # softmax_sampler_202
    assert res.samples.features.shape == (B, 1, 2) and res.samples.log_probs.shape == (B, 1)
    assert res.log_density.dtype == torch.float64 and res.draws.dtype == torch.long


LOG_REF = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.1, 0.2, 0.3, 0.4]], dtype=torch.float64))
F_TAB = torch.tensor([[0.0, 0.4, -0.3, 1.5], [0.2, -0.6, 0.9, 0.1]], dtype=torch.float64)


@pytest.mark.parametrize("row_aware", [True, False])
@pytest.mark.parametrize(
    "chunk, M, delta, beta",
    [
        (None, 2.5, 0.3, 0.4),
        (2, 1.0, 0.9, 0.1),
        (1, 1.7, 0.5, 0.4),
        (50, 1.2, 0.6, 0.4),
        (None, 1.0, 0.9, 0.3),
        (4, 1.0, 0.9, 0.1),
    ],
)
def test_softmax_sampler_replays_algorithm_1_draw_for_draw(row_aware, chunk, M, delta, beta):
    """Kills the softmax_sampler mutants of the candidate loop, the chunk size (default ceil(M) capped at
    N), the acceptance min{1, e^{f/β}/(Ẑ M)}, the draw counts, the failure branch, _store (responses,
    features and log π_ref of the accepted candidate, log ρ = f/β − log Ẑ), and the non-row-aware draw path
    (`pick`): the output equals a plain-Python transcription fed the same responses and coins, for 12 rows
    on 2 prompts (responses [B, n] or token pairs [B, n, 2]: softmax_sampler_165)."""
    prompts = torch.tensor([0, 1] * 6)
    rec = _TableDraw(LOG_REF, prompts, seed=3, pairs=not row_aware)
    f_of = lambda b, y: float(F_TAB[int(prompts[b]), y])  # noqa: E731
    def score(s):
        return F_TAB[s.prompts[:, None], s.responses if s.responses.dim() == 2 else s.responses[..., 0]]

    draw = rec if row_aware else (lambda n: rec(n))
    res = softmax_sampler(
        draw, score, beta, M, delta, generator=torch.Generator().manual_seed(11), chunk=chunk
    )
    out, draws = _replay(rec, f_of, beta, M, delta, 11, chunk, row_aware)
    _check_replay(res, rec, out, draws, prompts)
    if (chunk, M) in ((2, 1.0), (4, 1.0)):
        assert not res.accepted.all() and res.accepted.any()       # both branches are exercised
    # N = 6: a last chunk of 2 (softmax_sampler_231)
    if chunk == 4:
        assert any(c[0] == 2 for c in rec.calls)


def test_softmax_sampler_failure_branch_of_every_row_and_of_some_rows():
    """Kills softmax_sampler_299 (the failure branch asks for rows=[all] instead of all rows) and _310 (the
    failure branch scored without its rows): one row over 30 seeds (failures included), and 7 rows with a
    row-aware score some of which fail."""
    fails = 0
    for seed in range(30):
        prompts = torch.tensor([seed % 2])
        rec = _TableDraw(LOG_REF, prompts, seed=seed)
        res = softmax_sampler(rec, lambda s: F_TAB[s.prompts[:, None], s.responses], 0.1, 1.0, 0.9,
                              generator=torch.Generator().manual_seed(seed), chunk=2)
        out, draws = _replay(
            rec, lambda b, y, p=prompts: float(F_TAB[int(p[b]), y]), 0.1, 1.0, 0.9, seed, 2, True
        )
        _check_replay(res, rec, out, draws, prompts)
        fails += int(not res.accepted[0])
    assert fails >= 1
    prompts = torch.tensor([0, 1, 1, 0, 0, 1, 0])
    bias = torch.linspace(-0.5, 0.5, 7, dtype=torch.float64)

    def score(s, rows=None):
        return F_TAB[s.prompts[:, None], s.responses] + (bias if rows is None else bias[rows])[:, None]

    mixed = 0
    for seed in range(20):
        rec = _TableDraw(LOG_REF, prompts, seed=seed)
        res = softmax_sampler(
            rec, score, 0.05, 1.0, 0.9, generator=torch.Generator().manual_seed(seed), chunk=2
        )
        out, draws = _replay(
            rec, lambda b, y: float(F_TAB[int(prompts[b]), y] + bias[b]), 0.05, 1.0, 0.9, seed, 2, True
        )
        _check_replay(res, rec, out, draws, prompts)
        mixed += int(bool(res.accepted.any() and not res.accepted.all()))
    assert mixed >= 1


def test_softmax_sampler_row_aware_score_float32_and_config_classes():
    """Kills the mutants of the row-aware score path (`score(s, rows)` given the active rows, and all rows
    for the Ẑ draws), of the float64 casts of a float32 score (`f.double()` in log Ẑ, the acceptance and
    log ρ), and of SoftmaxSampler / SoftmaxSamplerDensity passing their config (M, δ, chunk) and generator
    on."""
    prompts = torch.tensor([0, 1, 1, 0, 0, 1, 0])
    B = len(prompts)
    bias = torch.linspace(-0.5, 0.5, B, dtype=torch.float64)
    seen = []

    def score(s, rows=None):
        seen.append(None if rows is None else rows.tolist())
        b = bias if rows is None else bias[rows]
        return (F_TAB[s.prompts[:, None], s.responses] + b[:, None]).float()

    f_of = lambda b, y: float((F_TAB[int(prompts[b]), y] + bias[b]).float())  # noqa: E731
    for cls in (SoftmaxSampler, SoftmaxSamplerDensity):
        seen.clear()
        rec = _TableDraw(LOG_REF, prompts, seed=5)
        # not the default chunk ceil(M) = 2
        cfg = SoftmaxSamplerConfig(M=1.5, delta=0.4, chunk=1)
        res = cls(cfg).sample(rec, score, 0.3, torch.Generator().manual_seed(8))
        out, draws = _replay(rec, f_of, 0.3, 1.5, 0.4, 8, 1, True)
        _check_replay(res, rec, out, draws, prompts)
        assert seen[0] is None and [c[1] for c in rec.calls] == seen
    # a draw that is not row-aware with a score that needs its rows (no default): all rows (None) every time
    seen.clear()
    rec = _TableDraw(LOG_REF, prompts, seed=6)

    def score_rows(s, rows):
        return score(s, rows)

    res2 = softmax_sampler(
        lambda n: rec(n), score_rows, 0.3, 1.5, 0.4, generator=torch.Generator().manual_seed(2)
    )
    out, draws = _replay(rec, f_of, 0.3, 1.5, 0.4, 2, None, False)
    _check_replay(res2, rec, out, draws, prompts)
    assert seen == [None] * len(rec.calls)
    rec = _TableDraw(LOG_REF, prompts, seed=5)
    samples, log_rho = SoftmaxSamplerDensity(SoftmaxSamplerConfig(M=1.5, delta=0.4, chunk=1)).sample_density(
        rec, score, 0.3, torch.Generator().manual_seed(8))
    assert torch.equal(samples.responses, res.samples.responses) and torch.equal(log_rho, res.log_density)


def _py_conditional(ref, w, zm, N):
    """Law of the output given Ẑ·M = zm: N candidates accepted w.p. min{1, w/zm}, then a fresh π_ref draw."""
    a = [min(1.0, wi / zm) for wi in w]
    pacc = sum(ri * ai for ri, ai in zip(ref, a))
    fail = (1.0 - min(pacc, 1.0)) ** N
    return [(1.0 - fail) * ri * ai / pacc + fail * ri for ri, ai in zip(ref, a)]


def _py_sampler_law(ref, f, beta, M, delta, normaliser):
    """SoftmaxSampler's law in plain Python: Ẑ = Z, or Ẑ averaged over all Y^N tuples of its own N draws."""
    N = math.ceil(4.0 * M * math.log(4.0 / delta))
    w = [math.exp(fi / beta) for fi in f]
    if normaliser == "exact":
        return _py_conditional(ref, w, sum(ri * wi for ri, wi in zip(ref, w)) * M, N)
    out = [0.0] * len(ref)
    for t in itertools.product(range(len(ref)), repeat=N):
        pr = math.prod(ref[i] for i in t)
        if pr == 0.0:
            continue
        cond = _py_conditional(ref, w, sum(w[i] for i in t) / N * M, N)
        out = [o + pr * c for o, c in zip(out, cond)]
    return out


@pytest.mark.parametrize("ref, f, beta, M, delta", [
    ([0.5, 0.3, 0.2], [0.0, 0.8, -0.4], 0.5, 1.0, 0.9),       # N = 6, clipping (M below the density ratio)
    ([0.6, 0.4, 0.0], [0.3, -0.2, 2.0], 0.7, 1.2, 0.9),       # N = 8, a zero-mass outcome
    # constant f with M = 1: every candidate accepted
    ([0.25, 0.25, 0.5], [0.1, 0.1, 0.1], 1.0, 1.0, 0.9),
])
def test_sampler_log_law_against_enumeration_of_the_rejection_loop(ref, f, beta, M, delta):
    """Kills the mutants of sampler_log_law, _conditional_log_law and _compositions (no test reached them):
    the law with Ẑ = Z and the law averaged over the sampler's own Ẑ equal the plain-Python enumeration of
    the N-tuples of the Ẑ draws and of the rejection loop, to 1e-13; f in float32 is read in the dtype of
    log π_ref; a [2, Y] batch of f broadcasts against one log π_ref [Y]."""
    lr = torch.log(torch.tensor(ref, dtype=torch.float64))
    for norm in ("exact", "estimated"):
        got = sampler_log_law(lr, torch.tensor(f, dtype=torch.float64), beta, M, delta, normaliser=norm)
        assert got.dtype == torch.float64 and got.shape == (3,)
        _close(got.exp(), _py_sampler_law(ref, f, beta, M, delta, norm), 1e-13)
    f32 = torch.tensor(f, dtype=torch.float32)
    want = _py_sampler_law(ref, [float(x) for x in f32.double()], beta, M, delta, "estimated")
    got = sampler_log_law(lr, f32, beta, M, delta, normaliser="estimated")
    assert got.dtype == torch.float64
    _close(got.exp(), want, 1e-13)
    f2 = torch.tensor([f, [x * 0.5 for x in f]], dtype=torch.float64)
    both = sampler_log_law(lr, f2, beta, M, delta, normaliser="estimated")
    assert both.shape == (2, 3)
    _close(both[1].exp(), _py_sampler_law(ref, [x * 0.5 for x in f], beta, M, delta, "estimated"), 1e-13)
    assert sampler_log_law(lr, f2, beta, M, delta).shape == (2, 3)


def test_sampler_log_law_default_is_exact_and_its_errors():
    """Kills the default normaliser ("exact"), the max_compositions default (200 000) and limit (`>`:
    exactly the limit is allowed) and the error-message mutants of sampler_log_law."""
    ref, f = [0.5, 0.3, 0.2], [0.0, 0.8, -0.4]
    lr = torch.log(torch.tensor(ref, dtype=torch.float64))
    ft = torch.tensor(f, dtype=torch.float64)
    assert torch.equal(
        sampler_log_law(lr, ft, 0.5, 1.0, 0.9), sampler_log_law(lr, ft, 0.5, 1.0, 0.9, "exact")
    )
    _raises(
        "normaliser",
        "must be 'exact' or 'estimated', got 'Exact'",
        sampler_log_law,
        lr,
        ft,
        0.5,
        1.0,
        0.9,
        normaliser="Exact",
    )
    # N = 6, Y = 3: C(8, 2) = 28 count vectors
    sampler_log_law(lr, ft, 0.5, 1.0, 0.9, normaliser="estimated", max_compositions=28)
    _raises(
        "normaliser",
        "'estimated' enumerates C(N+Y-1, Y-1) = 28 count vectors (N = 6, Y = 3) > "
        "max_compositions = 27; use 'exact'",
        sampler_log_law,
        lr,
        ft,
        0.5,
        1.0,
        0.9,
        normaliser="estimated",
        max_compositions=27,
    )
    # M = 4, δ = 0.05: N = 71, Y = 3 gives C(73, 2) = 2628 vectors (allowed by default); Y = 6: C(76, 5) > 2e5
    sampler_log_law(lr, ft, 0.5, 4.0, 0.05, normaliser="estimated")
    lr6 = torch.full((6,), -math.log(6), dtype=torch.float64)
    n6 = math.comb(76, 5)
    _raises(
        "normaliser",
        f"'estimated' enumerates C(N+Y-1, Y-1) = {n6} count vectors (N = 71, Y = 6) > "
        "max_compositions = 200000; use 'exact'",
        sampler_log_law,
        lr6,
        torch.zeros(6, dtype=torch.float64),
        0.5,
        4.0,
        0.05,
        normaliser="estimated",
    )


def test_softmax_sampler_constants_config_and_errors():
    """Kills num_normaliser_draws / max_draws mutants, the SoftmaxSamplerConfig defaults (M = 4, δ = 0.05,
    chunk None), its N / max_draws properties and __post_init__ checks, SoftmaxSampler's default config,
    the softmax_sampler argument checks and the score-shape message, and _accepts_rows on a builtin without
    a signature."""
    for M, delta in ((1.0, 0.9), (2.5, 0.3), (4.0, 0.05), (37.3, 1e-3)):
        n = math.ceil(4.0 * M * math.log(4.0 / delta))
        assert num_normaliser_draws(M, delta) == n and max_draws(M, delta) == 2 * n + 1
    cfg = SoftmaxSamplerConfig()
    assert (cfg.M, cfg.delta, cfg.chunk) == (4.0, 0.05, None)
    assert cfg.N == 71 and cfg.max_draws == 143
    assert SoftmaxSamplerConfig(M=2.5, delta=0.3, chunk=3).N == math.ceil(10 * math.log(4 / 0.3))
    assert SoftmaxSampler().config == SoftmaxSamplerConfig() and SoftmaxSamplerDensity().config.M == 4.0
    _raises("M", "must be in [1.0, inf], got 0.5", SoftmaxSamplerConfig, M=0.5)
    _raises("delta", "must be in (0.0, 1.0), got 1.0", SoftmaxSamplerConfig, delta=1.0)
    _raises("delta", "must be in (0.0, 1.0), got 0.0", SoftmaxSamplerConfig, delta=0.0)
    _raises("chunk", "must be >= 1, got 0", SoftmaxSamplerConfig, chunk=0)
    _raises("chunk", "must be an integer, got 1.5", SoftmaxSamplerConfig, chunk=1.5)
    SoftmaxSamplerConfig(M=1.0, delta=0.5, chunk=1)                     # the edges are allowed
    prompts = torch.tensor([0, 1])
    score = lambda s: F_TAB[s.prompts[:, None], s.responses]  # noqa: E731
    rec = _TableDraw(LOG_REF, prompts, seed=0)
    _raises("beta", "must be > 0, got -1.0", softmax_sampler, rec, score, -1.0, 2.0, 0.1)
    _raises("M", "must be in [1.0, inf], got 0.9", softmax_sampler, rec, score, 0.5, 0.9, 0.1)
    _raises("delta", "must be in (0.0, 1.0), got 1.0", softmax_sampler, rec, score, 0.5, 2.0, 1.0)
    _raises("chunk", "must be >= 1, got 0", softmax_sampler, rec, score, 0.5, 2.0, 0.1, chunk=0)
    N = num_normaliser_draws(2.0, 0.1)
    _raises("score", f"must return shape (B, n) = (2, {N}), got (2, {N}, 1)", softmax_sampler, rec,
            lambda s: score(s)[..., None], 0.5, 2.0, 0.1)
    _raises("score", f"must return shape (B, n) = (2, {N}), got (2, {N - 1})", softmax_sampler, rec,
            lambda s: score(s)[:, 1:], 0.5, 2.0, 0.1)
    assert ss_mod._accepts_rows(min) is False                           # no signature: ValueError
    assert ss_mod._accepts_rows(lambda n: n) is False and ss_mod._accepts_rows(lambda n, rows=None: n) is True


@pytest.mark.parametrize("reveal", [(), ("features",), ("log_probs",)])
def test_softmax_sampler_reveals_what_the_draws_reveal(reveal):
    """Kills _maybe / reveal-set mutants: the output reveals exactly the fields its draws revealed (reading
    any other raises RevealError), with the values of the chosen candidate."""
    prompts = torch.tensor([0, 1, 0])
    rec = _TableDraw(LOG_REF, prompts, seed=2, reveal=reveal)
    res = softmax_sampler(rec, lambda s: F_TAB[s.prompts[:, None], s.responses], 0.5, 2.0, 0.2,
                          generator=torch.Generator().manual_seed(1))
    y = res.samples.responses[:, 0]
    for field in ("features", "log_probs"):
        if field in reveal:
            want = rec.feats[prompts, y] if field == "features" else rec.log_ref[prompts, y]
            assert torch.equal(getattr(res.samples, field)[:, 0], want)
        else:
            # softmax_sampler_344-354
            with pytest.raises(RevealError, match="^SoftmaxSampler does not reveal"):
                getattr(res.samples, field)


class _FakeOracle:
    def __init__(self):
        self.calls = []

    def sample(self, prompts, n, generator):
        assert prompts.dtype == torch.long
        self.calls.append(("sample", prompts.tolist(), n, generator))
        return "S"

    def next_token(self, prompts, prefixes, n, generator=None):
        assert prompts.dtype == prefixes.dtype == torch.long
        self.calls.append(("next_token", prompts.tolist(), prefixes.tolist(), n, generator))
        return "T"


def test_weak_and_autoregressive_draws_pass_the_rows_on():
    """Kills the weak_draw / autoregressive_draw mutants (no test reached autoregressive_draw's rows): all
    rows when rows is None, else prompts[rows] (and prefixes[rows]), n and the generator passed on, ids as
    int64."""
    g = torch.Generator().manual_seed(0)
    weak = _FakeOracle()
    d = weak_draw(weak, [2, 0, 1], g)
    assert d(3) == "S" and d(2, torch.tensor([2, 0])) == "S"
    assert weak.calls == [("sample", [2, 0, 1], 3, g), ("sample", [1, 2], 2, g)]
    auto = _FakeOracle()
    d = autoregressive_draw(auto, [2, 0, 1], [[5, 6], [7, 8], [9, 4]], g)
    assert d(4) == "T" and d(1, torch.tensor([1])) == "T"
    assert auto.calls == [("next_token", [2, 0, 1], [[5, 6], [7, 8], [9, 4]], 4, g),
                          ("next_token", [0], [[7, 8]], 1, g)]
    d = weak_draw(weak, torch.tensor([1.0, 0.0]))
    d(1)
    assert weak.calls[-1] == ("sample", [1, 0], 1, None)
    assert auto.calls and autoregressive_draw(auto, torch.tensor([1.0]), torch.zeros(1, 0))(2) == "T"
    assert auto.calls[-1] == ("next_token", [1], [[]], 2, None)


def test_row_select_keeps_none_and_all_rows():
    """Kills _row_select_1-5 (a helper no code path reached): None stays None, rows=None keeps every row."""
    t = torch.arange(6).reshape(3, 2)
    assert ss_mod._row_select(None, torch.tensor([1])) is None
    assert ss_mod._row_select(t, None) is t
    assert torch.equal(ss_mod._row_select(t, torch.tensor([2, 0])), t[[2, 0]])


# ----------------------------------------------------------------------------------------------------
# diagnostics/large_deviations.py


def _py_log_mgf(p, r, s):
    v = [math.log(pi) + s * ri for pi, ri in zip(p, r) if pi > 0]
    top = max(v)
    return top + math.log(sum(math.exp(x - top) for x in v))


def _py_theta(p, r, x):
    """θ with Λ'(θ) = x (r_min < x < r_max on the support), plain-Python bisection."""
    def mean(th):
        w = [
            math.exp(math.log(pi) + th * ri - _py_log_mgf(p, r, th)) if pi > 0 else 0.0
            for pi, ri in zip(p, r)
        ]
        return sum(wi * ri for wi, ri in zip(w, r))
    lo, hi = -1.0, 1.0
    while mean(lo) > x:
        lo *= 2
    while mean(hi) < x:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if mean(mid) < x else (lo, mid)
    return 0.5 * (lo + hi)


def _py_rate(p, r, lam, x):
    """I_λ(x) = Λ*(x) − λx + Λ(λ): Λ*(x) = θx − Λ(θ) inside, −log p(r = x) at an end point, +∞ outside."""
    sup = [ri for pi, ri in zip(p, r) if pi > 0]
    if x > max(sup) or x < min(sup):
        return math.inf
    if x in (max(sup), min(sup)):
        star = -math.log(sum(pi for pi, ri in zip(p, r) if pi > 0 and ri == x))
    else:
        th = _py_theta(p, r, x)
        star = th * x - _py_log_mgf(p, r, th)
    return max(0.0, star - lam * x + _py_log_mgf(p, r, lam))


def _py_renyi(phi, psi, alpha):
    if alpha == 1:
        return -sum(f * math.log(q) for f, q in zip(phi, psi) if f > 0)
    return math.log(sum(f * q ** (alpha - 1) for f, q in zip(phi, psi) if f > 0)) / (1 - alpha)


PL = [0.35, 0.0, 0.25, 0.3, 0.1]          # a zero-mass outcome carrying the largest reward
RL = [0.0, 3.0, 1.0, 2.0, 2.0]            # ties at the top of the support (r = 2)


def test_large_deviation_errors_name_their_field():
    """Kills the message / field mutants of _token and _num (and the field names passed by each function)."""
    p, r = [0.5, 0.3, 0.2], [0.0, 1.0, 2.0]
    _raises("p", "must be one token law [V], got shape (2, 3)", log_mgf, [p, p], r, 0.5)
    _raises("s", "must not be NaN", log_mgf, p, r, [0.1, math.nan])
    _raises("lam", "must not be NaN", scgf, p, r, math.nan, 0.1)
    _raises("t", "must not be NaN", scgf, p, r, 0.1, math.nan)
    _raises("lam", "must not be NaN", rate_function, p, r, math.nan, 0.5)
    _raises("x", "must not be NaN", rate_function, p, r, 0.2, math.nan)
    _raises("x", "must not be NaN", legendre_transform, p, r, math.nan)
    _raises("alpha", "must not be NaN", renyi_cross_entropy, p, p, math.nan)
    _raises("lam", "must not be NaN", scgf_renyi, p, r, math.nan, 0.5)
    _raises("t", "must not be NaN", scgf_renyi, p, r, 0.5, math.nan)
    _raises("p", "must be one token law [V], got shape (1, 3)", rate_function, [p], r, 0.1, 0.5)
    _raises("p", "must be one token law [V], got shape (1, 3)", scgf_renyi, [p], r, 0.1, 0.5)


def test_log_mgf_and_scgf_against_python_with_zero_mass_and_shapes():
    """Kills log_mgf / scgf mutants (s read in float32 from a list, the broadcast of s [2, 3] against r, λ
    + t): Λ(s) and Λ(λ + t) − Λ(λ) against plain-Python sums, zero-mass outcome included."""
    s = [[-1.5, 0.0, 0.1], [0.7, 2.0, -0.3]]
    got = log_mgf(PL, RL, s)
    assert got.shape == (2, 3) and got.dtype == torch.float64
    _close(got.reshape(-1), [_py_log_mgf(PL, RL, v) for row in s for v in row], 1e-14)
    lam, t = [0.3, -0.8], [[0.1], [1.7]]
    got = scgf(PL, RL, lam, t)
    assert got.shape == (2, 2)
    _close(
        got.reshape(-1),
        [_py_log_mgf(PL, RL, a + b[0]) - _py_log_mgf(PL, RL, a) for b in t for a in lam],
        1e-14,
    )


def test_rate_function_against_python_end_points_ties_and_broadcasting():
    """Kills rate_function mutants (the support `log_p > -inf`, the end points r_max / r_min of the support
    and their tied mass, `x == hi` / `x == lo`, +∞ outside, the midpoint substituted for the end points,
    λ·x, Λ(λ), the clamp at 0, the broadcast of λ [3, 1] against x [8]) and legendre_transform (λ = 0)."""
    xs = [0.0, 0.3, 1.0, 1.6, 2.0, 2.5, -0.1, 3.0]
    lams = (0.0, 0.6, -1.1)
    got = rate_function(PL, RL, torch.tensor(lams, dtype=torch.float64)[:, None], xs)      # λ [3, 1], x [8]
    assert got.shape == (3, 8)
    for row, lam in zip(got.tolist(), lams):
        want = [_py_rate(PL, RL, lam, x) for x in xs]
        for g, w in zip(row, want):
            assert (math.isinf(g) and math.isinf(w)) or g == pytest.approx(w, abs=1e-11), (lam, row, want)
    # x = r_max
    assert got[1, 4] == pytest.approx(-math.log(0.4) - 1.2 + _py_log_mgf(PL, RL, 0.6), abs=1e-13)
    # x = r_min
    assert got[1, 0] == pytest.approx(-math.log(0.35) + _py_log_mgf(PL, RL, 0.6), abs=1e-13)
    _close(legendre_transform(PL, RL, xs[:5]), [_py_rate(PL, RL, 0.0, b) for b in xs[:5]], 1e-11)
    # the tilted mean has rate 0 exactly (the clamp removes a −1e-17)
    th = 0.9
    w = [pi * math.exp(th * ri) for pi, ri in zip(PL, RL)]
    mean = sum(wi * ri for wi, ri in zip(w, RL)) / sum(w)
    at_mean = float(rate_function(PL, RL, th, mean))
    assert at_mean == pytest.approx(0.0, abs=1e-13) and at_mean >= 0.0


def test_renyi_cross_entropy_and_scgf_renyi_against_python():
    """Kills renyi_cross_entropy mutants (φ = 0 entries left out, the α = 1 cross-entropy branch, the safe
    α, 1/(1 − α), inputs read in float64, an α tensor) and scgf_renyi mutants (the tilt φ_λ, ψ =
    softmax(r), 1 + t, the broadcast of λ and t)."""
    phi = [0.5, 0.0, 0.3, 0.2]
    psi = [0.1, 0.4, 0.25, 0.25]
    alphas = [0.5, 1.0, 2.0, 3.5, -1.0]
    got = renyi_cross_entropy(phi, psi, alphas)
    assert got.dtype == torch.float64
    _close(got, [_py_renyi(phi, psi, a) for a in alphas], 1e-14)
    assert float(renyi_cross_entropy(phi, psi, 1.0)) == pytest.approx(_py_renyi(phi, psi, 1), abs=1e-15)
    p, r = [0.6, 0.3, 0.1], [0.0, 1.0, 2.0]
    lam, t = [0.0, 0.8], [[-0.5], [1.2]]
    got = scgf_renyi(p, r, lam, t)
    assert got.shape == (2, 2)
    zr = math.log(sum(math.exp(x) for x in r))
    psi_r = [math.exp(x - zr) for x in r]
    want = []
    for tt in (-0.5, 1.2):
        for lm in (0.0, 0.8):
            w = [pi * math.exp(lm * ri) for pi, ri in zip(p, r)]
            ph = [wi / sum(w) for wi in w]
            want.append(tt * (zr - _py_renyi(ph, psi_r, 1 + tt)))
            assert want[-1] == pytest.approx(_py_log_mgf(p, r, lm + tt) - _py_log_mgf(p, r, lm), abs=1e-13)
    _close(got.reshape(-1), want, 1e-13)


# ----------------------------------------------------------------------------------------------------
# inference/sample_based.py

PROBS = torch.tensor([[0.3, 0.1, 0.2, 0.25, 0.15], [0.05, 0.4, 0.2, 0.15, 0.2]], dtype=torch.float64)
# ties at the top
REW = torch.tensor([[1.0, 3.0, 3.0, 2.0, 0.0], [0.5, -1.0, 2.5, 2.5, 2.5]], dtype=torch.float64)


class _Weak:
    """A weak oracle over the table PROBS (its own random stream, not the algorithm's generator): responses
    are token pairs (y, 10 + y) [B, n, 2]; log π_ref revealed or not; every call recorded and charged."""

    def __init__(self, ledger, seed=0, reveal=True):
        self.ledger, self.gen, self.reveal, self.calls = (
            ledger,
            torch.Generator().manual_seed(seed),
            reveal,
            [],
        )
        self.gens = []

    def sample(self, prompts, n, generator=None):
        self.gens.append(generator)
        prompts = torch.as_tensor(prompts)
        y = torch.multinomial(PROBS[prompts], n, replacement=True, generator=self.gen)
        self.ledger.charge("t_comp", y.numel())
        self.calls.append((prompts.tolist(), n, y.clone()))
        lp = PROBS[prompts[:, None], y].log().float() if self.reveal else None
        return Samples(prompts, torch.stack([y, 10 + y], -1), None, lp,
                       frozenset({"log_probs"} if self.reveal else ()), "Weak")


class _Reward:
    def __init__(self, ledger, r_max=None, shift=0.0):
        self.ledger, self.r_max, self.shift, self.gens = ledger, r_max, shift, []

    def outcome(self, prompts, responses, generator=None):
        self.gens.append(generator)
        self.ledger.charge("t_data", responses.shape[0] * responses.shape[1])
        return REW[torch.as_tensor(prompts)[:, None], responses[..., 0]] + self.shift


def _py_dhat(eps, n):
    """Beirami et al.'s D̂_n(ε) in plain Python."""
    q = (1 - eps) ** n
    return q * (math.log(n) + (n - 1) * math.log1p(-eps) - (n - 1) / n) + (1 - q) * math.log((1 - q) / eps)


def _eps32(x, y):
    return math.exp(float(torch.tensor(math.log(float(PROBS[x, y])), dtype=torch.float32)))


def test_best_of_n_replayed_with_its_tie_breaking_keys():
    """Kills best_of_n / argmax_random_ties / select / ledger_totals / revealed_log_probs mutants: the
    winners of each group of n (ties broken by the largest float64 key drawn from the algorithm's
    generator), their rewards and token pairs, D̂_n averaged over the m winners, log n − (n−1)/n, and both
    ledgers summed; no log π_ref revealed: no estimate."""
    prompts = [0, 1, 1]
    n, m = 4, 3
    la, lb = Ledger(), Ledger()
    weak, reward = _Weak(la), _Reward(lb)
    gen = torch.Generator().manual_seed(5)
    out = BestOfN(BestOfNConfig(n=n, num_samples=m)).run(weak, reward, prompts, gen)
    # the oracles get the caller's generator
    assert weak.gens == [gen] and reward.gens == [gen]
    keys = torch.rand((3, m, n), generator=torch.Generator().manual_seed(5), dtype=torch.float64).tolist()
    y = weak.calls[0][2]
    assert weak.calls[0][:2] == (prompts, n * m)
    for b, x in enumerate(prompts):
        est = 0.0
        for j in range(m):
            grp = [int(y[b, j * n + i]) for i in range(n)]
            rs = [float(REW[x, g]) for g in grp]
            top = [i for i in range(n) if rs[i] == max(rs)]
            w = max(top, key=lambda i: keys[b][j][i])
            assert out.responses[b, j].tolist() == [grp[w], 10 + grp[w]]
            assert float(out.rewards[b, j]) == rs[w]
            est += _py_dhat(_eps32(x, grp[w]), n) / m
        assert float(out.kl_estimate[b]) == pytest.approx(est, abs=1e-12)
    assert out.kl_formula == pytest.approx(math.log(4) - 0.75, abs=1e-15)
    assert out.ledger == {**la.snapshot(), "t_comp": 36, "t_data": 36}
    shared = Ledger()
    out = BestOfN(BestOfNConfig(n=2)).run(_Weak(shared, reveal=False), _Reward(shared), 2 * [0], None)
    assert out.kl_estimate is None and out.responses.shape == (2, 1, 2) and out.ledger["t_comp"] == 4
    assert out.ledger == shared.snapshot()
    one = BestOfN(BestOfNConfig(n=3, num_samples=2)).run(_Weak(Ledger()), _Reward(Ledger()), torch.tensor(1))
    assert one.responses.shape == (1, 2, 2)                              # a 0-d prompt is one prompt
    _raises("n", "must be in [1, inf], got 0", BestOfNConfig, n=0)


def test_soft_best_of_n_replayed_with_its_gumbel_noise():
    """Kills soft_best_of_n mutants: the winner argmax_i r_i/τ − log(−log u_i) with u from the algorithm's
    generator, the bound mean_m Σ_i s_i log(n s_i) with s = softmax(r/τ) per group, shapes and ledger."""
    prompts = [1, 0]
    n, m, tau = 3, 4, 0.7
    weak, reward = _Weak(Ledger(), seed=1), _Reward(Ledger())
    gen = torch.Generator().manual_seed(9)
    out = SoftBestOfN(SoftBestOfNConfig(n=n, temperature=tau, num_samples=m)).run(weak, reward, prompts, gen)
    assert weak.gens == [gen] and reward.gens == [gen]
    u = torch.rand((2, m, n), generator=torch.Generator().manual_seed(9), dtype=torch.float64).tolist()
    y = weak.calls[0][2]
    for b, x in enumerate(prompts):
        bound = 0.0
        for j in range(m):
            grp = [int(y[b, j * n + i]) for i in range(n)]
            lg = [float(REW[x, g]) / tau for g in grp]
            w = max(range(n), key=lambda i: lg[i] - math.log(-math.log(max(u[b][j][i], 1e-300))))
            assert out.responses[b, j].tolist() == [grp[w], 10 + grp[w]] and float(
                out.rewards[b, j]
            ) == float(REW[x, grp[w]])
            z = sum(math.exp(v) for v in lg)
            bound += sum(math.exp(v) / z * math.log(n * math.exp(v) / z) for v in lg) / m
        assert float(out.kl_estimate[b]) == pytest.approx(bound, abs=1e-13)
    assert out.ledger["t_comp"] == out.ledger["t_data"] == 24
    _raises("temperature", "must be in (0.0, inf], got 0.0", SoftBestOfNConfig, temperature=0.0)


def _py_rejection(weak, prompts, beta, m, k, r_max, max_prop, seed):
    """Rejection sampling replayed in plain Python on the recorded proposals and the coins of ``seed``."""
    B = len(prompts)
    coins = torch.Generator().manual_seed(seed)
    slots = [[] for _ in range(B)]
    props = [[] for _ in range(B)]
    best = [None] * B
    calls = iter(weak.calls)
    active = list(range(B))
    while active:
        ps, n, y = next(calls)
        assert ps == [prompts[b] for b in active] and n == k
        u = torch.rand((len(active), k), generator=coins, dtype=torch.float64).tolist()
        for i, b in enumerate(active):
            rs = [float(REW[prompts[b], int(v)]) for v in y[i]]
            props[b] += rs
            for c in range(k):
                if math.log(u[i][c]) < (rs[c] - r_max) / beta and len(slots[b]) < m:
                    slots[b].append((int(y[i, c]), rs[c]))
            c = max(range(k), key=lambda c: (rs[c], -c))                     # first maximal proposal
            if best[b] is None or rs[c] > best[b][1]:
                best[b] = (int(y[i, c]), rs[c])
        active = [b for b in active if len(slots[b]) < m and len(props[b]) + k <= max_prop]
    out = []
    for b in range(B):
        exact = [True] * len(slots[b]) + [False] * (m - len(slots[b]))
        filled = slots[b] + [best[b]] * (m - len(slots[b]))
        zs = [r / beta for r in props[b]]
        top = max(zs)
        log_mean_z = top + math.log(sum(math.exp(z - top) for z in zs)) - math.log(len(zs))
        if slots[b]:
            kl = max(0.0, sum(r for _, r in slots[b]) / len(slots[b]) / beta - log_mean_z)
        else:
            wsum = sum(math.exp(z - top) for z in zs)
            sn = sum(math.exp(z - top) / wsum * r for z, r in zip(zs, props[b]))
            kl = max(0.0, sn / beta - log_mean_z)
        out.append((filled, exact, len(props[b]), kl))
    return out


@pytest.mark.parametrize(
    "beta, m, k, max_prop, from_reward",
    [(0.8, 3, 4, 1000, False), (0.05, 4, 3, 6, True), (0.3, 2, 2, 4, False)],
)
def test_rejection_sampling_replayed_round_by_round(beta, m, k, max_prop, from_reward):
    """Kills rejection_sampling mutants: acceptance log u < (r − r_max)/β with the algorithm's coins, slots
    filled in order up to m, rounds of k proposals for the rows still short while the cap allows another
    round, the fallback to the first best proposal seen (flagged inexact), the proposal counts, the KL
    estimate from the accepted rewards or (nothing accepted) the self-normalised one, r_max from the reward
    oracle."""
    prompts = [0, 1, 1, 0]
    la, lb = Ledger(), Ledger()
    weak = _Weak(la, seed=4)
    cfg = RejectionSamplingConfig(beta=beta, num_samples=m, r_max=None if from_reward else 3.0,
                                  proposals_per_round=k, max_proposals=max_prop)
    gen = torch.Generator().manual_seed(21)
    rew = _Reward(lb, r_max=3.0 if from_reward else None)
    out = RejectionSampling(cfg).run(weak, rew, prompts, gen)
    assert all(g is gen for g in weak.gens + rew.gens) and len(weak.gens) == len(rew.gens) == len(weak.calls)
    want = _py_rejection(weak, prompts, beta, m, k, 3.0, max_prop, 21)
    for b, (filled, exact, drawn, kl) in enumerate(want):
        assert out.responses[b].tolist() == [[y, 10 + y] for y, _ in filled], b
        assert out.rewards[b].tolist() == [r for _, r in filled]
        assert out.exact[b].tolist() == exact and int(out.proposals[b]) == drawn
        assert bool(out.kl_from_accepted[b]) == any(exact)
        assert float(out.kl_estimate[b]) == pytest.approx(kl, abs=1e-12)
    assert out.ledger["t_comp"] == out.ledger["t_data"] == int(out.proposals.sum()) == la.t_comp
    if max_prop == 6:
        # the self-normalised branch is used
        assert not out.kl_from_accepted.all()


def test_rejection_sampling_bound_checks():
    """Kills the r_max mutants: a missing or infinite bound, a reward above it (tolerance 1e-9·max(1,
    |r_max|)), exact messages."""
    cfg = RejectionSamplingConfig(beta=1.0, proposals_per_round=8)
    msg = "needs a finite reward upper bound (config.r_max or reward.r_max)"
    _raises("r_max", msg, RejectionSampling(cfg).run, _Weak(Ledger()), _Reward(Ledger()), [0])
    _raises("r_max", msg, RejectionSampling(cfg).run, _Weak(Ledger()), _Reward(Ledger(), r_max=math.inf), [0])
    _raises(
        "r_max",
        "observed reward 3.5 above the bound 3.0; rejection sampling is exact only with a true upper bound",
        RejectionSampling(RejectionSamplingConfig(r_max=3.0, proposals_per_round=30)).run,
        _Weak(Ledger()),
        _Reward(Ledger(), shift=0.5),
        [0],
    )
    # rewards up to 3 + 2e-9 against r_max = 3 are within the tolerance 3e-9
    out = RejectionSampling(RejectionSamplingConfig(r_max=3.0, proposals_per_round=30)).run(
        _Weak(Ledger()), _Reward(Ledger(), shift=2e-9), [0], torch.Generator().manual_seed(0)
    )
    assert out.exact.all()
    out = RejectionSampling(RejectionSamplingConfig(r_max=-1.5 + 3.0, proposals_per_round=30)).run(
        _Weak(Ledger()), _Reward(Ledger(), shift=-1.5), [0], torch.Generator().manual_seed(0)
    )
    assert out.exact.all()
    # r_max = −7: the tolerance is 7e-9 (it scales with |r_max|)
    out = RejectionSampling(RejectionSamplingConfig(r_max=-7.0, proposals_per_round=30)).run(
        _Weak(Ledger()), _Reward(Ledger(), shift=-10.0 + 4e-9), [0]
    )
    assert out.exact.all()
    with pytest.raises(ConfigError):
        RejectionSampling(RejectionSamplingConfig(r_max=-7.0, proposals_per_round=30)).run(
            _Weak(Ledger()), _Reward(Ledger(), shift=-10.0 + 8e-9), [0]
        )


def test_best_of_poisson_replayed():
    """Kills best_of_poisson mutants: n' = 1 + Poisson(μ) from the algorithm's generator, one weak call for
    all Σ n' candidates (prompts repeated), the best of each segment with ties broken by the largest key,
    n_drawn, D̂_{n'} averaged over the m selections."""
    prompts = [0, 1]
    m, mu = 5, 2.5
    weak, rew = _Weak(Ledger(), seed=7), _Reward(Ledger())
    gen = torch.Generator().manual_seed(13)
    out = BestOfPoisson(BestOfPoissonConfig(mu=mu, num_samples=m)).run(weak, rew, prompts, gen)
    assert weak.gens == [gen] and rew.gens == [gen]
    g = torch.Generator().manual_seed(13)
    counts = (1 + torch.poisson(torch.full((2 * m,), mu, dtype=torch.float64), generator=g).long()).tolist()
    reps = [prompts[i // m] for i, c in enumerate(counts) for _ in range(c)]
    assert weak.calls[0][:2] == (reps, 1) and len(weak.calls) == 1
    y = [int(v) for v in weak.calls[0][2][:, 0]]
    keys = torch.rand(len(y), generator=g, dtype=torch.float64).tolist()
    assert out.n_drawn.reshape(-1).tolist() == counts
    pos, est = 0, [0.0, 0.0]
    for i, c in enumerate(counts):
        seg = list(range(pos, pos + c))
        rs = [float(REW[reps[j], y[j]]) for j in seg]
        top = [j for j, r in zip(seg, rs) if r == max(rs)]
        w = max(top, key=lambda j: keys[j])
        b, j = divmod(i, m)
        assert out.responses[b, j].tolist() == [y[w], 10 + y[w]] and float(out.rewards[b, j]) == max(rs)
        est[b] += _py_dhat(_eps32(reps[w], y[w]), c) / m
        pos += c
    _close(out.kl_estimate, est, 1e-12)
    # μ = 0: one candidate per selection, each selection returns its own candidate (kills best_of_poisson's
    # `chosen` initialised at +1, which would take candidate 1 for selection 0)
    weak = _Weak(Ledger(), reveal=False)
    out = BestOfPoisson(BestOfPoissonConfig(mu=0.0, num_samples=3)).run(weak, _Reward(Ledger()), prompts)
    assert out.kl_estimate is None and (out.n_drawn == 1).all() and out.ledger["t_comp"] == 6
    y = [int(v) for v in weak.calls[0][2][:, 0]]
    assert out.responses[..., 0].reshape(-1).tolist() == y


def test_renyi_cross_entropy_zero_mass_in_both_laws_and_batched_phi():
    """Kills renyi_cross_entropy_37 / _51 (`φ >= 0` in the Rényi sum or the cross-entropy: an outcome with
    φ = ψ = 0 gives −∞ + ∞ or 0·(−∞) = NaN) and _44 (the cross-entropy summed over the whole batch): φ [2,
    V]."""
    phi = [0.5, 0.0, 0.5]
    psi = [0.25, 0.0, 0.75]
    for a in (0.5, 1.0, 2.0):
        assert float(renyi_cross_entropy(phi, psi, a)) == pytest.approx(_py_renyi(phi, psi, a), abs=1e-14)
    rows = [[0.5, 0.2, 0.3], [0.1, 0.6, 0.3]]
    psi3 = [0.2, 0.3, 0.5]
    got = renyi_cross_entropy(rows, psi3, 1.0)
    assert got.shape == (2,)
    _close(got, [_py_renyi(row, psi3, 1) for row in rows], 1e-14)


def test_sampler_log_law_acceptance_probability_rounded_above_one():
    """Kills _conditional_log_law_21 (P(accept) clamped at 2 instead of 1): with every candidate accepted
    (f constant, M = 1) P(accept) = Σ π_ref rounds to 1 + 4e-16 for this normalised π_ref, log(1 − P) would
    be NaN; the law is π_ref itself."""
    lr = torch.tensor([-3.496305175207401, -1.6863714171170336, -4.047777378169595, -3.969796495991308,
                       -0.5504697301202828, -2.478576528671317, -2.4347373651991076], dtype=torch.float64)
    assert float(torch.logsumexp(lr, 0).exp()) > 1.0                      # the rounding this test is about
    for norm in ("exact", "estimated"):
        got = sampler_log_law(lr, torch.zeros(7, dtype=torch.float64), 0.5, 1.0, 0.9, normaliser=norm)
        assert torch.isfinite(got).all()
        _close(got.exp(), lr.exp(), 1e-15)


class _WeakRoundedUp(_Weak):
    """Reveals log π_ref rounded up to +1e-7 (a response of probability 1 in float32 arithmetic)."""

    def sample(self, prompts, n, generator=None):
        s = super().sample(prompts, n, generator)
        return Samples(
            s.prompts, s.responses, None, torch.full(s.responses.shape[:2], 1e-7), s._reveal, "Weak"
        )


def test_sample_based_small_edges():
    """Kills best_of_n_55 / best_of_poisson's clamp (a revealed log π_ref of +1e-7 clamped at 1 instead of
    0: D̂_n then rejects it), _prompts_3 / _5 (float prompt ids not cast to int64), rejection_sampling_44 /
    _46 (the proposal counts not int64) and _93 (reward tolerance 1e-9·max(2, |r_max|): at r_max = 1.5 it
    is 1.5e-9)."""
    out = BestOfN(BestOfNConfig(n=4, num_samples=2)).run(_WeakRoundedUp(Ledger()), _Reward(Ledger()), [0, 1])
    assert out.kl_estimate.tolist() == [0.0, 0.0]                          # ε = 1: D̂_n(1) = 0
    out = BestOfPoisson(BestOfPoissonConfig(mu=1.0)).run(_WeakRoundedUp(Ledger()), _Reward(Ledger()), [0])
    assert out.kl_estimate.tolist() == [0.0]
    assert sb_mod._prompts(torch.tensor([1.0, 0.0])).dtype == torch.long
    assert sb_mod._prompts(torch.tensor([1.0, 0.0])).tolist() == [1, 0]
    out = RejectionSampling(RejectionSamplingConfig(r_max=3.0)).run(_Weak(Ledger()), _Reward(Ledger()), [0],
                                                                    torch.Generator().manual_seed(0))
    assert out.proposals.dtype == torch.long
    _raises(
        "r_max",
        "observed reward 1.5 above the bound 1.5; rejection sampling is exact only with a true upper bound",
        RejectionSampling(RejectionSamplingConfig(r_max=1.5, proposals_per_round=30)).run,
        _Weak(Ledger()),
        _Reward(Ledger(), shift=-1.5 + 1.7e-9),
        [0],
    )


class _WeakFixed(_Weak):
    """Returns response 1 (the top reward 3 of prompt 0) first, then response 0 (reward 1), for every call."""

    def sample(self, prompts, n, generator=None):
        prompts = torch.as_tensor(prompts)
        y = torch.zeros(prompts.numel(), n, dtype=torch.long)
        y[0, 0] = 1
        self.calls.append((prompts.tolist(), n, y.clone()))
        return Samples(prompts, torch.stack([y, 10 + y], -1), None, None, frozenset(), "Weak")


def test_best_of_poisson_first_segment_won_by_its_first_candidate():
    """Kills best_of_poisson_112 (non-winning positions marked +1 instead of −1: segment 0, won by position 0,
    would pick candidate 1)."""
    gen = torch.Generator().manual_seed(0)
    out = BestOfPoisson(BestOfPoissonConfig(mu=4.0, num_samples=2)).run(_WeakFixed(Ledger()),
                                                                        _Reward(Ledger()), [0], gen)
    assert int(out.n_drawn[0, 0]) >= 2
    assert out.responses[0, 0].tolist() == [1, 11] and float(out.rewards[0, 0]) == 3.0


def test_rejection_sampling_mean_of_one_accepted_reward():
    """Kills rejection_sampling_245 (the mean of the accepted rewards divided by max(2, count)): β = 0.01 and
    r_max = 3 accept exactly the reward-3 proposals; one of them among 3 proposals for m = 2."""
    weak = _Weak(Ledger(), seed=1)
    out = RejectionSampling(RejectionSamplingConfig(
        beta=0.01, num_samples=2, r_max=3.0, proposals_per_round=3, max_proposals=3)).run(weak,
                                                                                          _Reward(Ledger()),
                                                                                          [0, 0, 0, 0],
                                                                                          torch.Generator().manual_seed(2))
    want = _py_rejection(weak, [0, 0, 0, 0], 0.01, 2, 3, 3.0, 3, 2)
    one = [b for b, w in enumerate(want) if sum(w[1]) == 1]
    assert one, want                                                       # a row with exactly one acceptance
    for b, (_, exact, _, kl) in enumerate(want):
        assert out.exact[b].tolist() == exact
        assert float(out.kl_estimate[b]) == pytest.approx(kl, abs=1e-12)
    assert all(want[b][3] > 0 for b in one)
