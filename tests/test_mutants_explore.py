"""Tests written to kill mutmut survivors in ``oraclerl.explore`` (docs/testing.md, "Triage").

Grouped by module (spanner_sampling, evaluation, linear_regression, proper, baselines). Every value is checked
against an independent computation: brute-force enumeration on tiny exact linear-softmax instances, the KKT
conditions of the constrained least squares, plain-Python sums, or the sequential form of an algorithm.
Each test's docstring names the mutants it kills (mutmut names, ``x_<function>__mutmut_<k>`` abbreviated to
``<function>_<k>``).
"""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import pytest
import torch

from oraclerl.diagnostics import regret
from oraclerl.errors import ConfigError
from oraclerl.explore.baselines import BestOfNPolicy, ReferencePolicy
from oraclerl.explore.evaluation import first_reach, proper_curve, spanner_curve
from oraclerl.explore.linear_regression import (
    InverseGram,
    LeastSquaresState,
    _psd_solve,
    constrained_least_squares,
    project,
)
from oraclerl.explore.proper import LinearSoftmaxPolicy, pairwise_rounds
from oraclerl.explore.spanner_sampling import (
    SpannerSampling,
    SpannerSamplingConfig,
    spanner_block,
    theory_schedule,
)
from oraclerl.inference.sample_based import BestOfN, BestOfNConfig
from oraclerl.inference.softmax_sampler import softmax_sampler, weak_draw
from oraclerl.oracles import Ledger, PromptSource, RewardOracle, WeakSampler, ledger_totals
from oraclerl.problems import linear_softmax

torch.set_num_threads(1)
F64 = torch.float64


def _tiny(seed=0, noise=0.0, X=3, Y=6, d=3):
    return linear_softmax(d=d, num_prompts=X, num_responses=Y, beta=0.5, target_coverage=3.0, noise=noise,
                          seed=seed)


# ------------------------------------------------------------------------------------------------------------
# explore/spanner_sampling.py
# ------------------------------------------------------------------------------------------------------------

def test_schedule_as_dict_is_every_resolved_field_with_theory_and_t_data_bound():
    """SpannerSchedule.as_dict: exactly the eleven resolved fields, a copy of ``theory`` and ``t_data_bound``
    (kills every as_dict mutant: no test called it)."""
    cfg = SpannerSamplingConfig(epsilon=0.1, delta=0.2, coverage_bound=5.0, B=2.0, nu=0.4, T_exp=7,
                                T_prompt=9)
    sch = theory_schedule(cfg, d=3, beta=0.25, r_max=1.5)
    got = sch.as_dict()
    keys = ["d", "beta", "r_max", "eps_stat", "nu", "lam", "T_prompt", "T_span", "T_exp", "M_rej",
            "delta_rej"]
    assert list(got) == keys + ["theory", "t_data_bound"]
    assert [got[k] for k in keys] == [sch.d, sch.beta, sch.r_max, sch.eps_stat, sch.nu, sch.lam, sch.T_prompt,
                                      sch.T_span, sch.T_exp, sch.M_rej, sch.delta_rej]
    assert (got["d"], got["beta"], got["nu"], got["T_prompt"], got["T_exp"]) == (3, 0.25, 0.4, 9, 7)
    assert got["theory"] == sch.theory and got["theory"] is not sch.theory
    assert got["t_data_bound"] == 2 * (sch.spanner_size_bound + 7)


def test_theory_schedule_every_value_and_override_against_the_formulas():
    """theory_schedule against Theorem 3.1's formulas written out (App. G.4.2): T_exp, T_prompt, T_span,
    ε_stat (with its c_stat factor and the max(1, log) floor), ν, λ, M_rej, δ_rej and the ``theory`` record,
    with no knob given, with every knob given, and with only T_exp given (ε_stat then uses the given T_exp,
    the theory record keeps the theory T_exp); the T_comp bound in closed form (kills the arithmetic mutants
    of theory_schedule and t_comp_bound)."""
    d, beta, r_max = 3, 0.4, 1.5
    eps, dl, C, B, c_stat = 0.2, 0.25, 6.0, 1.25, 0.7
    cfg = SpannerSamplingConfig(epsilon=eps, delta=dl, coverage_bound=C, B=B, c_stat=c_stat)
    sch = theory_schedule(cfg, d=d, beta=beta, r_max=r_max)
    t_exp = math.ceil(d * d * r_max ** 2 * math.log(1 / dl) ** 2 / (beta * min(eps, beta)))

    def es(T):
        return c_stat * math.sqrt(d * r_max ** 2 * max(1.0, math.log(B * T / (r_max * dl))))

    theory = {"T_exp": t_exp, "T_prompt": math.ceil((r_max / beta) ** 2 * t_exp),
              "T_span": math.ceil(C * t_exp), "nu": beta / es(t_exp), "lam": (r_max / B) ** 2,
              "M_rej": 8 * math.e ** 2 * C, "delta_rej": 1 / t_exp}
    assert sch.theory.keys() == theory.keys()
    for k, v in theory.items():
        assert sch.theory[k] == pytest.approx(v, rel=1e-14), k
        if k != "T_exp":
            assert getattr(sch, k) == pytest.approx(v, rel=1e-14), k
    assert sch.T_exp == t_exp and sch.eps_stat == pytest.approx(es(t_exp), rel=1e-14)
    assert (sch.d, sch.beta, sch.r_max) == (d, beta, r_max)
    # ε < β and ε > β use min(ε, β)
    big = theory_schedule(SpannerSamplingConfig(epsilon=0.9, delta=dl), d=2, beta=0.3, r_max=1.0)
    assert big.T_exp == math.ceil(4 * math.log(4) ** 2 / (0.3 * 0.3))
    # the max(1, log) floor: B·T/(R_max δ) < e gives ε_stat = c·sqrt(d R_max²)
    low = theory_schedule(SpannerSamplingConfig(delta=0.9, B=0.01, T_exp=3), d=2, beta=0.5, r_max=1.0)
    assert low.eps_stat == pytest.approx(math.sqrt(2), rel=1e-14)
    assert low.nu == pytest.approx(0.5 / math.sqrt(2))
    # only T_exp given: ε_stat of the given T_exp, the schedule derived from it, the theory record unchanged
    only_cfg = SpannerSamplingConfig(epsilon=eps, delta=dl, coverage_bound=C, B=B, c_stat=c_stat, T_exp=11)
    only = theory_schedule(only_cfg, d=d, beta=beta, r_max=r_max)
    assert only.T_exp == 11 and only.eps_stat == pytest.approx(es(11), rel=1e-14)
    assert only.nu == pytest.approx(beta / es(11), rel=1e-14)
    assert only.T_prompt == math.ceil((r_max / beta) ** 2 * 11)
    assert only.T_span == math.ceil(C * 11) and only.delta_rej == pytest.approx(1 / 11, rel=1e-15)
    assert only.theory == sch.theory
    # every knob given
    knobs = dict(nu=0.3, lam=0.7, T_prompt=5, T_span=4, T_exp=6, M_rej=2.5, delta_rej=0.2)
    given = theory_schedule(SpannerSamplingConfig(**knobs), d=d, beta=beta, r_max=r_max)
    assert {k: getattr(given, k) for k in knobs} == knobs
    n = math.ceil(4 * 2.5 * math.log(4 / 0.2))
    assert given.t_comp_bound == 2 * 5 * 4 + 6 * (2 * n + 2)
    assert given.t_data_bound == 2 * (given.spanner_size_bound + 6)


class _Weak:
    """A weak oracle exposing only what ``schedule`` reads (no model behind it)."""

    def __init__(self, beta=None, feature_dim=None):
        self.beta, self.feature_dim = beta, feature_dim   # declared, None where absent (oracles.protocols)


def test_schedule_reads_beta_d_r_max_from_the_oracles_unless_given():
    """SpannerSampling.schedule: β and d from the weak oracle, R_max from the reward oracle, each overridden
    by the config; a missing one raises ConfigError naming it (kills the getattr-name, ``or``-order and
    message mutants of schedule)."""
    reward = SimpleNamespace(r_max=2)
    sch = SpannerSampling(SpannerSamplingConfig(T_exp=5)).schedule(_Weak(beta=0.5, feature_dim=4), reward)
    assert (sch.beta, sch.r_max, sch.d) == (0.5, 2.0, 4)
    assert type(sch.d) is int and type(sch.r_max) is float and type(sch.beta) is float
    want = theory_schedule(SpannerSamplingConfig(T_exp=5), 4, 0.5, 2.0)
    assert sch.as_dict() == want.as_dict()
    over = SpannerSampling(SpannerSamplingConfig(T_exp=5, beta=0.25, r_max=3.0, d=2)).schedule(
        _Weak(beta=0.5, feature_dim=4), reward)
    assert (over.beta, over.r_max, over.d) == (0.25, 3.0, 2)
    given = SpannerSampling(SpannerSamplingConfig(T_exp=5, beta=0.25, r_max=3.0, d=2)).schedule(_Weak(),
                                                                                               object())
    assert (given.beta, given.r_max, given.d) == (0.25, 3.0, 2)
    cases = [(SpannerSamplingConfig(r_max=1.0, d=2), _Weak(), "beta"),
             (SpannerSamplingConfig(beta=0.5, d=2), _Weak(), "r_max"),
             (SpannerSamplingConfig(beta=0.5, r_max=1.0), _Weak(), "weak.feature_dim"),
             (SpannerSamplingConfig(r_max=1.0), _Weak(feature_dim=3), "beta"),
             (SpannerSamplingConfig(), _Weak(beta=0.5), "r_max")]
    for cfg, weak, name in cases:
        msg = rf"^{re.escape(name)}: must be given \(the oracle does not expose it\)$"
        with pytest.raises(ConfigError, match=msg):
            SpannerSampling(cfg).schedule(weak, SimpleNamespace(r_max=None))


def test_ledger_totals_sums_distinct_ledgers_once():
    """ledger_totals: one shared ledger counted once, two ledgers summed key by key, oracles without a ledger
    (no attribute, or None) ignored, no oracle gives {} (kills the id / getattr / sum mutants)."""
    a, b = Ledger(), Ledger()
    a.charge("t_comp", 5)
    a.charge("t_data", 2)
    b.charge("t_comp", 7)
    b.charge("prompts", 3)
    oa, oa2, ob = SimpleNamespace(ledger=a), SimpleNamespace(ledger=a), SimpleNamespace(ledger=b)
    snap_a = a.snapshot()
    assert ledger_totals(oa, oa2) == snap_a
    tot = ledger_totals(oa, ob, oa2, SimpleNamespace(ledger=None), object())
    want = {k: a.snapshot().get(k, 0) + b.snapshot().get(k, 0) for k in set(a.snapshot()) | set(b.snapshot())}
    assert tot == want and tot["t_comp"] == 12 and tot["t_data"] == 2 and tot["prompts"] == 3
    assert ledger_totals() == {} and ledger_totals(object()) == {}


def _sequential_spanner_sampling(cfg, sch, o, gen):
    """Algorithm 3 written as the paper's sequential loops, for span_block = 1 and span_chunk ≥ T_span (then
    the implementation makes exactly these oracle calls, in this order): Σ_span by explicit inversion, the
    regression by plain sums, the truncated score of Eq. 50 written out."""
    d, nu2 = sch.d, sch.nu * sch.nu
    Sigma = sch.lam * torch.eye(d, dtype=F64)
    kx, ky, kphi = [], [], []
    for _ in range(sch.T_prompt):
        x = o.prompts.draw(1, gen)
        s = o.weak.sample(x, 2 * sch.T_span, gen)
        f = s.features.reshape(sch.T_span, 2, d)
        resp = s.responses.reshape(sch.T_span, 2)
        for i in range(sch.T_span):
            phi = f[i, 0] - f[i, 1]
            if float(phi @ torch.linalg.solve(Sigma, phi)) > nu2:
                Sigma = Sigma + torch.outer(phi, phi)
                kx.append(int(x[0]))
                ky.append(resp[i])
                kphi.append(phi)
                break
    G, h = torch.zeros(d, d, dtype=F64), torch.zeros(d, dtype=F64)
    if kx:
        r = o.reward.outcome(torch.tensor(kx), torch.stack(ky), gen)
        for phi, dr in zip(kphi, r[:, 0] - r[:, 1]):
            G, h = G + torch.outer(phi, phi), h + phi * dr
    span_ledger = o.ledger.snapshot()
    Sinv = torch.linalg.inv(Sigma)
    thetas, hist = [], []
    for t0 in range(0, sch.T_exp, cfg.exp_batch):
        nb = min(cfg.exp_batch, sch.T_exp - t0)
        theta = constrained_least_squares(G, h, cfg.reg_lam, cfg.B, cfg.theta_set)
        xs = o.prompts.draw(nb, gen)
        ref = o.weak.sample(xs, 1, gen)
        r2 = o.reward.outcome(xs, ref.responses, gen)[:, 0]
        phi2 = ref.features[:, 0]

        def score(smp, rows=None, theta=theta, phi2=phi2):
            p2 = phi2 if rows is None else phi2[rows]
            rel = smp.features - p2[:, None, :]
            sq = torch.einsum("bni,ij,bnj->bn", rel, Sinv, rel)
            return torch.where(sq <= nu2, rel @ theta, torch.zeros(()).to(rel))

        out = softmax_sampler(weak_draw(o.weak, xs, gen), score, sch.beta, sch.M_rej, sch.delta_rej,
                              generator=gen, chunk=cfg.chunk)
        r1 = o.reward.outcome(xs, out.samples.responses, gen)[:, 0]
        for phi, dr in zip(out.samples.features[:, 0] - phi2, r1 - r2):
            G, h = G + torch.outer(phi, phi), h + phi * dr
        thetas += [theta] * nb
        led = o.ledger.snapshot()
        hist.append({"round": t0 + nb, "t_data": led["t_data"], "t_comp": led["t_comp"],
                     "prompts": led["prompts"], "rejection_failures": int((~out.accepted).sum())})
    return SimpleNamespace(size=len(kx), Sinv=Sinv, thetas=torch.stack(thetas), hist=hist, span=span_ledger,
                           ledger=o.ledger.snapshot())


@pytest.mark.parametrize("theta_set,seed", [("l2", 0), ("linf", 1)])
def test_run_equals_the_sequential_algorithm_on_the_same_oracle_calls(theta_set, seed):
    """SpannerSampling.run against the sequential Algorithm 3 on the same random stream (noisy rewards, a
    partial last exploration batch, some spanner prompts without a tuple): the same |Ψ_span|, Σ_span⁻¹, every
    θ^t, the ledger after the spanner phase and at the end, the per-batch history (rejection failures
    included), and the output policy's parameters and oracles (kills the mutants of run and _spanner that
    change which calls are made, the reward differences, their sign, the regression's arguments, the history
    and the policy's arguments)."""
    inst = _tiny(noise=0.3, X=3, Y=6, seed=seed)
    cfg = SpannerSamplingConfig(coverage_bound=3.0, B=0.5 * inst.B, theta_set=theta_set, nu=1.5, lam=0.1,
                                T_prompt=7, T_span=3, T_exp=7, M_rej=1.5, delta_rej=0.3, exp_batch=3,
                                span_block=1, span_chunk=4, chunk=3, reg_lam=1e-3)
    o = inst.oracles()
    out = SpannerSampling(cfg).run(o.weak, o.reward, o.prompts, torch.Generator().manual_seed(seed))
    o2 = inst.oracles()
    ref = _sequential_spanner_sampling(cfg, out.schedule, o2, torch.Generator().manual_seed(seed))
    assert 0 < out.spanner_size == ref.size < cfg.T_prompt
    torch.testing.assert_close(out.policy.sigma_inv, ref.Sinv, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(out.policy.thetas, ref.thetas, rtol=1e-9, atol=1e-12)
    assert out.policy.thetas.shape == (7, 3) and len(torch.unique(out.policy.thetas, dim=0)) == 3
    assert out.history == ref.hist and out.span_phase == ref.span and out.ledger == ref.ledger
    pol, sch = out.policy, out.schedule
    # chunk 3: not the default ceil(M_rej)
    assert (pol.nu, pol.beta, pol.M_rej, pol.delta_rej, pol.chunk) == (sch.nu, sch.beta, 1.5, 0.3, 3)
    assert pol.weak is o.weak and pol.prompt_source is o.prompts


def test_run_sums_the_ledgers_of_oracles_that_do_not_share_one():
    """Weak, reward and prompt oracles on three distinct ledgers (the reward oracle grants what it did not see
    drawn): the spanner-phase ledger, the history and the final ledger are the sums over the three, equal to
    those of the same run (same random stream) on one shared ledger (kills the mutants of run that drop an
    oracle from a ``ledger_totals`` call: on one shared ledger any one oracle gives the same totals)."""
    inst = _tiny(noise=0.3)
    cfg = SpannerSamplingConfig(coverage_bound=3.0, B=inst.B, nu=0.5, lam=0.1, T_prompt=5, T_span=3, T_exp=5,
                                M_rej=2.0, delta_rej=0.5, exp_batch=2)
    o = inst.oracles()
    shared = SpannerSampling(cfg).run(o.weak, o.reward, o.prompts, torch.Generator().manual_seed(2))
    led = [Ledger(), Ledger(), Ledger()]
    weak = WeakSampler(inst.base, led[0])
    reward = RewardOracle(inst.reward, led[1], inst.noise, grant_all=True)
    prompts = PromptSource(inst.prompt_weights, led[2])
    split = SpannerSampling(cfg).run(weak, reward, prompts, torch.Generator().manual_seed(2))
    assert torch.equal(split.policy.thetas, shared.policy.thetas)
    keys = ("t_comp", "t_data", "prompts")
    assert led[0].t_comp > 0 and led[1].t_data > 0 and led[2].prompts > 0
    assert {k: split.ledger[k] for k in keys} == {k: shared.ledger[k] for k in keys}
    assert {k: split.span_phase[k] for k in keys} == {k: shared.span_phase[k] for k in keys}
    assert 0 < shared.span_phase["t_comp"] < shared.ledger["t_comp"] and shared.span_phase["prompts"] == 5
    for a, b in zip(split.history, shared.history):
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}


def test_spanner_block_a_trial_exactly_at_nu_is_not_added():
    """Line 8 of Alg. 3 adds a trial only when ‖φ‖_{Σ⁻¹} > ν strictly: with Σ = I (λ = 1) and ν = ½, a trial
    φ = (½, 0) (squared norm ¼ = ν², exactly representable) is skipped and the next one, (1, 0), is added;
    the second prompt's (0, ½) is skipped too, and its later (0, 0.75) added (kills spanner_block_14,
    ``>=`` for ``>``)."""
    table = torch.tensor([[[0.5, 0.0], [1.0, 0.0], [0.0, 0.0]],
                          [[0.0, 0.5], [0.0, 0.75], [0.0, 0.0]]], dtype=F64)
    used = torch.zeros(2, dtype=torch.long)

    def pairs(pos, c):
        idx = used[pos][:, None] + torch.arange(c)
        used[pos] += c
        return table[pos[:, None], idx], idx[..., None]

    gram = InverseGram(2, 1.0)
    got = [(p, int(r[0])) for p, _, r in spanner_block(pairs, 2, 3, 0.5, gram, chunk=1)]
    assert got == [(0, 1), (1, 1)]
    want = torch.tensor([[2.0, 0.0], [0.0, 1.5625]], dtype=F64)
    torch.testing.assert_close(gram.gram, want, rtol=0, atol=0)


class _Recorder:
    """Passes every call on to the real oracle and records the weak draws made before the first reward query
    (the spanner phase) and the prompts drawn."""

    def __init__(self, o, expose_ledger=True):
        self.o, self.draws, self.prompt_blocks, self.rewarded = o, [], [], False
        self.beta, self.feature_dim, self.r_max = o.weak.beta, o.weak.feature_dim, o.reward.r_max
        if expose_ledger:
            self.ledger = o.ledger

    def sample(self, prompts, n, generator=None):
        s = self.o.weak.sample(prompts, n, generator)
        if not self.rewarded:
            self.draws.append((torch.as_tensor(prompts).clone(), s.responses.clone()))
        return s

    def outcome(self, prompts, responses, generator=None):
        self.rewarded = True
        return self.o.reward.outcome(prompts, responses, generator)

    def draw(self, n, generator=None):
        xs = self.o.prompts.draw(n, generator)
        if not self.rewarded:
            self.prompt_blocks.append(xs.clone())
        return xs


def test_spanner_phase_in_blocks_takes_the_sequential_decisions_on_its_own_trials():
    """The spanner phase with span_block = 3 (T_prompt = 8: blocks of 3, 3, 2) and span_chunk = 2 < T_span =
    5: replaying the trials each prompt actually received, in the order received, through the sequential loop
    of Alg. 3 (lines 5-13, Σ_span by explicit inversion, φ from the instance's feature table) gives the same
    |Ψ_span| and Σ_span⁻¹; a prompt without a tuple received exactly T_span trials, one with a tuple at trial
    j at most j + span_chunk; prompts are drawn in blocks of min(span_block, T_prompt − b0) (kills the mutants
    of _spanner's block loop and ``pairs`` reshapes, and of spanner_block's chunk widening and
    bookkeeping)."""
    inst = linear_softmax(d=3, num_prompts=500, num_responses=8, beta=0.5, target_coverage=2.0, seed=4)
    o = inst.oracles()
    rec = _Recorder(o)
    cfg = SpannerSamplingConfig(coverage_bound=2.0, B=inst.B, nu=1.2, lam=0.2, T_prompt=8, T_span=5, T_exp=2,
                                M_rej=2.0, delta_rej=0.5, span_block=3, span_chunk=2)
    out = SpannerSampling(cfg).run(rec, rec, rec, torch.Generator().manual_seed(0))
    assert [b.numel() for b in rec.prompt_blocks] == [3, 3, 2]
    order = torch.cat(rec.prompt_blocks).tolist()
    assert len(set(order)) == 8                                  # distinct prompts: trials map to positions
    trials = {x: [] for x in order}
    for xs, resp in rec.draws:
        r = resp.reshape(xs.numel(), -1, 2)
        for x, pairs in zip(xs.tolist(), r):
            trials[x] += [tuple(p) for p in pairs.tolist()]
    phi = inst.base.phi
    Sigma, kept = 0.2 * torch.eye(3, dtype=F64), []
    for x in order:
        got = trials[x]
        for j, (y1, y2) in enumerate(got[:5]):
            f = phi[x, y1] - phi[x, y2]
            if float(f @ torch.linalg.solve(Sigma, f)) > 1.44:
                Sigma = Sigma + torch.outer(f, f)
                kept.append(x)
                assert j + 1 <= len(got) <= j + 2
                break
        else:
            assert len(got) == 5
    assert 1 < out.spanner_size == len(kept) < 8
    torch.testing.assert_close(out.policy.sigma_inv, torch.linalg.inv(Sigma), rtol=1e-9, atol=1e-12)
    assert out.span_phase["t_comp"] == 2 * sum(len(t) for t in trials.values())
    assert out.span_phase["prompts"] == 8 and out.span_phase["t_data"] == 2 * len(kept)


def test_run_with_oracles_that_keep_no_ledger_reports_zero_counts():
    """Oracles that expose no ``ledger``: the history's counts are 0 and the ledgers empty (kills the
    ``tot.get(..., 0)`` default mutants of run, _159 to _183)."""
    inst = _tiny()
    rec = _Recorder(inst.oracles(), expose_ledger=False)
    cfg = SpannerSamplingConfig(coverage_bound=3.0, B=inst.B, nu=0.5, lam=0.1, T_prompt=2, T_span=2, T_exp=3,
                                M_rej=2.0, delta_rej=0.5, exp_batch=2)
    out = SpannerSampling(cfg).run(rec, rec, rec, torch.Generator().manual_seed(0))
    assert out.ledger == {} and out.span_phase == {}
    assert [{k: h[k] for k in ("round", "t_data", "t_comp", "prompts")} for h in out.history] == [
        {"round": 2, "t_data": 0, "t_comp": 0, "prompts": 0},
        {"round": 3, "t_data": 0, "t_comp": 0, "prompts": 0}]


def test_run_without_any_spanner_tuple():
    """ν so large that no trial exceeds it: |Ψ_span| = 0, no reward query in the spanner phase, the first θ is
    the regression on no data (0), and the run still explores (kills run_225, run_227: the ``sx is None``
    branch of spanner_size)."""
    inst = _tiny()
    o = inst.oracles()
    cfg = SpannerSamplingConfig(coverage_bound=3.0, B=inst.B, nu=50.0, lam=0.1, T_prompt=3, T_span=2, T_exp=3,
                                M_rej=2.0, delta_rej=0.5, exp_batch=2)
    out = SpannerSampling(cfg).run(o.weak, o.reward, o.prompts, torch.Generator().manual_seed(0))
    assert out.spanner_size == 0 and out.span_phase["t_data"] == 0 and out.span_phase["t_comp"] == 12
    assert torch.equal(out.policy.thetas[0], torch.zeros(3, dtype=F64))
    assert torch.equal(out.policy.sigma_inv, torch.eye(3, dtype=F64) / 0.1)
    assert out.ledger["t_data"] == 2 * 3


# ------------------------------------------------------------------------------------------------------------
# explore/evaluation.py
# ------------------------------------------------------------------------------------------------------------

def test_proper_curve_is_the_regret_of_each_theta_with_the_ledger_before_it():
    """proper_curve: θ^0 paired with t_data = t_comp = 0, θ^k with history[k-1], regret of π_{θ^k} exactly
    (kills every mutant of proper_curve: the leading point, the keys, the pairing and the policy)."""
    inst = _tiny()
    thetas = torch.tensor([[0.0, 0.0, 0.0], [0.3, -0.2, 0.1], [1.0, 0.5, -0.5]], dtype=F64)
    hist = [{"t_data": 4, "t_comp": 10, "round": 2}, {"t_data": 8, "t_comp": 25, "round": 4}]
    curve = proper_curve(SimpleNamespace(thetas=thetas, history=hist), inst)
    assert [(c["t_data"], c["t_comp"]) for c in curve] == [(0, 0), (4, 10), (8, 25)]
    assert set(curve[0]) == {"t_data", "t_comp", "regret"}
    for c, th in zip(curve, thetas):
        assert c["regret"] == pytest.approx(regret(inst.base.log_policy(th), inst), rel=1e-12, abs=1e-15)
    assert curve[0]["regret"] == pytest.approx(regret(inst.base.log_ref, inst), rel=1e-12)   # θ = 0 is π_ref
    assert curve[0]["regret"] > curve[1]["regret"] > 0 and curve[2]["regret"] != curve[1]["regret"]


def test_spanner_curve_weights_the_last_partial_batch_and_reports_component_regrets():
    """spanner_curve with T_exp = 10, exp_batch = 4 (batches of 4, 4, 2): the running average weights each
    component regret by its batch size; ``component_regret``, ``t_comp`` and ``t_data`` per point (kills the
    mutants of the sizes' min / subtraction / product, the cumsums, and the dict keys)."""
    inst = _tiny(noise=0.2)
    o = inst.oracles()
    cfg = SpannerSamplingConfig(coverage_bound=3.0, B=inst.B, nu=0.5, T_prompt=4, T_span=4, T_exp=10, M_rej=6,
                                exp_batch=4)
    out = SpannerSampling(cfg).run(o.weak, o.reward, o.prompts, torch.Generator().manual_seed(0))
    curve = spanner_curve(out, inst, 4)
    comps = [regret(out.policy.component(t), inst) for t in (0, 4, 8)]
    assert len(curve) == 3
    for c, r in zip(curve, comps):
        assert c["component_regret"] == pytest.approx(r, rel=1e-9)
    for k, (num, den) in enumerate([(4 * comps[0], 4), (4 * comps[0] + 4 * comps[1], 8),
                                    (4 * comps[0] + 4 * comps[1] + 2 * comps[2], 10)]):
        assert curve[k]["regret"] == pytest.approx(num / den, rel=1e-9)
    assert [(c["t_data"], c["t_comp"]) for c in curve] == [(h["t_data"], h["t_comp"]) for h in out.history]
    assert len({c["t_comp"] for c in curve}) == 3
    assert curve[-1]["regret"] == pytest.approx(out.policy.average_regret(inst), rel=1e-9)


def test_first_reach_at_equality_and_when_every_point_is_below():
    """first_reach: a regret equal to ε counts as reached (``<=``), every point below gives the first point
    uncensored, none below gives the last point censored, the input is not modified (kills the comparison,
    loop-bound and index mutants of first_reach)."""
    curve = [{"t": 0, "regret": 0.5}, {"t": 1, "regret": 0.1}, {"t": 2, "regret": 0.1}]
    assert first_reach(curve, 0.1) == {"t": 1, "regret": 0.1, "censored": False}
    assert first_reach(curve, 0.5) == {"t": 0, "regret": 0.5, "censored": False}
    assert first_reach(curve, 0.09) == {"t": 2, "regret": 0.1, "censored": True}
    assert first_reach([{"t": 7, "regret": 0.0}], 0.0) == {"t": 7, "regret": 0.0, "censored": False}
    assert first_reach([{"t": 7, "regret": 0.2}], 0.1) == {"t": 7, "regret": 0.2, "censored": True}
    assert "censored" not in curve[0] and "censored" not in curve[-1]


# ------------------------------------------------------------------------------------------------------------
# explore/linear_regression.py
# ------------------------------------------------------------------------------------------------------------

def test_project_l2_and_linf_against_closed_forms():
    """project: l2 scales rows outside the ball to norm B and keeps the others, row-wise on [..., d]; the zero
    vector stays zero (no 0/0); linf clamps each coordinate; the default set is l2."""
    th = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [-1.0, 2.0]], dtype=F64)
    got = project(th, 2.0)
    want = torch.tensor([[1.2, 1.6], [0.3, 0.4], [0.0, 0.0], [-2.0 / math.sqrt(5), 4.0 / math.sqrt(5)]],
                        dtype=F64)
    torch.testing.assert_close(got, want, rtol=1e-15, atol=1e-15)
    assert not got.isnan().any()
    torch.testing.assert_close(project(th[0], 2.0, "l2"), want[0], rtol=1e-15, atol=0)
    torch.testing.assert_close(project(th, 0.5, "linf"),
                               torch.tensor([[0.5, 0.5], [0.3, 0.4], [0.0, 0.0], [-0.5, 0.5]], dtype=F64))
    torch.testing.assert_close(project(torch.tensor([0.1, -0.2], dtype=F64), 0.5, "linf"),
                               torch.tensor([0.1, -0.2], dtype=F64))


def test_least_squares_state_sums_and_loss_against_python():
    """LeastSquaresState: G, h, s, n as plain-Python sums over two ``add`` calls (one with [n, 1, d] rows and
    float32 targets: reshaped and cast to float64), the loss Σ(⟨θ, φ⟩ − Δr)² for one θ and a batch of θ's."""
    phi1 = [[1.0, 2.0], [0.5, -1.0]]
    t1 = [0.5, 2.0]
    phi2 = [[-1.5, 0.25], [2.0, 0.0], [0.0, 3.0]]
    t2 = [1.0, -0.5, 0.25]
    ls = LeastSquaresState(2)
    ls.add(torch.tensor(phi1, dtype=F64), torch.tensor(t1, dtype=F64))
    ls.add(torch.tensor(phi2, dtype=F64)[:, None, :], torch.tensor(t2, dtype=torch.float32)[:, None])
    rows, tg = phi1 + phi2, t1 + t2
    G = [[sum(r[i] * r[j] for r in rows) for j in range(2)] for i in range(2)]
    h = [sum(r[i] * t for r, t in zip(rows, tg)) for i in range(2)]
    assert ls.G.dtype == F64 and ls.G.tolist() == G and ls.h.tolist() == h
    assert ls.s == sum(t * t for t in tg) and ls.n == 5
    for theta in ([0.75, -0.25], [0.0, 0.0], [-2.0, 1.5]):          # exact in float32
        want = sum((theta[0] * r[0] + theta[1] * r[1] - t) ** 2 for r, t in zip(rows, tg))
        assert float(ls.loss(torch.tensor(theta, dtype=torch.float32))) == pytest.approx(want, rel=1e-12)
    # float32 rows with float64 targets are cast to float64 before the products (kills add_6)
    f32 = torch.tensor([[0.1, 0.7], [0.3, -0.9]], dtype=torch.float32)
    ls32 = LeastSquaresState(2)
    ls32.add(f32, torch.tensor([0.2, 0.4], dtype=F64))
    r64 = f32.to(F64).tolist()
    want32 = [sum(r[i] * r[j] for r in r64) for i in range(2) for j in range(2)]
    assert ls32.G.dtype == F64 and ls32.G.reshape(-1).tolist() == pytest.approx(want32, rel=1e-15)
    batch = ls.loss(torch.tensor([[0.7, -0.3], [-2.0, 1.5]], dtype=F64))
    assert batch.shape == (2,)
    want = sum((-2.0 * r[0] + 1.5 * r[1] - t) ** 2 for r, t in zip(rows, tg))
    assert float(batch[1]) == pytest.approx(want, rel=1e-12)


def _kkt_l2(G, h, lam, B, th, tol):
    """θ minimises θᵀAθ − 2hᵀθ over ‖θ‖ ≤ B (A = G + λI ⪰ 0) iff h − Aθ = μθ with μ ≥ 0 and μ(B − ‖θ‖) = 0."""
    A = G + lam * torch.eye(G.shape[0], dtype=G.dtype)
    g = h - A @ th
    n = float(th.norm())
    assert n <= B * (1 + 1e-9)
    if n < B * (1 - 1e-6):
        assert float(g.abs().max()) <= tol
    else:
        mu = float(g @ th) / n ** 2
        assert mu >= -tol
        assert float((g - mu * th).abs().max()) <= tol


def test_constrained_least_squares_l2_interior_boundary_and_singular():
    """l2: the ridge solution when it lies inside the ball (also exactly at a 1e-12-relative distance from the
    boundary), the KKT point on the sphere when it does not, a singular G with λ = 0 (bisection path), h = 0
    (zero), and a brute-force check on a fine grid in d = 2 (kills the bisection, bracket, eigen-shift and
    early-return mutants of constrained_least_squares)."""
    g = torch.Generator().manual_seed(0)
    Phi = torch.randn(6, 3, generator=g, dtype=F64)
    G = Phi.T @ Phi
    h = Phi.T @ torch.randn(6, generator=g, dtype=F64) * 3
    ridge = torch.linalg.solve(G + 0.1 * torch.eye(3, dtype=F64), h)
    R = float(ridge.norm())
    # inside: exactly the ridge solution
    torch.testing.assert_close(constrained_least_squares(G, h, 0.1, 2 * R), ridge, rtol=1e-12, atol=1e-13)
    # outside: on the sphere, KKT
    for B in (0.5 * R, 0.05 * R, 0.999 * R):
        th = constrained_least_squares(G, h, 0.1, B)
        assert float(th.norm()) == pytest.approx(B, rel=1e-9)
        _kkt_l2(G, h, 0.1, B, th, 1e-8 * max(1.0, float(h.abs().max())))
    # rank-1 G and λ = 0: the minimum-norm direction is that of the eigenvector; the solution is on the sphere
    v = torch.tensor([1.0, 2.0, 2.0], dtype=F64) / 3
    G1 = torch.outer(v, v) * 4
    h1 = v * 5 + torch.tensor([0.3, 0.0, -0.15], dtype=F64)         # has a component outside range(G1)
    th = constrained_least_squares(G1, h1, 0.0, 1.0)
    assert float(th.norm()) == pytest.approx(1.0, rel=1e-9)
    _kkt_l2(G1, h1, 0.0, 1.0, th, 1e-8)
    # h = 0 with a singular G: θ = 0
    z = constrained_least_squares(G1, torch.zeros(3, dtype=F64), 0.0, 1.0)
    assert torch.equal(z, torch.zeros(3, dtype=F64))
    # d = 2 brute force over a polar grid of the disc (objective θᵀAθ − 2hᵀθ)
    G2 = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=F64)
    h2 = torch.tensor([3.0, -1.0], dtype=F64)
    th2 = constrained_least_squares(G2, h2, 0.0, 0.8)
    ang = torch.linspace(0, 2 * math.pi, 20001, dtype=F64)
    rad = torch.linspace(0, 0.8, 81, dtype=F64)
    pts = torch.cat([torch.stack([0.8 * ang.cos(), 0.8 * ang.sin()], -1),            # the circle, finely
                     torch.stack([rad[:, None] * ang[::100].cos(), rad[:, None] * ang[::100].sin()], -1)
                     .reshape(-1, 2)])                                                 # the disc, coarsely
    obj = torch.einsum("ni,ij,nj->n", pts, G2, pts) - 2 * pts @ h2
    best = pts[obj.argmin()]
    torch.testing.assert_close(th2, best, rtol=0, atol=5e-4)
    f = float(th2 @ G2 @ th2 - 2 * th2 @ h2)
    assert f <= float(obj.min()) + 1e-12


def test_constrained_least_squares_linf_kkt_and_zero_problem():
    """linf (FISTA): the KKT conditions of the box (free coordinates have zero gradient, clamped ones a
    gradient pointing out of the box), the unconstrained solution when it is inside, θ = 0 for G = 0, λ = 0
    (kills the step-size, momentum, stopping and projection mutants of the linf branch)."""
    g = torch.Generator().manual_seed(1)
    Phi = torch.randn(8, 4, generator=g, dtype=F64)
    G = Phi.T @ Phi
    h = Phi.T @ torch.randn(8, generator=g, dtype=F64) * 4
    A = G + 0.05 * torch.eye(4, dtype=F64)
    free = torch.linalg.solve(A, h)
    B = 0.5 * float(free.abs().max())
    th = constrained_least_squares(G, h, 0.05, B, "linf")
    grad = A @ th - h
    assert float(th.abs().max()) <= B + 1e-15
    at_top, at_bot = th >= B - 1e-9, th <= -B + 1e-9
    inside = ~(at_top | at_bot)
    assert bool(at_top.any() or at_bot.any())
    assert not inside.any() or float(grad[inside].abs().max()) <= 1e-7
    assert bool((grad[at_top] <= 1e-7).all()) and bool((grad[at_bot] >= -1e-7).all())
    # brute force: no feasible point of a random cloud in the box does better
    pts = (torch.rand(20000, 4, generator=g, dtype=F64) * 2 - 1) * B
    obj = torch.einsum("ni,ij,nj->n", pts, A, pts) - 2 * pts @ h
    assert float(th @ A @ th - 2 * th @ h) <= float(obj.min()) + 1e-9
    inner = constrained_least_squares(G, h, 0.05, 2 * float(free.abs().max()), "linf")
    torch.testing.assert_close(inner, free, rtol=1e-9, atol=1e-10)
    zero = constrained_least_squares(torch.zeros(2, 2, dtype=F64), torch.tensor([1.0, -1.0], dtype=F64), 0.0,
                                     1.0, "linf")
    assert torch.equal(zero, torch.zeros(2, dtype=F64))


def test_constrained_least_squares_exact_edge_cases():
    """Edge cases with exact answers: the ridge solution exactly on the sphere (G = I, λ = 0, h = e₁, B = 1)
    is returned as is, not re-solved by bisection (kills _45, _48, _51); G = 0 with c = (1, 0): the bisection
    gives h/(2·‖h‖) on the sphere of radius ½, not an early zero (kills _57); G = 0, h = 0 gives 0 (kills
    _58); the linf branch on a well-conditioned problem whose free solution is inside the box equals
    (G + λI)⁻¹h to 1e-12 with λ = 0.1, not its float32 value (kills _101, _104), and a small G
    (λ_max(A) = 0.2 < ½) is solved, not returned as 0 (kills _112)."""
    e1 = torch.tensor([1.0, 0.0], dtype=F64)
    assert torch.equal(constrained_least_squares(torch.eye(2, dtype=F64), e1, 0.0, 1.0), e1)
    zero2 = torch.zeros(2, 2, dtype=F64)
    th = constrained_least_squares(zero2, e1, 0.0, 0.5)
    torch.testing.assert_close(th, 0.5 * e1, rtol=1e-11, atol=1e-12)
    assert torch.equal(constrained_least_squares(zero2, torch.zeros(2, dtype=F64), 0.0, 1.0),
                       torch.zeros(2, dtype=F64))
    Q, _ = torch.linalg.qr(torch.tensor([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0], [1.5, 0.2, -0.7]], dtype=F64))
    G = Q @ torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=F64)) @ Q.T
    h = torch.tensor([0.3, -0.2, 0.45], dtype=F64)
    want = torch.linalg.solve(G + 0.1 * torch.eye(3, dtype=F64), h)
    got = constrained_least_squares(G, h, 0.1, 10.0 * float(want.abs().max()), "linf")
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    small = constrained_least_squares(0.2 * torch.eye(2, dtype=F64), torch.tensor([0.01, -0.02], dtype=F64),
                                      0.0, 1.0, "linf")
    torch.testing.assert_close(small, torch.tensor([0.05, -0.1], dtype=F64), rtol=1e-10, atol=1e-12)


def test_linf_branch_iterates_are_fista_written_out():
    """The linf branch is FISTA (Beck & Teboulle) with step 1/L, L = 2λ_max(G + λI), started at the box
    projection of the unconstrained minimiser: with ``tol=0`` (no early stop) its k-th iterate equals FISTA
    written out in plain Python, for k = 1..6 (kills the step-size, momentum, t-schedule and start-point
    mutants of the linf branch, which the converged answer cannot see: _108, _117 to _128, _148 to _162)."""
    G = [[2.0, 0.6, 0.0], [0.6, 1.0, 0.3], [0.0, 0.3, 0.5]]
    h = [1.5, 0.2, -0.1]
    lam, B = 0.1, 0.4
    A = [[G[i][j] + (lam if i == j else 0.0) for j in range(3)] for i in range(3)]
    At = torch.tensor(A, dtype=F64)
    L = 2.0 * float(torch.linalg.eigvalsh(At).max())
    free = torch.linalg.solve(At, torch.tensor(h, dtype=F64)).tolist()

    def clip(v):
        return [min(B, max(-B, vi)) for vi in v]

    x = clip(free)
    y, t = list(x), 1.0
    assert x != free                                    # the start is a real projection
    for k in range(1, 7):
        grad = [2.0 * sum(A[i][j] * y[j] for j in range(3)) - 2.0 * h[i] for i in range(3)]
        x_new = clip([y[i] - grad[i] / L for i in range(3)])
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        y = [x_new[i] + ((t - 1.0) / t_new) * (x_new[i] - x[i]) for i in range(3)]
        x, t = x_new, t_new
        got = constrained_least_squares(
            torch.tensor(G, dtype=F64), torch.tensor(h, dtype=F64), lam, B, "linf", iters=k, tol=0.0
        )
        assert got.tolist() == pytest.approx(x, rel=1e-12, abs=1e-14), k
        assert len({round(v, 6) for v in x}) == 3                  # not stuck at a corner of the box


def test_constrained_least_squares_errors_name_the_field():
    """theta_set, lam and B are validated with the field in the message (kills the argument-name mutants)."""
    G, h = torch.eye(2, dtype=F64), torch.ones(2, dtype=F64)
    with pytest.raises(ConfigError, match=r"^theta_set: must be one of \['l2', 'linf'\], got 'l1'$"):
        constrained_least_squares(G, h, 0.0, 1.0, "l1")
    with pytest.raises(ConfigError, match=r"^lam: must be >= 0, got -0.5$"):
        constrained_least_squares(G, h, -0.5, 1.0)
    with pytest.raises(ConfigError, match=r"^B: must be > 0, got 0.0$"):
        constrained_least_squares(G, h, 0.0, 0.0)
    # λ = 0 is allowed and B given as an int is fine
    torch.testing.assert_close(constrained_least_squares(G, h, 0, 10), h, rtol=1e-12, atol=1e-12)


def test_psd_solve_is_the_pseudo_inverse():
    """_psd_solve: A⁺h for a singular PSD A (eigenvalues ≤ 1e-12·λ_max dropped), equal to the pseudo-inverse
    computed independently by torch.linalg.pinv; the exact inverse for a non-singular A; the cut relative to
    λ_max and strict (kills _psd_solve_4, _5, _6, _9, _17, _18, _27)."""
    v = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]], dtype=F64)
    A = v.T @ v                                                      # rank 2
    h = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    pinv = torch.linalg.pinv(A, hermitian=True)
    torch.testing.assert_close(_psd_solve(A, h), pinv @ h, rtol=1e-10, atol=1e-12)
    A2 = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=F64)
    torch.testing.assert_close(_psd_solve(A2, h[:2]), torch.linalg.solve(A2, h[:2]), rtol=1e-12, atol=1e-14)
    # tiny eigenvalue relative to the largest (1e-13) is dropped; 1e-11 is kept
    Q = torch.tensor([[0.6, -0.8], [0.8, 0.6]], dtype=F64)
    for small, kept in ((1e-13, False), (1e-11, True)):
        Ad = Q @ torch.diag(torch.tensor([1.0, small], dtype=F64)) @ Q.T
        x = _psd_solve(Ad, Q[:, 1] * small)
        torch.testing.assert_close(x, Q[:, 1] if kept else torch.zeros(2, dtype=F64), rtol=0, atol=1e-4)
    # the cut is relative to λ_max (scales 100 and 0.01), and strict: exactly 1e-12·λ_max is dropped
    for scale in (100.0, 0.01):
        for small, kept in ((1e-13, False), (1e-11, True)):
            Ad = Q @ torch.diag(torch.tensor([scale, scale * small], dtype=F64)) @ Q.T
            x = _psd_solve(Ad, Q[:, 1] * small * scale)
            torch.testing.assert_close(x, Q[:, 1] if kept else torch.zeros(2, dtype=F64), rtol=0, atol=1e-3)
    assert 1e-12 * 100.0 == 1e-10
    diag = torch.diag(torch.tensor([100.0, 1e-10], dtype=F64))
    edge = _psd_solve(diag, torch.tensor([0.0, 1e-10], dtype=F64))
    assert torch.equal(edge, torch.zeros(2, dtype=F64))


def test_inverse_gram_against_direct_inverse():
    """InverseGram: Σ⁻¹ = (λI + Σφφᵀ)⁻¹ after each Sherman–Morrison update (against torch.linalg.inv of the
    explicit Gram), the returned u (‖v‖²_new = ‖v‖²_old − ⟨v, u⟩²), the count, the symmetric inverse, the
    [..., d] squared norms, and the two errors with their field."""
    lam = 0.5
    ig = InverseGram(3, lam)
    assert ig.lam == 0.5 and ig.count == 0
    torch.testing.assert_close(ig.inv, torch.eye(3, dtype=F64) * 2, rtol=0, atol=0)
    torch.testing.assert_close(ig.gram, torch.eye(3, dtype=F64) * 0.5, rtol=0, atol=0)
    rows = torch.tensor([[1.0, 0.5, -0.5], [0.2, -1.0, 0.3], [0.0, 0.4, 2.0]], dtype=F64)
    probe = torch.tensor([[0.3, -0.7, 1.1], [1.0, 1.0, 1.0]], dtype=F64)
    gram = lam * torch.eye(3, dtype=F64)
    for k, phi in enumerate(rows):
        old = ig.sq_norm(probe)
        u = ig.add(phi.to(torch.float32)[None, :])                   # [1, d] float32: reshaped and cast
        gram = gram + torch.outer(phi, phi)
        inv = torch.linalg.inv(gram)
        torch.testing.assert_close(ig.inv, inv, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(ig.gram, gram, rtol=0, atol=1e-7)
        assert torch.equal(ig.inv, ig.inv.T) and ig.count == k + 1
        torch.testing.assert_close(ig.sq_norm(probe), old - (probe.to(F64) @ u) ** 2, rtol=1e-10, atol=1e-12)
    p32 = probe.to(torch.float32)
    want = torch.tensor([float(p @ inv @ p) for p in probe], dtype=F64)
    torch.testing.assert_close(ig.sq_norm(p32), want, rtol=1e-5, atol=1e-6)
    assert ig.sq_norm(probe[None]).shape == (1, 2) and ig.sq_norm(probe[0]).shape == ()
    with pytest.raises(ConfigError, match=r"^phi: must have 3 entries, got 2$"):
        ig.add(torch.ones(2, dtype=F64))
    with pytest.raises(ConfigError, match=r"^lam: must be > 0, got 0.0$"):
        InverseGram(2, 0.0)


# ------------------------------------------------------------------------------------------------------------
# explore/proper.py
# ------------------------------------------------------------------------------------------------------------

def test_linear_softmax_policy_law_sampling_and_repr():
    """LinearSoftmaxPolicy: log_prob_table = π_θ ∝ π_ref·exp(⟨θ, ϕ⟩/β) by explicit normalisation; sample goes
    through the strong oracle with θ (and n, the generator) and is counted; the repr rounds θ to 4 places."""
    inst = _tiny()
    theta = torch.tensor([0.8, -0.4, 0.2], dtype=F64)
    pol = LinearSoftmaxPolicy(theta)
    logits = inst.base.log_ref + (inst.base.phi @ theta) / inst.beta
    torch.testing.assert_close(pol.log_prob_table(inst), logits - logits.logsumexp(-1, keepdim=True))
    o = inst.oracles()
    pol = LinearSoftmaxPolicy(theta, o.strong)
    x = torch.tensor([0, 1, 2, 2])
    s = pol.sample(x, 3, torch.Generator().manual_seed(5))
    ref = o.strong.sample(x, theta, 3, torch.Generator().manual_seed(5))
    assert torch.equal(s.responses, ref.responses) and s.responses.shape == (4, 3)
    assert o.ledger.t_comp == 24
    one = pol.sample(x, generator=torch.Generator().manual_seed(5))       # default n = 1
    assert one.responses.shape == (4, 1)
    assert repr(pol) == "LinearSoftmaxPolicy(θ=[0.8, -0.4, 0.2])"
    third = LinearSoftmaxPolicy(torch.tensor([1 / 3, -2 / 3]))
    assert repr(third) == "LinearSoftmaxPolicy(θ=[0.3333, -0.6667])"


def test_pairwise_rounds_loop_against_the_sequential_definition():
    """pairwise_rounds with T = 7, batch = 3 (batches of 3, 3, 1): fit once per batch, prompts drawn nb at a
    time, both rewards of the pair queried (y₁'s first), the record gets (x, s1, s2, r1, r2) with r_i the
    exact reward of y_i (noise-free instance), and the cumulative ledger per batch (kills the loop-bound, min,
    concatenation, reward-column and history-key mutants of pairwise_rounds)."""
    inst = _tiny(X=4, Y=5)
    o = inst.oracles()
    gen = torch.Generator().manual_seed(3)
    fits, recs = [], []

    def fit():
        th = torch.full((3,), 0.1 * len(fits), dtype=F64)
        fits.append(th)
        return th

    def sample_pair(xs, theta, g):
        assert g is gen and torch.equal(theta, fits[-1])
        return o.weak.sample(xs, 1, g), o.strong.sample(xs, theta, 1, g)

    def record(xs, s1, s2, r1, r2):
        recs.append((xs, s1.responses[:, 0], s2.responses[:, 0], r1, r2))

    thetas, hist = pairwise_rounds(fit, sample_pair, record, o.reward, o.prompts, 7, 3, gen,
                                   (o.weak, o.strong, o.reward, o.prompts))
    assert len(fits) == 3 and all(torch.equal(a, b) for a, b in zip(thetas, fits))
    assert [r[0].numel() for r in recs] == [3, 3, 1]
    table = inst.reward.table
    for xs, y1, y2, r1, r2 in recs:
        torch.testing.assert_close(r1, table[xs, y1], rtol=0, atol=0)
        torch.testing.assert_close(r2, table[xs, y2], rtol=0, atol=0)
    assert any(bool((r[3] != r[4]).any()) for r in recs)
    assert [h["round"] for h in hist] == [3, 6, 7]
    assert [h["prompts"] for h in hist] == [3, 6, 7]
    assert [h["t_data"] for h in hist] == [6, 12, 14]
    assert [h["t_comp"] for h in hist] == [6, 12, 14]
    assert set(hist[0]) == {"round", "t_data", "t_comp", "prompts"}
    # oracles that keep no ledger: the history counts are 0, not a made-up default (kills the ``tot.get``
    # default mutants, _61 to _84)
    fits.clear()
    _, bare = pairwise_rounds(fit, sample_pair, record, o.reward, o.prompts, 4, 3, gen, ())
    assert bare == [{"round": 3, "t_data": 0, "t_comp": 0, "prompts": 0},
                    {"round": 4, "t_data": 0, "t_comp": 0, "prompts": 0}]


# ------------------------------------------------------------------------------------------------------------
# explore/baselines.py
# ------------------------------------------------------------------------------------------------------------

def test_base_policy_samples_through_the_weak_oracle():
    """ReferencePolicy.sample = weak.sample(prompts, n, generator), counted; default n = 1; law = π_ref."""
    inst = _tiny()
    o = inst.oracles()
    pol = ReferencePolicy(o.weak)
    x = torch.tensor([0, 2])
    s = pol.sample(x, 4, torch.Generator().manual_seed(1))
    ref = inst.oracles().weak.sample(x, 4, torch.Generator().manual_seed(1))
    assert torch.equal(s.responses, ref.responses) and s.responses.shape == (2, 4) and o.ledger.t_comp == 8
    assert pol.sample(x, generator=torch.Generator().manual_seed(1)).responses.shape == (2, 1)
    assert torch.equal(ReferencePolicy().log_prob_table(inst), inst.base.log_ref)


def test_best_of_n_policy_law_by_enumeration_with_ties_and_sampling():
    """BestOfNPolicy: its law is best-of-n on r⋆ with uniform tie-breaking (enumeration of all n-tuples, n =
    3, on a reward table with ties); n is validated with its field; sampling serves num_samples responses per
    prompt at n weak draws and n rewards each (default num_samples = 1)."""
    inst = _tiny(X=2, Y=4)
    p = inst.base.log_ref.exp()
    r = torch.tensor([[1.0, 2.0, 2.0, 0.5], [0.0, 0.0, 1.0, 1.0]], dtype=F64)
    inst.reward.table.copy_(r)
    law = BestOfNPolicy(3).log_prob_table(inst).exp()
    brute = torch.zeros_like(p)
    for x in range(2):
        for a in range(4):
            for b in range(4):
                for c in range(4):
                    tup = (a, b, c)
                    m = max(float(r[x, y]) for y in tup)
                    best = [y for y in tup if float(r[x, y]) == m]
                    for y in best:
                        brute[x, y] += p[x, a] * p[x, b] * p[x, c] / len(best)
    torch.testing.assert_close(law, brute, rtol=1e-12, atol=1e-15)
    with pytest.raises(ConfigError, match=r"^n: must be >= 1, got 0$"):
        BestOfNPolicy(0)
    o = inst.oracles()
    pol = BestOfNPolicy(5, o.weak, o.reward)
    assert pol.n == 5 and pol.weak is o.weak and pol.reward is o.reward
    out = pol.sample(torch.tensor([0, 1, 1]), 2, torch.Generator().manual_seed(0))
    assert out.responses.shape == (3, 2) and o.ledger.t_comp == 30 and o.ledger.t_data == 30
    one = pol.sample(torch.tensor([0]), generator=torch.Generator().manual_seed(0))
    assert one.responses.shape == (1, 1) and o.ledger.t_comp == 35
    # the generator is passed on: the draws of best_of_n itself with the same seed; other seeds differ
    x = torch.arange(2).repeat(20)
    o2 = inst.oracles()
    ref = BestOfN(BestOfNConfig(n=5, num_samples=3)).run(o2.weak, o2.reward, x,
                                                         torch.Generator().manual_seed(7))
    got = pol.sample(x, 3, torch.Generator().manual_seed(7))
    assert torch.equal(got.responses, ref.responses)
    assert not torch.equal(pol.sample(x, 3, torch.Generator().manual_seed(8)).responses, ref.responses)
