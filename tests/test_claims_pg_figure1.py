"""Negative controls for every empirical claim of pg-figure1 (docs/experiments/pg-figure1.md).

Each claim is fed, through the same ``claims()`` code the report uses, a set of per-seed results in which the
paper's prediction holds, and then a counterfactual in which exactly the alternative the claim rules out
happens (ORM and PRM swapped, ORM lifting an off-support centre, PRM lifting none, ...): the verdict must flip
to "does not hold". The counterfactual values are the alternative's, not an arbitrary breakage: they are what
a wrong implementation (e.g. the two reward models swapped, or a PRM that is secretly an ORM) would measure.
"""

import copy
import math

import pytest

from oraclerl.runtime.run.registry import EMPIRICAL, get_experiment

M = 8                                                  # centres
Q = 64.0                                               # queries per centre


def _seed(base, orm, prm, orm_err=(0.5, 0.40, 0.39), prm_err=(0.5, 0.30, 0.10), orm_pass=0.70, prm_pass=0.90,
          base_pass=(0.20, 0.70)):
    """One seed's result with final centre likelihoods ``orm``/``prm`` (probabilities) and base ``base``."""
    lg = lambda ps: [math.log10(max(p, 1e-300)) for p in ps]             # noqa: E731
    b = lg(base)
    off = [i for i, v in enumerate(b) if v < -12] or sorted(range(M), key=lambda i: b[i])[:4]

    def run(final, err, pk):
        return {"test_steps": list(range(len(err))), "test_error": list(err), "centre_log10": [b, lg(final)],
                "final_centre_log10": lg(final), "pass_at_k": [0.9, 0.9, 0.9, pk]}

    return {"base": {"centre_log10": b, "queries_per_centre": Q, "mass_below_inv_queries": 0.35,
                     "pass_at_k": [base_pass[0], 0.5, 0.6, base_pass[1]]},
            "off_support": off, "off_support_fallback": not any(v < -12 for v in b),
            "runs": {"outcome": run(orm, orm_err, orm_pass), "process": run(prm, prm_err, prm_pass)}}


# Centres 0-1 off-support (1e-14, 1e-20), 2 rare (1e-4 < 1/Q), 3-7 in the support (≥ 0.05).
BASE = [1e-14, 1e-20, 1e-4, 0.05, 0.2, 0.3, 0.5, 0.6]
GOOD = [_seed(BASE, orm=[1e-15, 1e-22, 1e-5, 0.9, 0.95, 0.97, 0.99, 0.99],
              prm=[0.95, 1e-25, 0.9, 0.97, 0.98, 0.99, 0.99, 0.99]) for _ in range(3)]

EXP = get_experiment("pg-figure1")
CFG = EXP.make_config("quick")


def _verdicts(results):
    out = {}
    for c in EXP.claims(results, CFG):
        assert c.kind == EMPIRICAL
        out[c.claim.split(" ")[0] + " " + c.claim.split(" ")[1] + " " + c.claim.split(" ")[2]] = c.verdict
    return out


def _key(prefix):
    keys = [k for k in _verdicts(GOOD) if k.startswith(prefix)]
    assert len(keys) == 1, keys
    return keys[0]


def test_every_claim_holds_on_results_that_follow_the_paper():
    v = _verdicts(GOOD)
    assert len(v) == 6 and set(v.values()) == {"holds"}, v


def _swap(results):
    out = copy.deepcopy(results)
    for r in out:
        r["runs"]["outcome"], r["runs"]["process"] = r["runs"]["process"], r["runs"]["outcome"]
    return out


def _set(results, seed, kind, centre, p):
    out = copy.deepcopy(results)
    run = out[seed]["runs"][kind]
    run["final_centre_log10"][centre] = math.log10(p)
    run["centre_log10"][-1][centre] = math.log10(p)
    return out


def _final(r, kind):
    return [10 ** v for v in r["runs"][kind]["final_centre_log10"]]


CONTROLS = {
    # ORM and PRM swapped (a wrong implementation wiring the rewards the other way round)
    "ORM's test error": _swap(GOOD),
    # ORM lifts an off-support centre on one seed: the barrier is gone
    "ORM does not": _set(GOOD, 1, "outcome", 0, 0.9),
    # PRM lifts nothing beyond ORM (a PRM that only rewards full sequences behaves like ORM)
    "PRM lifts off-support": [_seed(BASE, orm=_final(r, "outcome"), prm=_final(r, "outcome")) for r in GOOD],
    # ORM brings as many rare centres (q₀ < 1/queries) above 1/2 as PRM: no barrier
    "PRM lifts centres": [_seed(BASE, orm=_final(r, "process"), prm=_final(r, "process")) for r in GOOD],
    # ORM's pass@4096 well above the base model's (ORM extended the support)
    "ORM sharpens pass@1": [
        _seed(BASE, _final(r, "outcome"), _final(r, "process"), orm_pass=0.95, prm_pass=0.96) for r in GOOD
    ],
    # ORM does not sharpen in the support (in-support centres stay at their base likelihood)
    "ORM sharpens inside": [_seed(BASE, orm=BASE, prm=_final(r, "process")) for r in GOOD],
}


@pytest.mark.parametrize("prefix", sorted(CONTROLS))
def test_counterfactual_flips_its_claim(prefix):
    key = _key(prefix)
    v = _verdicts(CONTROLS[prefix])
    assert v[key] == "does not hold", (key, v)


def test_prm_lift_counts_per_seed_and_per_centre():
    """The lift claim reports how many centres and seeds, not pass/fail on every seed: one seed without any
    lift does not make it fail, and a seed with no off-support centre is left out of the count."""
    no_lift = _seed(BASE, orm=_final(GOOD[0], "outcome"), prm=[1e-30, 1e-25] + _final(GOOD[0], "process")[2:])
    no_off = _seed([1e-3, 1e-2] + BASE[2:], orm=[1e-3, 1e-2] + [0.9] * 6, prm=[1e-3, 1e-2] + [0.9] * 6)
    mixed = [GOOD[0], no_lift, no_off]
    c = next(c for c in EXP.claims(mixed, CFG) if c.claim.startswith("PRM lifts off-support"))
    assert c.verdict == "holds"
    assert "PRM lifted 1/4 off-support centres, on 1/2 seeds that have any (ORM: 0/4)" in c.measured
    assert "seed 2: none below threshold" in c.measured
    none = [_seed([0.5] * M, orm=[0.9] * M, prm=[0.9] * M)]
    assert (
        next(c for c in EXP.claims(none, CFG) if c.claim.startswith("PRM lifts off-support")).verdict == "n/a"
    )
