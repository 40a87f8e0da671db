"""Tests written to kill mutmut survivors in ``oraclerl.explore.truncated_softmax`` (docs/testing.md, "Triage").

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


# -- plain-Python references ----------------------------------------------------------------------------------
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


# -- the exact laws: ties at ν, the estimated normaliser, dtypes -----------------------------------------------
@pytest.mark.parametrize("block_bytes", [1 << 28, 24 * 2 * 2])
def test_pairs_exactly_at_nu_are_kept_by_every_law(block_bytes):
    """‖φ‖_{Σ⁻¹} = ν is kept (≤, Eq. 50). Kills `<` for `<=` in ``_PairBlocks.keep``, ``_dense_sampler_log_marginal``
    (``_dense_sampler_log_marginal_40``) and ``truncated_score``, and checks the ideal, sampler (Ẑ = Z, M = 1.5
    clips) laws against the loops, with one block and with [2, 2] blocks."""
    log_ref, phi, thetas, S, nu = _tie_instance()
    ideal = truncated_log_marginal(log_ref, phi, thetas, S, nu, 0.5, block_bytes=block_bytes).exp()
    torch.testing.assert_close(ideal, _brute(log_ref, phi, thetas, S, nu, 0.5, "ideal"), rtol=0, atol=1e-13)
    samp = truncated_sampler_log_marginal(log_ref, phi, thetas, S, nu, 0.5, 1.5, 0.2, block_bytes=block_bytes).exp()
    torch.testing.assert_close(samp, _brute(log_ref, phi, thetas, S, nu, 0.5, "sampler", 1.5, 0.2), rtol=0, atol=1e-13)
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
    """``normaliser="estimated"``: Ẑ averaged exactly over the multinomial counts of the sampler's N draws, against
    the loops (N = ⌈4M log(4/δ)⌉ = 2 for M = 1, δ = 2.5 and 4 for M = 1.2, δ = 2; δ > 1 only to keep N tiny).
    Kills ``_dense_sampler_log_marginal_33`` (3.0 for 2.0 in the distance), ``_40`` (<), ``_76`` (the normaliser
    argument dropped: Ẑ = Z) and the dense path's other value mutants."""
    log_ref, phi, thetas, S, _ = _tie_instance()
    S = torch.eye(3, dtype=torch.float64) + 0.3 * torch.ones(3, 3, dtype=torch.float64)
    nu = 1.3
    for M, delta in ((1.0, 2.5), (1.2, 2.0)):
        got = truncated_sampler_log_marginal(log_ref, phi, thetas, S, nu, 0.5, M, delta, normaliser="estimated").exp()
        want = _brute(log_ref, phi, thetas, S, nu, 0.5, "sampler", M, delta, "estimated")
        torch.testing.assert_close(got, want, rtol=0, atol=1e-13)
        exact = _brute(log_ref, phi, thetas, S, nu, 0.5, "sampler", M, delta, "exact")
        assert float((want - exact).abs().max()) > 1e-3                    # Ẑ's fluctuation is visible
        # chunks of one component at a time (max_cells below Y²) give the same law
        small = truncated_sampler_log_marginal(log_ref, phi, thetas, S, nu, 0.5, M, delta, normaliser="estimated",
                                               max_cells=1).exp()
        torch.testing.assert_close(small, got, rtol=0, atol=1e-15)


def test_unknown_normaliser_is_rejected():
    log_ref, phi, thetas, S, nu = _tie_instance()
    with pytest.raises(ConfigError, match=r"^normaliser: must be 'exact' or 'estimated', got 'z'$"):
        truncated_sampler_log_marginal(log_ref, phi, thetas, S, nu, 0.5, 1.5, 0.2, normaliser="z")


def test_float32_parameters_are_read_in_the_features_dtype():
    """θ and Σ⁻¹ given in float32 are cast to the features' float64 (``.to(phi.dtype)``): the laws equal those of
    the same values in float64. Kills ``_dense_sampler_log_marginal_5`` / ``_7`` and the same casts in
    ``_exact_laws`` (``thetas.to(None)`` / ``sigma_inv.to(None)`` mix dtypes in a product and raise)."""
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


# -- SpannerSamplingPolicy: components, regrets, prompts, repr ------------------------------------------------
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
    """component_regrets (distinct θ's weighted by multiplicity), average_regret and regret_curve(stride) against
    the regret of each component's law computed by the loops. Kills the mutants of ``component_regrets``,
    ``average_regret``, ``regret_curve`` and ``_tables`` (no test reached the first three)."""
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
    torch.testing.assert_close(c.exp(), _component_law(inst, pol, pol.thetas[0], "sampler"), rtol=0, atol=1e-13)
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
    assert (c.nu, c.beta, c.M_rej, c.delta_rej, c.weak, c.prompt_source, c.chunk) == (0.8, 0.5, 3.0, 0.1, "w", "p", 7)
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
    with pytest.raises(ConfigError, match=r"^weak: SpannerSamplingPolicy.sample needs a weak sampling oracle$"):
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
    """sample(prompts, n, g) = t ~ Unif[T], y′ ~ π_ref (one draw per row), then SoftmaxSampler_{β,M_rej,δ_rej} of the
    truncated score with the policy's chunk, all on the one generator g: replayed by hand on a generator with the
    same seed, the responses and the ledger agree bit for bit; the output has shape [B, n] with the drawn
    features. Kills ``sample_40``, ``_45``, ``_48``, ``_49``, ``_72``, ``_73``, ``_79``, ``_80``, ``_83``,
    ``_86``, ``_95``–``_120`` (generators, draw counts, chunk, shapes, the returned Samples' fields)."""
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
    """law defaults to "sampler" in log_prob_table / component_regrets / regret_curve / average_regret and n to 1
    in sample; kills ``_tables_1`` / ``_2``, ``component_regrets_1`` / ``_2``, ``regret_curve_2`` / ``_3``,
    ``average_regret_1`` / ``_2``, ``sample_1``."""
    inst, pol = _policy()
    torch.testing.assert_close(pol.log_prob_table(inst), pol.log_prob_table(inst, law="sampler"), rtol=0, atol=0)
    r, w = pol.component_regrets(inst)
    r_s, w_s = pol.component_regrets(inst, law="sampler")
    assert torch.equal(r, r_s) and torch.equal(w, w_s)
    assert torch.equal(pol.regret_curve(inst), pol.regret_curve(inst, law="sampler"))
    assert pol.average_regret(inst) == pol.average_regret(inst, law="sampler")
    assert pol.average_regret(inst) != pol.average_regret(inst, law="ideal")          # M_rej = 3 clips here
    o = inst.oracles()
    assert pol.sample(torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0), weak=o.weak).responses.shape \
        == (2, 1)


def test_systematic_subsample_starts_at_the_first_component():
    """components=k uses t = round(linspace(0, T − 1, k)): with three distinct θ's and k = 2, t = 0 and t = 2.
    Kills ``_tables_38`` (linspace from 1)."""
    inst, pol = _policy()
    pol = SpannerSamplingPolicy(pol.thetas[1:], pol.sigma_inv, pol.nu, pol.beta, pol.M_rej, pol.delta_rej)
    mix = pol.log_prob_table(inst, components=2, law="ideal").exp()
    ref = (_component_law(inst, pol, pol.thetas[0], "ideal") + _component_law(inst, pol, pol.thetas[2], "ideal")) / 2
    torch.testing.assert_close(mix, ref, rtol=0, atol=1e-13)


def test_estimated_normaliser_keeps_pairs_exactly_at_nu():
    """The dense path (``normaliser="estimated"``) keeps ‖φ‖ = ν too: kills ``_dense_sampler_log_marginal_40``."""
    log_ref, phi, thetas, S, nu = _tie_instance()
    got = truncated_sampler_log_marginal(log_ref, phi, thetas, S, nu, 0.5, 1.0, 2.5, normaliser="estimated").exp()
    want = _brute(log_ref, phi, thetas, S, nu, 0.5, "sampler", 1.0, 2.5, "estimated")
    torch.testing.assert_close(got, want, rtol=0, atol=1e-13)
