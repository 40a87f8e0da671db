"""Linear autoregressive model: exact likelihoods vs brute force, sampling law, closed-form gradients."""

import itertools
import math

import pytest
import torch
from scipy import stats

from oraclerl.errors import ConfigError
from oraclerl.models import kernels
from oraclerl.models.linear_ar import ContextBigramFeatures, FeatureMap, LinearARModel, PromptBoundPolicy
from oraclerl.oracles.ledger import Ledger
from oraclerl.oracles.samplers import AutoregressiveSampler, WeakSampler


class GenericBigram(FeatureMap):
    """The same map written from the definition (forces the generic, per-position code path)."""

    def __init__(self, d, k):
        self.context_dim, self.num_actions, self.dim = d, k, d * k + k * k

    def __call__(self, x, prefix):
        B, d, k = x.shape[0], self.context_dim, self.num_actions
        out = torch.zeros(B, k, self.dim, dtype=x.dtype)
        for b in range(B):
            for y in range(k):
                e_y = torch.zeros(k, dtype=x.dtype)
                e_y[y] = 1
                out[b, y, : d * k] = torch.outer(x[b], e_y).flatten()          # vec(x e_yᵀ)
                if prefix.shape[1]:
                    e_p = torch.zeros(k, dtype=x.dtype)
                    e_p[prefix[b, -1]] = 1
                    out[b, y, d * k:] = torch.outer(e_y, e_p).flatten()        # vec(e_y e_{y_{i-1}}ᵀ)
        return out


class SlowPathBigram(ContextBigramFeatures):
    """The bigram map through the generic (explicit-feature, per-position) code path of LinearARModel."""


def _model(d=3, k=3, N=4, seed=0, fast=True, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    fm = ContextBigramFeatures(d, k) if fast else SlowPathBigram(d, k)
    w = torch.randn(fm.dim, generator=g, dtype=torch.float64) * scale
    x = torch.randn(2, d, generator=g, dtype=torch.float64)
    return LinearARModel(fm, N, w, dtype=torch.float64), x


def _brute_force(model, x):
    """p(y|x) for every y ∈ Y^N from the definition: Π_i exp⟨w, ϕ(x, y_<i, y_i)⟩ / Σ_y' exp⟨w, ϕ(x, y_<i,
    y')⟩."""
    k, N, d = model.num_actions, model.horizon, model.context_dim
    fm = GenericBigram(d, k)
    seqs = list(itertools.product(range(k), repeat=N))
    out = torch.zeros(x.shape[0], len(seqs), dtype=torch.float64)
    for b in range(x.shape[0]):
        for s_idx, s in enumerate(seqs):
            p = 1.0
            for i in range(N):
                phi = fm(x[b:b + 1], torch.tensor([s[:i]], dtype=torch.long).reshape(1, i))[0]
                scores = phi @ model.w
                p *= math.exp(scores[s[i]]) / torch.exp(scores).sum().item()
            out[b, s_idx] = p
    return seqs, out


def test_feature_map_matches_definition():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, generator=g, dtype=torch.float64)
    prefix = torch.tensor([[0, 2], [1, 1], [2, 0]])
    assert torch.equal(ContextBigramFeatures(4, 3)(x, prefix), GenericBigram(4, 3)(x, prefix))
    assert torch.equal(ContextBigramFeatures(4, 3)(x, prefix[:, :0]), GenericBigram(4, 3)(x, prefix[:, :0]))


@pytest.mark.parametrize("fast", [True, False])
def test_exact_likelihood_equals_brute_force(fast):
    model, x = _model(fast=fast)
    seqs, p = _brute_force(model, x)
    assert torch.allclose(p.sum(1), torch.ones(2, dtype=torch.float64), atol=1e-12)
    y = torch.tensor(seqs)[None].expand(2, -1, -1)
    ll = model.log_likelihood(x, y)
    assert torch.allclose(ll.exp(), p, rtol=1e-10, atol=0)


def test_zero_init_is_uniform_and_next_token_law():
    model = LinearARModel(ContextBigramFeatures(3, 5), 7)
    x = torch.randn(4, 3)
    y = torch.randint(0, 5, (4, 7))
    assert torch.allclose(model.log_likelihood(x, y), torch.full((4,), -7 * math.log(5)), atol=1e-5)
    m2, x2 = _model(seed=3)
    prefix = torch.tensor([[1, 2], [0, 0]])
    nxt = m2.next_log_probs(x2, prefix)
    full = torch.cat([prefix[:, None, :].expand(2, 3, 2), torch.arange(3)[None, :, None].expand(2, 3, 1)], -1)
    tok = m2.token_log_probs(x2, full)[..., -1]
    assert torch.allclose(nxt, tok, atol=1e-12)
    assert torch.allclose(nxt.exp().sum(1), torch.ones(2, dtype=torch.float64))


@pytest.fixture(params=["compiled", "torch"])
def accel(request, monkeypatch):
    """Run a test with the numba kernels (skipped without numba) and with their torch definitions."""
    if request.param == "torch":
        monkeypatch.setattr(kernels, "_NUMBA", False)
    elif not kernels.accelerated(torch.zeros(1)):
        pytest.skip("numba is not installed (extra [fast])")
    return request.param


def _both(fn, monkeypatch):
    """fn() with the compiled kernels and with the torch definitions (skips without numba)."""
    if not kernels.accelerated(torch.zeros(1)):
        pytest.skip("numba is not installed (extra [fast])")
    a = fn()
    with monkeypatch.context() as m:
        m.setattr(kernels, "_NUMBA", False)
        b = fn()
    return a, b


def test_compiled_kernels_equal_their_torch_definitions(monkeypatch):
    """Bit-identical outputs on inputs made to expose order, tie and boundary differences (issue 15)."""
    g = torch.Generator().manual_seed(0)
    # cdf_walk: rows with exact ties between the uniforms and the CDF entries; 13 sequences (not a multiple of
    # 8)
    k, R, M, L = 5, 7, 13, 9
    cdf = torch.tensor([[0.25, 0.5, 0.5, 0.75, 2.0]], dtype=torch.float64).repeat(R, 1)
    cdf[1] = torch.tensor([0.0, 0.0, 0.5, 1.0, 2.0])
    u = torch.tensor([0.0, 0.25, 0.5, 0.75, 0.1, 0.6, 0.9, 0.5, 0.25], dtype=torch.float64).repeat(M, 1)
    u[::2] = torch.rand(7, L, generator=g, dtype=torch.float64)
    base = torch.arange(M) % 3
    a, b = _both(lambda: kernels.cdf_walk(cdf, base, u, 3), monkeypatch)
    assert torch.equal(a, b) and set(a.unique().tolist()) == set(range(k))
    # bigram_walk: 13 contexts × 3 sequences (contexts straddle the compiled blocks of 8), peaked and flat
    # rows
    B, n, k = 13, 3, 6
    E1 = torch.rand(B, k, generator=g, dtype=torch.float64) ** 4
    E2 = torch.rand(k + 1, k, generator=g, dtype=torch.float64) ** 4
    for dt in (torch.float64, torch.float32):                      # the table is rounded to u's dtype
        u = torch.rand(B * n, 40, generator=g, dtype=dt)
        a, b = _both(lambda u=u: kernels.bigram_walk(E1, E2, u, n), monkeypatch)
        assert torch.equal(a, b)
    # greedy_table / greedy_walk: ties (first maximum wins), ±inf, and NaN (left to torch)
    s = torch.randint(0, 3, (9, 7), generator=g).float()
    t = torch.randint(0, 3, (8, 7), generator=g).float()
    for case in ("ties", "inf", "nan"):
        if case == "inf":
            s[2, 3] = float("inf")
        if case == "nan":
            s[4, 1] = float("nan")
        a, b = _both(lambda: kernels.greedy_table(s, t), monkeypatch)
        assert torch.equal(a, b) and torch.equal(a, (s[:, None, :] + t[None]).argmax(-1))
        a, b = _both(lambda: kernels.greedy_walk(s, t, 11), monkeypatch)
        assert torch.equal(a, b)
    # bigram_counts: weights over 20 orders of magnitude (any change of summation order shows)
    y = torch.randint(0, k, (B, n, 17), generator=g)
    w = (torch.rand(B, n, 17, generator=g, dtype=torch.float64) - 0.5) * 10 ** (
        torch.rand(B, n, 17, generator=g, dtype=torch.float64) * 20 - 10)
    for wt in (w, w[:, :, :1].expand(B, n, 17)):
        a, b = _both(lambda wt=wt: kernels.bigram_counts(y, wt, k), monkeypatch)
        assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_sampler_paths_bit_identical_at_paper_shape(monkeypatch):
    """The Figure-1 shape (d = k = 32, N = 128) samples the same tokens with and without numba; logits so
    large that the factorised normaliser underflows take the joint-logit table (same law: here the greedy
    walk)."""
    g = torch.Generator().manual_seed(1)
    model = LinearARModel(ContextBigramFeatures(32, 32), 128)
    model.w.normal_(generator=g)
    x = torch.randn(64, 32, generator=g)
    a, b = _both(lambda: model.sample(x, 2, torch.Generator().manual_seed(5)), monkeypatch)
    assert torch.equal(a, b)
    big = model.copy(model.w * 1e4)                      # logit gaps ≫ 700: E₁E₂ᵀ underflows
    _, _, E1, E2 = big._factors(x)
    assert float((E1 @ E2.T).min()) < 1e-280
    a, b = _both(lambda: big.sample(x, 1, torch.Generator().manual_seed(5)), monkeypatch)
    assert torch.equal(a, b)
    greedy = kernels.greedy_walk(x @ big.W1, torch.cat([big.W2.T, torch.zeros(1, 32)], 0), 128)
    assert torch.equal(a[:, 0], greedy)


@pytest.mark.parametrize("fast", [True, False])
def test_sampling_follows_exact_law(fast, accel):
    """Pearson χ² goodness of fit over all k^N sequences (fixed seed; level 1e-3), compiled and torch
    kernels."""
    model, x = _model(k=3, N=3, seed=5, fast=fast, scale=0.7)
    n = 20000
    y = model.sample(x, n, torch.Generator().manual_seed(11))
    k, N = 3, 3
    code = (y * torch.tensor([k ** (N - 1 - i) for i in range(N)])).sum(-1)
    seqs = torch.tensor(list(itertools.product(range(k), repeat=N)))
    p = model.log_likelihood(x, seqs[None].expand(2, -1, -1)).exp()
    for b in range(2):
        counts = torch.bincount(code[b], minlength=k ** N).double()
        assert stats.chisquare(counts.numpy(), (p[b] * n).numpy()).pvalue > 1e-3


def test_sample_next_follows_exact_law():
    model, x = _model(k=4, N=3, seed=2)
    prefix = torch.tensor([[3], [1]])
    tok = model.sample_next(x, prefix, 20000, torch.Generator().manual_seed(0))
    p = model.next_log_probs(x, prefix).exp()
    for b in range(2):
        counts = torch.bincount(tok[b], minlength=4).double()
        assert stats.chisquare(counts.numpy(), (p[b] * 20000).numpy()).pvalue > 1e-3


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("wshape", ["token", "sequence", "none", "prefix"])
def test_closed_form_gradient_equals_autograd(fast, wshape):
    model, x = _model(d=3, k=4, N=5, seed=7, fast=fast)
    g = torch.Generator().manual_seed(0)
    L = 3 if wshape == "prefix" else 5
    y = torch.randint(0, 4, (2, 3, L), generator=g)
    a = {"token": torch.randn(2, 3, L, generator=g, dtype=torch.float64),
         "sequence": torch.randn(2, 3, generator=g, dtype=torch.float64),
         "none": None, "prefix": torch.randn(2, 3, L, generator=g, dtype=torch.float64)}[wshape]
    got = model.grad_log_likelihood(x, y, a)
    w = model.w.clone().requires_grad_(True)
    ref = LinearARModel(ContextBigramFeatures(3, 4), 5, dtype=torch.float64)
    ref.w = w
    lp = ref.token_log_probs(x, y)
    aa = torch.ones_like(lp) if a is None else (a[..., None] if a.dim() == 2 else a)
    (lp * aa).sum().backward()
    assert torch.allclose(got, w.grad, atol=1e-6, rtol=0)
    # and the sufficient statistic: log p = <w, Σϕ> − Σ log Z (generic features vs table likelihood)
    if wshape == "none":
        feats = model.sequence_features(x, y)
        assert feats.shape == (2, 3, model.feature_dim)


def test_float32_gradient_close_to_float64():
    model, x = _model(d=8, k=6, N=20, seed=4, scale=2.0)
    y = model.sample(x, 5, torch.Generator().manual_seed(0))
    a = torch.randn(2, 5, 20, dtype=torch.float64)
    g64 = model.grad_log_likelihood(x, y, a)
    m32 = LinearARModel(model.feature_map, 20, model.w.float())
    g32 = m32.grad_log_likelihood(x.float(), y, a.float())
    assert torch.allclose(g32.double(), g64, atol=1e-4, rtol=1e-4)


def test_bad_inputs():
    model, x = _model()
    with pytest.raises(ConfigError, match="x"):
        model.log_likelihood(torch.zeros(2, 5), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ConfigError, match="y"):
        model.log_likelihood(x, torch.zeros(2, 9, dtype=torch.long))
    with pytest.raises(ConfigError, match="y"):
        model.log_likelihood(x, torch.full((2, 4), 7))
    with pytest.raises(ConfigError, match="w"):
        LinearARModel(ContextBigramFeatures(3, 3), 4, torch.zeros(5))
    with pytest.raises(ConfigError, match="weights"):
        model.grad_log_likelihood(x, torch.zeros(2, 1, 4, dtype=torch.long), torch.zeros(2, 2, 4))
    with pytest.raises(ConfigError, match="horizon"):
        LinearARModel(ContextBigramFeatures(3, 3), 0)


class _Ctx:
    def __init__(self, x):
        self.x = x

    def lookup(self, ids):
        return self.x[torch.as_tensor(ids)]


def test_prompt_bound_policy_through_oracles():
    model, x = _model()
    ledger = Ledger()
    bound = PromptBoundPolicy(model, _Ctx(x))
    weak = WeakSampler(bound, ledger, reveal={"features", "log_probs"})
    s = weak.sample(torch.tensor([0, 1]), 3, torch.Generator().manual_seed(0))
    assert s.responses.shape == (2, 3, 4) and ledger.t_comp == 6
    assert torch.allclose(s.log_probs, model.log_likelihood(x, s.responses))
    assert s.features.shape == (2, 3, model.feature_dim)
    auto = AutoregressiveSampler(bound, ledger, reveal={"features", "log_probs"})
    t = auto.next_token(
        torch.tensor([0, 1]), torch.tensor([[1], [2]]), 4, generator=torch.Generator().manual_seed(1)
    )
    assert t.responses.shape == (2, 4) and ledger.t_comp_token == 8
    assert torch.allclose(
        t.log_probs, model.next_log_probs(x, torch.tensor([[1], [2]])).gather(1, t.responses)
    )
    assert t.features.shape == (2, 4, model.feature_dim)
