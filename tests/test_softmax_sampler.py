"""SoftmaxSampler / SoftmaxSamplerDensity (Foster et al. Algorithms 1-2, Theorems F.1-F.2)."""

import math

import pytest
import torch
from scipy import stats

from oraclerl.errors import ConfigError
from oraclerl.inference.softmax_sampler import (
    SoftmaxSampler,
    SoftmaxSamplerConfig,
    SoftmaxSamplerDensity,
    max_draws,
    num_normaliser_draws,
    softmax_sampler,
    weak_draw,
)
from oraclerl.models.linear_softmax import LinearSoftmaxModel
from oraclerl.oracles import Ledger, WeakSampler


def _model(Y=6, X=2, beta=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    log_ref = torch.log_softmax(torch.randn(X, Y, generator=g, dtype=torch.float64), -1)
    phi = torch.randn(X, Y, 3, generator=g, dtype=torch.float64)
    phi = phi / phi.norm(dim=-1, keepdim=True)
    return LinearSoftmaxModel(log_ref, phi, beta)


def _setup(B, X=2, Y=6, beta=0.5, seed=0):
    model = _model(Y, X, beta, seed)
    ledger = Ledger()
    weak = WeakSampler(model, ledger)
    f_table = 1.2 * torch.randn(X, Y, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    prompts = torch.arange(B) % X
    target = torch.log_softmax(model.log_ref + f_table / beta, -1)  # log π_f, brute force
    c_inf = float((target - model.log_ref).exp().max())
    score = lambda s: f_table[s.prompts[:, None], s.responses]  # noqa: E731
    return model, ledger, weak, f_table, prompts, target, c_inf, score


@pytest.mark.parametrize("row_aware", [True, False])
def test_law_matches_tilt_goodness_of_fit(row_aware):
    """Chi-square GOF (level 1e-3) of the output against the exact π_f when M = 4·C_∞ (Thm F.2)."""
    B, beta = 24000, 0.5
    model, ledger, weak, f_table, prompts, target, c_inf, score = _setup(B, beta=beta)
    gen = torch.Generator().manual_seed(11)
    M, delta = 4 * c_inf, 0.05
    draw = weak_draw(weak, prompts, gen) if row_aware else (lambda n: weak.sample(prompts, n, gen))
    out = softmax_sampler(draw, score, beta, M, delta, generator=gen)
    assert out.samples.responses.shape == (B, 1)
    assert out.samples.features.shape == (B, 1, 3)
    y = out.samples.responses[:, 0]
    # features are those of the returned response
    assert torch.equal(out.samples.features[:, 0], model.phi[prompts, y])
    for x in range(2):
        counts = torch.bincount(y[prompts == x], minlength=6).double()
        expected = target[x].exp() * counts.sum()
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert stats.chi2.sf(chi2, df=5) > 1e-3, (x, counts, expected)
    # call count within the bound of Theorem F.2, and the ledger counts every draw
    assert int(out.draws.max()) <= max_draws(M, delta) == 2 * math.ceil(4 * M * math.log(4 / delta)) + 1
    if row_aware:
        assert ledger.t_comp == int(out.draws.sum())
    else:
        assert ledger.t_comp >= int(out.draws.sum())
    assert out.accepted.float().mean() > 1 - delta


def test_log_density_matches_alg2():
    """log ρ = f(y)/β − log Ẑ is close to log π_f/π_ref(y) when M ≥ 4·C_∞² (Theorem F.1)."""
    B, beta = 2000, 0.5
    model, _, weak, f_table, prompts, target, c_inf, score = _setup(B, beta=beta)
    gen = torch.Generator().manual_seed(3)
    M = 4 * c_inf**2
    samples, log_rho = SoftmaxSamplerDensity(SoftmaxSamplerConfig(M=M, delta=0.05)).sample_density(
        weak_draw(weak, prompts, gen), score, beta, gen)
    y = samples.responses[:, 0]
    truth = (target - model.log_ref)[prompts, y]
    bound = c_inf * math.sqrt(2 / M)
    assert (log_rho - truth).abs().max() <= bound
    # ρ ∈ [e^{-2R/β}, e^{2R/β}] with R = max |f|
    R = float(f_table.abs().max())
    assert log_rho.abs().max() <= 2 * R / beta + 1e-12


def test_sequential_chunk_count_is_geometric():
    """chunk=1 is the sequential algorithm: with constant f, acceptance is exactly 1/M, so
    draws − N ~ min(Geometric(1/M), N) + 1[failure], and the ledger equals the per-row sum."""
    B, beta, M, delta = 20000, 0.5, 3.0, 0.5
    model, ledger, weak, _, prompts, _, _, _ = _setup(B, beta=beta)
    gen = torch.Generator().manual_seed(5)
    const = lambda s: torch.full(s.responses.shape[:2], 0.7, dtype=torch.float64)  # noqa: E731
    out = softmax_sampler(weak_draw(weak, prompts, gen), const, beta, M, delta, generator=gen, chunk=1)
    N = num_normaliser_draws(M, delta)
    extra = (out.draws - N).double()
    p, q = 1 / M, 1 - 1 / M
    # E[extra] = E[min(G, N)] + P[G > N] with G ~ Geometric(p) on {1, 2, ...}
    mean = (1 - q**N) / p + q**N
    var_bound = 1 / p**2
    assert abs(float(extra.mean()) - mean) < 5 * math.sqrt(var_bound / B)
    assert ledger.t_comp == int(out.draws.sum())
    assert torch.equal(~out.accepted, out.draws == 2 * N + 1)
    # the density estimate with constant f is exactly 0 (ρ = e^{f/β}/Ẑ = 1)
    assert out.log_density.abs().max() < 1e-12


def test_chunking_counts_whole_chunks():
    B, beta, M, delta, chunk = 3000, 0.5, 3.0, 0.5, 4
    model, ledger, weak, _, prompts, _, _, score = _setup(B, beta=beta)
    gen = torch.Generator().manual_seed(6)
    out = softmax_sampler(weak_draw(weak, prompts, gen), score, beta, M, delta, generator=gen, chunk=chunk)
    N = num_normaliser_draws(M, delta)
    cand = out.draws[out.accepted] - N
    ok = (cand % chunk == 0) | (cand == N)  # whole chunks, or all N candidates (last chunk partial)
    assert ok.all() and (cand >= chunk).all()
    assert ledger.t_comp == int(out.draws.sum())


def test_failure_branch_and_clipping():
    """M = 1 with a peaked f clips the acceptance at 1 and can fail; failed rows draw exactly one more."""
    B, beta = 4000, 0.1
    model, ledger, weak, f_table, prompts, _, _, score = _setup(B, beta=beta)
    gen = torch.Generator().manual_seed(9)
    out = softmax_sampler(weak_draw(weak, prompts, gen), score, beta, 1.0, 0.9, generator=gen, chunk=1)
    N = num_normaliser_draws(1.0, 0.9)
    assert (~out.accepted).any()
    assert torch.equal(out.draws[~out.accepted], torch.full_like(out.draws[~out.accepted], 2 * N + 1))
    assert ledger.t_comp == int(out.draws.sum())


def test_same_seed_bit_identical_and_different_seed_differs():
    def once(seed):
        _, _, weak, _, prompts, _, c_inf, score = _setup(500)
        gen = torch.Generator().manual_seed(seed)
        return SoftmaxSampler(SoftmaxSamplerConfig(M=8.0, delta=0.1)).sample(
            weak_draw(weak, prompts, gen), score, 0.5, gen
        )

    a, b, c = once(1), once(1), once(2)
    assert torch.equal(a.samples.responses, b.samples.responses) and torch.equal(a.draws, b.draws)
    assert torch.equal(a.log_density, b.log_density)
    assert not torch.equal(a.samples.responses, c.samples.responses)


def test_row_aware_score_gets_rows():
    """A score that needs per-row data (here a per-row θ) receives the active row indices."""
    B, beta = 3000, 0.5
    model, _, weak, _, prompts, _, _, _ = _setup(B, beta=beta)
    theta = torch.randn(B, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def score(s, rows=None):
        th = theta if rows is None else theta[rows]
        return torch.einsum("bnd,bd->bn", s.features, th)

    gen = torch.Generator().manual_seed(1)
    out = softmax_sampler(
        weak_draw(weak, prompts, gen), score, beta, 4 * math.exp(2 / beta), 0.05, generator=gen
    )
    y = out.samples.responses[:, 0]
    # rows with θ pointing at the response have higher probability: compare mean log π_θ(y) with π_ref
    log_pt = torch.log_softmax(
        model.log_ref[prompts] + torch.einsum("byd,bd->by", model.phi[prompts], theta) / beta, -1
    )
    got = log_pt.gather(1, y[:, None]).mean()
    expect = (log_pt.exp() * log_pt).sum(-1).mean()
    assert abs(float(got - expect)) < 0.1


@pytest.mark.parametrize("field,kw", [("M", {"M": 0.5}), ("delta", {"delta": 1.0}), ("delta", {"delta": 0.0}),
                                      ("beta", {"beta": -1.0}), ("chunk", {"chunk": 0})])
def test_bad_input(field, kw):
    _, _, weak, _, prompts, _, _, score = _setup(4)
    args = {"beta": 0.5, "M": 2.0, "delta": 0.1} | kw
    with pytest.raises(ConfigError, match=field):
        softmax_sampler(
            weak_draw(weak, prompts), score, args.pop("beta"), args.pop("M"), args.pop("delta"), **args
        )
    with pytest.raises(ConfigError, match="M"):
        SoftmaxSamplerConfig(M=0.0)


def test_chunk1_reproduces_the_sequential_algorithm_exactly():
    """One row, chunk = 1: the same random stream through a literal transcription of Algorithm 1 gives the
    same response, the same acceptance flag and the same number of oracle calls."""
    beta, M, delta = 0.5, 2.0, 0.3
    model, _, _, f_table, _, _, _, score = _setup(1)
    N = num_normaliser_draws(M, delta)
    for seed in range(40):
        ledger_a, ledger_b = Ledger(), Ledger()
        wa, wb = WeakSampler(model, ledger_a), WeakSampler(model, ledger_b)
        x = torch.tensor([seed % 2])
        ga = torch.Generator().manual_seed(seed)
        out = softmax_sampler(weak_draw(wa, x, ga), score, beta, M, delta, generator=ga, chunk=1)
        gb = torch.Generator().manual_seed(seed)
        ys = wb.sample(x, N, gb).responses[0]
        log_z = torch.logsumexp(f_table[x[0], ys] / beta, 0) - math.log(N)
        y, accepted = None, False
        for _ in range(N):
            cand = wb.sample(x, 1, gb).responses[0, 0]
            p = min(1.0, math.exp(float(f_table[x[0], cand] / beta - log_z) - math.log(M)))
            if float(torch.rand((1, 1), generator=gb, dtype=torch.float64)) < p:
                y, accepted = cand, True
                break
        if y is None:
            y = wb.sample(x, 1, gb).responses[0, 0]
        assert int(out.samples.responses[0, 0]) == int(y) and bool(out.accepted[0]) == accepted
        assert int(out.draws[0]) == ledger_b.t_comp == ledger_a.t_comp
