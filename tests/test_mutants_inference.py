"""Tests written to kill mutmut survivors in ``oraclerl.inference.best_of_n`` (docs/testing.md, "Triage").

Every value is checked against an independent computation: brute-force enumeration of the n-tuples, the closed
forms of P(top) = 1 − (1 − ε)ⁿ and of D̂_n(ε) in plain Python (``math.log1p`` / ``math.expm1``), the
conditional law p(·| r ≥ τ) summed by hand, and a plain-Python inverse-CDF sampler fed the same uniforms as
:func:`sample_best_of_n`. Errors are checked by their exact message and field.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from oraclerl.errors import ConfigError
from oraclerl.inference import best_of_n as bon
from oraclerl.inference.best_of_n import (
    best_of_n_expected_estimate,
    best_of_n_expected_reward,
    best_of_n_kl,
    best_of_n_kl_estimate,
    best_of_n_kl_formula,
    best_of_n_law,
    best_of_n_win_rate,
    best_of_poisson_law,
    calibrated_reward,
    levels,
    rewind_and_repeat_law,
    rewind_and_repeat_summary,
    sample_best_of_n,
)

P = torch.tensor([0.1, 0.25, 0.15, 0.3, 0.2], dtype=torch.float64)
R = torch.tensor([2.0, 0.0, 2.0, 1.0, 0.0], dtype=torch.float64)      # ties at the top and the bottom


def _brute(p, r, n):
    """π⁽ⁿ⁾ by enumerating the Yⁿ tuples (ties split uniformly)."""
    p, r = [float(x) for x in p], [float(x) for x in r]
    out = [0.0] * len(p)
    for t in itertools.product(range(len(p)), repeat=n):
        pr = math.prod(p[i] for i in t)
        best = max(r[i] for i in t)
        win = [i for i in t if r[i] == best]
        for i in win:
            out[i] += pr / len(win)
    return out


def _win(pi, p, r):
    return sum(pi[i] * float(p[j]) * (1.0 if r[i] > r[j] else 0.5 if r[i] == r[j] else 0.0)
               for i in range(len(p)) for j in range(len(p)))


def _raises(field, msg, fn, *a, **kw):
    with pytest.raises(ConfigError) as e:
        fn(*a, **kw)
    assert e.value.field == field
    assert str(e.value) == f"{field}: {msg}"


def test_wrappers_with_log_p_and_log_n_match_brute_force():
    n = 3
    bf = _brute(P, R, n)
    kl = sum(b * math.log(b / float(q)) for b, q in zip(bf, P) if b > 0)
    log_w = torch.log(P)
    kw = dict(r=R, log_n=math.log(n), log_p=log_w)
    assert float(best_of_n_kl(**kw)) == pytest.approx(kl, abs=1e-12)
    assert float(best_of_n_win_rate(**kw)) == pytest.approx(_win(bf, P, R), abs=1e-12)
    assert float(best_of_n_expected_reward(**kw)) == pytest.approx(
        sum(b * float(x) for b, x in zip(bf, R)), abs=1e-12
    )
    assert float(best_of_n_win_rate(P, R, n)) == pytest.approx(_win(bf, P, R), abs=1e-12)
    assert float(best_of_n_expected_reward(P, R, n)) == pytest.approx(
        sum(b * float(x) for b, x in zip(bf, R)), abs=1e-12
    )
    assert float(best_of_n_kl_formula(log_n=math.log(n))) == pytest.approx(
        math.log(n) - (n - 1) / n, abs=1e-15
    )
    rd = R + torch.arange(5, dtype=torch.float64) * 1e-3
    want = float(best_of_n_expected_estimate(P, rd, n))
    assert float(best_of_n_expected_estimate(r=rd, log_n=math.log(n), log_p=log_w)) == pytest.approx(
        want, abs=1e-12
    )
    assert float(calibrated_reward(log_p=log_w, r=R)[0]) == pytest.approx(0.75 + 0.5 * 0.25, abs=1e-14)


def test_batched_summaries_are_per_row():
    Pb = torch.stack([P, torch.tensor([0.3, 0.1, 0.2, 0.25, 0.15], dtype=torch.float64)])
    law = best_of_n_law(Pb, R, 2)
    assert law.win_rate.shape == law.expected_reward.shape == (2,)
    for b in range(2):
        bf = _brute(Pb[b], R, 2)
        assert float(law.win_rate[b]) == pytest.approx(_win(bf, Pb[b], R), abs=1e-12)
        assert float(law.expected_reward[b]) == pytest.approx(
            sum(x * float(y) for x, y in zip(bf, R)), abs=1e-12
        )
    est = best_of_n_expected_estimate(Pb, R + torch.arange(5, dtype=torch.float64) * 1e-3, 2)
    assert est.shape == (2,)
    for b in range(2):
        one = best_of_n_expected_estimate(Pb[b], R + torch.arange(5, dtype=torch.float64) * 1e-3, 2)
        assert float(est[b]) == pytest.approx(float(one), abs=1e-13)


@pytest.mark.parametrize("p, r", [([1.0], [0.5]), ([0.2, 0.5, 0.3], [0.0, 2.0, 1.0]),
                                  ([0.5, 0.0, 0.0, 0.5], [0.0, 1.0, 1.0, 2.0])])
def test_orders_single_outcome_and_zero_mass_tied_level(p, r):
    """One outcome; a sort order that starts at 0 but is not the identity; a tied level with no mass."""
    for n in (1, 2, 3):
        law = best_of_n_law(p, r, n)
        bf = _brute(p, r, n)
        assert law.probs.tolist() == pytest.approx(bf, abs=1e-13)
        assert float(law.win_rate) == pytest.approx(_win(bf, p, r), abs=1e-13)
        assert float(law.expected_reward) == pytest.approx(sum(a * b for a, b in zip(bf, r)), abs=1e-13)
    law1 = best_of_n_law(torch.tensor([p], dtype=torch.float64), r, 2)   # batch of one: order is [1, Y]
    assert law1.probs[0].tolist() == pytest.approx(_brute(p, r, 2), abs=1e-13)


def test_presorted_levels_equal_the_sorted_ones():
    r = torch.tensor([0.0, 0.0, 1.0, 2.0, 2.0], dtype=torch.float64)
    lp = torch.log(P)
    a, b = levels(lp, r, presorted=True), levels(lp, r)
    for f in ("order", "log_p", "r", "log_F", "log_Fm", "log_S", "log_Sm", "log_level", "first", "last"):
        assert torch.allclose(getattr(a, f).double(), getattr(b, f).double(), atol=1e-15), f


def test_log_helpers_against_math():
    for lx in (-20.5, -25.0, -19.5, -5.0, -0.1):
        x = math.exp(lx)
        got = float(bon._log_neg_log1m(torch.tensor(lx, dtype=torch.float64)))
        assert got == pytest.approx(math.log(-math.log1p(-x)), rel=1e-15, abs=1e-15)
        got = float(bon._log1m_exp_neg(torch.tensor(lx, dtype=torch.float64)))
        assert got == pytest.approx(math.log(-math.expm1(-x)), rel=1e-15, abs=1e-15)


def test_top_atom_probability_in_the_small_tail_branch():
    """P(top) = 1 − (1 − ε)ⁿ for ε = e^{−20.5} (the series branch of log(−log(1 − S))) and nε ≈ 1."""
    eps = math.exp(-20.5)
    n = int(1 / eps)
    law = best_of_n_law(torch.tensor([1 - eps, eps], dtype=torch.float64), torch.tensor([0.0, 1.0]), n)
    assert float(law.probs[1]) == pytest.approx(-math.expm1(n * math.log1p(-eps)), rel=1e-12)


def _estimate_ref(eps, n):
    w = math.exp(n * math.log1p(-eps))
    q = -math.expm1(n * math.log1p(-eps))
    return w * (math.log(n) + (n - 1) * math.log1p(-eps) - (n - 1) / n) + q * math.log(q / eps)


def test_kl_estimate_against_the_closed_form_and_log_eps_range():
    for eps, n in ((math.exp(-20.5), 10), (math.exp(-20.5), 10 ** 9), (0.3, 4)):
        assert float(best_of_n_kl_estimate(eps, n)) == pytest.approx(_estimate_ref(eps, n), rel=1e-12)
        assert float(best_of_n_kl_estimate(log_eps=math.log(eps), n=n)) == pytest.approx(
            _estimate_ref(eps, n), rel=1e-12
        )
    assert float(best_of_n_kl_estimate(log_eps=math.log(0.01), n=7)) == pytest.approx(_estimate_ref(0.01, 7),
                                                                                     rel=1e-14)
    assert float(best_of_n_kl_estimate(log_eps=1e-12, n=4)) == 0.0      # rounding above 0 accepted, clamped
    msg = "must be in (-inf, 0] (log-probability of the selected response)"
    for le in (0.1, 2e-12, math.nan, -math.inf):
        _raises("log_eps", msg, best_of_n_kl_estimate, log_eps=le, n=4)
    _raises("eps", "pass exactly one of eps= or log_eps=", best_of_n_kl_estimate, n=4)
    _raises("eps", "pass exactly one of eps= or log_eps=", best_of_n_kl_estimate, 0.5, 4, log_eps=-1.0)
    _raises("eps", "must be in (0, 1] (the reference probability of the selected response)",
            best_of_n_kl_estimate, 0.0, 4)


def test_n_messages():
    _raises("n", "pass exactly one of n= or log_n=", best_of_n_law, P, R)
    _raises("n", "must be >= 1, got 0", best_of_n_law, P, R, 0)
    _raises("n", "must be finite and >= 1 (use log_n= beyond 1e308), got 0.5", best_of_n_law, P, R, 0.5)
    _raises("log_n", "must be finite and >= 0, got -1.0", best_of_n_law, P, R, log_n=-1.0)


def test_best_of_poisson_mu_range_and_precision():
    for mu in (None, -1.0, math.nan, math.inf):
        _raises("mu", f"must be finite and >= 0, got {mu!r}", best_of_poisson_law, P, R, mu)
    assert torch.allclose(best_of_poisson_law(P, R, 0.0).probs, P, atol=1e-15)      # n' = 1
    mu = 0.3
    mix = sum(
        math.exp(-mu) * mu**k / math.factorial(k) * torch.tensor(_brute(P, R, k + 1), dtype=torch.float64)
        for k in range(5)
    )
    tail = 1 - sum(math.exp(-mu) * mu ** k / math.factorial(k) for k in range(5))  # ≈ 2.6e-6 beyond k = 4
    assert torch.allclose(best_of_poisson_law(log_p=torch.log(P), r=R, mu=mu).probs, mix, atol=tail + 1e-12)
    ref = best_of_poisson_law(P, R, torch.tensor(mu, dtype=torch.float64)).probs
    assert torch.equal(best_of_poisson_law(P, R, mu).probs, ref)        # a Python float is read in float64


def test_rewind_and_repeat_edges():
    p = torch.tensor([0.4, 0.3, 0.3, 0.0], dtype=torch.float64)
    r = torch.tensor([-3.0, 0.3, -0.5, 2.0], dtype=torch.float64)
    for tau in (-1.0, 0.3, -0.5):
        cond = [float(x) if y >= tau else 0.0 for x, y in zip(p, r)]
        mass = sum(cond)
        pi = [c / mass for c in cond]
        for kw in (dict(p=p), dict(log_p=torch.log(p))):
            law = rewind_and_repeat_law(r=r, threshold=tau, **kw)
            assert law.probs.tolist() == pytest.approx(pi, abs=1e-15)
            assert torch.allclose(law.log_p, torch.log(p), atol=1e-15)
            s = rewind_and_repeat_summary(r=r, threshold=tau, **kw)
            assert float(s.kl) == pytest.approx(-math.log(mass), abs=1e-14)
            assert float(s.expected_reward) == pytest.approx(
                sum(a * float(b) for a, b in zip(pi, r)), abs=1e-14
            )
            assert float(s.win_rate) == pytest.approx(_win(pi, p, r.tolist()), abs=1e-14)
    msg = "must be <= the largest reward with positive mass"
    _raises("threshold", msg, rewind_and_repeat_law, p, r, 1.0)          # only the zero-mass outcome is above
    _raises("threshold", msg, rewind_and_repeat_law, p, r, [0.0, 5.0])   # one threshold of two is too high
    _raises("threshold", msg, rewind_and_repeat_summary, p, r, 1.0)
    _raises("threshold", "must not be NaN", rewind_and_repeat_law, p, r, math.nan)


def test_rewind_and_repeat_memory_message_counts_the_batch():
    p = torch.full((16384, 2), 0.5, dtype=torch.float64)
    r = torch.tensor([0.0, 1.0], dtype=torch.float64)
    tau = torch.zeros(1100, 1, dtype=torch.float64)
    need = 8 * 8 * 1100 * 16384 * 2
    _raises(
        "threshold",
        f"(1100, 1) thresholds × 2 outcomes would need ≈ {need / 2**30:.1f} GiB (limit 2 GiB); "
        "use rewind_and_repeat_summary (linear memory) for KL, win rate and reward",
        rewind_and_repeat_law,
        p,
        r,
        tau,
    )


def _sample_ref(p, r, n, u1, u2):
    """Inverse-CDF best-of-n draw in plain Python: V = U₁^{1/n} picks the level, U₂ the outcome inside it ∝
    p."""
    order = sorted(range(len(p)), key=lambda i: r[i])                    # stable, like the module's sort
    ps, rs = [p[i] for i in order], [r[i] for i in order]
    Y = len(p)
    T = [sum(ps[i:]) for i in range(Y)] + [0.0]
    out = []
    for a, b in zip(u1, u2):
        s = 1 - a ** (1 / n)
        i = max([k for k in range(Y) if T[k] >= s] or [0])
        first = min(k for k in range(Y) if rs[k] == rs[i])
        last = max(k for k in range(Y) if rs[k] == rs[i])
        target = T[last + 1] + b * (T[first] - T[last + 1])
        j = min(max(max([k for k in range(Y) if T[k] >= target] or [0]), first), last)
        out.append(order[j])
    return out


def test_sampler_equals_the_plain_inverse_cdf_on_the_same_uniforms():
    n, S = 3, 2000
    got = sample_best_of_n(P, R, n, S, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    u1 = torch.rand(S, generator=g, dtype=torch.float64).tolist()
    u2 = torch.rand(S, generator=g, dtype=torch.float64).tolist()
    assert got.tolist() == _sample_ref(P.tolist(), R.tolist(), n, u1, u2)


def test_sampler_shapes_and_num_samples():
    assert sample_best_of_n(P, R, 2, generator=torch.Generator().manual_seed(0)).shape == (1,)
    assert sample_best_of_n(P, R, 2, 1, torch.Generator().manual_seed(0)).shape == (1,)
    Pb = torch.stack([P, P.flip(0)])
    assert sample_best_of_n(Pb, R, 2, 4, torch.Generator().manual_seed(0)).shape == (2, 4)
    n = torch.tensor([[1.0] * 4, [1e9] * 4, [2.0] * 4])
    idx = sample_best_of_n(P, R, n, 4, torch.Generator().manual_seed(0))
    assert idx.shape == (3, 4)
    assert set(idx[1].tolist()) <= {0, 2}                                # n = 1e9: the top level
    for k in (0, -1, 1.5, True, "2"):
        _raises("num_samples", f"must be an integer >= 1, got {k!r}", sample_best_of_n, P, R, 2, k)
