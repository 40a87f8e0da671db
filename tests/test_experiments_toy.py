"""Every registered experiment has its three scales, a toy config that validates, and an area test that runs
it end to end at the toy scale (run, claims, figures).

The area tests are listed here so that a new experiment without one fails this file: the negative controls of
the empirical claims and the end-to-end toy runs live there (tests/test_claims_*.py and the others below).
"""

from pathlib import Path

import pytest

from oraclerl.common.config import to_dict
from oraclerl.runtime.run.registry import all_experiments

TESTS = Path(__file__).resolve().parent

AREA_TEST = {
    "bon-asymptotics": "test_claims_bon.py",
    "bon-kl": "test_claims_bon.py",
    "bon-winrate": "test_claims_bon.py",
    "coverage-lower-bound": "test_claims_foster.py",
    "coverage-token-vs-sequence": "test_spanner_evaluation.py",
    "dnf-proper": "test_dnf.py",
    "estimators-exact": "test_claims_estimators_exact.py",
    "lm-barrier-real": "test_lm_barrier_real.py",
    "lq-pretraining": "test_posttrain_experiments.py",
    "mtss-vs-spanner": "test_spanner_evaluation.py",
    "pg-figure1": "test_posttrain_experiments.py",
    "pg-theory": "test_posttrain_experiments.py",
    "spanner-coverage": "test_spanner_evaluation.py",
    "spanner-rates": "test_spanner_evaluation.py",
    "transformer-barrier": "test_hf_experiment.py",
}


def test_every_experiment_has_an_area_test():
    names = sorted(e.name for e in all_experiments())
    assert names == sorted(AREA_TEST), "a new experiment needs an area test listed in AREA_TEST"
    for name, test in AREA_TEST.items():
        text = (TESTS / test).read_text()
        assert f'"{name}"' in text and '"toy"' in text, (name, test)


@pytest.mark.parametrize("exp", all_experiments(), ids=lambda e: e.name)
def test_scales_are_the_experiments_own_and_validate(exp):
    assert {"toy", "quick", "paper"} <= set(exp.scales), exp.name
    assert exp.scales["quick"] == {}, "quick is the config's defaults (the report's scale)"
    toy, quick = to_dict(exp.make_config("toy")), to_dict(exp.make_config("quick"))
    assert toy != quick, f"{exp.name}: the toy scale changes nothing"
    for field in exp.scales["paper"]:
        assert field in quick, f"{exp.name}: paper scale sets an unknown field {field}"
