"""estimators-exact: the claims hold at the toy scale, every claim states its kind, and every empirical
verdict comes out "does not hold" on a wrong variant's or the alternative's numbers (negative controls)."""

import ast
import copy
import inspect
import json
from pathlib import Path

import pytest

from oraclerl.runtime import get_experiment, run_one
from oraclerl.runtime.run.registry import IDENTITY


@pytest.fixture(scope="module")
def run():
    exp = get_experiment("estimators-exact")
    cfg = exp.make_config("toy")
    result, _ = run_one(exp, cfg, 0)
    json.dumps(result)
    return exp, cfg, result


def test_all_claims_hold_and_state_their_kind(run, tmp_path):
    exp, cfg, result = run
    claims = exp.claims([result], cfg)
    bad = [c.claim for c in claims if c.verdict != "holds"]
    assert not bad, bad
    assert sum(c.kind == IDENTITY for c in claims) == 6
    analysis = Path(inspect.getsourcefile(exp.claims))
    tree = ast.parse(analysis.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Claim"]
    assert calls and all(any(k.arg == "kind" for k in n.keywords) for n in calls)
    assert (analysis.parents[4] / "docs" / "experiments" / "estimators-exact.md").exists()
    figs = exp.plot([result], cfg, tmp_path)
    assert len(figs) == 3 and all(f.stat().st_size > 1000 for f in figs)


def holds(run, start, mutate):
    """The verdict of the claim starting with ``start`` once ``mutate`` has changed a copy of the result."""
    exp, cfg, result = run
    res = copy.deepcopy(result)
    mutate(res)
    (c,) = [c for c in exp.claims([res], cfg) if c.claim.startswith(start)]
    return c.holds


def _rows(res, variant):
    return {r["scale"]: r for r in res["placements"]["rows"] if r["variant"] == variant}


def _advantage_rows(res, estimator):
    return {r["n"]: r for r in res["advantages"]["rows"] if r["estimator"] == estimator}


def test_negative_controls(run):
    def copy_key(dst, src):                       # the values rows: ``dst`` takes ``src``'s numbers
        def mutate(res):
            for r in res["values"]["rows"]:
                r[dst] = r[src]
        return mutate

    # k2's bias: k1's or k3's numbers (unbiased for KL(q‖p)) fail the "large for large divergences"
    # window
    assert holds(run, "k2's bias", copy_key("k2/bias", "k1/bias")) is False
    assert holds(run, "k2's bias", copy_key("k2/bias", "k3/bias")) is False
    assert holds(run, "k3 has far lower variance", copy_key("k3/sd", "k1/sd")) is False

    def k2_against_true_kl(res):        # k2 is biased for the true KL: its samples miss it by ≫ 4.5σ
        mc = res["values"]["mc"]
        mc["k2"]["exact"] = mc["kl_qp"]

    assert holds(run, "Monte Carlo through the weak sampler", k2_against_true_kl) is False

    def per_token_like_sequence(res):             # loss/sequence/k3 follows ∇KL(p‖q) exactly
        seq = _rows(res, "loss/sequence/k3")
        for s, r in _rows(res, "loss/token/k3").items():
            r["bias_qp"], r["bias_pq"] = seq[s]["bias_qp"], seq[s]["bias_pq"]

    assert holds(run, "Per-token k2 and k3", per_token_like_sequence) is False

    for alt in ("alt_kl_qp", "alt_kl_pq"):        # what one might expect the LM step to follow
        def lm_follows(res, alt=alt):
            lm = res["placements"]["lm"]
            lm["exact"] = lm[alt]

        assert holds(run, "LMPolicyGradient.step", lm_follows) is False

    for flat in ("leave_one_out", "dr_grpo"):     # flat per-prompt weights
        def grpo_like(res, flat=flat):
            gains = res["advantages"]["gains"]
            gains["group_normalised"] = gains[flat]

        assert holds(run, "GRPO's std division", grpo_like) is False

    def swapped(res):
        rloo, reinforce = _advantage_rows(res, "leave_one_out"), _advantage_rows(res, "none")
        for n in rloo:
            rloo[n]["var"], reinforce[n]["var"] = reinforce[n]["var"], rloo[n]["var"]

    assert holds(run, "RLOO's variance", swapped) is False

    # identity verdicts reject a wrong pairing: GRPO's and per-token k3's errors are far above the tolerance
    def reinforce_is_grpo(res):
        grpo = _advantage_rows(res, "group_normalised")
        for n, r in _advantage_rows(res, "none").items():
            r["bias"] = grpo[n]["bias"]

    def sequence_is_per_token(res):
        tok = _rows(res, "loss/token/k3")
        for s, r in _rows(res, "loss/sequence/k3").items():
            r["bias_pq"] = tok[s]["bias_pq"]

    def nan_error(res):
        res["values"]["rows"][0]["k2_identity_err"] = float("nan")

    assert holds(run, "REINFORCE and RLOO are unbiased", reinforce_is_grpo) is False
    assert holds(run, "Exact KL-gradient identities", sequence_is_per_token) is False
    assert holds(run, "E k2 = ½(Var k1", nan_error) is False


def test_oversized_enumeration_is_refused_before_work(capsys, tmp_path):
    from oraclerl.cli import main

    for bad, field in (("prm_group=5", "prm_group"), ("group_sizes=2,9", "group_sizes")):
        rc = main(["run", "estimators-exact", f"--set={bad}", "--dry-run", "--out", str(tmp_path / "runs")])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.startswith(f"oraclerl: error: {field}: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()
