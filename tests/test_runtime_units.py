"""Unit tests of the runtime pieces: seeds and grids, config round trips, run-directory states, metrics."""

from __future__ import annotations

import json
import math

import pytest

import test_runtime_fakes as fakes
from oraclerl.common.config import from_dict, to_dict
from oraclerl.errors import ConfigError
from oraclerl.runtime.execution.engine import RunSpec, execute_runs
from oraclerl.runtime.execution.executors import LocalExecutor, make_executor
from oraclerl.runtime.execution.sweep import expand_grid, parse_seeds, plan_sweep
from oraclerl.runtime.reporting.stats import mean_ci
from oraclerl.runtime.reporting.sweep_tables import aggregate, flatten_metrics
from oraclerl.runtime.reporting.tracking import metric_name, scalar_metrics
from oraclerl.runtime.run.runner import run_one
from oraclerl.runtime.run.store import RunStore


@pytest.fixture(autouse=True)
def _fakes():
    fakes.install()
    yield
    fakes.uninstall()


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds("0-2,10,1") == [0, 1, 2, 10]
    assert parse_seeds(None) is None
    for bad in ("", "a", "3-1", "-1", "1-x"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def test_expand_grid_scalars_and_lists():
    exp = fakes.FAKES[0]
    keys, points = expand_grid(exp, ["steps=2,4", "scale=0.5,1,2"])
    assert keys == ["steps", "scale"] and len(points) == 6
    assert points[0] == {"steps": "2", "scale": "0.5"} and points[-1] == {"steps": "4", "scale": "2"}
    cov = fakes.FAKES[2]
    keys, points = expand_grid(cov, ["c_stars=4,16;64", "trials=5"])
    assert [p["c_stars"] for p in points] == ["4,16", "64"]
    plan = plan_sweep(cov, ["c_stars=4,16;64", "trials=5"], [0])
    assert [c.c_stars for c in plan.configs] == [[4.0, 16.0], [64.0]] and plan.configs[0].trials == 5


@pytest.mark.parametrize(
    "items, field",
    [
        (["nope=1"], "nope"),
        (["steps=0"], "steps"),
        (["steps=2,5000"], "steps"),
        (["scale=-1"], "scale"),
        (["steps=two"], "steps"),
        (["steps"], "--set"),
    ],
)
def test_plan_rejects_bad_config(items, field):
    with pytest.raises(ConfigError) as ei:
        plan_sweep(fakes.FAKES[0], items, [0])
    assert ei.value.field == field and "\n" not in str(ei.value)


def test_make_executor_rejects_unknown_and_missing(monkeypatch):
    with pytest.raises(ConfigError, match="--executor"):
        make_executor("dask")
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ConfigError, match="ray is not installed"):
        make_executor("ray")
    with pytest.raises(ConfigError, match="--workers"):
        LocalExecutor(-1)


def test_config_round_trip():
    cfg = fakes.FAKES[2].make_config("quick", {"trials": "7"})
    assert from_dict(type(cfg), to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(type(cfg), {"bogus": 1})


def test_same_seed_same_result_different_seed_different(tmp_path):
    exp = fakes.FAKES[0]
    cfg = exp.make_config("quick")
    a, _ = run_one(exp, cfg, 3)
    b, _ = run_one(exp, cfg, 3)
    c, _ = run_one(exp, cfg, 4)
    assert a == b and a["series"] != c["series"]
    # Through the store: re-used the second time, identical to the in-memory run.
    store = RunStore(tmp_path)
    r1, reused1 = run_one(exp, cfg, 3, store)
    r2, reused2 = run_one(exp, cfg, 3, store)
    assert (reused1, reused2) == (False, True)
    assert {k: v for k, v in r1.items() if k != "elapsed_s"} == a and r1 == r2


def test_run_dir_states(tmp_path):
    exp = fakes.FAKES[0]
    cfg = exp.make_config("quick")
    store = RunStore(tmp_path)
    rd = store.run_dir(exp.name, to_dict(cfg), 0)
    assert rd.state()[0] == "missing"
    rd.start({"x": 1})
    assert rd.state()[0] == "running"
    rd.finish({"v": 1.0}, 0.1)
    assert rd.state() == ("done", "done")
    # Made by other sources: intact, but stale (re-run by default; integrity-only checks accept it).
    status = json.loads((rd.path / "status.json").read_text())
    (rd.path / "status.json").write_text(json.dumps({**status, "code": "0" * 16}))
    assert rd.state()[0] == "stale" and rd.state(check_code=False)[0] == "done" and not rd.check()[0]
    # An edit that keeps the JSON valid is caught by the checksum.
    text = (rd.path / "result.json").read_text().replace("1.0", "2.0")
    (rd.path / "result.json").write_text(text)
    assert rd.state()[0] == "corrupted" and "checksum" in rd.state()[1]
    (rd.path / "result.json").write_text("{trunc")
    assert rd.state()[0] == "corrupted"
    (rd.path / "status.json").write_text("{")
    assert rd.state()[0] == "corrupted"
    rd.fail("RuntimeError: x")
    assert rd.state() == ("failed", "RuntimeError: x")


def test_failed_runs_are_reported_not_aggregated(tmp_path):
    exp = fakes.FAKES[1]
    plan = plan_sweep(exp, None, [0, 1, 2])
    s = execute_runs(plan.specs(), RunStore(tmp_path), LocalExecutor(0))
    assert [r.state for r in s.records] == ["ran", "failed", "ran"]
    assert "boom on seed 1" in s.failed[0].error
    runs, intervals = aggregate(plan, s)
    assert [r["seed"] for r in runs] == [0, 2]
    (row,) = [r for r in intervals if r["metric"] == "value"]
    assert row["n"] == 2 and row["mean"] == 1.0
    # The failed run is re-tried on the next call, the finished ones are re-used.
    s2 = execute_runs(plan.specs(), RunStore(tmp_path), LocalExecutor(0))
    assert [r.state for r in s2.records] == ["reused", "failed", "reused"]
    assert s2.records[1].previous.startswith("failed")


def test_duplicate_specs_run_once(tmp_path):
    exp = fakes.FAKES[0]
    cfg = exp.make_config("quick")
    seen = []
    s = execute_runs([RunSpec(exp, cfg, 0, 0), RunSpec(exp, cfg, 0, 1)], RunStore(tmp_path), LocalExecutor(0),
                     on_event=lambda ev, rec: seen.append(ev.kind) if ev.kind == "done" else None)
    assert seen == ["done"] and s.records[0].result == s.records[1].result and len(s.ran) == 1


def test_aggregate_intervals_match_independent_computation(tmp_path):
    exp = fakes.FAKES[0]
    plan = plan_sweep(exp, ["steps=3,5"], [0, 1, 2, 3])
    s = execute_runs(plan.specs(), RunStore(tmp_path), LocalExecutor(0))
    runs, intervals = aggregate(plan, s)
    assert len(runs) == 8
    for point in (0, 1):
        means = [r.result["mean"] for r in s.records if r.spec.point == point]
        (row,) = [r for r in intervals if r["point"] == point and r["metric"] == "mean"]
        # Student-t 95% interval by hand: t_{0.975, 3} = 3.182446305284263.
        m = sum(means) / 4
        sd = math.sqrt(sum((x - m) ** 2 for x in means) / 3)
        assert row["mean"] == pytest.approx(m, rel=1e-12)
        assert row["ci_high"] - row["mean"] == pytest.approx(3.182446305284263 * sd / 2, rel=1e-9)
        assert (row["mean"], row["ci_low"], row["ci_high"]) == mean_ci(means)


def test_flatten_metrics_and_names():
    res = {"a": 1, "b": {"c": 2.5, "s": "text"}, "l": [1, {"x": True}], "elapsed_s": 3.0, "bad": "nan"}
    flat = flatten_metrics(res)
    assert flat == {"a": 1.0, "b/c": 2.5, "l/0": 1.0, "l/1/x": 1.0, "bad": flat["bad"]} and math.isnan(
        flat["bad"]
    )
    assert flatten_metrics({"long": list(range(100))}) == {}
    assert metric_name("regret/mean") == "regret/mean"
    assert metric_name("t_comp") == "oracle/t_comp"
    assert metric_name("kl_bon") == "kl/kl_bon"
    assert metric_name("reward_mean") == "reward/reward_mean"
    assert metric_name("regret") == "regret/regret"
    assert metric_name("loss") == "metrics/loss"
    assert scalar_metrics({"x": 1, "y": float("inf"), "z": {"w": 2}, "s": "a"}) == {"x": 1.0, "z/w": 2.0}


def test_tables_are_valid_csv_and_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow.parquet")
    from oraclerl.runtime.reporting.sweep_tables import write_table

    rows = [{"point": 0, "c": [1, 2], "v": 0.1 + 0.2}, {"point": 1, "c": [3], "v": None}]
    paths = write_table(rows, tmp_path / "t")
    text = paths[0].read_text().splitlines()
    assert text[0] == "point,c,v" and text[1] == '0,"[1, 2]",0.30000000000000004' and text[2] == "1,[3],"
    table = pa.read_table(paths[1]).to_pylist()
    assert table == [{"point": 0, "c": json.dumps([1, 2]), "v": 0.30000000000000004},
                     {"point": 1, "c": "[3]", "v": None}]
