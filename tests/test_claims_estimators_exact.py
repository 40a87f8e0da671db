"""estimators-exact: the claims hold at a small scale, every claim states its kind, and every empirical verdict
comes out "does not hold" on a wrong variant's or the alternative's numbers (negative controls)."""

import ast
import json
import math
from pathlib import Path

import pytest

from oraclerl.experiments import estimators_exact as ee
from oraclerl.runtime import get_experiment, run_one
from oraclerl.runtime.run.registry import IDENTITY

SMALL = {"kl_responses": "20", "kl_prompts": "4", "kl_scales": "0.05,0.1,0.7,1.5,3.0", "kl_mc_samples": "8000",
         "ar_scales": "0.5,1.0", "lm_batch": "256", "lm_steps": "12", "adv_responses": "4",
         "group_sizes": "2,3,4", "gain_sizes": "2,8,16"}


@pytest.fixture(scope="module")
def run():
    exp = get_experiment("estimators-exact")
    cfg = exp.make_config("quick", SMALL)
    result, _ = run_one(exp, cfg, 0)
    json.dumps(result)
    return exp, cfg, result


def test_all_claims_hold_and_state_their_kind(run, tmp_path):
    exp, cfg, result = run
    claims = exp.claims([result], cfg)
    bad = [c.claim for c in claims if c.verdict != "holds"]
    assert not bad, bad
    assert sum(c.kind == IDENTITY for c in claims) == 6
    tree = ast.parse(Path(ee.__file__).read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Claim"]
    assert calls and all(any(k.arg == "kind" for k in n.keywords) for n in calls)
    assert (Path(ee.__file__).parents[3] / "docs" / "experiments" / "estimators-exact.md").exists()
    figs = exp.plot([result], cfg, tmp_path)
    assert len(figs) == 3 and all(f.stat().st_size > 1000 for f in figs)


def test_negative_controls(run):
    _, cfg, result = run
    vals = result["values"]["rows"]
    assert ee.k2_bias_verdict(vals) and not ee.k2_bias_verdict(vals, "k1") and not ee.k2_bias_verdict(vals, "k3")
    assert ee.k3_sd_verdict(vals) and not ee.k3_sd_verdict(vals, "k1")
    mc, M = result["values"]["mc"], result["values"]["mc_samples"]
    se = [math.sqrt(v / M) for v in mc["k2"]["var"]]
    assert ee.z_max(mc["k2"]["mean"], mc["k2"]["exact"], se) <= ee.Z_MAX
    assert ee.z_max(mc["k2"]["mean"], mc["kl_qp"], se) > ee.Z_MAX            # k2 is biased for the true KL
    rows = result["placements"]["rows"]
    assert ee.follows_neither(rows, "loss/token/k3") and not ee.follows_neither(rows, "loss/sequence/k3")
    lm = result["placements"]["lm"]
    assert ee.z_max(lm["mc_mean"], lm["exact"], lm["mc_se"]) <= ee.Z_MAX
    for alt in ("alt_kl_qp", "alt_kl_pq"):                                    # what one might expect it to follow
        assert ee.z_max(lm["mc_mean"], lm[alt], lm["mc_se"]) > ee.Z_MAX
    a = result["advantages"]
    assert ee.grpo_weight_verdict(a["gains"]["group_normalised"], a["grid"], cfg.gain_sizes)
    assert not ee.grpo_weight_verdict(a["gains"]["leave_one_out"], a["grid"], cfg.gain_sizes)
    assert not ee.grpo_weight_verdict(a["gains"]["dr_grpo"], a["grid"], cfg.gain_sizes)
    assert ee.variance_verdict(a["rows"]) and not ee.variance_verdict(a["rows"], "none", "leave_one_out")
    # identity verdicts reject a wrong pairing: GRPO's and per-token k3's errors are far above the tolerance
    assert not ee.identity_holds([r["bias"] for r in a["rows"] if r["estimator"] == "group_normalised"])
    assert not ee.identity_holds([r["bias_pq"] for r in rows if r["variant"] == "loss/token/k3"])
    assert not ee.identity_holds([]) and not ee.identity_holds([float("nan")])


def test_oversized_enumeration_is_refused_before_work(capsys, tmp_path):
    from oraclerl.cli import main

    for bad, field in (("prm_group=5", "prm_group"), ("group_sizes=2,9", "group_sizes")):
        rc = main(["run", "estimators-exact", f"--set={bad}", "--dry-run", "--out", str(tmp_path / "runs")])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.startswith(f"oraclerl: error: {field}: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()
