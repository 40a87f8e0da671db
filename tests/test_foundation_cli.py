"""The CLI and runtime as a user meets them: run dirs, determinism, one-line errors before any work."""

import json
import subprocess
import sys

import pytest

from oraclerl.cli import main
from oraclerl.runtime import get_experiment, run_one
from oraclerl.runtime.run.store import RunStore

QUICK = ["--set", "c_stars=4,16", "--set", "betas=0.125", "--set", "trials=40"]


def test_run_writes_a_complete_run_directory(tmp_path, capsys):
    assert main(["run", "coverage-lower-bound", "--out", str(tmp_path), *QUICK]) == 0
    (run_dir,) = list((tmp_path / "coverage-lower-bound").iterdir())
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "status.json", "metrics.jsonl", "result.json", "figures"} <= names
    assert json.loads((run_dir / "status.json").read_text())["state"] == "done"
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["config"]["c_stars"] == [4.0, 16.0] and cfg["seed"] == 0
    assert list((run_dir / "figures").glob("*.png"))
    out = capsys.readouterr().out
    assert "ran" in out
    # A second call re-uses the finished run.
    assert main(["run", "coverage-lower-bound", "--out", str(tmp_path), *QUICK]) == 0
    assert "re-used" in capsys.readouterr().out


def test_same_seed_is_bit_identical_and_seeds_differ():
    exp = get_experiment("coverage-lower-bound")
    cfg = exp.make_config("quick", {"c_stars": "4,16", "betas": "0.125", "trials": "30"})
    a, _ = run_one(exp, cfg, 3)
    b, _ = run_one(exp, cfg, 3)
    c, _ = run_one(exp, cfg, 4)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert json.dumps(a["rows"], sort_keys=True) != json.dumps(c["rows"], sort_keys=True)


@pytest.mark.parametrize("argv,field", [
    (["run", "no-such-experiment"], "experiment"),
    (["run", "coverage-lower-bound", "--set", "bogus=1"], "bogus"),
    (["run", "coverage-lower-bound", "--set", "betas=-0.5"], "betas"),
    (["run", "coverage-lower-bound", "--set", "trials=abc"], "trials"),
    (["run", "coverage-lower-bound", "--set", "trials"], "--set"),
    (["run", "coverage-lower-bound", "--scale", "huge"], "--scale"),
])
def test_bad_cli_input_is_one_line_error_before_work(argv, field, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "oraclerl.cli", *argv, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and field in lines[0], proc.stderr
    assert not any(tmp_path.iterdir())  # nothing was written


def test_corrupted_run_is_detected_and_rerun(tmp_path):
    exp = get_experiment("coverage-lower-bound")
    cfg = exp.make_config("quick", {"c_stars": "4", "betas": "0.125", "trials": "20"})
    store = RunStore(tmp_path)
    first, reused = run_one(exp, cfg, 0, store)
    assert not reused
    rd = store.run_dir(exp.name, __import__("dataclasses").asdict(cfg), 0)
    (rd.path / "result.json").write_text("{not json")
    assert rd.check()[0] is False
    again, reused = run_one(exp, cfg, 0, store)
    assert not reused and again["rows"] == first["rows"]
