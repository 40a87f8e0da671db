"""Teacher tasks: context laws, the argmax teacher, ORM/PRM rewards and their query counts."""

import math

import pytest
import torch

from oraclerl.errors import ConfigError
from oraclerl.models.linear_ar import ContextBigramFeatures, LinearARModel
from oraclerl.oracles import PromptSource
from oraclerl.oracles.ledger import Ledger
from oraclerl.oracles.protocols import PromptDistribution
from oraclerl.oracles.rewards import RewardOracle
from oraclerl.problems.teacher import TeacherContexts, TeacherReward, teacher_task


def _task(**kw):
    args = dict(
        context_dim=6,
        num_actions=5,
        horizon=7,
        num_mix=6,
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
    )
    args.update(kw)
    return teacher_task(**args)


def test_mixture_contexts_are_clipped_and_normalised():
    task = _task(sigma=0.05)
    x = task.sample_contexts(4000, torch.Generator().manual_seed(1))
    assert torch.allclose(x.norm(dim=1), torch.full((4000,), math.sqrt(6), dtype=torch.float64))
    # each x is within the clipped-noise cone of its centre: ‖x/√d − e_j‖ ≤ 2σ/(1−σ)
    cos = (x / math.sqrt(6)).max(1).values
    assert (cos >= 1 - 0.5 * (2 * 0.05 / 0.95) ** 2).all()
    # all num_mix components appear, roughly uniformly
    counts = torch.bincount(x.argmax(1), minlength=6)
    assert counts.min() > 500
    assert torch.allclose(task.centres().norm(dim=1), torch.full((6,), math.sqrt(6), dtype=torch.float64))


def test_rademacher_contexts():
    task = _task(contexts="rademacher")
    x = task.sample_contexts(1000, torch.Generator().manual_seed(0))
    assert set(x.unique().tolist()) == {-1.0, 1.0}
    assert abs(x.mean().item()) < 0.05


def test_target_is_the_argmax_walk():
    task = _task()
    x = task.sample_contexts(20, torch.Generator().manual_seed(2))
    y = task.target(x)
    for b in range(20):
        s = task.W1_star @ x[b]
        prev = None
        for i in range(task.horizon):
            scores = s if prev is None else s + task.W2_star[:, prev]
            assert y[b, i].item() == int(scores.argmax())
            prev = y[b, i].item()


def test_target_is_greedy_decode_of_the_model_class():
    """W₁ = W₁*ᵀ, W₂ = W₂* puts the teacher in the model class: its greedy decode is y*."""
    task = _task()
    fm = ContextBigramFeatures(6, 5)
    w = torch.cat([task.W1_star.T.reshape(-1), task.W2_star.reshape(-1)])
    model = LinearARModel(fm, 7, w, dtype=torch.float64)
    x = task.sample_contexts(30, torch.Generator().manual_seed(3))
    y = task.target(x)
    for i in range(7):
        assert torch.equal(model.next_log_probs(x, y[:, :i]).argmax(1), y[:, i])
    assert (task.margin(x) > 0).all()


def test_rewards_and_counts():
    task = _task()
    ledger = Ledger()
    ctx = TeacherContexts(task, ledger)
    assert isinstance(ctx, PromptDistribution) and ctx.num_prompts is None
    ids = PromptSource(ctx, ledger).draw(3, torch.Generator().manual_seed(4))   # served like any prompt law
    x = ctx.lookup(ids)
    assert ledger.prompts == 3 and torch.equal(x, task.sample_contexts(3, torch.Generator().manual_seed(4)))
    # the law itself counts nothing
    assert ctx.sample(2).tolist() == [3, 4] and ledger.prompts == 3
    ystar = task.target(x)
    y = ystar[:, None, :].repeat(1, 2, 1)
    y[0, 1, 2] = (y[0, 1, 2] + 1) % 5           # first mistake at position 3 (index 2)
    y[1, 1, 6] = (y[1, 1, 6] + 1) % 5           # mistake at the last token
    orm = RewardOracle(TeacherReward(ctx, "outcome", "binary"), ledger, grant_all=True)
    assert torch.equal(orm.outcome(ids, y), torch.tensor([[1, 0], [1, 0], [1, 1]], dtype=torch.float64))
    assert ledger.t_data == 6
    orm_s = RewardOracle(TeacherReward(ctx, "outcome", "signed"), ledger, grant_all=True)
    assert torch.equal(orm_s.outcome(ids, y), torch.tensor([[1, -1], [1, -1], [1, 1]], dtype=torch.float64))
    with pytest.raises(ConfigError, match="process"):
        orm.process(ids, y)
    with pytest.raises(ConfigError, match="length"):
        orm.outcome(ids, y[..., :3])
    prm = RewardOracle(TeacherReward(ctx, "process", "signed"), ledger, grant_all=True)
    before = ledger.t_data
    R = prm.process(ids, y)
    assert ledger.t_data - before == 3 * 2 * 7
    assert R[0, 1].tolist() == [1, 1, -1, -1, -1, -1, -1]
    assert R[1, 1].tolist() == [1] * 6 + [-1]
    assert (R[:, 0] == 1).all()
    # a prefix query is one verifier call
    before = ledger.t_data
    r = prm.outcome(ids, y[..., :3])
    assert ledger.t_data - before == 6 and r[0].tolist() == [1, -1]
    prm01 = RewardOracle(TeacherReward(ctx, "process", "binary"), ledger, grant_all=True)
    assert prm01.process(ids, y)[0, 1].tolist() == [1, 1, 0, 0, 0, 0, 0]


def test_stale_ids_and_bad_config():
    task = _task()
    ctx = TeacherContexts(task, capacity=4)
    ids = ctx.sample(3)
    ctx.sample(3)
    with pytest.raises(ConfigError, match="prompts"):
        ctx.lookup(ids[:1])
    assert ctx.lookup(torch.tensor([5])).shape == (1, 6)
    with pytest.raises(ConfigError, match="contexts"):
        teacher_task(contexts="sphere")
    with pytest.raises(ConfigError, match="kind"):
        TeacherReward(ctx, "final")


def test_same_seed_same_task():
    a = _task()
    b = _task()
    c = _task(generator=torch.Generator().manual_seed(9))
    assert torch.equal(a.W1_star, b.W1_star) and not torch.equal(a.W1_star, c.W1_star)


def test_finite_context_law():
    sup = torch.tensor([[1.0, 0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0, 0]])
    task = _task(contexts="finite", support=sup)
    x = task.sample_contexts(400, torch.Generator().manual_seed(0))
    assert ((x == sup[0]).all(1) | (x == sup[1]).all(1)).all()
    assert 120 < (x[:, 0] == 1).sum() < 280
    with pytest.raises(ConfigError, match="support"):
        _task(contexts="finite")


def _authors_sample_batch(B, d, num_mix, sigma, gt, k, N):
    """The authors' ``utils/data_generator.py`` call order and arithmetic, on torch's default CPU generator
    (GitHub mousavih/rlvr-base-model-barrier; re-typed here as the independent reference)."""
    if not gt:
        gt["w1"] = torch.randn(k, d)
        gt["w2"] = torch.randn(k, k)
    means = torch.zeros(num_mix, d)
    means[torch.arange(num_mix), torch.arange(num_mix) % d] = 1.0
    j = torch.randint(0, num_mix, (B,))
    eps = torch.randn(B, d) * sigma
    eps = eps * (sigma / eps.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)
    x = means[j] + eps
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12) * (d ** 0.5)
    base = x @ gt["w1"].T
    y = torch.empty((B, N), dtype=torch.long)
    y[:, 0] = base.argmax(1)
    for t in range(1, N):
        y[:, t] = (base + gt["w2"][:, y[:, t - 1]].T).argmax(1)
    return x, y


def test_authors_task_replays_their_global_stream_bit_for_bit():
    """W⋆ drawn lazily in float32 inside the first batch, then test set, then training batches, all on one
    stream; contexts with their rounding order. Catches W⋆ drawn in float64, a different draw order (e.g. the
    test set before W⋆), separate streams per role, and the √d·z/‖z‖ rounding order."""
    from oraclerl.problems.teacher import authors_teacher_task

    d, k, N, M, sigma, seed = 32, 32, 20, 32, 0.05, 3
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        gt = {}
        ref = [_authors_sample_batch(B, d, M, sigma, gt, k, N) for B in (64, 16, 16)]
    g = torch.Generator().manual_seed(seed)
    task = authors_teacher_task(d, k, N, M, sigma, generator=g)
    assert torch.equal(task.W1_star, gt["w1"]) and torch.equal(task.W2_star, gt["w2"])
    ctx = TeacherContexts(task)
    for i, (xr, yr) in enumerate(ref):
        x, y = (task.sample_contexts(64, g), None) if i == 0 else ctx.draw_labelled(16, g)
        assert torch.equal(x, xr)
        assert torch.equal(task.target(x) if y is None else y, yr)
    # the default task draws in float64 with √d·z/‖z‖: not the authors' instance
    other = teacher_task(d, k, N, "mixture", M, sigma, generator=torch.Generator().manual_seed(seed))
    assert not torch.equal(other.W1_star, gt["w1"])
