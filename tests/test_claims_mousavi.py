"""Negative controls for the empirical claims of lq-pretraining, pg-theory and transformer-barrier.

Counterfactual measurements (the paper's prediction, then its alternative: a base model that learned nothing,
ORM costing what PRM costs, a policy that learns off-support contexts under outcome rewards) are fed to each
experiment's own verdict code; the prediction must hold and the alternative must not. pg-figure1's controls
are with that experiment. docs/experiments/NAME.md says why each window is what it is.
"""

from __future__ import annotations

import math

import pytest

from oraclerl.runtime.run.registry import get_experiment

EPS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]


def verdicts(name, results, cfg=None):
    exp = get_experiment(name)
    return [c for c in exp.claims(results, cfg or exp.make_config("quick"))]


def _lq_results(median_end, low_end, floor=-100.0):
    out = []
    for _s in range(2):
        cps = []
        for t, frac in ((0, 0.0), (750, 0.5), (1500, 1.0)):
            med = floor + frac * (median_end - floor)
            low = floor + frac * (low_end - floor)
            lq = [low if e <= 0.01 else med for e in EPS]
            cps.append({"step": t, "lq_log10": lq if t else [floor] * len(EPS),
                        "tl_lq_log10": [-1.0] * len(EPS), "alpha_tail": [0.0, 0.1], "test_error": 0.5})
        out.append({"floor_log10": floor, "checkpoints": cps})
    return out


def test_lq_pretraining_controls():
    cfg = get_experiment("lq-pretraining").make_config("quick", {"N": "100", "k": "10"})
    good = verdicts("lq-pretraining", _lq_results(-5.0, -40.0), cfg)
    assert [(c.kind, c.verdict) for c in good] == [("identity", "holds")] * 2 + [("empirical", "holds")]
    # pre-training stalled
    assert verdicts("lq-pretraining", _lq_results(-90.0, -95.0), cfg)[2].holds is False
    # no low-likelihood tail
    assert verdicts("lq-pretraining", _lq_results(-5.0, -5.5), cfg)[2].holds is False
    bad = _lq_results(-5.0, -40.0)
    # Q(ε) ≠ k^{-N} at w = 0
    bad[0]["checkpoints"][0]["lq_log10"][3] = -99.0
    bad[0]["checkpoints"][1]["alpha_tail"] = [0.6]                                       # above E q = 0.5
    assert [c.holds for c in verdicts("lq-pretraining", bad, cfg)][:2] == [False, False]


def _pg_results(alpha_rate, eps_rate, orm_rate, prm_degree):
    out = []
    for s in range(2):
        j = 1.0 + 0.02 * s
        alphas, epss = [0.3, 0.1, 0.03, 0.01], [0.1, 0.03, 0.01, 0.003, 0.001]
        out.append(
            {
                "gamma": 1.0,
                "alpha_rows": [
                    {"alpha": a, "queries": 50 * j * (1 / a) ** alpha_rate, "censored": False} for a in alphas
                ],
                "eps_rows": [
                    {"eps": e, "iters": 20 * j * (1 / e) ** eps_rate, "censored": False} for e in epss
                ],
                "offsupport_rows": [
                    {
                        "N": n,
                        "outcome": {"queries": 30 * j * math.exp(orm_rate * n), "censored": False},
                        "process": {"queries": 12 * j * n**prm_degree, "censored": False},
                    }
                    for n in (1, 2, 3, 4, 5)
                ],
            }
        )
    return out


def test_pg_theory_controls():
    k = get_experiment("pg-theory").make_config("quick").k_offsupport
    good = verdicts("pg-theory", _pg_results(1.0, 1.0, math.log(k), 1.0))
    assert [(c.kind, c.verdict) for c in good] == [("empirical", "holds")] * 3
    # queries flat in α and in 1/ε (no exploration cost), ORM no costlier than PRM (no barrier)
    bad = verdicts("pg-theory", _pg_results(0.0, 0.2, 0.2, 1.0))
    assert [c.verdict for c in bad] == ["does not hold"] * 3
    # ORM growing only like PRM's own N·k (polynomial) must not pass as exponential
    same = _pg_results(1.0, 1.0, 0.0, 1.0)
    for r in same:
        for row in r["offsupport_rows"]:
            row["outcome"]["queries"] = row["process"]["queries"]
    assert verdicts("pg-theory", same)[2].holds is False
    # ORM polynomial of degree 2 (its ln-rate over all N ∈ 1..5 is ≈ 0.79 ≥ 0.7·ln 3, so an all-N fit would
    # pass it)
    quad = _pg_results(1.0, 1.0, 0.0, 1.0)
    for r in quad:
        for row in r["offsupport_rows"]:
            row["outcome"]["queries"] = 30 * row["N"] ** 2
    assert verdicts("pg-theory", quad)[2].holds is False


def _barrier_results(rare_q0, orm_deep_final, prm_deep_final, prm_error, orm_error):
    out = []
    C = 8
    for _s in range(2):
        # contexts 0-3 common (q0 = 0.5), 4-7 rare with q0 = rare_q0; tokens ≥ 1/|V| on the rare ones
        q0 = [0.5] * 4 + [rare_q0] * 4
        final = {"outcome": [0.95] * 4 + [orm_deep_final] * 4, "process": [0.95] * 4 + [prm_deep_final] * 4}
        err = {"outcome": orm_error, "process": prm_error}
        out.append({"num_contexts": C, "num_actions": 4, "queries_per_context": 100.0, "base_likelihood": q0,
                    "base_token_min": [0.5] * C, "rare": [False] * 4 + [True] * 4,
                    "methods": {m: {"history": [{"test_error": 0.6, "likelihood": q0},
                                                {"test_error": err[m], "likelihood": final[m]}]}
                                for m in ("outcome", "process")}})
    return out


def test_transformer_barrier_controls():
    pytest.importorskip("transformers")
    good = verdicts("transformer-barrier", _barrier_results(1e-6, 1e-6, 0.9, 0.1, 0.4))
    assert [(c.kind, c.verdict) for c in good] == [("empirical", "holds")] * 4
    # rare contexts well covered by the base model, ORM lifting them anyway, PRM not, PRM no better than ORM
    bad = verdicts("transformer-barrier", _barrier_results(0.5, 0.9, 1e-6, 0.4, 0.1))
    assert [c.verdict for c in bad] == ["does not hold"] + ["n/a"] * 2 + ["does not hold"]
    bad = verdicts("transformer-barrier", _barrier_results(1e-6, 0.9, 1e-6, 0.4, 0.1))
    assert [c.verdict for c in bad] == ["holds"] + ["does not hold"] * 3
