"""Teacher tasks: context laws, the argmax teacher, ORM/PRM rewards and their query counts."""

import math

import pytest
import torch

from oraclerl.errors import ConfigError
from oraclerl.models.linear_ar import ContextBigramFeatures, LinearARModel
from oraclerl.oracles.ledger import Ledger
from oraclerl.oracles.rewards import RewardOracle
from oraclerl.problems.teacher import TeacherContexts, TeacherReward, teacher_task


def _task(**kw):
    args = dict(context_dim=6, num_actions=5, horizon=7, num_mix=6, generator=torch.Generator().manual_seed(0),
                dtype=torch.float64)
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
    ids, x = ctx.draw(3, torch.Generator().manual_seed(4))
    assert ledger.prompts == 3
    ystar = task.target(x)
    y = ystar[:, None, :].repeat(1, 2, 1)
    y[0, 1, 2] = (y[0, 1, 2] + 1) % 5           # first mistake at position 3 (index 2)
    y[1, 1, 6] = (y[1, 1, 6] + 1) % 5           # mistake at the last token
    orm = RewardOracle(TeacherReward(ctx, "outcome", "binary"), ledger)
    assert torch.equal(orm.outcome(ids, y), torch.tensor([[1, 0], [1, 0], [1, 1]], dtype=torch.float64))
    assert ledger.t_data == 6
    orm_s = RewardOracle(TeacherReward(ctx, "outcome", "signed"), ledger)
    assert torch.equal(orm_s.outcome(ids, y), torch.tensor([[1, -1], [1, -1], [1, 1]], dtype=torch.float64))
    with pytest.raises(ConfigError, match="process"):
        orm.process(ids, y)
    with pytest.raises(ConfigError, match="length"):
        orm.outcome(ids, y[..., :3])
    prm = RewardOracle(TeacherReward(ctx, "process", "signed"), ledger)
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
    prm01 = RewardOracle(TeacherReward(ctx, "process", "binary"), ledger)
    assert prm01.process(ids, y)[0, 1].tolist() == [1, 1, 0, 0, 0, 0, 0]


def test_stale_ids_and_bad_config():
    task = _task()
    ctx = TeacherContexts(task, capacity=4)
    ids, _ = ctx.draw(3)
    ctx.draw(3)
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
