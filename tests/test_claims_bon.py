"""Negative controls for the best-of-n experiments' claims (bon-kl, bon-winrate, bon-asymptotics).

A toy-scale run gives the measurements; each empirical claim must hold on them and must not hold once the
measurements are replaced by the alternative's (the formula's unbounded KL instead of saturation, a biased
Monte Carlo estimate, a policy off the optimal frontier); each identity check must not hold on a planted
violation. docs/experiments/NAME.md says why each window is what it is.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from oraclerl.runtime.run.registry import get_experiment
from oraclerl.runtime.run.runner import RunContext

torch.set_num_threads(1)

NAMES = ("bon-kl", "bon-winrate", "bon-asymptotics")


@pytest.fixture(scope="module")
def toy():
    out = {}
    for name in NAMES:
        exp = get_experiment(name)
        cfg = exp.make_config("toy")
        out[name] = (exp, cfg, [exp.run(cfg, RunContext(seed=s)) for s in (0, 1)])
    return out


def verdicts(toy, name, mutate=None):
    exp, cfg, results = toy[name]
    results = copy.deepcopy(results)
    if mutate:
        mutate(results)
    return {c.claim: c for c in exp.claims(results, cfg)}


def pick(claims, start):
    (c,) = [c for k, c in claims.items() if k.startswith(start)]
    return c


@pytest.mark.parametrize("name", sorted(NAMES))
def test_toy_run_claims_hold_and_say_their_kind(toy, name):
    claims = verdicts(toy, name)
    assert all(c.kind in ("identity", "empirical") for c in claims.values())
    assert all(c.verdict in ("holds", "n/a") for c in claims.values()), {
        k: c.measured for k, c in claims.items() if c.verdict not in ("holds", "n/a")
    }
    assert all(c.holds is True for c in claims.values() if c.kind == "identity")


@pytest.mark.parametrize("name", sorted(NAMES))
def test_toy_run_is_plain_json_and_plots(toy, name, tmp_path):
    exp, cfg, results = toy[name]
    json.dumps(results)  # plain data, serialisable as the run store needs it
    figures = exp.plot(results, cfg, tmp_path)
    assert figures and all(f.exists() and f.stat().st_size > 1000 for f in figures)


def test_bon_kl_controls(toy):
    def no_saturation(res):        # the alternative: KL keeps growing like the formula log n − (n−1)/n
        for r in res:
            for row in r["rows"]:
                row["kl"] = row["formula"]

    def estimator_like_formula(res):
        for r in res:
            for row in r["rows"]:
                if row["instance"] == "staircase":
                    row["estimate_exact"] = row["formula"]

    def biased_oracle_estimate(res):    # e.g. an estimator fed log π_ref of the wrong responses
        for r in res:
            o = r["oracle"]
            o["estimate"] = o["exact_estimate"] + 5 * o["estimate_sd"] / math.sqrt(o["prompts"])

    assert pick(verdicts(toy, "bon-kl", no_saturation), "KL saturates").holds is False
    assert pick(verdicts(toy, "bon-kl", estimator_like_formula), "On the staircase").holds is False
    assert pick(verdicts(toy, "bon-kl", biased_oracle_estimate), "Through the oracles").holds is False

    def violate(res):
        row = res[0]["rows"][-1]
        row["kl"] = row["formula"] + 1e-6                         # above log n − (n−1)/n
        row["estimate_exact"] = row["kl"] - 1e-6                  # estimator below the KL
        row = next(r for r in res[0]["rows"] if r["n"] > 1)
        # gap above 2n(n−1)Σp²
        row["kl"] = row["formula"] - 2 * 2 * row["n"] * (row["n"] - 1) * row["sum_p2"] - 1e-3

    bad = verdicts(toy, "bon-kl", violate)
    assert [c.holds for c in bad.values() if c.kind == "identity"] == [False, False, False]


def test_bon_winrate_controls(toy):
    def rr_wins(res):              # rewind-and-repeat above best-of-n at matched KL
        for c in res[0]["curves"]:
            c["rr_win"] = [min(1.0, w + 0.05) for w in c["rr_win"]]
            c["rr_kl"] = list(c["rr_kl"])

    def off_frontier(res):         # a policy 0.05 below the optimal curve at its KL
        for c in res[0]["curves"]:
            c["bon_win"] = [x - 0.05 for x in c["opt_at_bon"]]

    def biased_mc(res):
        for r in res:
            for m in r["mc"]:
                m["win"] = m["exact"] + 5 * m["se"]

    assert pick(verdicts(toy, "bon-winrate", rr_wins), "At matched KL").holds is False
    assert pick(verdicts(toy, "bon-winrate", off_frontier), "Best-of-n is nearly").holds is False
    assert pick(verdicts(toy, "bon-winrate", biased_mc), "Monte Carlo win rates").holds is False

    def violate(res):
        c = res[0]["curves"][0]
        c["bon_win"][-1] = c["n"][-1] / (c["n"][-1] + 1) + 1e-6        # above n/(n+1)
        n = c["n"][-2]
        c["bon_win"][-2] = n / (n + 1) - (n - 1) * c["sum_p2"] - 1e-3  # gap above (n−1)/2·Σp²

    assert [c.holds for c in verdicts(toy, "bon-winrate", violate).values() if c.kind == "identity"] == [
        False,
        False,
    ]


def test_bon_asymptotics_controls(toy):
    def constant_gap(res):         # best-of-N that stays 0.05 below the frontier at every m
        for c in res[0]["curves"]:
            c["bon_reward"] = c["frontier_at_bon_kl"] - 0.05

    def kl_linear_in_m(res):       # (1/m)·KL(BoN ‖ φ_Δ) stuck at a constant
        for k in res[0]["kl_vs_m"]:
            k["per_token"] = 0.1

    def no_ldp(res):               # tail rate off by a constant
        for x in res[0]["ldp"]:
            x["tail_rate"] = x["rate"] + 0.05

    def biased_sampler(res):
        for r in res:
            r["mc_exact"]["mean"] = r["mc_exact"]["exact"] + 5 * r["mc_exact"]["se"]

    assert pick(verdicts(toy, "bon-asymptotics", constant_gap), "Per-token best-of-N").holds is False
    assert pick(verdicts(toy, "bon-asymptotics", kl_linear_in_m), "(1/m)").holds is False
    assert pick(verdicts(toy, "bon-asymptotics", no_ldp), "The reward under").holds is False
    assert pick(verdicts(toy, "bon-asymptotics", biased_sampler), "Exact BoN winner").holds is False

    def violate(res):
        res[0]["curves"][0]["bon_kl"] = res[0]["curves"][0]["delta"] + 1e-3
        res[0]["renyi_err"] = 1e-6

    assert [c.holds for c in verdicts(toy, "bon-asymptotics", violate).values() if c.kind == "identity"] == [
        False,
        False,
    ]
