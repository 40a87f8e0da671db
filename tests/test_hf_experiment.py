"""The transformer-barrier experiment at a tiny scale: runs, is reproducible per seed, gives claims and a
plot."""

import json

import pytest

pytest.importorskip("transformers")

from oraclerl.runtime.run.registry import get_experiment  # noqa: E402
from oraclerl.runtime.run.runner import RunContext  # noqa: E402

pytestmark = pytest.mark.hf

def test_transformer_barrier_tiny_run(tmp_path):
    exp = get_experiment("transformer-barrier")
    cfg = exp.make_config("toy")
    a = exp.run(cfg, RunContext(seed=0))
    b = exp.run(cfg, RunContext(seed=0))
    c = exp.run(cfg, RunContext(seed=1))
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert json.dumps(a, sort_keys=True) != json.dumps(c, sort_keys=True)
    for m in ("outcome", "process"):
        h = a["methods"][m]["history"]
        assert [e["step"] for e in h] == [0, 2, 4]
        assert h[0]["test_error"] == pytest.approx(1 - sum(a["base_likelihood"]) / 8)
        assert a["methods"][m]["ledger"]["t_comp"] == 4 * 4 * 2
    assert a["methods"]["process"]["ledger"]["t_data"] == 4 * 4 * 2 * 3
    assert a["queries_per_context"] == 4 * 4 * 2 / 8
    claims = exp.claims([a, c], cfg)
    assert [cl.kind for cl in claims] == ["empirical"] * 4
    # two verdicts re-derived from the raw results (an independent reading of the same numbers)
    rare_off = [sum(q * r["queries_per_context"] < 1 for q, rr in zip(r["base_likelihood"], r["rare"]) if rr)
                / max(1, sum(r["rare"])) for r in (a, c)]
    assert claims[0].holds == all(v >= 0.5 for v in rare_off)
    final = [
        (
            r["methods"]["process"]["history"][-1]["test_error"],
            r["methods"]["outcome"]["history"][-1]["test_error"],
        )
        for r in (a, c)
    ]
    assert claims[3].holds == all(p < o for p, o in final)
    figs = exp.plot([a, c], cfg, tmp_path)
    assert all(f.is_file() for f in figs)


def test_transformer_barrier_config_errors_before_work():
    from oraclerl.errors import ConfigError

    exp = get_experiment("transformer-barrier")
    with pytest.raises(ConfigError, match="group_size"):
        exp.make_config("quick", {"group_size": "1", "outcome_advantage": "leave_one_out"})
    with pytest.raises(ConfigError, match="n_embd"):
        exp.make_config("quick", {"n_embd": "33"})
    with pytest.raises(ConfigError, match="rare_mass"):
        exp.make_config("quick", {"rare_mass": "1.5"})


def test_missing_hf_extra_is_a_clear_config_error(monkeypatch):
    import importlib.util

    import pytest

    from oraclerl.errors import ConfigError
    from oraclerl.runtime import get_experiment

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "transformers" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"\[hf\] extra"):
        get_experiment("transformer-barrier").make_config("quick")
