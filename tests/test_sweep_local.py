"""Sweeps with the local process executor: resuming, a worker killed mid-sweep, corrupted run
directories, and the CLI's one-line rejection of bad input before anything runs."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import test_runtime_fakes as fakes
from oraclerl.cli import main
from oraclerl.common.config import to_dict
from oraclerl.runtime.execution.executors import LocalExecutor
from oraclerl.runtime.execution.sweep import plan_sweep
from oraclerl.runtime.reporting.sweep_tables import run_sweep
from oraclerl.runtime.run.store import RunStore

SEEDS = [0, 1, 2]
GATE: list[Path] = []  # a file every run waits for after its first step (it exists except in the fault test)


@pytest.fixture(scope="module", autouse=True)
def _fakes(tmp_path_factory):
    fakes.install()
    GATE.append(tmp_path_factory.mktemp("gate") / "open")
    GATE[0].touch()
    yield
    fakes.uninstall()


def _grid() -> list[str]:
    return ["steps=4,6", f"gate={GATE[0]}"]


def _plan():
    return plan_sweep(fakes.FAKES[0], _grid(), SEEDS)


def _tables(out: Path) -> dict[str, str]:
    return {name: (out / name).read_text() for name in ("runs.csv", "summary.csv", "claims.csv")}


def _run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "fake-counter").iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The undisturbed sweep (inline executor): tables every other sweep must reproduce exactly."""
    root = tmp_path_factory.mktemp("ref")
    outcome = run_sweep(_plan(), RunStore(root / "runs"), LocalExecutor(0), root / "out")
    assert outcome.ok and len(outcome.summary.ran) == 6
    assert (root / "out" / "runs.parquet").exists() and outcome.figures
    return _tables(root / "out")


def test_worker_killed_mid_sweep(tmp_path, reference):
    killed: list[int] = []
    pids: dict[int, int] = {}
    events: list[str] = []

    def fault(ev, rec):
        events.append(ev.kind)
        if ev.kind == "start":
            pids[ev.task_id] = ev.pid
        # Kill the worker running the second run once it has reported progress; every run waits at the gate
        # after its first step, so the kill surely lands mid-run. Then open the gate.
        if ev.kind == "progress" and ev.task_id == 1 and not killed:
            killed.append(pids[ev.task_id])
            os.kill(pids[ev.task_id], signal.SIGKILL)
            GATE[0].touch()

    GATE[0].unlink()
    try:
        outcome = run_sweep(_plan(), RunStore(tmp_path / "runs"), LocalExecutor(2), tmp_path / "out",
                            on_event=fault)
    finally:
        GATE[0].touch()
    assert killed and events.count("retry") == 1
    s = outcome.summary
    assert outcome.ok and len(s.ran) == 6 and not s.failed
    assert s.records[1].retries == 1
    # Every run's result exactly once: one finished directory per run, no temporary files left behind.
    dirs = _run_dirs(tmp_path / "runs")
    assert len(dirs) == 6 and all(r.run_dir.state()[0] == "done" for r in s.records)
    assert not [p for d in dirs for p in d.iterdir() if ".tmp-" in p.name]
    assert sorted(r.run_dir.path for r in s.records) == dirs
    assert _tables(tmp_path / "out") == reference


def test_interrupted_sweep_resumes_only_missing_runs(tmp_path, reference):
    class Interrupt(KeyboardInterrupt):
        pass

    done: list[int] = []

    def interrupt(ev, rec):
        if ev.kind == "done":
            done.append(ev.task_id)
            if len(done) == 2:
                raise Interrupt

    store = RunStore(tmp_path / "runs")
    with pytest.raises(Interrupt):
        run_sweep(_plan(), store, LocalExecutor(2), tmp_path / "out", on_event=interrupt)
    specs = _plan().specs()
    finished = {i for i, sp in enumerate(specs) if store.run_dir(sp.experiment.name, to_dict(sp.config),
                                                                  sp.seed).check()[0]}
    assert set(done) <= finished and len(finished) < 6
    outcome = run_sweep(_plan(), store, LocalExecutor(0), tmp_path / "out")
    s = outcome.summary
    assert {i for i, r in enumerate(s.records) if r.state == "reused"} == finished
    assert {i for i, r in enumerate(s.records) if r.state == "ran"} == set(range(6)) - finished
    assert all(r.previous is None or r.previous.startswith("running") for r in s.records)
    assert _tables(tmp_path / "out") == reference
    # A third call does nothing at all.
    again = run_sweep(_plan(), store, LocalExecutor(0), tmp_path / "out")
    assert not again.summary.ran and len(again.summary.reused) == 6


def test_corrupted_run_dirs_are_reported_and_rerun(tmp_path, reference):
    store = RunStore(tmp_path / "runs")
    first = run_sweep(_plan(), store, LocalExecutor(0), tmp_path / "out")
    a, b, c = (first.summary.records[i].run_dir.path for i in (0, 3, 5))
    # valid JSON
    (a / "result.json").write_text((a / "result.json").read_text().replace('"mean": ', '"mean": 1'))
    (b / "result.json").write_text("{ truncated")
    (c / "status.json").unlink()
    outcome = run_sweep(_plan(), store, LocalExecutor(0), tmp_path / "out")
    s = outcome.summary
    assert {i: r.previous.split(":")[0] for i, r in enumerate(s.records) if r.previous} == \
        {0: "corrupted", 3: "corrupted", 5: "corrupted"}
    assert {i for i, r in enumerate(s.records) if r.state == "ran"} == {0, 3, 5}
    assert _tables(tmp_path / "out") == reference
    assert "corrupted" in (tmp_path / "out" / "sweep.md").read_text()


@pytest.mark.parametrize("args, field", [
    (["--set", "bogus=1"], "bogus"),
    (["--set", "steps=3,0"], "steps"),
    (["--set", "scale=11"], "scale"),
    (["--seeds", "2-1"], "--seeds"),
    (["--executor", "dask"], "--executor"),
    (["--executor", "ray", "--workers", "1"], "--executor"),  # Ray hidden below: "not installed"
    (["--log", "nonsense"], "--log"),
    (["--executor", "local", "--address", "x:1"], "--address"),
])
def test_cli_rejects_bad_input_before_running(tmp_path, capsys, monkeypatch, args, field):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)
    rc = main(["sweep", "fake-counter", "--runs", str(tmp_path / "runs"), "-q", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith(f"oraclerl: error: {field}")
    assert not (tmp_path / "runs").exists()


def test_cli_sweep_end_to_end(tmp_path, capsys, reference):
    out = tmp_path / "out"
    argv = ["sweep", "fake-counter", "--seeds", "0-2", "--set", "steps=4,6", "--set", f"gate={GATE[0]}",
            "--runs", str(tmp_path / "runs"), "--out", str(out), "--workers", "0", "-q"]
    assert main(argv) == 0
    assert "6 ran, 0 re-used" in capsys.readouterr().out
    assert _tables(out) == reference
    assert main(argv) == 0
    assert "0 ran, 6 re-used" in capsys.readouterr().out
    md = (out / "sweep.md").read_text()
    assert "fake-counter" in md and "holds" in md and "sweep_steps.png" in md
