"""Pre-training and policy gradients on the linear AR model: updates vs their definitions, exploration
behaviours, reference equivalence, determinism."""

import math

import pytest
import torch
from scipy import stats

from oraclerl.errors import ConfigError
from oraclerl.models import kernels
from oraclerl.models.linear_ar import ContextBigramFeatures, LinearARModel, PromptBoundPolicy
from oraclerl.oracles.ledger import Ledger
from oraclerl.oracles.rewards import RewardOracle
from oraclerl.oracles.samplers import AutoregressiveSampler, PromptSource, WeakSampler
from oraclerl.posttrain.advantages import advantages
from oraclerl.posttrain.behaviour import explore_outcome, explore_process
from oraclerl.posttrain.optim import AdaptiveStep
from oraclerl.posttrain.policy_gradient import PGConfig, PolicyGradient, pg_oracles
from oraclerl.posttrain.pretrain import Pretrain, PretrainConfig
from oraclerl.posttrain.reference import (
    reference_policy_gradient,
    reference_pretrain,
    reference_sample,
    reference_token_log_probs,
)
from oraclerl.problems.teacher import TeacherContexts, TeacherReward, teacher_task


def _setup(d=4, k=3, N=5, seed=0, dtype=torch.float64):
    task = teacher_task(d, k, N, num_mix=4, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    ledger = Ledger()
    ctx = TeacherContexts(task, ledger)
    model = LinearARModel(ContextBigramFeatures(d, k), N, dtype=dtype)
    return task, ledger, ctx, model


def _pg(policy, contexts, reward, cfg, generator=None, base=None, **kw):
    """PG with the sampling oracles built by the caller, on the reward oracle's ledger (issue 16 §5)."""
    return PolicyGradient(cfg).run(policy, contexts, reward, pg_oracles(policy, contexts, reward, base=base),
                                   generator, **kw)


def _autograd(model, x, y, weights):
    w = model.w.clone().requires_grad_(True)
    m = model.copy()
    m.w = w
    (m.token_log_probs(x, y) * weights).sum().backward()
    return w.grad


def test_prm_advantage_at_and_after_first_wrong_token():
    task, ledger, ctx, model = _setup()
    model.w = torch.randn(model.feature_dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ids = ctx.sample(2)
    x = ctx.lookup(ids)
    y = task.target(x)[:, None, :].clone()
    y[0, 0, 2] = (y[0, 0, 2] + 1) % 3                          # first wrong token at index 2
    for form, fail in (("signed", -1.0), ("binary", 0.0)):
        R = RewardOracle(TeacherReward(ctx, "process", form), ledger, grant_all=True).process(ids, y)
        A = advantages(R, "none")
        want = torch.tensor([1, 1, fail, fail, fail], dtype=torch.float64)
        assert torch.equal(A[0, 0], want) and torch.equal(A[1, 0], torch.ones(5, dtype=torch.float64))
        g = model.grad_log_likelihood(x, y, A)
        assert torch.allclose(g, _autograd(model, x, y, A), atol=1e-10)
        if form == "binary":    # tokens at and after the first mistake contribute nothing
            assert torch.allclose(g, model.grad_log_likelihood(x[:1], y[:1, :, :2]) +
                                  model.grad_log_likelihood(x[1:], y[1:]), atol=1e-10)


def test_orm_all_failure_batches():
    """All rewards fail: batch-mean baseline ⇒ A = 0 ⇒ no update; ±1 without baseline pushes samples down;
    {0,1} without baseline ⇒ no update."""
    task, ledger, ctx, model = _setup(d=4, k=8, N=12)
    # y* has likelihood 8^-12 ≈ 1e-11 under w = 0: every response fails (checked below)
    for baseline, form, moves in (
        ("batch_mean", "signed", False),
        ("none", "binary", False),
        ("none", "signed", True),
    ):
        pol = model.copy()
        reward = RewardOracle(TeacherReward(ctx, "outcome", form), Ledger())
        cfg = PGConfig(steps=1, batch_size=32, reward_form=form, advantage=baseline, optimizer="sgd", lr=1.0)
        g = torch.Generator().manual_seed(0)
        res = _pg(pol, ctx, reward, cfg, g)
        assert res.mean_reward[0] == (-1.0 if form == "signed" else 0.0)
        assert (pol.w != 0).any() == moves
        if moves:   # SGD step = (1/(B·N)) Σ_b (−1)·∇log p(y_b): recompute with the same draws
            g = torch.Generator().manual_seed(0)
            ids = ctx.sample(32, g)
            x = ctx.lookup(ids)
            y = model.sample(x, 1, g)
            want = -model.grad_log_likelihood(x, y) / (32 * 12)
            assert torch.allclose(pol.w, want, atol=1e-12)
            # first order: pushed down
            assert pol.log_likelihood(x, y).sum() < model.log_likelihood(x, y).sum()


def test_pg_step_matches_definition_with_oracle_counts():
    task, ledger, ctx, model = _setup()
    for kind in ("outcome", "process"):
        pol = model.copy()
        led = Ledger()
        reward = RewardOracle(TeacherReward(ctx, kind, "signed"), led)
        cfg = PGConfig(steps=1, batch_size=16, group_size=3, reward=kind, advantage="leave_one_out",
                       optimizer="sgd", lr=0.5)
        res = _pg(pol, ctx, reward, cfg, torch.Generator().manual_seed(3))
        g = torch.Generator().manual_seed(3)
        ids = ctx.sample(16, g)
        x = ctx.lookup(ids)
        y = model.sample(x, 3, g)
        r = TeacherReward(ctx, kind, "signed")
        r = r.mean(ids, y) if kind == "outcome" else r.process_mean(ids, y)
        A = advantages(r, "leave_one_out")
        Aw = A[..., None].expand(16, 3, 5) if kind == "outcome" else A
        want = 0.5 * _autograd(model, x, y, Aw) / (16 * 3 * 5)
        assert torch.allclose(pol.w, want, atol=1e-12)
        assert res.ledger["t_comp"] == 48 and res.ledger["t_data"] == 48 * (1 if kind == "outcome" else 5)


def test_pretraining_learns_and_matches_reference():
    task, ledger, ctx, model = _setup(d=6, k=4, N=6, dtype=torch.float32)
    x = task.sample_contexts(256, torch.Generator().manual_seed(5))
    y = task.target(x)
    err0 = 1 - model.log_likelihood(x, y).exp().mean()
    fast = model.copy()
    Pretrain(PretrainConfig(steps=40, batch_size=32)).run(fast, ctx, torch.Generator().manual_seed(1))
    ref = model.copy()
    reference_pretrain(ref, ctx, PretrainConfig(steps=40, batch_size=32), torch.Generator().manual_seed(1))
    assert torch.allclose(fast.w, ref.w, atol=1e-5)          # same data ⇒ same Adagrad trajectory
    assert 1 - fast.log_likelihood(x, y).exp().mean() < err0 - 0.2
    ad = model.copy()
    res = Pretrain(PretrainConfig(steps=100, batch_size=1, optimizer="adaptive", lr=1.0,
                                  loss_normalisation="sequence_sum", random_iterate=True)).run(
        ad, ctx, torch.Generator().manual_seed(2))
    assert res.iterate is not None
    assert 1 - ad.log_likelihood(x, y).exp().mean() < err0


def test_adaptive_step_size():
    w = torch.zeros(3)
    opt = AdaptiveStep([w])
    w.grad = torch.tensor([1.0, 2.0, 2.0])
    opt.step()
    assert torch.allclose(w, -torch.tensor([1.0, 2.0, 2.0]) / (4 + 2 * 9))


def test_reference_sampler_law_and_log_probs():
    task, ledger, ctx, model = _setup(d=3, k=3, N=3)
    model.w = (
        torch.randn(model.feature_dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.7
    )
    x = task.sample_contexts(1, torch.Generator().manual_seed(0)).expand(20000, 3).contiguous()
    y = reference_sample(model.w, x, 3, 3, torch.Generator().manual_seed(1))
    code = y[:, 0] * 9 + y[:, 1] * 3 + y[:, 2]
    seqs = torch.tensor([[a, b, c] for a in range(3) for b in range(3) for c in range(3)])
    p = model.log_likelihood(x[:1], seqs[None]).exp()[0]
    assert (
        stats.chisquare(torch.bincount(code, minlength=27).double().numpy(), (p * 20000).numpy()).pvalue
        > 1e-3
    )
    assert torch.allclose(
        reference_token_log_probs(model.w, x[:5], y[:5], 3), model.token_log_probs(x[:5], y[:5])
    )


def test_fast_and_reference_pg_are_statistically_equivalent():
    """Final test error after a short PG run, 6 seeds each: two-sample t-test at level 1e-3."""
    task, ledger, ctx, model = _setup(d=4, k=3, N=6, dtype=torch.float32)
    Pretrain(PretrainConfig(steps=5, batch_size=16)).run(model, ctx, torch.Generator().manual_seed(0))
    x = task.sample_contexts(512, torch.Generator().manual_seed(9))
    y = task.target(x)
    out = {"fast": [], "ref": []}
    for s in range(6):
        for name in ("fast", "ref"):
            pol = model.copy()
            cfg = PGConfig(steps=15, batch_size=64, reward="process", advantage="none")
            rew = RewardOracle(TeacherReward(ctx, "process", "signed"), Ledger())
            gen = torch.Generator().manual_seed(100 + s)
            if name == "fast":
                _pg(pol, ctx, rew, cfg, gen)
            else:
                reference_policy_gradient(pol, ctx, rew, PromptSource(ctx, rew.ledger), cfg, gen)
            out[name].append(float(1 - pol.log_likelihood(x, y).exp().mean()))
    assert stats.ttest_ind(out["fast"], out["ref"]).pvalue > 1e-3
    assert abs(sum(out["fast"]) - sum(out["ref"])) / 6 < 0.05


def test_explore_outcome_finds_target_and_counts():
    task, ledger, ctx, model = _setup(d=4, k=2, N=4)
    ids = ctx.sample(8, torch.Generator().manual_seed(0))
    x = ctx.lookup(ids)
    reward = RewardOracle(TeacherReward(ctx, "outcome", "binary"), ledger, grant_all=True)
    base = WeakSampler(PromptBoundPolicy(model, ctx), ledger, reveal=())
    y = (1 - task.target(x))[:, None, :]                        # all wrong
    r = reward.outcome(ids, y)
    before_data, before_comp = ledger.t_data, ledger.t_comp
    y2, r2 = explore_outcome(
        ids, y, r, reward, base, 2, m=400, mix=0.5, generator=torch.Generator().manual_seed(1)
    )
    assert (r2 == 1).all() and torch.equal(y2[:, 0], task.target(x))
    # one reward query per candidate; q₀ queried only for the q₀ half of the mixture
    queries = ledger.t_data - before_data
    assert 8 <= queries and ledger.t_comp - before_comp <= queries
    # expected attempts per row = 2^4 = 16 (q₀ = uniform here): mean within a loose Monte-Carlo band
    assert queries / 8 < 16 * 3


def test_explore_process_builds_the_target_token_by_token():
    task, ledger, ctx, model = _setup(d=4, k=3, N=6)
    ids = ctx.sample(5, torch.Generator().manual_seed(0))
    x = ctx.lookup(ids)
    ystar = task.target(x)
    reward = RewardOracle(TeacherReward(ctx, "process", "signed"), ledger, grant_all=True)
    auto = AutoregressiveSampler(PromptBoundPolicy(model, ctx), ledger, reveal=())
    y = ystar[:, None, :].clone()
    y[:, 0, 2] = (y[:, 0, 2] + 1) % 3
    R = reward.process(ids, y)
    before = ledger.t_data
    y2, R2 = explore_process(ids, y, R, reward, auto, m=200, mix=0.5, failure=-1.0,
                             generator=torch.Generator().manual_seed(0))
    assert torch.equal(y2[:, 0], ystar) and (R2 == 1).all()
    per_token = (ledger.t_data - before) / (5 * 4)                # 4 positions to rebuild per row
    assert 1 <= per_token < 3 * 3                                 # mean 3 attempts (uniform over k = 3)
    # giving up: m = 1 with a failing draw keeps verified rewards and marks the rest as failures
    y3, R3 = explore_process(ids, y, R, reward, auto, m=1, mix=0.0, failure=-1.0,
                             generator=torch.Generator().manual_seed(5))
    for b in range(5):
        row = R3[b, 0].tolist()
        first_bad = row.index(-1) if -1 in row else 6
        assert first_bad >= 2 and all(v == -1 for v in row[first_bad:])
        assert torch.equal(y3[b, 0, :first_bad], ystar[b, :first_bad])


def test_best_of_m_pg_learns_single_context():
    task, ledger, ctx, model = _setup(d=4, k=3, N=4)
    for kind in ("outcome", "process"):
        pol = model.copy()
        reward = RewardOracle(TeacherReward(ctx, kind, "binary"), Ledger())
        cfg = PGConfig(
            steps=60,
            batch_size=4,
            reward=kind,
            reward_form="binary",
            advantage="none",
            behaviour="best_of_m",
            m=200,
            optimizer="adaptive",
            lr=1.0,
            loss_normalisation="sequence_sum",
            random_iterate=True,
        )
        res = _pg(pol, ctx, reward, cfg, torch.Generator().manual_seed(0), base=model)
        x = task.sample_contexts(200, torch.Generator().manual_seed(1))
        assert pol.log_likelihood(x, task.target(x)).exp().mean() > 0.2 > math.exp(-4 * math.log(3))
        assert res.iterate is not None and res.ledger["t_data"] > 0


def test_same_seed_bit_identical_different_seed_differs():
    task, ledger, ctx, model = _setup(d=4, k=3, N=5, dtype=torch.float32)
    ws = []
    for seed in (0, 0, 1):
        pol = model.copy()
        _pg(pol, ctx, RewardOracle(TeacherReward(ctx, "process", "signed"), Ledger()),
                        PGConfig(steps=5, batch_size=32, reward="process", advantage="none"),
                        torch.Generator().manual_seed(seed))
        ws.append(pol.w)
    assert torch.equal(ws[0], ws[1]) and not torch.equal(ws[0], ws[2])


@pytest.mark.parametrize("kind", ["outcome", "process"])
def test_pg_bit_identical_with_and_without_the_compiled_kernels(kind, monkeypatch):
    """Same seed ⇒ the same weights whether numba serves the sampler, labels and gradient counts or torch does
    (issue 15: results do not depend on the optional accelerator)."""
    if not kernels.accelerated(torch.zeros(1)):
        pytest.skip("numba is not installed (extra [fast])")
    ws = []
    for compiled in (True, False):
        task, ledger, ctx, model = _setup(d=6, k=9, N=20, dtype=torch.float32)
        with monkeypatch.context() as m:
            if not compiled:
                m.setattr(kernels, "_NUMBA", False)
            Pretrain(PretrainConfig(steps=3, batch_size=16)).run(model, ctx, torch.Generator().manual_seed(0))
            _pg(model, ctx, RewardOracle(TeacherReward(ctx, kind, "signed"), ctx.ledger),
                            PGConfig(steps=6, batch_size=37, reward=kind,
                                     advantage="batch_mean" if kind == "outcome" else "none"),
                            torch.Generator().manual_seed(3))
        ws.append(model.w)
    assert torch.equal(ws[0], ws[1]) and bool((ws[0] != 0).any())


def test_bad_config():
    task, ledger, ctx, model = _setup()
    orm = RewardOracle(TeacherReward(ctx, "outcome"), ledger)
    with pytest.raises(ConfigError, match="reward"):
        _pg(model, ctx, orm, PGConfig(steps=1, reward="process"))
    with pytest.raises(ConfigError, match="^oracles: .*pg_oracles"):
        _pg(model, ctx, orm, PGConfig(steps=1, behaviour="best_of_m"))
    with pytest.raises(ConfigError, match="steps"):
        _pg(model, ctx, orm, PGConfig(steps=0))
    with pytest.raises(ConfigError, match="optimizer"):
        _pg(model, ctx, orm, PGConfig(steps=1, optimizer="lion"))
    with pytest.raises(ConfigError, match="optimizer"):
        _pg(model, ctx, orm, PGConfig(steps=1, optimizer="Optimizer"))


def test_any_torch_optimiser_by_name():
    task, ledger, ctx, model = _setup()
    pol = model.copy()
    _pg(
        pol,
        ctx,
        RewardOracle(TeacherReward(ctx, "process", "signed"), Ledger()),
        PGConfig(steps=2, batch_size=8, reward="process", advantage="none", optimizer="RMSprop", lr=0.01),
        torch.Generator().manual_seed(0),
    )
    assert (pol.w != 0).any()
