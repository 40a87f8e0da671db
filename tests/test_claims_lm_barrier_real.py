"""Negative controls for every empirical claim of lm-barrier-real (experiments/lm_barrier_real.py).

Each claim is fed, through the same ``claims()`` the report uses, per-problem correct counts in which the
prediction holds, then the alternative's counterfactual counts (outcome PG lowering pass@1; outcome PG finding
the answers the base model never found, so pass@64 rises with pass@1; outcome rewards solving the
base-unsolved problems that process rewards miss): the verdict must flip to "does not hold". Also: a skipped
run (no model) gives n/a claims that carry the reason, and the verdict functions' undecided cases.
"""

import numpy as np
import pytest

from oraclerl.runtime.run.registry import EMPIRICAL, get_experiment

pytest.importorskip("transformers")  # the config check requires the [hf] extra

EXP = get_experiment("lm-barrier-real")
CFG = EXP.make_config("quick", {"model": "tiny"})
N = CFG.samples
BASE = [10, 20, 5, 30, 0, 0, 40, 12]  # correct samples out of 64 per held-out problem; problems 4-5 unsolved


def _ev(c):
    c = np.asarray(c)
    ks = [1, 2, 4, 8, 16, 32, 64]
    return {"correct": c.tolist(), "log_q": [-1.0] * len(c), "ks": ks, "lq": [0.01, 0.05, 0.2],
            "pass_at_k": [float(np.mean(c / N))] * (len(ks) - 1) + [float(np.mean(c >= 1))], "truncated": 0.0}


def _result(c0=BASE, out=None, proc=None):
    c0 = np.asarray(c0)
    out = np.minimum(c0 + np.where(c0 > 0, 6, 0), N) if out is None else np.asarray(out)
    proc = np.where(c0 == 0, 4, c0 + 3) if proc is None else np.asarray(proc)
    return {"model": "gemma-3-270m", "base": _ev(c0),
            "methods": {"outcome": {"eval": _ev(out)}, "process": {"eval": _ev(proc)}}}


def _verdicts(results):
    cs = EXP.claims(results, CFG)
    assert all(c.kind == EMPIRICAL for c in cs)
    return {c.claim.split(" (")[0].split(":")[0]: c.verdict for c in cs}


GAIN = "Outcome-reward PG on the real LM raises held-out pass@1"
BARRIER = "Outcome-reward PG moves pass@1 but not pass@k at large k"
PRM = "Process rewards do better than outcome rewards on problems whose base pass@64 is 0"
REPORTED = "Base model"


def test_prediction_holds_on_the_predicted_counts():
    v = _verdicts([_result()])
    assert v[GAIN] == v[BARRIER] == v[PRM] == "holds" and v[REPORTED] == "n/a"


def test_gain_flips_when_outcome_pg_lowers_pass1():
    c0 = np.asarray(BASE)
    assert _verdicts([_result(out=np.maximum(c0 - 6, 0))])[GAIN] == "does not hold"


def test_barrier_flips_when_outcome_pg_finds_new_answers():
    c0 = np.asarray([10, 0, 5, 0, 0, 0, 40, 0])
    # every unsolved problem becomes solved: pass@64 rises more than pass@1
    out = np.where(c0 == 0, 8, c0 + 6)
    v = _verdicts([_result(c0=c0, out=out)])
    assert v[GAIN] == "holds" and v[BARRIER] == "does not hold"
    mixed = np.where(c0 == 0, np.array([8, 0, 0, 0, 0, 0, 0, 0])[np.cumsum(c0 == 0) - 1], c0 + 6)
    assert _verdicts([_result(c0=c0, out=mixed)])[BARRIER] == "not informative at this scale"  # one of five


def test_barrier_is_not_tested_without_a_pass1_gain():
    v = _verdicts([_result(out=BASE)])
    assert v[GAIN] == "not informative at this scale" and v[BARRIER] == "not informative at this scale"


def test_barrier_is_not_informative_at_the_pass64_ceiling():
    c0 = np.asarray(BASE) + 1  # every problem solved by the base model: pass@64 cannot rise
    assert _verdicts([_result(c0=c0, out=np.minimum(c0 + 6, N))])[BARRIER] == "not informative at this scale"


def test_process_claim_flips_when_outcome_solves_the_unsolved_instead():
    c0 = np.asarray(BASE)
    out = np.where(c0 == 0, 5, np.minimum(c0 + 6, N))
    proc = np.where(c0 == 0, 0, c0 + 3)
    assert _verdicts([_result(out=out, proc=proc)])[PRM] == "does not hold"


def test_process_claim_undecided_cases():
    c0 = np.asarray(BASE)
    tie = np.where(c0 == 0, 0, c0)
    assert _verdicts([_result(out=tie, proc=tie)])[PRM] == "not informative at this scale"
    assert _verdicts([_result(c0=c0 + 1)])[PRM] == "n/a"  # no problem with base pass@64 = 0


def test_skipped_runs_give_na_claims_with_the_reason():
    cs = EXP.claims([{"skipped": "no model in models/gemma-3-270m (run `make real-model`)"}], CFG)
    assert len(cs) == 4 and all(c.verdict == "n/a" and "make real-model" in c.measured for c in cs)
