"""The Mousavi-Hosseini & Erdogdu experiments: qualitative claims on a short run, determinism, config
errors."""

import json

import pytest

from oraclerl.errors import ConfigError
from oraclerl.runtime.run.registry import get_experiment
from oraclerl.runtime.run.runner import RunContext


def _runs(name, seeds, scale="toy", **over):
    exp = get_experiment(name)
    cfg = exp.make_config(scale, {k: str(v) for k, v in over.items()})
    return exp, cfg, [exp.run(cfg, RunContext(seed=s)) for s in seeds]


@pytest.mark.slow
def test_pg_figure1_short_run_reproduces_the_qualitative_claims():
    """3 seeds of the quick instance (d = k = 32, N = 128, 300 PG steps × 512): ORM plateaus above PRM, ORM
    does not lift the off-support centres, ORM sharpens inside the support."""
    exp, cfg, res = _runs("pg-figure1", range(3), "quick", test_size=512)
    verdict = {c.claim.split(":")[0][:40]: c.holds for c in exp.claims(res, cfg)}
    assert verdict[[k for k in verdict if k.startswith("ORM's test error plateaus")][0]] is True
    assert verdict[[k for k in verdict if k.startswith("ORM does not lift")][0]] is True
    assert verdict[[k for k in verdict if k.startswith("ORM sharpens")][0]] is True
    for r in res:
        assert r["runs"]["outcome"]["ledger"]["t_data"] == cfg.pg_steps * cfg.pg_batch
        assert r["runs"]["process"]["ledger"]["t_data"] == cfg.pg_steps * cfg.pg_batch * cfg.N
        assert (
            r["runs"]["process"]["ledger"]["prompts"]
            == r["runs"]["process"]["ledger"]["t_comp"]
            == cfg.pg_steps * cfg.pg_batch
        )
        assert r["pretrain_ledger"]["prompts"] == cfg.pretrain_steps * cfg.pretrain_batch
    json.dumps(res)


def test_pg_figure1_same_seed_identical_and_different_seed_differs():
    _, _, (a, b) = _runs("pg-figure1", [0, 0])
    _, _, (c,) = _runs("pg-figure1", [1])
    assert a == b and a != c


def test_pg_figure1_authors_instance_is_deterministic_and_not_the_default():
    _, _, (a, b, c) = _runs("pg-figure1", [0, 0, 1], instance="authors", device="cpu")
    _, _, (o,) = _runs("pg-figure1", [0], device="cpu")
    assert a == b and a != c and a["base"] != o["base"]


@pytest.mark.slow
def test_pg_figure1_authors_instance_seed0_matches_their_code():
    """instance=authors, seed 0, the paper's pre-training (1000 steps × 256, Adagrad 0.1): the authors'
    code (GitHub mousavih/rlvr-base-model-barrier, CPU) gives base test error 0.4596 and exactly one centre
    below 1e-12 (centre 8 at 3.3e-13; our re-run of their code: 0.459630 and 3.29508e-13). Catches a change
    of the call order (W⋆ before the test set before pre-training, one stream), W⋆ drawn in float64, the
    rounding order of the contexts, or a pre-training that draws anything else from the stream. About 8 s
    of CPU."""
    _, _, (r,) = _runs(
        "pg-figure1",
        [0],
        "quick",
        instance="authors",
        pretrain_steps=1000,
        pretrain_batch=256,
        pg_steps=1,
        pg_batch=8,
        test_every=1,
        device="cpu",
    )
    assert abs(r["base"]["test_error"] - 0.45963) < 5e-5
    assert r["off_support"] == [8] and not r["off_support_fallback"]
    assert 10 ** r["base"]["centre_log10"][8] == pytest.approx(3.295e-13, rel=2e-3)


def test_lq_pretraining_claims_and_determinism():
    exp, cfg, res = _runs("lq-pretraining", [0, 0])
    assert res[0] == res[1]
    cl = exp.claims(res[:1], cfg)
    # exact uniform LQ; Markov / Q^TL ≥ Q identities
    assert cl[0].holds is True and cl[1].holds is True
    cps = res[0]["checkpoints"]
    assert [c["step"] for c in cps] == [0, 20, 40, 60]
    assert cps[-1]["lq_log10"][-3] > cps[0]["lq_log10"][-3]      # the median LQ rises with pre-training


def test_pg_theory_runs_and_counts():
    exp, cfg, res = _runs("pg-theory", [0])
    r = res[0]
    assert all(not x["censored"] for x in r["alpha_rows"] + r["eps_rows"])
    assert r["alpha_rows"][1]["queries"] > r["alpha_rows"][0]["queries"]     # smaller α costs more queries
    assert r["eps_rows"][1]["iters"] > r["eps_rows"][0]["iters"]             # smaller ε needs more iterations
    assert len(exp.claims(res, cfg)) == 3


def test_bad_config_names_the_field():
    with pytest.raises(ConfigError, match="pg_batch"):
        get_experiment("pg-figure1").make_config("quick", {"pg_batch": "0"})
    with pytest.raises(ConfigError, match="threshold"):
        get_experiment("pg-figure1").make_config("quick", {"threshold": "2"})
    with pytest.raises(ConfigError, match="instance"):
        get_experiment("pg-figure1").make_config("quick", {"instance": "paper"})
    with pytest.raises(ConfigError, match="alphas"):
        get_experiment("pg-theory").make_config("quick", {"alphas": "0.5,0"})
