"""Tests written to kill mutmut survivors in ``oraclerl.diagnostics`` (docs/testing.md, "Triage").

Every value is checked against an independent computation (plain Python sums over the tables), on laws with
zero-mass responses, supports that do not match, and non-uniform prompt laws: the cases a mutated ``where``,
comparison or reduction gets wrong while the happy path stays right.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from oraclerl.diagnostics.coverage import coverage_coefficient, log_coverage_coefficient
from oraclerl.diagnostics.divergences import entropy, expected, kl_divergence, kl_regularised_objective
from oraclerl.diagnostics.regret import J_beta, policy_log_table, regret
from oraclerl.errors import ConfigError

NEG = -math.inf
P = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
Q = torch.tensor([[0.25, 0.25, 0.5], [0.6, 0.3, 0.1]], dtype=torch.float64)
R = torch.tensor([[1.0, 0.0, 2.0], [0.5, -1.0, 3.0]], dtype=torch.float64)


def _log(t):
    return torch.where(t > 0, t.log(), torch.full_like(t, NEG))


def _kl(p, q):
    return sum(pi * math.log(pi / qi) if pi > 0 else 0.0 for pi, qi in zip(p, q))


def test_kl_entropy_expected_against_python_sums():
    kl = kl_divergence(_log(P), _log(Q))
    assert kl.tolist() == pytest.approx([_kl(P[i].tolist(), Q[i].tolist()) for i in range(2)], rel=1e-12)
    # along dim 0 (columns), and +inf when p has mass where q has none
    kl0 = kl_divergence(_log(P.T), _log(Q.T), dim=0)
    assert kl0.tolist() == pytest.approx(kl.tolist(), rel=1e-12)
    assert kl_divergence(_log(Q), _log(P))[0].item() == math.inf
    H = entropy(_log(P))
    assert H.tolist() == pytest.approx(
        [-sum(p * math.log(p) for p in row if p > 0) for row in P.tolist()], rel=1e-12
    )
    assert entropy(_log(P.T), dim=0).tolist() == pytest.approx(H.tolist(), rel=1e-12)
    # -inf where p = 0 is ignored
    v = torch.tensor([[1.0, 2.0, NEG], [1.0, 2.0, 3.0]], dtype=torch.float64)
    E = expected(_log(P), v)
    assert E.tolist() == pytest.approx([1.5, 0.2 + 0.6 + 1.5], rel=1e-12)
    assert expected(_log(P.T), v.T, dim=0).tolist() == pytest.approx(E.tolist(), rel=1e-12)


def test_kl_regularised_objective_uniform_and_weighted():
    beta = 0.7
    per_x = [
        sum(p * r for p, r in zip(P[i].tolist(), R[i].tolist())) - beta * _kl(P[i].tolist(), Q[i].tolist())
        for i in range(2)
    ]
    assert float(kl_regularised_objective(_log(P), R, _log(Q), beta)) == pytest.approx(
        sum(per_x) / 2, rel=1e-12
    )
    w = torch.tensor([0.9, 0.1], dtype=torch.float32)                             # cast to the tables' dtype
    got = float(kl_regularised_objective(_log(P), R, _log(Q), beta, w))
    assert got == pytest.approx(0.9 * per_x[0] + 0.1 * per_x[1], rel=1e-7)


def test_log_coverage_ignores_zero_mass_and_zero_weight_prompts():
    target = torch.tensor([[0.5, 0.5, 0.0], [0.9, 0.1, 0.0]], dtype=torch.float64)
    ref = torch.tensor([[0.25, 0.5, 1e-9], [0.1, 0.8, 0.1]], dtype=torch.float64)
    # sup over π > 0 only: the 1e-9 response has no target mass; prompt 1 has ratio 9
    assert log_coverage_coefficient(_log(target), _log(ref)) == pytest.approx(math.log(9.0), rel=1e-12)
    w = torch.tensor([1.0, 0.0])
    assert log_coverage_coefficient(_log(target), _log(ref), w) == pytest.approx(math.log(2.0), rel=1e-12)
    assert coverage_coefficient(_log(target), _log(ref), w) == pytest.approx(2.0, rel=1e-12)
    assert coverage_coefficient(_log(target), _log(ref)) == pytest.approx(9.0, rel=1e-12)
    # mass where π_ref has none: infinite coverage
    assert log_coverage_coefficient(_log(P), _log(torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]],
                                                               dtype=torch.float64))) == math.inf


def _instance(beta=0.5, weights=(0.75, 0.25)):
    log_ref = _log(Q)
    log_star = torch.log_softmax(log_ref + R / beta, -1)                        # π⋆_β ∝ π_ref e^{r/β}
    return SimpleNamespace(base=SimpleNamespace(log_ref=log_ref), reward=SimpleNamespace(table=R), beta=beta,
                           prompt_weights=torch.tensor(weights, dtype=torch.float64),
                           optimal_log_policy=lambda: log_star)


def test_regret_and_J_against_the_direct_difference_with_a_weighted_prompt_law():
    inst = _instance()
    pi = _log(torch.tensor([[0.1, 0.6, 0.3], [0.3, 0.3, 0.4]], dtype=torch.float64))
    w, beta = [0.75, 0.25], inst.beta

    def J(log_pi):
        p = log_pi.exp()
        return sum(w[i] * (sum(a * b for a, b in zip(p[i].tolist(), R[i].tolist()))
                           - beta * _kl(p[i].tolist(), Q[i].tolist())) for i in range(2))

    assert J_beta(pi, inst) == pytest.approx(J(pi), rel=1e-12)
    direct = J(inst.optimal_log_policy()) - J(pi)
    assert regret(pi, inst) == pytest.approx(direct, rel=1e-10)
    assert regret(inst.optimal_log_policy(), inst) == pytest.approx(0.0, abs=1e-12)
    # an object exposing its exact law goes through log_prob_table(instance), cast to the reference's dtype
    law = SimpleNamespace(log_prob_table=lambda instance: pi.to(torch.float32) if instance is inst else None)
    t = policy_log_table(law, inst)
    assert t.dtype == torch.float64 and torch.allclose(t, pi, atol=1e-6)
    assert regret(law, inst) == pytest.approx(direct, rel=1e-5)


def test_policy_log_table_errors_name_the_field():
    inst = _instance()
    with pytest.raises(
        ConfigError,
        match=r"^policy: must be a \[X, Y\] log-probability tensor or have log_prob_table\(\); got str$",
    ):
        policy_log_table("pi", inst)
    with pytest.raises(
        ConfigError, match=r"^policy: log-probability table must have shape \(2, 3\), got \(3, 2\)$"
    ):
        policy_log_table(_log(P).T, inst)


def test_coverage_of_an_instance_uses_its_prompt_law():
    """C_cov(π⋆_β) = sup over prompts with ρ(x) > 0 of max_y e^{r/β}/Σ_y' π_ref e^{r/β}: a zero-weight
    prompt with a larger ratio must not count."""
    beta = 0.5

    def cov(i):
        z = sum(q * math.exp(r / beta) for q, r in zip(Q[i].tolist(), R[i].tolist()))
        return max(math.exp(r / beta) / z for q, r in zip(Q[i].tolist(), R[i].tolist()) if q > 0)

    assert cov(1) > cov(0)
    assert coverage_coefficient(_instance(beta, (1.0, 0.0))) == pytest.approx(cov(0), rel=1e-12)
    assert coverage_coefficient(_instance(beta, (0.5, 0.5))) == pytest.approx(cov(1), rel=1e-12)


def test_pass_at_k_boundaries_branches_and_messages():
    from oraclerl.diagnostics.pass_at_k import (
        _log1mexp,
        pass_at_k_exact,
        pass_at_k_from_samples,
        pass_at_k_unbiased,
    )

    # both branches of log(1 − e^a), each where the other one loses everything
    assert _log1mexp(torch.tensor(-1e-20, dtype=torch.float64)).item() == pytest.approx(
        math.log(1e-20), rel=1e-12
    )
    assert _log1mexp(torch.tensor(-50.0, dtype=torch.float64)).item() == pytest.approx(
        -math.exp(-50.0), rel=1e-12
    )
    for a in (-0.5, -0.6931471805599453, -0.9):
        assert _log1mexp(torch.tensor(a, dtype=torch.float64)).item() == pytest.approx(
            math.log(1 - math.exp(a)), rel=1e-14
        )
    # the edges of the allowed ranges are allowed
    p = torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64)
    assert pass_at_k_exact(p, 1).tolist() == pytest.approx([0.0, 0.25, 1.0], abs=1e-15)
    assert pass_at_k_exact(p).tolist() == pytest.approx([0.0, 0.25, 1.0], abs=1e-15)  # default k = 1
    assert pass_at_k_exact(
        log_p=torch.tensor([0.0, math.log(0.25)], dtype=torch.float64), k=3
    ).tolist() == pytest.approx([1.0, 1 - 0.75**3], rel=1e-12)
    assert pass_at_k_exact(p, torch.tensor([1.0, 2.0, 3.0])).tolist() == pytest.approx(
        [0.0, 1 - 0.75**2, 1.0]
    )
    assert pass_at_k_unbiased(4, torch.tensor([0, 4]), 4).tolist() == [0.0, 1.0]
    assert pass_at_k_unbiased(4, 2, 2).item() == pytest.approx(1 - 1 / 6, rel=1e-12)  # n − c = k exactly
    assert pass_at_k_unbiased(torch.tensor([4, 6]), torch.tensor([1, 1]), 1).tolist() == pytest.approx(
        [0.25, 1 / 6]
    )
    msgs = [
        (lambda: pass_at_k_exact(k=2), r"^p: give exactly one of p or log_p$"),
        (lambda: pass_at_k_exact(p, 2, log_p=p.log()), r"^p: give exactly one of p or log_p$"),
        (lambda: pass_at_k_exact(p, 0), r"^k: must be >= 1$"),
        (lambda: pass_at_k_exact(p, torch.tensor([1.0, 0.5, 2.0])), r"^k: must be >= 1$"),
        (lambda: pass_at_k_exact(torch.tensor([-0.1]), 1), r"^p: must be probabilities in \[0, 1\]$"),
        (lambda: pass_at_k_exact(torch.tensor([1.1]), 1), r"^p: must be probabilities in \[0, 1\]$"),
        (lambda: pass_at_k_exact(torch.tensor([math.nan]), 1), r"^p: must be probabilities in \[0, 1\]$"),
        (
            lambda: pass_at_k_exact(log_p=torch.tensor([0.1]), k=1),
            r"^log_p: must be log-probabilities \(<= 0\)$",
        ),
        (
            lambda: pass_at_k_exact(log_p=torch.tensor([math.nan]), k=1),
            r"^log_p: must be log-probabilities \(<= 0\)$",
        ),
        (lambda: pass_at_k_unbiased(4, -1, 1), r"^c: must be integers with 0 <= c <= n$"),
        (lambda: pass_at_k_unbiased(4, 5, 1), r"^c: must be integers with 0 <= c <= n$"),
        (lambda: pass_at_k_unbiased(4, 1.5, 1), r"^c: must be integers with 0 <= c <= n$"),
        (lambda: pass_at_k_unbiased(4, 1, 0), r"^k: must be integers with 1 <= k <= n$"),
        (lambda: pass_at_k_unbiased(4, 1, 5), r"^k: must be integers with 1 <= k <= n$"),
        (lambda: pass_at_k_unbiased(4, 1, 1.5), r"^k: must be integers with 1 <= k <= n$"),
        (
            lambda: pass_at_k_from_samples(torch.ones(4, dtype=torch.bool), 1),
            r"^correct: must be \[problems, samples\], got \(4,\)$",
        ),
    ]
    for call, pattern in msgs:
        with pytest.raises(ConfigError, match=pattern):
            call()
    correct = torch.tensor([[True, False, False, False], [True, True, False, False]])
    assert pass_at_k_from_samples(correct, 2).tolist() == pytest.approx([(0.5 + 5 / 6) / 2])
    assert pass_at_k_from_samples(correct, [1, 2]).dtype == torch.float64


def test_pass_at_k_computes_in_float64_whatever_the_input_dtype():
    """float32 inputs are promoted before log1p / lgamma: the results are float64 and keep float64
    accuracy."""
    from oraclerl.diagnostics.pass_at_k import pass_at_k_exact, pass_at_k_unbiased

    p32 = torch.tensor([1e-3, 0.3], dtype=torch.float32)
    want = [1 - (1 - float(v)) ** 7 for v in p32.double()]
    for out in (pass_at_k_exact(p32, 7), pass_at_k_exact(log_p=p32.log(), k=7)):
        assert out.dtype == torch.float64
    assert pass_at_k_exact(p32, 7).tolist() == pytest.approx(want, rel=1e-13)
    c32, k32 = torch.tensor([1.0], dtype=torch.float32), torch.tensor([100.0], dtype=torch.float32)
    for out in (pass_at_k_unbiased(10000, c32, 100), pass_at_k_unbiased(10000, torch.tensor([1]), k32)):
        assert out.dtype == torch.float64
        assert out.item() == pytest.approx(0.01, rel=1e-6)          # float32 lgamma: off by ~1e-2


def _lq_brute(vals, w, eps):
    """sup{α ∈ [0, 1] : Σ_{v ≤ α} w ≤ ε} on the atoms and 1 (the sup is an atom or 1: P(q ≤ α) is a step
    function that jumps at the atoms and is right-continuous)."""
    tot = sum(w)
    cdf = lambda a: sum(wi for v, wi in zip(vals, w) if v <= a) / tot            # noqa: E731
    best = 0.0
    for a in sorted(set(vals)):
        if cdf(a) > eps + 1e-15:                    # the sup is this atom (approached from below)
            return a
        best = a
    return 1.0 if cdf(1.0) <= eps + 1e-15 else best


def test_likelihood_quantile_against_the_definition_with_ties_weights_and_edges():
    from oraclerl.diagnostics.likelihood_quantile import (
        alpha_tail,
        empirical_likelihood_quantile,
        empirical_likelihoods,
        likelihood_cdf,
        likelihood_quantile,
        log_likelihood_quantile,
        log_token_level_quantile,
    )

    vals = [0.5, 0.01, 0.5, 0.2, 1e-30, 0.9]
    w = [1.0, 2.0, 1.0, 0.5, 0.5, 3.0]                                  # unnormalised on purpose
    lq = torch.tensor(vals, dtype=torch.float64).log()
    eps = [0.0, 0.0624, 0.0625, 0.1, 0.3125, 0.5, 0.6249, 0.625, 0.99, 1.0]
    got = likelihood_quantile(lq, torch.tensor(eps), torch.tensor(w)).tolist()
    assert got == pytest.approx([_lq_brute(vals, w, e) for e in eps], rel=1e-12)
    uni = likelihood_quantile(lq, torch.tensor(eps)).tolist()
    assert uni == pytest.approx([_lq_brute(vals, [1.0] * 6, e) for e in eps], rel=1e-12)
    assert likelihood_quantile(lq, 1.0).item() == 1.0
    assert likelihood_quantile(lq, 0.0).item() == pytest.approx(1e-30, rel=1e-12)
    assert log_likelihood_quantile(lq, 0.3).shape == ()
    # log-likelihoods a hair above 0 (rounding) are accepted and clamped to 0
    assert log_likelihood_quantile(torch.tensor([5e-5, -1.0]), 0.6).item() == 0.0
    # CDF is right-continuous at the atoms; α·P[q > α]
    la = torch.tensor([math.log(1e-30), math.log(0.01) - 1e-9, math.log(0.01), math.log(0.5), 0.0],
                      dtype=torch.float64)
    cdf = likelihood_cdf(lq, la, torch.tensor(w))
    assert cdf.tolist() == pytest.approx([0.0625, 0.0625, 0.3125, 0.625, 1.0], rel=1e-12)
    assert likelihood_cdf(lq, math.log(1e-31)).item() == 0.0
    assert alpha_tail(lq, la, torch.tensor(w)).tolist() == pytest.approx(
        [math.exp(a) * (1 - c) for a, c in zip(la.tolist(), cdf.tolist())], rel=1e-12)
    tok = torch.tensor([[-0.1, -2.0, -0.3], [-0.5, -0.5, -0.5]], dtype=torch.float64)
    assert log_token_level_quantile(tok, 0.5).item() == -0.5              # min per row: (−2.0, −0.5)
    correct = torch.tensor([[True, False, False, False], [True, True, True, False], [False] * 4])
    assert empirical_likelihoods(correct).tolist() == [0.25, 0.75, 0.0]
    assert empirical_likelihood_quantile(correct, torch.tensor([0.0, 0.34, 0.67])).tolist() == [
        0.0,
        0.25,
        0.75,
    ]
    bad = [
        (lambda: log_likelihood_quantile(torch.tensor([]), 0.5), r"^log_q: must be non-empty$"),
        (
            lambda: log_likelihood_quantile(torch.tensor([1e-3]), 0.5),
            r"^log_q: must be log-likelihoods \(<= 0, no NaN\)$",
        ),
        (lambda: log_likelihood_quantile(torch.tensor([math.nan]), 0.5), r"^log_q: must be log-likelihoods"),
        (
            lambda: log_likelihood_quantile(lq, 0.5, torch.ones(5)),
            r"^weights: must be non-negative, non-zero and match log_q$",
        ),
        (lambda: log_likelihood_quantile(lq, 0.5, -torch.ones(6)), r"^weights: must be non-negative"),
        (lambda: log_likelihood_quantile(lq, 0.5, torch.zeros(6)), r"^weights: must be non-negative"),
        (
            lambda: log_likelihood_quantile(lq, torch.tensor([0.5, 1.5])),
            r"^eps: must be probability levels in \[0, 1\], got \[0.5, 1.5\]$",
        ),
        (lambda: log_likelihood_quantile(lq, -0.1), r"^eps: must be probability levels"),
        (lambda: log_likelihood_quantile(lq, math.nan), r"^eps: must be probability levels"),
        (
            lambda: empirical_likelihoods(torch.ones(3, dtype=torch.bool)),
            r"^correct: must be \[problems, samples\], got \(3,\)$",
        ),
        (
            lambda: empirical_likelihoods(torch.ones(3, 0, dtype=torch.bool)),
            r"^correct: must be \[problems, samples\], got \(3, 0\)$",
        ),
    ]
    for call, pattern in bad:
        with pytest.raises(ConfigError, match=pattern):
            call()
    # the edges: log q = 1e-4 exactly is still rounding noise; one sample per problem is enough
    assert log_likelihood_quantile(torch.tensor([1e-4, -1.0], dtype=torch.float64), 0.6).item() == 0.0
    assert empirical_likelihoods(torch.tensor([[True], [False]])).tolist() == [1.0, 0.0]
    # float32 inputs are computed (and returned) in float64
    lq32, w32 = lq.float(), torch.tensor(w, dtype=torch.float32)
    for out in (log_likelihood_quantile(lq32, torch.tensor([0.3], dtype=torch.float32), w32),
                likelihood_cdf(lq32, torch.tensor([-1.0], dtype=torch.float32), w32),
                alpha_tail(lq32, torch.tensor([-1.0], dtype=torch.float32), w32)):
        assert out.dtype == torch.float64
    # the token-level LQ takes the min over positions (the last axis) and passes the weights on
    tok3 = torch.tensor([[-0.1, -0.2], [-0.3, -5.0], [-0.4, -0.6]], dtype=torch.float64)
    assert log_token_level_quantile(tok3, 0.5).item() == -0.6
    assert log_token_level_quantile(tok3, 0.0, torch.tensor([1.0, 0.0, 0.0])).item() == -0.2
    # cumulative weights that round above 1 (six weights 1/6) are clipped: P[q ≤ α] is exactly 1 at the top
    six = torch.tensor([-3.0, -2.5, -2.0, -1.5, -1.0, -0.5], dtype=torch.float64)
    assert likelihood_cdf(six, 0.0, torch.full((6,), 0.1, dtype=torch.float64)).item() == 1.0
    # a Python float α is read in float64: log(0.01) rounded to float32 falls below the atom at 0.01
    assert likelihood_cdf(lq, math.log(0.01), torch.tensor(w)).item() == pytest.approx(0.3125, rel=1e-12)
    assert alpha_tail(lq, [math.log(0.01)], torch.tensor(w)).tolist() == pytest.approx(
        [0.01 * 0.6875], rel=1e-12
    )
    # float32 weights are normalised in float64: 1/3 in float32 (0.33333334327) would put ε = 0.33333334 past
    # it
    two = torch.tensor([0.1, 0.9], dtype=torch.float64).log()
    assert likelihood_quantile(two, 0.33333334, torch.tensor([1.0, 2.0], dtype=torch.float32)).item() == \
        pytest.approx(0.9)
    # a zero weight on one context is allowed (finite laws with empty cells)
    assert likelihood_quantile(lq, 0.0, torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0])).item() == pytest.approx(
        0.01
    )


def test_token_coverage_defaults_and_instance_wrappers():
    """No prompt law means every prompt; the instance wrappers pass their prompt law and an explicit policy on
    (π_ref has coverage exactly 1); a zero-weight prompt with the larger coverage is left out."""
    from oraclerl.diagnostics.token_coverage import (
        conditional_coverage,
        log_conditional_coverage,
        log_sequence_coverage,
        reachable_states,
        sequence_coverage,
    )
    from oraclerl.problems.token_mdp import random_token_mdp

    inst = random_token_mdp(num_actions=3, horizon=3, d=3, num_prompts=2, seed=8)
    m, lp = inst.model, inst.optimal.log_policy
    ones = torch.ones(2, dtype=torch.float64)
    for f in (log_conditional_coverage, log_sequence_coverage):
        assert f(m, lp) == f(m, lp, ones)
    assert all(torch.equal(a, b) for a, b in zip(reachable_states(m), reachable_states(m, ones)))
    assert reachable_states(m)[0].dtype == torch.bool and int(reachable_states(m)[0].sum()) == 2
    assert conditional_coverage(inst, list(m.log_ref)) == pytest.approx(1.0, abs=1e-12)
    assert sequence_coverage(inst, list(m.log_ref)) == pytest.approx(1.0, abs=1e-12)
    per = {f: [f(m, lp, torch.tensor(w, dtype=torch.float64)) for w in ((1.0, 0.0), (0.0, 1.0))]
           for f in (log_conditional_coverage, log_sequence_coverage)}
    lo = {f: min(range(2), key=lambda i, f=f: per[f][i]) for f in per}
    for f, wrap in (
        (log_sequence_coverage, sequence_coverage),
        (log_conditional_coverage, conditional_coverage),
    ):
        assert per[f][0] != per[f][1]
        inst.prompt_weights = torch.tensor(
            [1.0 if i == lo[f] else 0.0 for i in range(2)], dtype=torch.float64
        )
        assert wrap(inst) == pytest.approx(math.exp(per[f][lo[f]]), rel=1e-12)
        inst.prompt_weights = ones / 2
        assert wrap(inst) == pytest.approx(math.exp(max(per[f])), rel=1e-12)


def test_token_coverage_with_zero_mass_actions():
    """A policy with a zero-mass action keeps a finite coverage (its ratio is −∞, not +∞); a reference with a
    zero-mass action makes the states behind it unreachable, and a policy equal to it has coverage 1."""
    import copy

    from oraclerl.diagnostics.token_coverage import (
        log_conditional_coverage,
        log_sequence_coverage,
        reachable_states,
    )
    from oraclerl.problems.token_mdp import random_token_mdp

    m = random_token_mdp(num_actions=3, horizon=3, d=3, num_prompts=2, seed=8).model
    pi = [t.clone() for t in m.log_ref]
    pi[0][:, 0] = -math.inf                                          # drop action 0 at the first layer
    pi[0] = pi[0] - torch.logsumexp(pi[0], -1, keepdim=True)
    assert math.isfinite(log_sequence_coverage(m, pi)) and math.isfinite(log_conditional_coverage(m, pi))
    m2 = copy.copy(m)
    m2.log_ref = pi
    full, cut = reachable_states(m), reachable_states(m2)
    assert int(cut[1].sum()) < int(full[1].sum())
    assert log_sequence_coverage(m2, pi) == pytest.approx(0.0, abs=1e-12)
    assert log_conditional_coverage(m2, pi) == pytest.approx(0.0, abs=1e-12)
