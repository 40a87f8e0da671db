"""Tests written to kill the surviving mutants of `explore/mtss_subroutines.py` (issue 16 §3;
docs/testing.md).

Each test checks the subroutines against an independent computation: a plain-Python/NumPy reference of the
formula (truncated scores, the sampler law, FitValue's least squares, UncertainStateAction's argmax), a replay
of the public SoftmaxSampler with the same generator, or deterministic stand-in oracles that record every
query (so the targets, resets, rewards and roll-in rows are known exactly). The mutants each test kills are
named in its docstring (mutmut names, `x...__mutmut_N`, abbreviated as `function_N`).
"""

import math

import numpy as np
import pytest
import torch

from oraclerl.errors import ConfigError
from oraclerl.explore.mtss_subroutines import (
    CoreSet,
    TruncatedSoftmaxPolicy,
    elliptic_norm2,
    fit_value,
    uncertain_state_actions,
)
from oraclerl.inference.softmax_sampler import num_normaliser_draws, sampler_log_law, softmax_sampler
from oraclerl.models.autoregressive_softmax import sequence_log_probs
from oraclerl.oracles.samplers import Samples
from oraclerl.problems.token_mdp import random_token_mdp

F64 = torch.float64


def _policy(H=2, d=3, nu=0.6, beta=0.5, anchor=0, M=2.0, delta=0.5, chunk=None, seed=0, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    theta = scale * torch.randn(H, d, generator=gen, dtype=F64)
    a = torch.randn(H, d, d, generator=gen, dtype=F64)
    sigma_inv = 0.3 * (a @ a.transpose(1, 2)) / d + 0.2 * torch.eye(d, dtype=F64)
    return TruncatedSoftmaxPolicy(theta, sigma_inv, nu, beta, anchor, M, delta, chunk)


def _ref_score(theta, sigma_inv, nu, phi, phi_anchor):
    """Plain-Python ⟨φ̄, θ⟩ with φ = ϕ − ϕ_𝔞 and the truncation 1{φᵀΣ⁻¹φ ≤ ν²}."""
    B, n, d = phi.shape
    out = np.zeros((B, n))
    for b in range(B):
        for j in range(n):
            rel = [float(phi[b, j, i] - phi_anchor[b, i]) for i in range(d)]
            q = sum(rel[i] * float(sigma_inv[i, k]) * rel[k] for i in range(d) for k in range(d))
            out[b, j] = sum(rel[i] * float(theta[i]) for i in range(d)) if q <= nu * nu else 0.0
    return out


# -- scores / token_scores / elliptic_norm2
# ------------------------------------------------------------------------

def test_scores_and_token_scores_equal_the_plain_formula_on_every_layer():
    """scores (layer indexing of θ and Σ⁻¹, ν) and token_scores (the [B, |A|, d] table, repeated and
    missing tokens, the n ≤ |A| path) against a plain-Python double loop. A guard: the scores_* /
    token_scores_* mutants were already killed by the law tests (token_scores_2 is equivalent:
    docs/testing.md)."""
    pol = _policy(H=3, d=3, nu=0.8)
    gen = torch.Generator().manual_seed(5)
    A = 4
    for layer in range(3):
        B, n = 3, 9
        tokens = torch.randint(0, A, (B, n), generator=gen)
        tokens[0] = torch.tensor([1, 1, 2, 1, 2, 2, 1, 1, 2])              # two of four actions only
        table = torch.randn(B, A, 3, generator=gen, dtype=F64) * 0.7
        phi = table[torch.arange(B)[:, None], tokens]                      # a function of (row, token)
        anchor = table[:, 0]
        ref = _ref_score(pol.theta[layer], pol.sigma_inv[layer], pol.nu, phi, anchor)
        # the truncation bites and not everywhere
        assert (ref == 0).any() and (ref != 0).any()
        assert np.allclose(pol.scores(layer, phi, anchor).numpy(), ref, atol=1e-12, rtol=0)
        assert np.allclose(pol.token_scores(layer, tokens, phi, anchor, A).numpy(), ref, atol=1e-12, rtol=0)
        few = tokens[:, :3]  # n = 3 < |A|: the direct path
        assert np.allclose(
            pol.token_scores(layer, few, phi[:, :3], anchor, A).numpy(), ref[:, :3], atol=1e-12
        )
        five = tokens[:, :5]  # n = 5 = |A| + 1 with A = 4
        assert np.allclose(
            pol.token_scores(layer, five, phi[:, :5], anchor, A).numpy(), ref[:, :5], atol=1e-12
        )


def test_token_scores_with_two_actions_and_many_rows():
    """token_scores on [B, n] with B ≠ |A| and n ≠ d (row and token axes cannot be confused), |A| = 2."""
    pol = _policy(H=1, d=2, nu=5.0, scale=1.0)
    gen = torch.Generator().manual_seed(1)
    B, n, A = 5, 7, 2
    tokens = torch.randint(0, A, (B, n), generator=gen)
    table = torch.randn(B, A, 2, generator=gen, dtype=F64)
    phi = table[torch.arange(B)[:, None], tokens]
    anchor = torch.randn(B, 2, generator=gen, dtype=F64)
    ref = _ref_score(pol.theta[0], pol.sigma_inv[0], pol.nu, phi, anchor)
    assert np.allclose(pol.token_scores(0, tokens, phi, anchor, A).numpy(), ref, atol=1e-12, rtol=0)


def test_elliptic_norm2_is_the_quadratic_form():
    """elliptic_norm2 = φᵀΣ⁻¹φ along the last axis with a non-symmetric-looking product order (Σ⁻¹ symmetric,
    rows of different length). A guard (elliptic_norm2_* were already killed)."""
    S = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=F64)
    rel = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [1.0, -1.0]]], dtype=F64)
    assert torch.allclose(elliptic_norm2(rel, S), torch.tensor([[2.0, 4.0, 2.0]], dtype=F64))
    assert elliptic_norm2(rel, S).shape == (1, 3)


# -- log_prob_rows / log_prob_tables
# -------------------------------------------------------------------------------

def _law_ref(log_ref, f, beta, M, delta):
    """Exact-Ẑ sampler law (Alg. 1 given Ẑ = Z), plain NumPy: π_ref·a/p w.p. 1 − (1 − p)^N, else π_ref."""
    N = math.ceil(4 * M * math.log(4 / delta))
    out = np.zeros_like(f)
    for s in range(f.shape[0]):
        pr = np.exp(log_ref[s])
        w = np.exp(f[s] / beta)
        Z = float((pr * w).sum())
        a = np.minimum(1.0, w / (Z * M))
        p = float((pr * a).sum())
        fail = (1 - p) ** N
        out[s] = np.log((1 - fail) * pr * a / p + fail * pr)
    return out


def test_log_prob_rows_and_tables_against_the_plain_sampler_law():
    """log_prob_rows at law='sampler' (β, M, δ passed; the scores against the anchor feature) and
    law='target' (log-softmax of log π_ref + f/β) against NumPy references; normaliser passed on
    ('estimated' differs); log_prob_tables = rows per layer; the law's error message. Kills
    log_prob_rows_1, _2, _10–_15, _39, _44, _45 and log_prob_tables_14."""
    inst = random_token_mdp(num_actions=3, horizon=2, d=3, num_prompts=1, seed=11, reward_scale=1.5)
    m = inst.model
    pol = _policy(H=2, d=3, nu=0.4, beta=inst.beta, M=1.5, delta=0.3, anchor=1)
    tables = pol.log_prob_tables(m)
    gaps = []
    for h in range(2):
        phi = m.phi[h]
        f = _ref_score(pol.theta[h], pol.sigma_inv[h], pol.nu, phi, phi[:, 1])
        lr = m.log_ref[h].numpy()
        exp_s = _law_ref(lr, f, inst.beta, 1.5, 0.3)
        assert np.allclose(tables[h].numpy(), exp_s, atol=1e-12, rtol=0)
        assert np.allclose(pol.log_prob_rows(h, m.log_ref[h], phi).numpy(), exp_s, atol=1e-12, rtol=0)
        tgt = lr + f / inst.beta
        tgt = tgt - np.log(np.exp(tgt).sum(-1, keepdims=True))
        assert np.allclose(pol.log_prob_rows(h, m.log_ref[h], phi, law="target").numpy(), tgt, atol=1e-12)
        assert np.allclose(pol.log_prob_tables(m, law="target")[h].numpy(), tgt, atol=1e-12)
        est = pol.log_prob_rows(h, m.log_ref[h], phi, normaliser="estimated")
        assert torch.allclose(pol.log_prob_tables(m, normaliser="estimated")[h], est, atol=1e-12)
        gaps.append(float((est - tables[h]).abs().max()))
        assert torch.allclose(est, sampler_log_law(m.log_ref[h], torch.as_tensor(f), inst.beta, 1.5, 0.3,
                                                   "estimated"), atol=1e-12)
    assert max(gaps) > 1e-4                                             # 'estimated' reaches the sampler law
    assert not torch.allclose(tables[1], pol.log_prob_tables(m, law="target")[1])
    with pytest.raises(ConfigError, match=r"^law: must be 'sampler' or 'target', got 'ideal'$"):
        pol.log_prob_rows(0, m.log_ref[0], m.phi[0], law="ideal")
    with pytest.raises(ConfigError, match=r"^law: must be 'sampler' or 'target', got 'ideal'$"):
        pol.log_prob_tables(m, law="ideal")


def test_log_prob_rows_casts_float32_features_to_the_policy_dtype():
    """float32 features are scored in θ's float64 (the cast in log_prob_rows): equal to the float64
    computation. Kills log_prob_rows_17."""
    inst = random_token_mdp(num_actions=3, horizon=1, d=3, num_prompts=1, seed=2)
    pol = _policy(H=1, d=3, nu=0.7, beta=inst.beta)
    phi32 = inst.model.phi[0].float()
    a = pol.log_prob_rows(0, inst.model.log_ref[0], phi32, law="target")
    b = pol.log_prob_rows(0, inst.model.log_ref[0], phi32.double(), law="target")
    assert a.dtype == F64 and torch.equal(a, b)


# -- step / sample: the real SoftmaxSampler, replayed
# --------------------------------------------------------------

def _replay_step(pol, inst, prompts, prefixes, seed):
    """A reference for TruncatedSoftmaxPolicy.step: the public softmax_sampler on the dense model's
    features."""
    m = inst.model
    layer = prefixes.shape[1]
    s = m.states(prompts, prefixes)
    anchor = m.phi[layer][s, pol.anchor]
    gen = torch.Generator().manual_seed(seed)
    o = inst.oracles()
    if layer:
        # the local simulator continues visited prefixes
        o.step_reward.grant(prompts, prefixes[:, None, :])

    def draw(n, rows=None):
        if rows is None:
            return o.auto.next_token(prompts, prefixes, n, generator=gen)
        return o.auto.next_token(prompts[rows], prefixes[rows], n, generator=gen)

    def score(smp, rows=None):
        a = anchor if rows is None else anchor[rows]
        return torch.as_tensor(_ref_score(pol.theta[layer], pol.sigma_inv[layer], pol.nu, smp.features, a))

    return softmax_sampler(draw, score, pol.beta, pol.M, pol.delta, generator=gen, chunk=pol.chunk), anchor, o


@pytest.mark.parametrize("chunk", [None, 1, 3])
def test_step_replays_the_public_sampler_draw_for_draw(chunk):
    """step = SoftmaxSampler_{β,M,δ}(⟨φ̄_h, θ_h⟩) with the policy's chunk and generator: tokens, φ_h = ϕ(x,
    a) − ϕ(x, 𝔞), log ρ and ϕ(x, 𝔞) equal a replay with the same seed (1e-12), and t_feature = B,
    t_comp_token as the replay's. Kills step_40, _47 (chunk not passed), _57 (φ sign)."""
    inst = random_token_mdp(num_actions=3, horizon=3, d=3, num_prompts=2, seed=4, reward_scale=1.5)
    pol = _policy(H=3, d=3, nu=0.9, beta=inst.beta, anchor=2, M=2.5, delta=0.2, chunk=chunk, seed=3)
    gen0 = torch.Generator().manual_seed(0)
    for layer in range(3):
        B = 40
        prompts = torch.randint(0, 2, (B,), generator=gen0)
        prefixes = torch.randint(0, 3, (B, layer), generator=gen0)
        ref, anchor, o_ref = _replay_step(pol, inst, prompts, prefixes, seed=10 + layer)
        o = inst.oracles()
        if layer:
            o.step_reward.grant(prompts, prefixes[:, None, :])
        tok, rel, log_rho, anc = pol.step(
            o.auto, prompts, prefixes, torch.Generator().manual_seed(10 + layer)
        )
        assert torch.equal(tok, ref.samples.responses[:, 0])
        s = inst.model.states(prompts, prefixes)
        assert torch.allclose(anc, anchor, atol=0) and torch.allclose(
            rel, inst.model.phi[layer][s, tok] - anchor
        )
        assert torch.allclose(log_rho, ref.log_density, atol=1e-12, rtol=0)
        assert o.ledger.t_feature == B
        assert o.ledger.t_comp_token == o_ref.ledger.t_comp_token
        assert tok.shape == (B,) and rel.shape == (B, 3) and log_rho.shape == (B,) and anc.shape == (B, 3)


def test_step_uses_the_policy_temperature_envelope_and_failure_probability():
    """The same states and seed with β, M or δ changed give another draw count or density (each parameter
    reaches the sampler). A guard for step_* dropping self.beta / self.M / self.delta / self.chunk."""
    inst = random_token_mdp(num_actions=3, horizon=1, d=3, num_prompts=1, seed=4, reward_scale=1.5)
    base = dict(H=1, d=3, nu=9.0, beta=inst.beta, anchor=0, M=2.0, delta=0.3, chunk=3, seed=3)
    prompts, prefixes = torch.zeros(200, dtype=torch.long), torch.zeros(200, 0, dtype=torch.long)

    def run(**kw):
        pol = _policy(**{**base, **kw})
        o = inst.oracles()
        tok, _, log_rho, _ = pol.step(o.auto, prompts, prefixes, torch.Generator().manual_seed(1))
        return tok, log_rho, o.ledger.t_comp_token

    t0, r0, c0 = run()
    assert c0 >= 200 * num_normaliser_draws(2.0, 0.3)
    for kw in ({"beta": 2 * inst.beta}, {"M": 4.0}, {"delta": 0.05}, {"chunk": 5}):
        t1, r1, c1 = run(**kw)
        assert c1 != c0 or not torch.equal(r1, r0), kw


def test_sample_is_the_step_loop_over_the_horizon():
    """sample(auto, prompts) = H successive steps, each continuing the prefix: equal to a hand loop of step
    with the same seed, shape [B, H], int prompts accepted, t_feature = B·H. Kills sample_19, _23
    (generator dropped)."""
    inst = random_token_mdp(num_actions=3, horizon=3, d=3, num_prompts=2, seed=4)
    pol = _policy(H=3, d=3, nu=0.9, beta=inst.beta, anchor=1, M=2.0, delta=0.4, seed=2)
    prompts = [0, 1, 1, 0, 1]
    o = inst.oracles()
    y = pol.sample(o.auto, prompts, torch.Generator().manual_seed(3))
    assert y.shape == (5, 3) and y.dtype == torch.long and o.ledger.t_feature == 15
    o2 = inst.oracles()
    g = torch.Generator().manual_seed(3)
    p = torch.tensor(prompts)
    pre = torch.zeros(5, 0, dtype=torch.long)
    for _ in range(3):
        pre = torch.cat([pre, pol.step(o2.auto, p, pre, g)[0][:, None]], 1)
    assert torch.equal(y, pre) and o.ledger.snapshot() == o2.ledger.snapshot()


def test_sample_draws_the_sampler_law_of_its_tables():
    """Whole sequences drawn by sample vs the exact sampler law of log_prob_tables(normaliser='estimated')
    (chi-square, 9 cells, 4000 draws; level 1e-4), and not the target law. A guard for sample_* / step_*
    that break the law (e.g. the wrong layer's θ)."""
    from scipy.stats import chisquare

    inst = random_token_mdp(num_actions=3, horizon=2, d=3, num_prompts=1, seed=11, reward_scale=1.5)
    pol = _policy(H=2, d=3, nu=0.4, beta=inst.beta, anchor=0, M=2.0, delta=0.5, seed=0, scale=2.5)
    o = inst.oracles()
    n = 4000
    y = pol.sample(o.auto, torch.zeros(n, dtype=torch.long), torch.Generator().manual_seed(8))
    counts = torch.bincount(y[:, 0] * 3 + y[:, 1], minlength=9).double()
    p = sequence_log_probs(inst.model, pol.log_prob_tables(inst.model, normaliser="estimated"))[0].exp()
    assert chisquare(counts.numpy(), (p * n).numpy()).pvalue > 1e-4
    t = sequence_log_probs(inst.model, pol.log_prob_tables(inst.model, law="target"))[0].exp()
    assert chisquare(counts.numpy(), (t * n).numpy()).pvalue < 1e-4


# -- CoreSet
# ---------------------------------------------------------------------------------------------------------

def test_core_set_empty_and_add():
    """CoreSet.empty has the layer's prefix width, d columns and the dtype; add appends (x, a) and (x, 𝔞) with
    φ and
    0. Kills CoreSet.empty_24, _27 (rel dtype)."""
    c = CoreSet.empty(2, 3, torch.float32)
    assert (
        len(c) == 0 and c.prefixes.shape == (0, 2) and c.rel.shape == (0, 3) and c.rel.dtype == torch.float32
    )
    assert c.prompts.dtype == torch.long and c.actions.dtype == torch.long and c.prefixes.dtype == torch.long
    assert c.actions.shape == (0,)
    rel = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float32)
    c.add(torch.tensor(1), torch.tensor([2, 0]), torch.tensor(2), rel, 1)
    c.add(torch.tensor(0), torch.tensor([1, 1]), torch.tensor(0), -rel, 1)
    assert len(c) == 4
    assert c.prompts.tolist() == [1, 1, 0, 0]
    assert c.prefixes.tolist() == [[2, 0], [2, 0], [1, 1], [1, 1]]
    assert c.actions.tolist() == [2, 1, 0, 1]
    assert torch.equal(c.rel, torch.stack([rel, torch.zeros(3), -rel, torch.zeros(3)]))
    assert (
        CoreSet.empty(1, 2, F64).rel.dtype == F64
        and CoreSet.empty(0, 2, torch.float16).rel.dtype == torch.float16
    )
    c0 = CoreSet.empty(0, 2, F64)
    c0.add(torch.tensor(3), torch.zeros(0, dtype=torch.long), torch.tensor(1), torch.ones(2, dtype=F64), 0)
    assert c0.prefixes.shape == (2, 0) and c0.actions.tolist() == [1, 0] and c0.rel.dtype == F64


# -- FitValue and UncertainStateAction with recording stand-in oracles
# ----------------------------------------------

class _Auto:
    """A deterministic stand-in for the weak autoregressive oracle: records resets; next_token returns tokens
    (prompt + Σ prefix + j) mod A and features f(x, prefix∘a)."""

    def __init__(self, A, H, d):
        self.num_actions, self.horizon, self.d = A, H, d
        self.resets = []
        self.queries = []
        self.gens = []

    def feat(self, prompts, prefixes, tokens):
        base = prompts[:, None].double() * 0.3 + prefixes.double().sum(1, keepdim=True) * 0.1
        j = torch.arange(self.d, dtype=F64)
        return torch.sin(base[..., None] * (j + 1) + tokens[..., None].double() * (0.7 + 0.2 * j))

    def reset(self, prompts, prefixes):
        self.resets.append((prompts.clone(), prefixes.clone()))

    def next_token(self, prompts, prefixes, n=1, generator=None):
        self.queries.append((prompts.clone(), prefixes.clone(), n))
        self.gens.append(generator)
        tok = (prompts[:, None] + prefixes.sum(1, keepdim=True) + torch.arange(n)) % self.num_actions
        return Samples(prompts, tok, self.feat(prompts, prefixes, tok), None, frozenset({"features"}), "stub")


class _Reward:
    """Deterministic per-step reward r(x, a_{1:h}) = 0.1·x + 0.05·h + 0.3·a_h + 0.02·Σ a; records the
    queries."""

    def __init__(self):
        self.calls = []
        self.gens = []

    @staticmethod
    def value(prompts, pre):
        return (
            0.1 * prompts.double()
            + 0.05 * pre.shape[1]
            + 0.3 * pre[:, -1].double()
            + 0.02 * pre.sum(1).double()
        )

    def outcome(self, prompts, prefixes, generator=None):
        self.calls.append(prefixes.shape)
        self.gens.append(generator)
        return self.value(prompts, prefixes[:, 0, :])[:, None]


class _Policy:
    """A stand-in π̂: step returns a deterministic token (x + len + 2·Σ prefix) mod A, its φ, log ρ =
    0.1·(a + 1)·len and the anchor features (from the stand-in oracle's features)."""

    def __init__(self, auto, H, d, beta=0.5, anchor=0, sigma_inv=None):
        self.auto, self.horizon, self.beta, self.anchor = auto, H, beta, anchor
        self.sigma_inv = sigma_inv if sigma_inv is not None else torch.eye(d, dtype=F64).repeat(H, 1, 1)
        self.steps = []

    def token(self, prompts, states):
        return (prompts + states.shape[1] + 2 * states.sum(1)) % self.auto.num_actions

    def step(self, auto, prompts, states, generator=None):
        self.steps.append(states.shape)
        a = self.token(prompts, states)
        anchor = self.auto.feat(prompts, states, torch.full((prompts.numel(), 1), self.anchor))[:, 0]
        rel = self.auto.feat(prompts, states, a[:, None])[:, 0] - anchor
        return a, rel, 0.1 * (a.double() + 1) * states.shape[1], anchor


def _fit_value_reference(layer, core, pol, n_reg, radius):
    """Plain-Python FitValue: per kept pair and repetition, z = return(a) − return(𝔞), returns with r − β
    log ρ along the stand-in roll-out; then the min-norm least-squares solution (radius large)."""
    H = pol.horizon
    rows, zs = [], []
    for k in range(len(core)):
        if int(core.actions[k]) == pol.anchor:
            continue
        x = core.prompts[k:k + 1]
        rets = []
        for first in (int(core.actions[k]), pol.anchor):
            pre = torch.cat([core.prefixes[k], torch.tensor([first])])[None]
            ret = float(_Reward.value(x, pre)[0])
            for _ in range(layer + 1, H):
                a = pol.token(x, pre)
                lr = 0.1 * (float(a[0]) + 1) * pre.shape[1]
                pre = torch.cat([pre, a[:, None]], 1)
                ret += float(_Reward.value(x, pre)[0]) - pol.beta * lr
            rets.append(ret)
        for _ in range(n_reg):
            rows.append(core.rel[k].numpy())
            zs.append(rets[0] - rets[1])
    Phi, z = np.array(rows), np.array(zs)
    theta = np.linalg.lstsq(Phi, z, rcond=None)[0]
    assert np.linalg.norm(theta) < radius
    return theta, len(zs)


def _core(layer, d, pairs):
    c = CoreSet.empty(layer, d, F64)
    for x, pre, a, rel in pairs:
        c.add(
            torch.tensor(x),
            torch.tensor(pre, dtype=torch.long),
            torch.tensor(a),
            torch.tensor(rel, dtype=F64),
            0,
        )
    return c


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_fit_value_targets_regression_and_counts_against_a_plain_reference(layer):
    """fit_value with stand-in oracles: θ̂ = the plain-Python least squares of the soft-Bellman targets
    (r_h and r_ℓ − β log ρ_ℓ for ℓ > h, the a-roll-out minus the 𝔞-roll-out, N repetitions, anchor pairs
    skipped), 2R resets at x_h, 2R reward queries per step, transitions += 2R·(H − h), roll-outs of the
    stated shapes, the run's generator in every reward query. Kills fit_value_2, _45, _48, _50, _51, _54,
    _55, _61, _78, _79, _82, _85, _88, _89, _92, _93, _95, _110."""
    H, d, A = 4, 3, 3
    auto, rew = _Auto(A, H, d), _Reward()
    pol = _Policy(auto, H, d, beta=0.7, anchor=0)
    pre = [[], [1], [2, 0], [0, 1, 2]][layer]
    pre2 = [[], [0], [1, 1], [2, 2, 0]][layer]
    core = _core(layer, d, [(1, pre, 2, [0.5, -0.2, 0.1]), (0, pre2, 1, [0.1, 0.4, -0.3]),
                            (1, pre2, 2, [-0.3, 0.2, 0.6]), (0, pre, 1, [0.2, 0.1, 0.2])])
    counts = {"transitions": 5}
    gen = torch.Generator().manual_seed(0)
    theta = fit_value(layer, core, pol, auto, rew, 3, 1e6, gen, counts)
    ref, R = _fit_value_reference(layer, core, pol, 3, 1e6)
    assert R == 12
    assert np.allclose(theta.numpy(), ref, atol=1e-9, rtol=0)
    assert theta.dtype == F64 and theta.shape == (d,)
    assert len(auto.resets) == 1
    rp, rs = auto.resets[0]
    assert rp.tolist() == core.prompts[core.actions != 0].repeat_interleave(3).repeat(2).tolist()
    assert torch.equal(rs, core.prefixes[core.actions != 0].repeat_interleave(3, dim=0).repeat(2, 1))
    assert counts["transitions"] == 5 + 2 * R * (H - layer)
    assert rew.calls == [torch.Size([2 * R, 1, layer + 1 + j]) for j in range(H - layer)]
    assert pol.steps == [torch.Size([2 * R, layer + 1 + j]) for j in range(H - layer - 1)]
    # reward noise uses the run's generator
    assert len(rew.gens) == H - layer and all(g is gen for g in rew.gens)


def test_fit_value_radius_and_degenerate_cores():
    """No pair or anchor pairs only: θ̂ = 0 of the core's dtype, no query; a small radius binds (‖θ̂‖ = B).
    Kills fit_value_7, _9."""
    auto, rew = _Auto(3, 3, 2), _Reward()
    pol = _Policy(auto, 3, 2)
    for dt in (F64, torch.float16):
        for core in (CoreSet.empty(1, 2, dt), _core(1, 2, [(0, [1], 0, [0.3, 0.1])])):
            th = fit_value(1, core, pol, auto, rew, 4, 1.0, None, {"transitions": 0})
            assert torch.equal(th, torch.zeros(2, dtype=core.rel.dtype)) and th.dtype == core.rel.dtype
    assert auto.resets == [] and rew.calls == []
    core = _core(1, 2, [(0, [1], 2, [0.3, 0.1]), (1, [0], 1, [0.1, -0.4])])
    big = fit_value(1, core, pol, auto, rew, 2, 1e6, None, {"transitions": 0})
    small = fit_value(1, core, pol, auto, rew, 2, 0.01, None, {"transitions": 0})
    assert float(big.norm()) > 0.01 and float(small.norm()) == pytest.approx(0.01, rel=1e-6)


class _Prompts:
    def __init__(self, xs):
        self.xs, self.calls, self.gens = xs, [], []

    def draw(self, n, generator=None):
        self.calls.append(n)
        self.gens.append(generator)
        return torch.tensor(self.xs[:n])


def _usa_reference(cores, pol, auto, xs, n_span, n_bar):
    """Plain-Python UncertainStateAction over all layers with the stand-in oracles: rows = N_span root
    roll-ins plus N_span per core pair of each earlier layer; candidates the policy's token and N̄
    reference tokens; the argmax of ‖φ‖²_{Σ_h⁻¹} over rows and candidates (first maximum in row-major
    order)."""
    H = pol.horizon
    rows = []          # (prompt, prefix list)
    picks = []
    for layer in range(H):
        if layer == 0:
            rows = [(x, []) for x in xs[:n_span]]
        else:
            c = cores[layer - 1]
            new = []
            for k in range(len(c)):
                for _ in range(n_span):
                    new.append((int(c.prompts[k]), c.prefixes[k].tolist() + [int(c.actions[k])]))
            rows = rows + new
        best = None
        nxt = []
        for x, pre in rows:
            xp, pp = torch.tensor([x]), torch.tensor([pre], dtype=torch.long).reshape(1, layer)
            a = int(pol.token(xp, pp)[0])
            anchor = auto.feat(xp, pp, torch.tensor([[pol.anchor]]))[0, 0]
            cands = [a] + [int(t) for t in ((x + sum(pre) + torch.arange(n_bar)) % auto.num_actions)]
            for a_c in cands:
                rel = auto.feat(xp, pp, torch.tensor([[a_c]]))[0, 0] - anchor
                k2 = float(rel @ pol.sigma_inv[layer] @ rel)
                if best is None or k2 > best[0]:
                    best = (k2, x, pre, a_c, rel)
            nxt.append((x, pre + [a]))
        picks.append(best)
        rows = nxt
    return picks


@pytest.mark.parametrize("n_bar", [0, 1, 2])
def test_uncertain_state_actions_against_a_plain_reference(n_bar):
    """uncertain_state_actions with stand-in oracles: for every layer the pick (x̂, prefix, â, φ, κ²)
    equals the plain-Python search over the root roll-ins and the restarts at every core pair of the
    previous layer (reset there), with the policy's token and N̄ reference tokens as candidates; N_span
    prompts drawn once; transitions counted per roll-in step, the run's generator in every draw. Kills
    uncertain_state_actions_6, _8, _24, _26, _66, _67, _71, _72, _77, _80, _81, _93."""
    H, d, A = 3, 3, 4
    auto = _Auto(A, H, d)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(H, d, d, generator=gen, dtype=F64)
    pol = _Policy(auto, H, d, anchor=1, sigma_inv=a @ a.transpose(1, 2) + 0.1 * torch.eye(d, dtype=F64))
    cores = [_core(0, d, [(1, [], 2, [0.0] * d), (0, [], 3, [0.0] * d)]),
             _core(1, d, [(0, [2], 0, [0.0] * d)]), CoreSet.empty(2, d, F64)]
    xs = [1, 0, 1]
    src = _Prompts(xs)
    counts = {"transitions": 1}
    gen = torch.Generator().manual_seed(0)
    picks = uncertain_state_actions(cores, pol, auto, src, 3, n_bar, gen, counts)
    ref = _usa_reference(cores, pol, auto, xs, 3, n_bar)
    assert src.calls == [3] and len(picks) == H
    for p, (k2, x, pre, act, rel) in zip(picks, ref):
        assert p.kappa2 == pytest.approx(k2, abs=1e-12) and isinstance(p.kappa2, float)
        assert int(p.prompt) == x and p.prefix.tolist() == pre and int(p.action) == act
        assert p.prompt.dtype == torch.long and p.prefix.dtype == torch.long
        assert torch.allclose(p.rel, rel, atol=1e-12)
    n_rows = [3, 3 + 3 * 4, 3 + 12 + 3 * 2]
    assert counts["transitions"] == 1 + sum(n_rows)
    assert [r[0].numel() for r in auto.resets] == [12, 6]
    assert [r[1].shape[1] for r in auto.resets] == [1, 2]
    refq = [q for q in auto.queries if q[2] == n_bar] if n_bar else []
    assert [q[0].numel() for q in refq] == (n_rows if n_bar else [])
    assert len(auto.queries) == (H if n_bar else 0)                   # N̄ = 0: no reference draws at all
    # the run's generator reaches every draw
    assert src.gens == [gen] and all(g is gen for g in auto.gens)
