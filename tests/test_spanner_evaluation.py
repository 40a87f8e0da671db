"""Evaluation helpers (regret curves, first-reach), the baselines, and the registered experiments at toy
scale."""

import json

import pytest
import torch

from oraclerl.diagnostics import regret
from oraclerl.errors import ConfigError
from oraclerl.explore.baselines import BestOfNPolicy, ReferencePolicy
from oraclerl.explore.evaluation import first_reach, spanner_curve
from oraclerl.explore.spanner_sampling import SpannerSampling, SpannerSamplingConfig
from oraclerl.problems import linear_softmax, needle_instance
from oraclerl.runtime.run.registry import get_experiment
from oraclerl.runtime.run.runner import RunContext

torch.set_num_threads(1)


def test_first_reach_semantics():
    curve = [{"t_data": t, "regret": r} for t, r in [(0, 1.0), (10, 0.01), (20, 0.5), (30, 0.02), (40, 0.01)]]
    assert first_reach(curve, 0.05) == {"t_data": 30, "regret": 0.02, "censored": False}   # reach *and stay*
    assert first_reach(curve, 0.001)["censored"] and first_reach(curve, 0.001)["t_data"] == 40
    assert first_reach(curve, 2.0)["t_data"] == 0


def test_spanner_curve_is_prefix_average_of_component_regrets():
    inst = linear_softmax(
        d=3, num_prompts=4, num_responses=16, beta=0.5, target_coverage=4.0, noise=0.3, seed=0
    )
    o = inst.oracles()
    cfg = SpannerSamplingConfig(
        coverage_bound=4.0, B=inst.B, nu=0.5, T_prompt=16, T_span=16, T_exp=20, M_rej=16, exp_batch=8
    )
    out = SpannerSampling(cfg).run(o.weak, o.reward, o.prompts, torch.Generator().manual_seed(0))
    curve = spanner_curve(out, inst, 8)
    comps = [regret(out.policy.component(t), inst) for t in range(20)]    # one by one, 20 rounds
    for k, ends in enumerate((8, 16, 20)):
        assert curve[k]["regret"] == pytest.approx(sum(comps[:ends]) / ends, rel=1e-9)
    assert curve[-1]["regret"] == pytest.approx(out.policy.average_regret(inst), rel=1e-9)
    assert curve[-1]["t_data"] == out.ledger["t_data"]


def test_baselines_exact_laws_and_oracle_use():
    inst = linear_softmax(d=3, num_prompts=2, num_responses=5, beta=0.5, target_coverage=3.0, seed=1)
    o = inst.oracles()
    torch.testing.assert_close(ReferencePolicy(o.weak).log_prob_table(inst), inst.base.log_ref)
    # best-of-n law by enumeration of all n-tuples (n = 2, rewards distinct)
    p, r = inst.base.log_ref.exp(), inst.reward.table
    law = BestOfNPolicy(2).log_prob_table(inst).exp()
    brute = torch.zeros_like(p)
    for x in range(2):
        for a in range(5):
            for b in range(5):
                brute[x, a if r[x, a] >= r[x, b] else b] += p[x, a] * p[x, b]
    torch.testing.assert_close(law, brute)
    assert regret(BestOfNPolicy(1), inst) == pytest.approx(regret(inst.base.log_ref, inst))
    out = BestOfNPolicy(4, o.weak, o.reward).sample(torch.tensor([0, 1]), 3, torch.Generator().manual_seed(0))
    assert out.responses.shape == (2, 3) and o.ledger.t_data == 24 and o.ledger.t_comp == 24


def test_needle_instance_hits_coverage():
    from oraclerl.diagnostics import coverage_coefficient

    for c in (4.0, 64.0):
        inst = needle_instance(coverage=c, seed=2)
        assert coverage_coefficient(inst) == pytest.approx(c, rel=1e-9)
        torch.testing.assert_close(inst.optimal_log_policy(), inst.base.log_policy(inst.theta_star))
    with pytest.raises(ConfigError, match="gap"):
        needle_instance(coverage=1e6, gap=1.0)


KINDS = {
    "spanner-coverage": ["empirical"] * 5,
    "spanner-rates": ["empirical"] * 3,
    "dnf-proper": ["empirical", "empirical", "identity", "empirical"],
    "coverage-token-vs-sequence": ["identity", "identity", "empirical"],
    "mtss-vs-spanner": ["empirical"] * 4,
}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_experiments_run_at_toy_scale(name, tmp_path):
    exp = get_experiment(name)
    cfg = exp.make_config("toy")
    results = [exp.run(cfg, RunContext(seed=s)) for s in (0, 1)]
    json.dumps(results)                                    # plain data
    claims = exp.claims(results, cfg)
    kinds = KINDS[name]
    assert [c.kind for c in claims] == kinds
    # exact at any scale (e.g. Lemma H.2)
    assert all(c.holds is True for c in claims if c.kind == "identity")
    again = exp.run(cfg, RunContext(seed=0))
    # same seed, same result
    assert json.dumps(again, sort_keys=True) == json.dumps(results[0], sort_keys=True)
    paths = exp.plot(results, cfg, tmp_path)
    assert all(p.exists() for p in paths)
