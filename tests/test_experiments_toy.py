"""Every experiment not covered by an area test runs end to end at a toy scale: run, claims, figures.

The empirical claims' verdicts are the experiments' business (the report shows them; their negative controls
are in tests/test_claims_*.py); here we check that each one runs through the registry with a validated config,
returns plain JSON, states claims with sources, that its identity checks hold, and that it writes its figures.
Experiments with their own tests (coverage-lower-bound, spanner-*, dnf-proper, pg-*, lq-pretraining,
transformer-barrier) are not repeated.
"""

import json

import pytest

from oraclerl.runtime import Claim, get_experiment, run_one
from oraclerl.runtime.run.registry import IDENTITY

TOY = {
    "bon-kl": {"sizes": "10,100", "num_n": "6", "n_max": "1000", "winners": "8", "oracle_L": "20",
               "oracle_prompts": "20"},
}


@pytest.mark.parametrize("name", sorted(TOY))
def test_experiment_runs_end_to_end_at_toy_scale(name, tmp_path):
    exp = get_experiment(name)
    cfg = exp.make_config("quick", TOY[name])
    result, reused = run_one(exp, cfg, 0)
    assert not reused
    json.dumps(result)  # plain data, serialisable as the run store needs it
    claims = exp.claims([result], cfg)
    assert claims and all(isinstance(c, Claim) and c.claim and c.source and c.measured for c in claims)
    # identity checks are exact, so they hold at any scale; their negative controls are in
    # tests/test_claims_*.py
    assert all(c.holds is True for c in claims if c.kind == IDENTITY), [
        c.measured for c in claims if not c.holds
    ]
    figures = exp.plot([result], cfg, tmp_path)
    assert figures and all(f.exists() and f.stat().st_size > 1000 for f in figures)
