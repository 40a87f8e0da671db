"""Tracking: ``--log tensorboard`` writes the run's metrics, namespaced, as TensorBoard scalars; W&B and
Trackio receive the same namespaced metrics (checked against stand-in modules, since neither is a
dependency); an unknown or missing tracker is rejected before anything runs."""

from __future__ import annotations

import json
import sys
import types

import pytest

import test_runtime_fakes as fakes
from oraclerl.cli import main
from oraclerl.errors import ConfigError
from oraclerl.runtime.execution.engine import execute_runs
from oraclerl.runtime.execution.executors import LocalExecutor
from oraclerl.runtime.execution.sweep import plan_sweep
from oraclerl.runtime.reporting import tracking
from oraclerl.runtime.run.store import RunStore


@pytest.fixture(autouse=True)
def _fakes():
    fakes.install()
    yield
    fakes.uninstall()


def test_tensorboard_scalars_match_metrics_jsonl(tmp_path):
    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    plan = plan_sweep(fakes.FAKES[0], ["steps=5"], [0])
    s = execute_runs(plan.specs(), RunStore(tmp_path), LocalExecutor(0), log=["tensorboard"])
    rd = s.records[0].run_dir
    logged = [json.loads(line) for line in (rd.path / "metrics.jsonl").read_text().splitlines()]
    acc = ea_mod.EventAccumulator(str(rd.path / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert tags == {"reward/mean", "kl/value", "oracle/t_data"}
    for tag, key in (("reward/mean", "reward/mean"), ("kl/value", "kl/value"), ("oracle/t_data", "t_data")):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [m["step"] for m in logged]
        assert [e.value for e in events] == pytest.approx([m[key] for m in logged], rel=1e-6)


def test_wandb_and_trackio_receive_namespaced_metrics(tmp_path, monkeypatch):
    calls: list[tuple] = []

    class Run:
        def log(self, metrics, step=None):
            calls.append(("wandb.log", metrics, step))

        def finish(self):
            calls.append(("wandb.finish",))

    wandb = types.SimpleNamespace(init=lambda **kw: calls.append(("wandb.init", kw)) or Run())
    trackio = types.ModuleType("trackio")
    trackio.init = lambda **kw: calls.append(("trackio.init", kw))

    def trackio_log(metrics, step=None):
        calls.append(("trackio.log", metrics, step))

    trackio.log = trackio_log
    trackio.finish = lambda: calls.append(("trackio.finish",))
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    monkeypatch.setitem(sys.modules, "trackio", trackio)
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: object())
    loggers = tracking.make_loggers(["wandb,trackio"], tmp_path, "exp-run", {"steps": 2})
    for lg in loggers:
        lg.log(0, {"reward_mean": 1.5, "t_comp": 4, "regret/mean": 0.25, "name": "skip", "nested": {"kl": 2}})
        lg.log(1, {"regret/mean": 0.125})
        lg.close()
    init = [c for c in calls if c[0] == "wandb.init"][0][1]
    assert init["name"] == "exp-run" and init["config"] == {"steps": 2} and init["project"] == "oraclerl"
    first = {"reward/reward_mean": 1.5, "oracle/t_comp": 4.0, "regret/mean": 0.25, "nested/kl": 2.0}
    assert [c for c in calls if c[0] == "wandb.log"] == [
        ("wandb.log", first, 0),
        ("wandb.log", {"regret/mean": 0.125}, 1),
    ]
    assert [c for c in calls if c[0] == "trackio.log"] == [("trackio.log", first, 0),
                                                          ("trackio.log", {"regret/mean": 0.125}, 1)]
    assert ("wandb.finish",) in calls and ("trackio.finish",) in calls


def test_missing_or_unknown_tracker_rejected_before_running(tmp_path, monkeypatch, capsys):
    with pytest.raises(ConfigError, match="--log: must be among"):
        tracking.check_trackers(["mlflow"])
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="wandb is not installed"):
        tracking.check_trackers(["wandb"])
    rc = main(["report", "--only", "fake-counter", "--log", "tensorboard", "--out", str(tmp_path / "r"),
               "--runs", str(tmp_path / "runs"), "-q"])
    assert rc == 2 and "tensorboard is not installed" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "r").exists()
