"""The truncated softmax policy (Eq. 9): exact marginal law vs brute force, and the real sampler vs the law;
plus the shared linear-algebra helpers (constrained least squares, Sherman–Morrison)."""

import math

import pytest
import torch
from scipy import stats

from oraclerl.diagnostics import regret
from oraclerl.explore.linear_regression import (
    InverseGram,
    LeastSquaresState,
    constrained_least_squares,
    project,
)
from oraclerl.explore.truncated_softmax import SpannerSamplingPolicy, truncated_log_marginal
from oraclerl.oracles import Ledger, WeakSampler
from oraclerl.problems import linear_softmax

torch.set_num_threads(1)


def _setup(seed=0, Y=6, d=3, nu=0.9):
    inst = linear_softmax(d=d, num_prompts=2, num_responses=Y, beta=0.5, target_coverage=2.0, seed=seed)
    g = torch.Generator().manual_seed(seed + 10)
    gram = InverseGram(d, 0.5)
    for v in torch.randn(4, d, generator=g, dtype=torch.float64):
        gram.add(v)
    thetas = torch.randn(3, d, generator=g, dtype=torch.float64)
    return inst, gram.inv, thetas, nu


def _brute_marginal(inst, theta, sigma_inv, nu):
    """π̄_θ(y|x) = Σ_{y′} π_ref(y′) π̄_θ(y|x, y′), by explicit loops over x, y′, y."""
    base = inst.base
    X, Y, _ = base.phi.shape
    out = torch.zeros(X, Y, dtype=torch.float64)
    ref = base.log_ref.exp()
    for x in range(X):
        for yp in range(Y):
            w = torch.zeros(Y, dtype=torch.float64)
            for y in range(Y):
                rel = base.phi[x, y] - base.phi[x, yp]
                trunc = float(rel @ sigma_inv @ rel) <= nu * nu
                w[y] = ref[x, y] * math.exp(float(theta @ rel) * trunc / base.beta)
            out[x] += ref[x, yp] * w / w.sum()
    return out


@pytest.mark.parametrize("scale", [1.0, 8.0])
def test_log_marginal_matches_brute_force(scale):
    """Matrix-product form vs explicit loops; scale 8 gives scores ⟨θ, φ⟩/β up to ≈ 40 (log-space shifts)."""
    inst, sigma_inv, thetas, nu = _setup()
    thetas = thetas * scale
    tab = truncated_log_marginal(inst.base.log_ref, inst.base.phi, thetas, sigma_inv, nu, inst.beta)
    truncated_somewhere = False
    for k in range(thetas.shape[0]):
        brute = _brute_marginal(inst, thetas[k], sigma_inv, nu)
        torch.testing.assert_close(tab[k].exp(), brute, rtol=1e-10, atol=1e-12)
        full = _brute_marginal(inst, thetas[k], sigma_inv, 1e9)
        truncated_somewhere |= not torch.allclose(full, brute)
    assert truncated_somewhere                      # ν really truncates some pairs on this instance
    # with no truncation the conditional does not depend on y′: the marginal is π_θ
    tab_inf = truncated_log_marginal(inst.base.log_ref, inst.base.phi, thetas[:1], sigma_inv, 1e9, inst.beta)
    torch.testing.assert_close(tab_inf[0], inst.base.log_policy(thetas[0]))


def test_mixture_and_average_regret():
    inst, sigma_inv, thetas, nu = _setup()
    pol = SpannerSamplingPolicy(thetas, sigma_inv, nu, inst.beta, M_rej=8.0, delta_rej=0.01)
    tabs = [_brute_marginal(inst, thetas[k], sigma_inv, nu) for k in range(3)]
    mix = sum(tabs) / 3
    torch.testing.assert_close(pol.log_prob_table(inst, law="ideal").exp(), mix, rtol=1e-10, atol=1e-12)
    avg = sum(regret(t.log(), inst) for t in tabs) / 3
    assert pol.average_regret(inst, law="ideal") == pytest.approx(avg, rel=1e-9)
    assert regret(pol.log_prob_table(inst, law="ideal"), inst) <= avg                 # convexity of KL
    # same for the sampler law
    assert regret(pol, inst) <= pol.average_regret(inst) + 1e-12
    # duplicated components are weighted by multiplicity
    dup = SpannerSamplingPolicy(thetas[[0, 0, 1]], sigma_inv, nu, inst.beta, 8.0, 0.01)
    torch.testing.assert_close(dup.log_prob_table(inst, law="ideal").exp(), (2 * tabs[0] + tabs[1]) / 3,
                               rtol=1e-10, atol=1e-12)
    # the sampler law (default) is the ideal one when the envelope never clips, up to the failure mass (δ/4)⁴
    big = SpannerSamplingPolicy(thetas, sigma_inv, nu, inst.beta, M_rej=1e4, delta_rej=0.01)
    torch.testing.assert_close(big.log_prob_table(inst).exp(), mix, rtol=0, atol=1e-9)
    # and it clips at M_rej = 8 on this instance (the evaluation scores what is drawn, not π̄_θ)
    assert float((pol.log_prob_table(inst).exp() - mix).abs().max()) > 0.01


def test_sampler_follows_the_marginal_law():
    """Monte Carlo: y′ ~ π_ref, y ~ SoftmaxSampler(r^t(x, ·, y′)) has law π̄_θ (M_rej ≥ 4·max density ratio);
    chi-square goodness of fit at level 1e-3 per prompt."""
    inst, sigma_inv, thetas, nu = _setup(seed=1)
    base = inst.base
    X, Y, _ = base.phi.shape
    # exact max over (x, y′, y) of π̄_θ(y|x, y′)/π_ref(y|x) to set M_rej by Theorem F.2
    rel = base.phi[:, :, None, :] - base.phi[:, None, :, :]          # [X, y, y′, d]
    keep = torch.einsum("xabi,ij,xabj->xab", rel, sigma_inv, rel) <= nu * nu
    logits = base.log_ref[:, :, None] + (rel @ thetas[0]) * keep / base.beta
    ratio = (torch.log_softmax(logits, 1) - base.log_ref[:, :, None]).exp().max()
    weak = WeakSampler(base, Ledger())
    pol = SpannerSamplingPolicy(thetas[:1], sigma_inv, nu, base.beta, M_rej=4 * float(ratio), delta_rej=1e-3,
                                weak=weak)
    n = 12000
    s = pol.sample(torch.tensor([0, 1]), n, torch.Generator().manual_seed(2))
    law = pol.log_prob_table(inst).exp()
    for x in range(X):
        counts = torch.bincount(s.responses[x], minlength=Y).double()
        exp = law[x] * n
        chi2 = float(((counts - exp) ** 2 / exp).sum())
        assert stats.chi2.sf(chi2, Y - 1) > 1e-3, (counts, exp)
    assert torch.equal(s.features, base.phi[torch.tensor([0, 1])[:, None], s.responses])


# -- linear algebra helpers -------------------------------------------------------------------------------
def test_inverse_gram_sherman_morrison():
    g = torch.Generator().manual_seed(0)
    gram = InverseGram(5, 0.3)
    vs = torch.randn(20, 5, generator=g, dtype=torch.float64)
    for v in vs:
        u = gram.add(v)
        assert u.shape == (5,)
    full = 0.3 * torch.eye(5, dtype=torch.float64) + vs.T @ vs
    torch.testing.assert_close(gram.inv, torch.linalg.inv(full))
    w = torch.randn(7, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(gram.sq_norm(w), torch.einsum("ni,ij,nj->n", w, torch.linalg.inv(full), w))


@pytest.mark.parametrize("theta_set", ["l2", "linf"])
def test_constrained_least_squares_vs_grid(theta_set):
    """Exact constrained ridge LS vs a brute-force grid on Θ ⊂ ℝ² (both binding and interior cases)."""
    g = torch.Generator().manual_seed(1)
    ls = LeastSquaresState(2)
    phi = torch.randn(30, 2, generator=g, dtype=torch.float64)
    for B, scale in ((0.5, 3.0), (5.0, 1.0)):          # constraint binding, then inactive
        ls = LeastSquaresState(2)
        ls.add(
            phi,
            phi @ torch.tensor([scale, -scale], dtype=torch.float64)
            + 0.1 * torch.randn(30, generator=g, dtype=torch.float64),
        )
        lam = 0.2
        th = constrained_least_squares(ls.G, ls.h, lam, B, theta_set)
        assert torch.allclose(project(th, B, theta_set), th, atol=1e-9)
        grid = torch.linspace(-B, B, 801, dtype=torch.float64)
        pts = torch.cartesian_prod(grid, grid)
        pts = pts[pts.norm(dim=1) <= B] if theta_set == "l2" else pts
        obj = ls.loss(pts) + lam * (pts ** 2).sum(1)
        best = obj.min()
        val = ls.loss(th) + lam * (th ** 2).sum()
        assert val <= best + 1e-9
        assert (th - pts[obj.argmin()]).norm() < 4 * (2 * B / 800)
