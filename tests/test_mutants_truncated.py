"""Tests written to kill mutmut survivors in ``oraclerl.explore.truncated_softmax`` (docs/testing.md,
"Triage").

Every value is checked against an independent computation: plain-Python loops over (x, y′, y) with ``math``
(the truncation test ‖ϕ_y − ϕ_y′‖²_{Σ⁻¹} ≤ ν² written out, the SoftmaxSampler law with Ẑ = Z or averaged over
the multinomial counts of its N draws), or the policy's own per-component tables recombined by hand. Errors
are checked by their exact message and field. Each test's docstring names the mutants it kills (mutmut names
``x_<function>__mutmut_<k>`` abbreviated to ``<function>_<k>``).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from oraclerl.diagnostics import regret
from oraclerl.errors import ConfigError, RevealError
from oraclerl.explore.truncated_softmax import (
    SpannerSamplingPolicy,
    truncated_log_marginal,
    truncated_sampler_log_marginal,
    truncated_score,
)
from oraclerl.inference.softmax_sampler import num_normaliser_draws
from oraclerl.problems import linear_softmax

torch.set_num_threads(1)


# -- plain-Python references
# ----------------------------------------------------------------------------------
def _keep(phi, S, nu, x, yp, y):
    rel = [phi[x][y][i] - phi[x][yp][i] for i in range(len(phi[x][y]))]
    sq = sum(rel[i] * S[i][j] * rel[j] for i in range(len(rel)) for j in range(len(rel)))
    return sq <= nu * nu


def _scores(phi, S, theta, nu, x, yp):
    """f(y) = ⟨θ, ϕ_y − ϕ_y′⟩·1{kept} for every y."""
    d = len(theta)
    return [sum(theta[i] * (phi[x][y][i] - phi[x][yp][i]) for i in range(d)) if _keep(phi, S, nu, x, yp, y)
            else 0.0 for y in range(len(phi[x]))]


def _conditional(p, w, zm, N):
    """Law of the SoftmaxSampler's output given Ẑ·M: acceptance a = min(1, w/(Ẑ M)), N tries, then π_ref."""
    acc = [min(1.0, wi / zm) for wi in w]
    P = sum(pi * ai for pi, ai in zip(p, acc))
    fail = (1.0 - min(P, 1.0)) ** N
    return [(1 - fail) * pi * ai / P + fail * pi for pi, ai in zip(p, acc)]


def _sampler_law(p, f, beta, M, delta, normaliser):
    N = num_normaliser_draws(M, delta)
    w = [math.exp(fi / beta) for fi in f]
    if normaliser == "exact":
        return _conditional(p, w, M * sum(pi * wi for pi, wi in zip(p, w)), N)
    out = [0.0] * len(p)
    for counts in itertools.product(range(N + 1), repeat=len(p)):         # multinomial counts of the N draws
        if sum(counts) != N:
            continue
        prob = math.factorial(N) * math.prod(pi ** c / math.factorial(c) for pi, c in zip(p, counts))
        z = sum(c * wi for c, wi in zip(counts, w)) / N
        out = [o + prob * v for o, v in zip(out, _conditional(p, w, M * z, N))]
    return out


def _brute(log_ref, phi, thetas, S, nu, beta, law, M=None, delta=None, normaliser="exact"):
    """[K, X, Y] probabilities: Σ_y′ π_ref(y′)·(law of y given y′), by loops."""
    p_all = log_ref.exp().tolist()
    ph, Sl, th = phi.tolist(), S.tolist(), thetas.tolist()
    out = []
    for theta in th:
        rows = []
        for x in range(len(ph)):
            p = p_all[x]
            tot = [0.0] * len(p)
            for yp in range(len(p)):
                f = _scores(ph, Sl, theta, nu, x, yp)
                if law == "ideal":
                    u = [pi * math.exp(fi / beta) for pi, fi in zip(p, f)]
                    cond = [ui / sum(u) for ui in u]
                else:
                    cond = _sampler_law(p, f, beta, M, delta, normaliser)
                tot = [t + p[yp] * c for t, c in zip(tot, cond)]
            rows.append(tot)
        out.append(rows)
    return torch.tensor(out, dtype=torch.float64)


def _tie_instance():
    """Binary features, Σ⁻¹ = I, ν = 1: every pair at Hamming distance 1 sits exactly on the boundary ‖φ‖ = ν
    (distances are exact small integers in float64), so ≤ and < give different laws."""
    phi = torch.tensor([[[0., 0., 0.], [1., 0., 0.], [1., 1., 0.], [0., 1., 1.]],
                        [[1., 1., 1.], [0., 1., 1.], [1., 0., 0.], [0., 0., 1.]]], dtype=torch.float64)
    log_ref = torch.log_softmax(torch.tensor([[0.3, -0.2, 0.5, 0.1], [0.0, 0.4, -0.6, 0.2]],
                                             dtype=torch.float64), -1)
    thetas = torch.tensor([[1.5, -2.0, 0.75], [-1.0, 0.5, 2.5]], dtype=torch.float64)
    return log_ref, phi, thetas, torch.eye(3, dtype=torch.float64), 1.0


# -- the exact laws: ties at ν, the estimated normaliser, dtypes
# -----------------------------------------------
@pytest.mark.parametrize("block_bytes", [1 << 28, 24 * 2 * 2])
def test_pairs_exactly_at_nu_are_kept_by_every_law(block_bytes):
    """‖φ‖_{Σ⁻¹} = ν is kept (≤, Eq. 50). Kills `<` for `<=` in ``_PairBlocks.keep``,
    ``_dense_sampler_log_marginal`` (``_dense_sampler_log_marginal_40``) and ``truncated_score``, and
    checks the ideal, sampler (Ẑ = Z, M = 1.5 clips) laws against the loops, with one block and with [2, 2]
    blocks."""
    log_ref, phi, thetas, S, nu = _tie_instance()
    ideal = truncated_log_marginal(log_ref, phi, thetas, S, nu, 0.5, block_bytes=block_bytes).exp()
    torch.testing.assert_close(ideal, _brute(log_ref, phi, thetas, S, nu, 0.5, "ideal"), rtol=0, atol=1e-13)
    samp = truncated_sampler_log_marginal(
        log_ref, phi, thetas, S, nu, 0.5, 1.5, 0.2, block_bytes=block_bytes
    ).exp()
    torch.testing.assert_close(
        samp, _brute(log_ref, phi, thetas, S, nu, 0.5, "sampler", 1.5, 0.2), rtol=0, atol=1e-13
    )
    # the boundary matters here: ν slightly below 1 gives another law
    below = truncated_log_marginal(log_ref, phi, thetas, S, 0.999, 0.5, block_bytes=block_bytes).exp()
    assert float((below - ideal).abs().max()) > 1e-2


def test_truncated_score_keeps_the_boundary_and_zeroes_outside():
    """Kills `<` for `<=` and a dropped mask in ``truncated_score``: exact scores of the tie instance."""
    log_ref, phi, thetas, S, nu = _tie_instance()
    ph, Sl = phi.tolist(), S.tolist()
    for x in range(2):
        ref = phi[x, 0][None].expand(1, 3).clone()
        got = truncated_score(thetas[0], S, nu, phi[x][None], ref)[0]
        want = _scores(ph, Sl, thetas[0].tolist(), nu, x, 0)
        assert got.tolist() == pytest.approx(want, abs=1e-15)
        got_b = truncated_score(thetas[:1].expand(1, 3), S, nu, phi[x][None], ref)[0]    # a θ per row
        assert got_b.tolist() == pytest.approx(want, abs=1e-15)


def test_estimated_normaliser_law_is_the_multinomial_average():
    """``normaliser="estimated"``: Ẑ averaged exactly over the multinomial counts of the sampler's N draws,
    against the loops (N = ⌈4M log(4/δ)⌉ = 2 for M = 1, δ = 2.5 and 4 for M = 1.2, δ = 2; δ > 1 only to
    keep N tiny). Kills ``_dense_sampler_log_marginal_39`` (3.0 for 2.0 in the distance), ``_40`` (<),
    ``_76`` (the normaliser argument dropped: Ẑ = Z) and the dense path's other value mutants."""
    log_ref, phi, thetas, S, _ = _tie_instance()
    S = torch.eye(3, dtype=torch.float64) + 0.3 * torch.ones(3, 3, dtype=torch.float64)
    nu = 1.3
    for M, delta in ((1.0, 2.5), (1.2, 2.0)):
        got = truncated_sampler_log_marginal(
            log_ref, phi, thetas, S, nu, 0.5, M, delta, normaliser="estimated"
        ).exp()
        want = _brute(log_ref, phi, thetas, S, nu, 0.5, "sampler", M, delta, "estimated")
        torch.testing.assert_close(got, want, rtol=0, atol=1e-13)
        exact = _brute(log_ref, phi, thetas, S, nu, 0.5, "sampler", M, delta, "exact")
        assert float((want - exact).abs().max()) > 1e-3                    # Ẑ's fluctuation is visible
        # chunks of one component at a time (max_cells below Y²) give the same law
        small = truncated_sampler_log_marginal(
            log_ref, phi, thetas, S, nu, 0.5, M, delta, normaliser="estimated", max_cells=1
        ).exp()
        torch.testing.assert_close(small, got, rtol=0, atol=1e-15)


def test_unknown_normaliser_is_rejected():
    log_ref, phi, thetas, S, nu = _tie_instance()
    with pytest.raises(ConfigError, match=r"^normaliser: must be 'exact' or 'estimated', got 'z'$"):
        truncated_sampler_log_marginal(log_ref, phi, thetas, S, nu, 0.5, 1.5, 0.2, normaliser="z")


def test_float32_parameters_are_read_in_the_features_dtype():
    """θ and Σ⁻¹ given in float32 are cast to the features' float64 (``.to(phi.dtype)``): the laws equal
    those of the same values in float64. Kills ``_dense_sampler_log_marginal_5`` / ``_7`` and the same
    casts in ``_exact_laws`` (``thetas.to(None)`` / ``sigma_inv.to(None)`` mix dtypes in a product and
    raise)."""
    log_ref, phi, thetas, S, _ = _tie_instance()
    S = torch.eye(3, dtype=torch.float64) + 0.25 * torch.ones(3, 3, dtype=torch.float64)   # exact in float32
    nu = 1.3
    t32, S32 = thetas.float(), S.float()
    for fn, args in ((truncated_log_marginal, ()), (truncated_sampler_log_marginal, (1.5, 0.2))):
        a = fn(log_ref, phi, thetas, S, nu, 0.5, *args)
        b = fn(log_ref, phi, t32, S32, nu, 0.5, *args)
        assert b.dtype == torch.float64 and torch.equal(a, b)
    a = truncated_sampler_log_marginal(log_ref, phi, thetas, S, nu, 0.5, 1.5, 3.0, normaliser="estimated")
    b = truncated_sampler_log_marginal(log_ref, phi, t32, S32, nu, 0.5, 1.5, 3.0, normaliser="estimated")
    assert b.dtype == torch.float64 and torch.equal(a, b)


# -- SpannerSamplingPolicy: components, regrets, prompts, repr
# ------------------------------------------------
def _policy():
    inst = linear_softmax(d=3, num_prompts=2, num_responses=5, beta=0.5, target_coverage=2.0, seed=4)
    thetas = torch.tensor([[1.0, -0.5, 0.2], [1.0, -0.5, 0.2], [-0.8, 0.9, 0.4], [0.3, 0.3, -1.1]],
                          dtype=torch.float64)
    sigma_inv = torch.tensor([[0.7, 0.1, 0.0], [0.1, 0.5, 0.05], [0.0, 0.05, 0.9]], dtype=torch.float64)
    return inst, SpannerSamplingPolicy(thetas, sigma_inv, 0.8, inst.beta, 3.0, 0.1)


def _component_law(inst, pol, theta, law):
    b = inst.base
    if law == "ideal":
        return _brute(b.log_ref, b.phi, theta[None], pol.sigma_inv, pol.nu, b.beta, "ideal")[0]
    return _brute(b.log_ref, b.phi, theta[None], pol.sigma_inv, pol.nu, pol.beta, "sampler", pol.M_rej,
                  pol.delta_rej)[0]


@pytest.mark.parametrize("law", ["sampler", "ideal"])
def test_component_regrets_average_and_curve_against_loops(law):
    """component_regrets (distinct θ's weighted by multiplicity), average_regret and regret_curve(stride)
    against the regret of each component's law computed by the loops. Kills the mutants of
    ``component_regrets``, ``average_regret``, ``regret_curve`` and ``_tables`` (no test reached the first
    three)."""
    inst, pol = _policy()
    regs = {tuple(t.tolist()): regret(_component_law(inst, pol, t, law).log(), inst) for t in pol.thetas}
    r, w = pol.component_regrets(inst, law=law)
    uniq, counts = torch.unique(pol.thetas, dim=0, return_counts=True)
    assert w.tolist() == counts.double().tolist()
    assert r.tolist() == pytest.approx([regs[tuple(t.tolist())] for t in uniq], rel=1e-10)
    avg = sum(regs[tuple(t.tolist())] for t in pol.thetas) / 4
    assert pol.average_regret(inst, law=law) == pytest.approx(avg, rel=1e-10)
    curve = pol.regret_curve(inst, stride=2, law=law)
    assert curve.tolist() == pytest.approx([regs[tuple(pol.thetas[k].tolist())] for k in (0, 2)], rel=1e-10)
    assert pol.regret_curve(inst, law=law).tolist() == pytest.approx(
        [regs[tuple(t.tolist())] for t in pol.thetas], rel=1e-10)
    with pytest.raises(ConfigError, match=r"^stride: must be >= 1, got 0$"):
        pol.regret_curve(inst, stride=0, law=law)
    # a systematic subsample of 2 components: t = 0 and t = 3, equal weights
    r2, w2 = pol.component_regrets(inst, components=2, law=law)
    assert w2.tolist() == [1.0, 1.0]
    assert r2.tolist() == pytest.approx([regs[tuple(pol.thetas[k].tolist())] for k in (0, 3)], rel=1e-10)
    assert pol.average_regret(inst, components=2, law=law) == pytest.approx(float(r2.mean()), rel=1e-12)
    mix = pol.log_prob_table(inst, components=2, law=law).exp()
    ref = (_component_law(inst, pol, pol.thetas[0], law) + _component_law(inst, pol, pol.thetas[3], law)) / 2
    torch.testing.assert_close(mix, ref, rtol=0, atol=1e-13)


def test_tables_cache_is_keyed_by_instance_components_and_law():
    """The cached tables are reused only for the same (instance, components, law): switching any of them gives
    that key's law (a wrong cache key would return the previous tables)."""
    inst, pol = _policy()
    a = pol.log_prob_table(inst, law="ideal")
    b = pol.log_prob_table(inst, law="sampler")
    assert float((a - b).abs().max()) > 1e-3
    c = pol.log_prob_table(inst, components=1, law="sampler")
    torch.testing.assert_close(
        c.exp(), _component_law(inst, pol, pol.thetas[0], "sampler"), rtol=0, atol=1e-13
    )
    inst2 = linear_softmax(d=3, num_prompts=2, num_responses=5, beta=0.5, target_coverage=2.0, seed=9)
    d = pol.log_prob_table(inst2, components=1, law="sampler")
    assert float((d - c).abs().max()) > 1e-3
    assert torch.equal(pol.log_prob_table(inst2, components=1, law="sampler"), d)       # reused: same bits
    with pytest.raises(ConfigError, match=r"^law: must be one of \('sampler', 'ideal'\), got 'x'$"):
        pol.log_prob_table(inst, law="x")
    with pytest.raises(ConfigError, match=r"^components: must be >= 1, got 0$"):
        pol.log_prob_table(inst, components=0)


def test_component_selects_one_policy_with_the_same_parameters():
    """component(t) is π̂^t with every parameter kept; t out of [0, T−1] is rejected with its field."""
    inst, pol = _policy()
    pol.weak, pol.prompt_source, pol.chunk = "w", "p", 7
    c = pol.component(2)
    assert torch.equal(c.thetas, pol.thetas[2:3]) and c.sigma_inv is pol.sigma_inv
    assert (c.nu, c.beta, c.M_rej, c.delta_rej, c.weak, c.prompt_source, c.chunk) == (
        0.8,
        0.5,
        3.0,
        0.1,
        "w",
        "p",
        7,
    )
    assert pol.component(3).thetas.tolist() == [pol.thetas[3].tolist()]
    assert pol.component(0).num_components == 1
    with pytest.raises(ConfigError, match=r"^t: must be <= 3, got 4$"):
        pol.component(4)
    with pytest.raises(ConfigError, match=r"^t: must be >= 0, got -1$"):
        pol.component(-1)


def test_sample_prompts_draws_from_the_source_and_needs_one():
    """sample_prompts(num) draws num prompts from the prompt source (the policy's or the argument) and one
    response each; without a source it is rejected with its field."""
    inst, pol = _policy()
    o = inst.oracles()
    pol.weak = o.weak
    with pytest.raises(ConfigError, match=r"^prompt_source: needs a PromptSource to draw new prompts$"):
        pol.sample_prompts(3, torch.Generator().manual_seed(0))
    s = pol.sample_prompts(6, torch.Generator().manual_seed(0), prompt_source=o.prompts)
    assert s.prompts.shape == (6,) and s.responses.shape == (6, 1) and s.features.shape == (6, 1, 3)
    assert torch.equal(s.features[:, 0], inst.base.phi[s.prompts, s.responses[:, 0]])
    pol.prompt_source = o.prompts
    t = pol.sample_prompts(6, torch.Generator().manual_seed(0))
    assert torch.equal(t.prompts, s.prompts) and torch.equal(t.responses, s.responses)
    assert o.ledger.prompts == 12


def test_sample_errors_and_repr():
    inst, pol = _policy()
    with pytest.raises(
        ConfigError, match=r"^weak: SpannerSamplingPolicy.sample needs a weak sampling oracle$"
    ):
        pol.sample(torch.tensor([0]), 1)
    o = inst.oracles()
    with pytest.raises(ConfigError, match=r"^n: must be >= 1, got 0$"):
        pol.sample(torch.tensor([0]), 0, weak=o.weak)
    with pytest.raises(ConfigError, match=r"^thetas: must have shape \(T, 3\), got \(2,\)$"):
        SpannerSamplingPolicy(torch.zeros(2, dtype=torch.float64), pol.sigma_inv, 0.8, 0.5, 3.0, 0.1)
    with pytest.raises(ConfigError, match=r"^thetas: must have shape \(T, 3\), got \(2, 2\)$"):
        SpannerSamplingPolicy(torch.zeros(2, 2, dtype=torch.float64), pol.sigma_inv, 0.8, 0.5, 3.0, 0.1)
    assert repr(pol) == "SpannerSamplingPolicy(T=4, d=3, ν=0.8, β=0.5, M_rej=3, δ_rej=0.1)"


def test_sample_is_the_documented_composition_on_the_same_stream():
    """sample(prompts, n, g) = t ~ Unif[T], y′ ~ π_ref (one draw per row), then
    SoftmaxSampler_{β,M_rej,δ_rej} of the truncated score with the policy's chunk, all on the one generator
    g: replayed by hand on a generator with the same seed, the responses and the ledger agree bit for bit;
    the output has shape [B, n] with the drawn features. Kills ``sample_40``, ``_45``, ``_48``, ``_49``,
    ``_72``, ``_73``, ``_79``, ``_80``, ``_83``, ``_86``, ``_95``–``_120`` (generators, draw counts, chunk,
    shapes, the returned Samples' fields)."""
    from oraclerl.inference.softmax_sampler import softmax_sampler, weak_draw

    inst, pol = _policy()
    pol.chunk = 2                                  # not ceil(M_rej) = 3, the sampler's default
    o1, o2 = inst.oracles(), inst.oracles()
    prompts = torch.tensor([0, 1, 1])
    s = pol.sample(prompts, 2, torch.Generator().manual_seed(11), weak=o1.weak)
    g = torch.Generator().manual_seed(11)
    rows = prompts.repeat_interleave(2)
    t = torch.randint(4, (6,), generator=g)
    ref = o2.weak.sample(rows, 1, g)
    theta = pol.thetas[t]

    def score(smp, idx=None):
        sel = slice(None) if idx is None else idx
        return truncated_score(theta[sel], pol.sigma_inv, pol.nu, smp.features, ref.features[:, 0][sel])

    out = softmax_sampler(weak_draw(o2.weak, rows, g), score, pol.beta, pol.M_rej, pol.delta_rej, generator=g,
                          chunk=2)
    assert torch.equal(s.responses, out.samples.responses.reshape(3, 2))
    assert o1.ledger.t_comp == o2.ledger.t_comp
    assert torch.equal(s.prompts, prompts) and s.features.shape == (3, 2, 3)
    assert torch.equal(s.features, inst.base.phi[prompts[:, None], s.responses])
    assert s._reveal == frozenset({"features"}) and s._oracle == "SpannerSamplingPolicy"
    with pytest.raises(RevealError, match=r"^SpannerSamplingPolicy does not reveal log-probabilities"):
        _ = s.log_probs
    # another seed, another stream (the generator is used)
    s2 = pol.sample(prompts, 2, torch.Generator().manual_seed(12), weak=o1.weak)
    assert not torch.equal(s2.responses, s.responses) or not torch.equal(s2.features, s.features)


def test_defaults_are_the_sampler_law_and_one_response():
    """law defaults to "sampler" in log_prob_table / component_regrets / regret_curve / average_regret and
    n to 1 in sample; kills ``_tables_1`` / ``_2``, ``component_regrets_1`` / ``_2``, ``regret_curve_2`` /
    ``_3``, ``average_regret_1`` / ``_2``, ``sample_1``."""
    inst, pol = _policy()
    torch.testing.assert_close(
        pol.log_prob_table(inst), pol.log_prob_table(inst, law="sampler"), rtol=0, atol=0
    )
    r, w = pol.component_regrets(inst)
    r_s, w_s = pol.component_regrets(inst, law="sampler")
    assert torch.equal(r, r_s) and torch.equal(w, w_s)
    assert torch.equal(pol.regret_curve(inst), pol.regret_curve(inst, law="sampler"))
    assert pol.average_regret(inst) == pol.average_regret(inst, law="sampler")
    assert pol.average_regret(inst) != pol.average_regret(inst, law="ideal")          # M_rej = 3 clips here
    o = inst.oracles()
    assert pol.sample(
        torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0), weak=o.weak
    ).responses.shape == (2, 1)


def test_systematic_subsample_starts_at_the_first_component():
    """components=k uses t = round(linspace(0, T − 1, k)): with three distinct θ's and k = 2, t = 0 and t = 2.
    Kills ``_tables_38`` (linspace from 1)."""
    inst, pol = _policy()
    pol = SpannerSamplingPolicy(pol.thetas[1:], pol.sigma_inv, pol.nu, pol.beta, pol.M_rej, pol.delta_rej)
    mix = pol.log_prob_table(inst, components=2, law="ideal").exp()
    ref = (
        _component_law(inst, pol, pol.thetas[0], "ideal") + _component_law(inst, pol, pol.thetas[2], "ideal")
    ) / 2
    torch.testing.assert_close(mix, ref, rtol=0, atol=1e-13)


def test_estimated_normaliser_keeps_pairs_exactly_at_nu():
    """The dense path (``normaliser="estimated"``) keeps ‖φ‖ = ν too: kills
    ``_dense_sampler_log_marginal_40``."""
    log_ref, phi, thetas, S, nu = _tie_instance()
    got = truncated_sampler_log_marginal(
        log_ref, phi, thetas, S, nu, 0.5, 1.0, 2.5, normaliser="estimated"
    ).exp()
    want = _brute(log_ref, phi, thetas, S, nu, 0.5, "sampler", 1.0, 2.5, "estimated")
    torch.testing.assert_close(got, want, rtol=0, atol=1e-13)


# -- second round (full run of 2026-12-02 with the tests above: 102 survivors)
# ---------------------------------
def _plan_reference(Y, budget):
    """_block_plan by search: the largest b ≤ min(Y, BLOCK_SIDE) with 24·b² + (Y² + Y·b)/2 ≤ budget (mask
    stored) when it is ≥ min(Y, 64), else (max(1, min(Y, BLOCK_SIDE, ⌊√(budget/24)⌋)), recomputed)."""
    from oraclerl.explore.truncated_softmax import BLOCK_SIDE

    fits = [b for b in range(1, min(Y, BLOCK_SIDE) + 1) if 24 * b * b + (Y * Y + Y * b) / 2 <= budget]
    if fits and fits[-1] >= min(Y, 64):
        return fits[-1], True
    return max(1, min(Y, BLOCK_SIDE, math.isqrt(budget // 24))), False


@pytest.mark.parametrize("Y", [1, 5, 30, 64, 65, 100, 150, 600, 1024, 16384])
def test_block_plan_is_the_largest_side_within_the_budget(Y):
    """_block_plan(Y, budget) against the search above over budgets from 24 bytes to 1 GiB, including the
    ones where b ≥ min(Y, 64) holds with equality, b = BLOCK_SIDE binds, or only the recomputed plan fits.
    Kills ``_block_plan_6`` (max 2), ``_10`` / ``_11`` (min without Y / BLOCK_SIDE), ``_30`` (stored b
    without BLOCK_SIDE), ``_41`` / ``_42`` / ``_45`` (the quadratic's root), ``_46`` (>), ``_51`` (65)."""
    from oraclerl.explore.truncated_softmax import _block_plan

    budgets = {24, 95, 96, 2450, 102_000, 120_000, 1 << 20, 1 << 28, 1 << 30}
    # each side's exact budget, and one byte less
    for b in range(1, min(Y, 520) + 1, 1 if Y <= 150 else 37):
        need = 24 * b * b + (Y * Y + Y * b) // 2 + 1
        budgets |= {need, need - 1}
    for budget in sorted(budgets):
        assert _block_plan(Y, budget) == _plan_reference(Y, budget), (Y, budget)


def test_the_memory_budget_reaches_the_block_plan(monkeypatch):
    """``block_bytes`` of truncated_log_marginal / truncated_sampler_log_marginal ("exact") is the budget
    of the blocked evaluation, and "exact" takes the blocked path (the dense path has no plan). Kills
    ``truncated_log_marginal_17``, ``truncated_sampler_log_marginal_23`` (budget dropped), ``_4`` / ``_5``
    ("exact" misspelt: the dense path)."""
    import oraclerl.explore.truncated_softmax as ts

    seen = []
    real = ts._block_plan
    monkeypatch.setattr(ts, "_block_plan", lambda Y, budget: seen.append((Y, budget)) or real(Y, budget))
    log_ref, phi, thetas, S, nu = _tie_instance()
    ts.truncated_log_marginal(log_ref, phi, thetas, S, nu, 0.5, block_bytes=96)
    ts.truncated_sampler_log_marginal(log_ref, phi, thetas, S, nu, 0.5, 1.5, 0.2, block_bytes=96)
    ts.truncated_sampler_log_marginal(log_ref, phi, thetas, S, nu, 0.5, 1.5, 0.2)
    ts.truncated_sampler_log_marginal(log_ref, phi, thetas, S, nu, 0.5, 1.0, 2.5, normaliser="estimated")
    assert seen == [(4, 96), (4, 96), (4, ts.BLOCK_BYTES)]


def test_clip_rows_in_a_later_block_only():
    """[2, 2] blocks, one θ, M = 6: on prompt 0 only y′ = 3 (second block) may clip, on prompt 1 the first
    block clips; the sampler law equals the loops. Kills ``_clip_rows_7`` (``break`` for ``continue``: the
    second block's clip rows would be skipped)."""
    log_ref, phi, thetas, S, nu = _tie_instance()
    got = truncated_sampler_log_marginal(log_ref, phi, thetas[:1], S, nu, 0.5, 6.0, 0.2, block_bytes=96).exp()
    want = _brute(log_ref, phi, thetas[:1], S, nu, 0.5, "sampler", 6.0, 0.2)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-13)


def test_every_candidate_accepted_when_the_reference_mass_rounds_above_one():
    """ν below every distance (only y′ itself is kept) and M = 1/2: every acceptance is 1, so the sampler's
    law is π_ref; with this π_ref, Σ_y π_ref(y) rounds to 1 + 2⁻⁵² (log-sum-exp 2.2e-16 > 0), and the
    acceptance probability must be clamped at 1 before log1p(−P). Kills ``_exact_laws_263`` and
    ``_clip_rows_42`` (clamp at 2: log1p of a number below −1 is NaN)."""
    _, phi, thetas, S, _ = _tie_instance()
    lr = torch.tensor([[-2.0143408932186997, -1.4853971237521177, -0.7112709729556046, -1.9027386849012624]],
                      dtype=torch.float64)
    assert float(torch.logsumexp(lr, 1).exp()) > 1.0                    # the rounding this test is about
    got = truncated_sampler_log_marginal(lr, phi[:1], thetas, S, 0.5, 0.5, 0.5, 0.2)
    assert bool(torch.isfinite(got).all())
    want = _brute(lr, phi[:1], thetas, S, 0.5, 0.5, "sampler", 0.5, 0.2)
    torch.testing.assert_close(got.exp(), want, rtol=0, atol=1e-13)
    torch.testing.assert_close(want, lr.exp()[None].expand(2, 1, 4), rtol=0, atol=1e-15)


def test_both_exact_laws_in_one_evaluation():
    """_exact_laws with ideal=True and a sampler: the two laws share pass 2 (their columns side by side);
    each equals the loops. Kills ``_exact_laws_315`` / ``_320`` (the columns concatenated along the wrong
    axis)."""
    from oraclerl.explore.truncated_softmax import _exact_laws

    log_ref, phi, thetas, S, nu = _tie_instance()
    for bb in (1 << 28, 96):
        out = _exact_laws(log_ref, phi, thetas, S, nu, 0.5, True, (1.5, 0.2), bb)
        torch.testing.assert_close(out["ideal"].exp(), _brute(log_ref, phi, thetas, S, nu, 0.5, "ideal"),
                                   rtol=0, atol=1e-13)
        torch.testing.assert_close(
            out["sampler"].exp(),
            _brute(log_ref, phi, thetas, S, nu, 0.5, "sampler", 1.5, 0.2),
            rtol=0,
            atol=1e-13,
        )


def test_truncated_score_with_float32_parameters_and_nu_not_one():
    """truncated_score with θ, Σ⁻¹ in float32 (exact values) and ν = 1.3 against the loops. Kills
    ``truncated_score_14`` / ``_16`` (``.to(None)``: float32 mixed with float64 raises) and ``_37`` (ν/ν =
    1 for ν·ν)."""
    log_ref, phi, thetas, S, _ = _tie_instance()
    S = torch.eye(3, dtype=torch.float64) + 0.25 * torch.ones(3, 3, dtype=torch.float64)
    nu = 1.3
    ph, Sl = phi.tolist(), S.tolist()
    sq = [sum((ph[x][y][i] - ph[x][yp][i]) * Sl[i][j] * (ph[x][y][j] - ph[x][yp][j]) for i in range(3)
              for j in range(3)) for x in range(2) for yp in range(4) for y in range(4)]
    assert any(1.0 < v <= nu * nu for v in sq) and any(v > nu * nu for v in sq)   # kept only with ν² (not 1)
    for x in range(2):
        for yp in range(4):
            want = _scores(ph, Sl, thetas[1].tolist(), nu, x, yp)
            got = truncated_score(thetas[1].float(), S.float(), nu, phi[x][None], phi[x, yp][None])[0]
            assert got.dtype == torch.float64 and got.tolist() == pytest.approx(want, abs=1e-14)


def test_sample_casts_prompt_ids_to_long():
    """Prompts given as int32 ids come back as int64 (``dtype=torch.long``), with the same draws as int64 ids.
    Kills ``sample_27`` / ``_29``."""
    inst, pol = _policy()
    o1, o2 = inst.oracles(), inst.oracles()
    s = pol.sample(
        torch.tensor([0, 1, 1], dtype=torch.int32), 2, torch.Generator().manual_seed(3), weak=o1.weak
    )
    t = pol.sample(torch.tensor([0, 1, 1]), 2, torch.Generator().manual_seed(3), weak=o2.weak)
    assert s.prompts.dtype == torch.long and torch.equal(s.prompts, t.prompts)
    assert torch.equal(s.responses, t.responses)


def test_a_row_that_clips_by_less_than_the_safety_margin_is_exact():
    """The envelope M is set so that the top response y* = argmax_y a_y clips its own row y′ = y* by δ =
    5e-10: a_y* − c(y*) = δ, i.e. M = e^{−δ}/Z(y*) with Z(y*) by the loops. The row must be evaluated
    elementwise (the product form would accept y* with probability e^δ > 1, an error ≈ π_ref(y*)²·δ ≈ 1e-11
    in the law); the margin 1e-9·(1 + max|a|) added to the bound keeps it on the clip list. Kills
    ``_exact_laws_209`` (margin subtracted) and ``_217`` (1 − max|a| < 0 here: max|a| = 3)."""
    log_ref, phi, thetas, S, nu = _tie_instance()
    lr, ph, theta, beta = log_ref[:1], phi[:1], thetas[:1], 0.5
    a = [sum(t * f for t, f in zip(theta[0].tolist(), row)) / beta for row in ph[0].tolist()]
    ys = max(range(4), key=lambda y: a[y])
    assert (ys, a[ys], max(abs(v) for v in a)) == (1, 3.0, 3.0)
    p = lr[0].exp().tolist()
    Z = sum(
        p[y] * math.exp(a[y] - a[ys]) if _keep(ph.tolist(), S.tolist(), nu, 0, ys, y) else p[y]
        for y in range(4)
    )
    delta = 5e-10
    M = math.exp(-delta) / Z
    got = truncated_sampler_log_marginal(lr, ph, theta, S, nu, beta, M, 0.2).exp()
    want = _brute(lr, ph, theta, S, nu, beta, "sampler", M, 0.2)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-14)


def test_a_row_bounded_by_cauchy_schwarz_that_clips_by_less_than_the_margin_is_exact():
    """Σ⁻¹ = I, θ = (1/2, 0), ν = 1, β = 1/2: the pair (y′, y) = ((0, 0), (1, 0)) sits on the
    Cauchy–Schwarz bound, a_y − a_y′ = ν‖θ‖_Σ/β = 1, while w = (3, 0) (not kept with y′) makes max_y a_y =
    3 > 1, so the row's bound is a_y′ + reach; z = (0, 1000) gives q_max = 10⁶. M is set so that y clips
    the row y′ by δ = 5e-10. The reach's rounding allowance 1e-12·q_max must widen it (here by 5e-7): kills
    ``_exact_laws_200`` (allowance subtracted, the row would be evaluated as a product that accepts y with
    probability e^δ > 1)."""
    phi = torch.tensor([[[0., 0.], [1., 0.], [3., 0.], [0., 1000.]]], dtype=torch.float64)
    lr = torch.log_softmax(torch.tensor([[0.2, 0.1, -0.3, 0.4]], dtype=torch.float64), -1)
    theta, S, nu, beta = (
        torch.tensor([[0.5, 0.0]], dtype=torch.float64),
        torch.eye(2, dtype=torch.float64),
        1.0,
        0.5,
    )
    p = lr[0].exp().tolist()
    # Z(y′ = 0): y′ and y kept, a_y − a_y′ = 1
    Z = p[0] + p[1] * math.e + p[2] + p[3]
    delta = 5e-10
    M = math.exp(1.0 - delta) / Z
    got = truncated_sampler_log_marginal(lr, phi, theta, S, nu, beta, M, 0.2).exp()
    want = _brute(lr, phi, theta, S, nu, beta, "sampler", M, 0.2)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-14)


def test_sample_keeps_the_trailing_shape_of_sequence_responses():
    """A weak autoregressive oracle wrapped as a sequence sampler (responses [B, n, H], features ϕ^seq/√H):
    sample returns [B, n, H] token sequences, replayed by hand as in the test above (same seed, same
    sequences) and with the sequence features of the drawn responses. Kills ``sample_93`` / ``_94`` (the
    trailing shape dropped)."""
    from oraclerl.inference.softmax_sampler import softmax_sampler, weak_draw
    from oraclerl.problems.token_mdp import random_token_mdp

    inst = random_token_mdp(num_actions=2, horizon=3, d=2, seed=1)
    D, H = inst.model.feature_dim * inst.horizon, inst.horizon
    thetas = torch.tensor(
        [[1.0, -0.5, 0.2, 0.7, -1.0, 0.4], [-0.3, 0.8, 0.5, -0.6, 0.9, 0.1]], dtype=torch.float64
    )
    pol = SpannerSamplingPolicy(thetas, torch.eye(D, dtype=torch.float64), 0.8, inst.beta, 3.0, 0.1)
    o1, o2 = inst.oracles(), inst.oracles()
    prompts = torch.tensor([0, 1, 1])
    s = pol.sample(prompts, 2, torch.Generator().manual_seed(5), weak=o1.weak)
    assert s.responses.shape == (3, 2, H) and s.features.shape == (3, 2, D)
    seq = inst.model.sequence_model(1.0 / math.sqrt(H))
    assert torch.equal(s.features, seq.features(prompts, s.responses))
    g = torch.Generator().manual_seed(5)
    rows = prompts.repeat_interleave(2)
    theta = thetas[torch.randint(2, (6,), generator=g)]
    ref = o2.weak.sample(rows, 1, g).features[:, 0]

    def score(smp, idx=None):
        sel = slice(None) if idx is None else idx
        return truncated_score(theta[sel], pol.sigma_inv, pol.nu, smp.features, ref[sel])

    out = softmax_sampler(weak_draw(o2.weak, rows, g), score, pol.beta, pol.M_rej, pol.delta_rej, generator=g)
    assert torch.equal(s.responses, out.samples.responses.reshape(3, 2, H))
