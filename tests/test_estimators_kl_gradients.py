"""KL gradient placements: closed-form scores vs autograd, true KL gradients vs autograd of the exact KL,
the exact identities of the module doc, and Monte Carlo through the oracles (with negative controls)."""

import math

import pytest
import torch

from oraclerl.diagnostics.divergences import kl_divergence
from oraclerl.diagnostics.estimators.kl_gradients import VARIANTS, kl_gradient_moments, per_sample_gradients
from oraclerl.diagnostics.estimators.score_tables import linear_ar_table, linear_softmax_table
from oraclerl.errors import ConfigError
from oraclerl.models.linear_ar import ContextBigramFeatures, LinearARModel
from oraclerl.models.linear_softmax import LinearSoftmaxModel
from oraclerl.oracles import WeakSampler
from oraclerl.posttrain.kl_penalty import kl_estimate

TOL = 1e-10


def _softmax_instance(seed=0, X=3, Y=6, d=4):
    g = torch.Generator().manual_seed(seed)
    lr = torch.log_softmax(torch.randn(X, Y, generator=g, dtype=torch.float64), -1)
    model = LinearSoftmaxModel(lr, torch.randn(X, Y, d, generator=g, dtype=torch.float64), 0.7)
    return model, torch.randn(d, generator=g, dtype=torch.float64)


def _ar_instance(seed=0, X=3, d=2, k=3, H=3):
    g = torch.Generator().manual_seed(seed)
    fm = ContextBigramFeatures(d, k)
    pol = LinearARModel(fm, H, 0.8 * torch.randn(fm.dim, generator=g), dtype=torch.float64)
    ref = LinearARModel(fm, H, 0.8 * torch.randn(fm.dim, generator=g), dtype=torch.float64)
    return pol, ref, torch.randn(X, d, generator=g, dtype=torch.float64)


def _ar_seq_logq(pol, w, x, seqs):
    m = pol.copy(w)
    return m.token_log_probs(x, seqs[None].expand(x.shape[0], -1, -1))          # [X, S, H], differentiable


def test_scores_match_autograd():
    model, theta = _softmax_instance()
    t = linear_softmax_table(model, theta)
    jac = torch.autograd.functional.jacobian(lambda th: model.log_policy(th), theta)   # [X, Y, d]
    assert torch.allclose(t.score[:, :, 0], jac, atol=TOL)
    pol, ref, x = _ar_instance()
    t = linear_ar_table(pol, ref, x)
    jac = torch.autograd.functional.jacobian(lambda w: _ar_seq_logq(pol, w, x, t.sequences), pol.w)
    assert torch.allclose(t.score, jac, atol=TOL)
    assert torch.allclose(t.seq_log_q.exp().sum(-1), torch.ones(x.shape[0], dtype=torch.float64), atol=1e-12)


def test_true_gradients_match_autograd_of_exact_kl():
    model, theta = _softmax_instance()
    m = kl_gradient_moments(linear_softmax_table(model, theta))
    th = theta.clone().requires_grad_(True)
    lq = model.log_policy(th)
    (g_qp,) = torch.autograd.grad(kl_divergence(lq, model.log_ref).mean(), th)
    th2 = theta.clone().requires_grad_(True)
    (g_pq,) = torch.autograd.grad(kl_divergence(model.log_ref, model.log_policy(th2)).mean(), th2)
    assert torch.allclose(m.grad_kl_qp, g_qp, atol=TOL) and torch.allclose(m.grad_kl_pq, g_pq, atol=TOL)
    pol, ref, x = _ar_instance()
    t = linear_ar_table(pol, ref, x)
    m = kl_gradient_moments(t)
    w = pol.w.clone().requires_grad_(True)
    lq = _ar_seq_logq(pol, w, x, t.sequences).sum(-1)
    (g_qp,) = torch.autograd.grad(kl_divergence(lq, t.seq_log_p).mean(), w)
    w2 = pol.w.clone().requires_grad_(True)
    (g_pq,) = torch.autograd.grad(
        kl_divergence(t.seq_log_p, _ar_seq_logq(pol, w2, x, t.sequences).sum(-1)).mean(), w2
    )
    assert torch.allclose(m.grad_kl_qp, g_qp, atol=TOL) and torch.allclose(m.grad_kl_pq, g_pq, atol=TOL)


def test_per_sample_loss_gradient_is_autograd_of_the_loss():
    """loss/token/k: g(s) = ∇_w Σ_i kl_estimate(log q_i(w), log p_i) for one fixed sequence (autograd)."""
    pol, ref, x = _ar_instance(seed=2)
    t = linear_ar_table(pol, ref, x)
    for k in ("k1", "k2", "k3"):
        for gran in ("token", "sequence"):
            g = per_sample_gradients(t, f"loss/{gran}/{k}")
            w = pol.w.clone().requires_grad_(True)
            lq = _ar_seq_logq(pol, w, x, t.sequences)
            lq = lq if gran == "token" else lq.sum(-1, keepdim=True)
            lp = t.log_p if gran == "token" else t.seq_log_p[..., None]
            (auto,) = torch.autograd.grad(kl_estimate(lq, lp, k)[1, 7].sum(), w)
            assert torch.allclose(g[1, 7], auto, atol=TOL), (k, gran)


@pytest.mark.parametrize("instance", ["softmax", "ar"])
def test_exact_identities(instance):
    if instance == "softmax":
        model, theta = _softmax_instance(seed=1)
        t = linear_softmax_table(model, theta)
    else:
        t = linear_ar_table(*_ar_instance(seed=1))
    m = kl_gradient_moments(t)
    close = lambda a, b: torch.allclose(a, b, atol=TOL)  # noqa: E731
    zero = torch.zeros_like(m.grad_kl_qp)
    for gran in ("sequence", "token"):
        assert close(m.mean[f"reward/{gran}/k1"], m.grad_kl_qp)
        assert close(m.mean[f"loss/{gran}/k1"], zero)
    assert close(m.mean["loss/sequence/k2"], m.grad_kl_qp)
    assert close(m.mean["loss/sequence/k3"], m.grad_kl_pq)
    assert close(m.mean["reward/sequence/k3"], m.grad_kl_qp - m.grad_kl_pq)
    # same g per sample
    assert m.var["loss/sequence/k2"] == pytest.approx(m.var["reward/sequence/k1"], rel=1e-9)
    # negative controls on the same instance: the wrong pairings are far from equal
    assert not close(m.mean["loss/sequence/k3"], m.grad_kl_qp)
    assert not close(m.mean["reward/sequence/k2"], m.grad_kl_qp)
    if instance == "ar":  # per-token loss k2/k3 follow neither true gradient once H > 1
        for k in ("k2", "k3"):
            for target in ("kl_qp", "kl_pq"):
                assert m.relative_bias(f"loss/token/{k}", target) > 0.05
    else:  # H = 1: token and sequence coincide
        for v in VARIANTS:
            assert close(m.mean[v], m.mean[v.replace("token", "sequence")])


def test_monte_carlo_through_the_oracle():
    """On-policy samples from a WeakSampler over π_θ, the loss built with kl_estimate and differentiated by
    autograd: its mean gradient matches the exact one (|z| ≤ 4.5 per coordinate, exact variances), and the
    same test rejects ∇KL(q‖p) for k3 in the loss (negative control)."""
    model, theta = _softmax_instance(seed=4, X=2, Y=5, d=3)
    theta = 2.5 * theta                           # far enough from π_ref that ∇KL(q‖p) and ∇KL(p‖q) differ
    t = linear_softmax_table(model, theta)
    m = kl_gradient_moments(t)
    sampler = WeakSampler(LinearSoftmaxModel(model.log_policy(theta), model.phi, model.beta), reveal=())
    M = 20000
    prompts = torch.arange(2).repeat_interleave(M // 2)
    y = sampler.sample(prompts, 1, torch.Generator().manual_seed(0)).responses[:, 0]
    cell = prompts * model.num_responses + y
    for k in ("k1", "k2", "k3"):
        # autograd of the loss kl_estimate(log π_θ(y|x), log π_ref(y|x)) once per distinct (x, y), then per
        # sample
        per_cell = torch.autograd.functional.jacobian(
            lambda th, k=k: kl_estimate(model.log_policy(th), model.log_ref, k).reshape(-1), theta)
        per = per_cell[cell]                                              # [M, d]
        v = f"loss/sequence/{k}"
        cov_diag = (torch.einsum("xsd,xs->d", per_sample_gradients(t, v) ** 2, t.seq_log_q.exp()) / 2
                    - m.mean[v] ** 2)
        se = (cov_diag / per.shape[0]).sqrt()
        z = (per.mean(0) - m.mean[v]) / se
        assert z.abs().max() < 4.5, (k, z)
        if k == "k3":
            z_wrong = (per.mean(0) - m.grad_kl_qp) / se
            assert z_wrong.abs().max() > 4.5


def test_bad_variant():
    model, theta = _softmax_instance()
    with pytest.raises(ConfigError, match="variant"):
        per_sample_gradients(linear_softmax_table(model, theta), "loss/sentence/k1")
    with pytest.raises(ConfigError, match="theta"):
        linear_softmax_table(model, torch.zeros(2))
    pol, ref, x = _ar_instance()
    with pytest.raises(ConfigError, match="max_sequences"):
        linear_ar_table(pol, ref, x, max_sequences=4)
    assert math.isfinite(kl_gradient_moments(linear_softmax_table(model, theta)).var["loss/token/k3"])
