"""The fast path of the paper-scale policy-gradient step (issue 15 item 2): each shortcut gives exactly the
answer of the code it shortcuts, checked against plain-Python references and against the torch definitions.

* compiled kernels: the greedy walk that computes a row on its first visit and copies the cycle, the bigram
  walk's most-likely-token interval, the gradient counts that take float32 and per-response weights;
* the factor cache of the linear AR model (the sampler and the gradient of one step share E₁, E₂, Z);
* the process reward's uint8 cumulative product and ±1 map, the ring buffer written by slice;
* the provenance check that recognises the batch a sampler just drew by comparing it with a private copy
  (never by identity: in-place writes, even through ``.numpy()``, are caught).
"""

from __future__ import annotations

import pytest
import torch

from oraclerl.errors import ConfigError
from oraclerl.models import kernels
from oraclerl.models.linear_ar import ContextBigramFeatures, LinearARModel, PromptBoundPolicy
from oraclerl.oracles.ledger import Ledger, Provenance, ProvenanceError, response_keys
from oraclerl.oracles.rewards import RewardOracle
from oraclerl.oracles.samplers import WeakSampler
from oraclerl.posttrain.advantages import advantages
from oraclerl.problems.teacher import TeacherContexts, TeacherReward, teacher_task


def _numba_or_skip():
    if not kernels.accelerated(torch.zeros(1)):
        pytest.skip("numba is not installed (extra [fast])")


def _torch_def(fn, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(kernels, "_NUMBA", False)
        return fn()


def _python_greedy_walk(s, t, N):
    """y_1 = argmax_j s[j] + t[P−1, j], y_i = argmax_j s[j] + t[y_{i−1}, j] (first maximum), one step at a
    time."""
    out, prev = [], t.shape[0] - 1
    for _ in range(N):
        v = [float(s[j] + t[prev, j]) for j in range(s.shape[0])]
        prev = v.index(max(v))
        out.append(prev)
    return out


def test_greedy_walk_with_cycle_copy_matches_the_step_by_step_walk(monkeypatch):
    """Long walks (N = 128 over 9 or 33 rows, so every walk enters a cycle early and the rest is copied),
    short cycles forced by ties, a walk shorter than its cycle; compiled = torch definition = plain Python."""
    _numba_or_skip()
    g = torch.Generator().manual_seed(0)
    for k, N, B in ((8, 128, 40), (32, 128, 24), (5, 3, 7), (4, 1, 3)):
        s = torch.randn(B, k, generator=g)
        t = torch.randn(k + 1, k, generator=g)
        s[0] = 0.0
        # ties in the first rows: first max wins
        t[:3] = torch.randint(0, 2, (3, k), generator=g).float()
        a = kernels.greedy_walk(s, t, N)
        b = _torch_def(lambda s=s, t=t, N=N: kernels.greedy_walk(s, t, N), monkeypatch)
        assert torch.equal(a, b)
        for i in range(B):
            assert a[i].tolist() == _python_greedy_walk(s[i], t, N)
    # a map with a 2-cycle 0 → 1 → 0 from the start row, and one with a fixed point (period 1)
    t = torch.tensor([[0.0, 5.0, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 5.0], [5.0, 0.0, 0.0]])
    s = torch.zeros(2, 3)
    s[1, 2] = 10.0
    a = kernels.greedy_walk(s, t, 9)
    assert a.tolist() == [[0, 1, 0, 1, 0, 1, 0, 1, 0], [2] * 9]


def _bigram_table(E1, E2, dtype):
    """The torch definition's rounded CDF table [B, P, k] (last entry 2.0)."""
    W = torch.cumsum(E1[:, :, None] * E2.T[None, :, :], 1)
    W = W / W[:, -1:, :]
    cdf = W.transpose(1, 2).to(dtype)
    cdf[..., -1] = 2.0
    return cdf


def test_bigram_walk_mode_interval_gives_the_count_on_boundaries(monkeypatch):
    """Peaked rows (most tokens take the most-likely-token shortcut) and uniforms placed exactly on the
    rows' CDF entries (the shortcut's interval ends): tokens = the count of entries ≤ u (plain-Python walk)
    = torch."""
    _numba_or_skip()
    g = torch.Generator().manual_seed(1)
    for dt in (torch.float32, torch.float64):
        B, n, k, L = 11, 3, 7, 60
        E1 = torch.rand(B, k, generator=g, dtype=torch.float64) ** 8
        E2 = torch.rand(k + 1, k, generator=g, dtype=torch.float64) ** 8
        E1[:, 0] += 3.0                                                # token 0 the most likely
        # after token 2: token k−1 the most likely
        E2[2, k - 1] += 50.0
        cdf = _bigram_table(E1, E2, dt)
        u = torch.rand(B * n, L, generator=g, dtype=dt)
        # every CDF entry of the context's table
        vals = cdf[..., :-1].reshape(B, -1)
        pick = torch.randint(0, vals.shape[1], (B * n, L), generator=g)
        on = torch.rand(B * n, L, generator=g) < 0.5
        u = torch.where(on, vals.repeat_interleave(n, 0).gather(1, pick).clamp(max=0.999), u)
        a = kernels.bigram_walk(E1, E2, u, n)
        b = _torch_def(lambda u=u, E1=E1, E2=E2, n=n: kernels.bigram_walk(E1, E2, u, n), monkeypatch)
        assert torch.equal(a, b)
        for m in range(B * n):
            prev = k
            for i in range(L):
                row = cdf[m // n, prev]
                prev = sum(float(row[q]) <= float(u[m, i]) for q in range(k))
                assert int(a[m, i]) == prev
        prev = torch.cat([torch.full((B * n, 1), k), a[:, :-1]], 1)
        mode = (E1[:, None, :] * E2[None]).argmax(-1).repeat_interleave(n, 0).gather(1, prev)
        assert float((a == mode).double().mean()) > 0.6                 # most tokens took the mode's shortcut


def _python_counts(y, a, k):
    B, n, L = y.shape
    c = [[0.0] * (k + 1) for _ in range(B)]
    o1 = [[0.0] * k for _ in range(B)]
    o2 = [[0.0] * (k + 1) for _ in range(k)]
    for b in range(B):
        for j in range(n):
            prev = k
            for i in range(L):
                t, w = int(y[b, j, i]), float(a[b, j, i if a.shape[2] > 1 else 0])
                c[b][prev] += w
                o1[b][t] += w
                o2[t][prev] += w
                prev = t
    return [torch.tensor(v, dtype=torch.float64) for v in (c, o1, o2)]


def test_bigram_counts_take_float32_and_per_response_weights(monkeypatch):
    """float32 per-token, float32 per-response ([B, n, 1] and expanded) and float64 weights: the compiled
    pass, the torch definition and a plain-Python sum in the same order agree to the bit."""
    _numba_or_skip()
    g = torch.Generator().manual_seed(2)
    B, n, L, k = 5, 3, 19, 6
    y = torch.randint(0, k, (B, n, L), generator=g)
    w64 = (torch.rand(B, n, L, generator=g, dtype=torch.float64) - 0.5) * 10 ** (
        torch.rand(B, n, L, generator=g, dtype=torch.float64) * 16 - 8)
    w32 = w64.float()
    for a in (w32, w32[..., :1], w32[..., :1].expand(B, n, L), w64[..., :1].expand(B, n, L), w64):
        got = kernels.bigram_counts(y, a, k)
        ref = _torch_def(lambda a=a: kernels.bigram_counts(y, a, k), monkeypatch)
        py = _python_counts(y, a, k)
        assert all(torch.equal(u, v) for u, v in zip(got, ref))
        assert all(torch.equal(u, v) for u, v in zip(got, py))


def _model(seed=0, B=16, d=5, k=4, N=9):
    g = torch.Generator().manual_seed(seed)
    model = LinearARModel(ContextBigramFeatures(d, k), N)
    model.w.normal_(generator=g)
    return model, torch.randn(B, d, generator=g), g


def test_factor_cache_changes_no_result_and_sees_every_write():
    """Sample then differentiate at the same (x, w) (the cache serves the gradient): the gradient equals a
    fresh model's. After writes into w or x — in place, and through ``.numpy()``, which no version counter
    sees — the results equal a fresh model's at the new values, not the cached ones."""
    model, x, g = _model()
    y = model.sample(x, 2, g)
    a = torch.randn(16, 2, 9, generator=g)
    grad = model.grad_log_likelihood(x, y, a)
    assert torch.equal(grad, model.copy().grad_log_likelihood(x.clone(), y, a))
    model.w.numpy()[3] += 0.5                                           # invisible to w._version
    assert torch.equal(model.grad_log_likelihood(x, y, a), model.copy().grad_log_likelihood(x, y, a))
    assert not torch.equal(model.grad_log_likelihood(x, y, a), grad)
    x.numpy()[2, 1] -= 1.0
    assert torch.equal(model.grad_log_likelihood(x, y, a), model.copy().grad_log_likelihood(x.clone(), y, a))
    model.w.mul_(2.0)
    s1 = model.sample(x, 2, torch.Generator().manual_seed(7))
    assert torch.equal(s1, model.copy().sample(x.clone(), 2, torch.Generator().manual_seed(7)))
    # the cached factors are those of the last (x, w): E₁ = exp(xW₁ − max), Z = E₁E₂ᵀ
    _, _, E1, E2 = model._factors(x)
    xw = x.double() @ model.W1.double()
    assert torch.equal(E1, torch.exp(xw - xw.max(1, keepdim=True).values))
    assert torch.equal(model._normalisers(x)[2], E1 @ E2.T)


def _teacher(capacity=1 << 15, N=12, k=5):
    task = teacher_task(4, k, N, generator=torch.Generator().manual_seed(0))
    return task, TeacherContexts(task, Ledger(), capacity=capacity)


@pytest.mark.parametrize("form", ["signed", "binary"])
def test_process_reward_is_the_prefix_match_indicator(form):
    """r_i = 1[y_{1:i} = y*_{1:i}] (±1 when signed) against a plain-Python prefix comparison, including an
    exact response, a wrong first token and a wrong last token; float32 like the contexts."""
    task, ctx = _teacher()
    ids = ctx.sample(6, torch.Generator().manual_seed(1))
    x = ctx.lookup(ids)
    ystar = task.target(x)
    y = torch.randint(0, 5, (6, 3, 12), generator=torch.Generator().manual_seed(2))
    y[0, 0] = ystar[0]
    y[1, 1] = ystar[1]
    y[1, 1, 0] = (ystar[1, 0] + 1) % 5
    y[2, 2] = ystar[2]
    y[2, 2, -1] = (ystar[2, -1] + 1) % 5
    y[3, 0, :7] = ystar[3, :7]
    r = TeacherReward(ctx, "process", form).process_mean(ids, y)
    assert r.dtype == torch.float32
    lo = -1.0 if form == "signed" else 0.0
    for b in range(6):
        for j in range(3):
            want = [1.0 if y[b, j, :i + 1].tolist() == ystar[b, :i + 1].tolist() else lo for i in range(12)]
            assert r[b, j].tolist() == want
    assert r[0, 0].tolist() == [1.0] * 12 and r[3, 0, :7].tolist() == [1.0] * 7
    out = TeacherReward(ctx, "outcome", form).mean(ids, y)
    assert out[0, 0] == 1.0 and out[2, 2] == lo


def test_ring_buffer_by_slice_and_across_the_wrap():
    """Batches that fit before the end are written by slice, one that wraps by index: every id reads back its
    own context and target."""
    task, ctx = _teacher(capacity=10)
    g = torch.Generator().manual_seed(3)
    for B in (4, 4, 4, 10, 3):                                         # the third and fourth batches wrap
        ids = ctx.sample(B, g)
        x = ctx.lookup(ids)
        assert torch.equal(ctx.lookup(ids), x) and torch.equal(ctx.targets(ids), task.target(x))
    assert ids.tolist() == [22, 23, 24]
    with pytest.raises(ConfigError, match="prompts"):
        ctx.lookup(torch.tensor([14]))                                  # overwritten


def test_nan_checks_unchanged():
    """NaN is refused by ``advantages`` and the reward oracle's check; ±inf together (a NaN sum, no NaN) is
    not."""
    r = torch.tensor([[1.0, float("inf")], [float("-inf"), 0.0]])
    assert torch.equal(advantages(r, "none"), r)
    with pytest.raises(ConfigError, match="NaN"):
        advantages(torch.tensor([[1.0, float("nan")]]), "none")
    from oraclerl.oracles.rewards import _check_finite_rewards
    assert _check_finite_rewards(r, "x") is r
    with pytest.raises(ConfigError, match="NaN"):
        _check_finite_rewards(torch.tensor([float("nan"), 1.0]), "x")


def _sampled():
    task, ctx = _teacher()
    model = LinearARModel(ContextBigramFeatures(4, 5), 12)
    model.w.normal_(generator=torch.Generator().manual_seed(4))
    sampler = WeakSampler(PromptBoundPolicy(model, ctx), ctx.ledger, reveal=())
    g = torch.Generator().manual_seed(5)
    ids = ctx.sample(7, g)
    return ctx, sampler, ids, sampler.sample(ids, 3, g).responses, g


def test_provenance_recognises_the_drawn_batch_by_value_not_identity():
    """The batch just drawn is accepted without its keys (its copy matches); writes into the returned tensor —
    in place, or through ``.numpy()`` — make it a different batch, checked by key and refused."""
    ctx, sampler, ids, y, g = _sampled()
    reward = RewardOracle(TeacherReward(ctx, "process", "signed"), ctx.ledger)
    prov = ctx.ledger.provenance
    assert prov._is_last(ids, y) and prov._is_last(ids.clone(), y.clone())
    assert reward.process(ids, y).shape == (7, 3, 12)
    y.numpy()[2, 1, 4] = (y[2, 1, 4] + 1) % 5                           # _version does not see this write
    assert not prov._is_last(ids, y)
    with pytest.raises(ProvenanceError, match=r"response \[2, 1\]"):
        reward.process(ids, y)
    y.numpy()[2, 1, 4] = (y[2, 1, 4] + 4) % 5                           # written back: the drawn batch again
    assert prov._is_last(ids, y)
    assert reward.outcome(ids, y).shape == (7, 3)
    # other prompts with the same tokens: not the drawn pairs
    with pytest.raises(ProvenanceError):
        reward.process(ids.flip(0), y)
    # an int16 copy is a different dtype: answered by key, and its pairs were drawn
    assert not prov._is_last(ids, y.to(torch.int16))
    assert bool(prov.contains(ids, y.to(torch.int16)).all())
    # an earlier batch, no longer the remembered one, is still known by key
    y2 = sampler.sample(ids, 3, g).responses
    assert prov._is_last(ids, y2) and not prov._is_last(ids, y)
    assert bool(prov.contains(ids, y).all()) and reward.process(ids, y).shape == (7, 3, 12)


def test_provenance_shortcut_answers_what_the_keys_answer():
    """On the remembered batch, on one token changed, on a sub-batch and on float responses (never remembered:
    −0.0 = 0.0 in value but not in key), ``contains`` equals the key lookup."""
    g = torch.Generator().manual_seed(6)
    prov = Provenance()
    p = torch.arange(5)
    y = torch.randint(0, 9, (5, 2, 4), generator=g)
    prov.add(p, y, remember=True)
    keys = lambda q, r: prov.contains_keys(response_keys(q, r))      # noqa: E731
    z = y.clone()
    z[1, 0, 3] += 1
    for q, r in ((p, y), (p, z), (p[:3], y[:3]), (p, y[:, :1])):
        assert torch.equal(prov.contains(q, r), keys(q, r))
    assert prov.contains(p, y).all() and not prov.contains(p, z)[1, 0] and prov.contains(p, z).sum() == 9
    f = torch.tensor([[[0.0, 1.0]]])
    prov.add(torch.tensor([0]), f, remember=True)
    assert prov._is_last(p, y)                                          # the float batch was not remembered
    negz = torch.tensor([[[-0.0, 1.0]]])
    assert not bool(prov.contains(torch.tensor([0]), negz)) and bool(prov.contains(torch.tensor([0]), f))
    # remember=False keeps the previous copy
    prov.add(torch.tensor([1]), torch.tensor([[[3, 4]]]))
    assert prov._is_last(p, y)
