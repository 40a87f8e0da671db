"""Fault and load tests of the runtime (issue 12): two processes on one run store, a poisoned working
directory, a store seeded with every kind of damaged file, non-finite results, Markdown injection, a
dead lock holder, and bad input that must stop before any work (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import test_runtime_fakes as fakes
from oraclerl.cli import main
from oraclerl.common.config import param
from oraclerl.common.validation import check_memory
from oraclerl.runtime.execution.engine import execute_runs
from oraclerl.runtime.execution.executors import LocalExecutor
from oraclerl.runtime.execution.sweep import plan_sweep
from oraclerl.runtime.reporting.report_runner import run_report
from oraclerl.runtime.run import registry
from oraclerl.runtime.run.registry import Claim, Experiment
from oraclerl.runtime.run.store import RunDir, RunStore

DRIVER = Path(__file__).with_name("runtime_driver.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


# ----------------------------------------------------------------------------------------------- fakes
@dataclass
class OddConfig:
    text: str = param("plain", "raised as the run's error when it is not 'plain'")
    size_gb: float = param(
        0.0, "claimed peak memory of one run in GiB (for the memory check)", low=0.0, high=1e6
    )
    offset: float = param(0.0, "a number with no declared range")


def odd_run(cfg: OddConfig, ctx) -> dict:
    if cfg.text != "plain":
        raise RuntimeError(cfg.text)
    return {"top": math.inf, "low": -math.inf, "series": [1.0, math.nan, -math.inf], "finite": 1.5}


def odd_claims(results: list[dict], cfg: OddConfig) -> list[Claim]:
    r = results[0]
    return [
        Claim(
            "an infinite result stays a float <script>alert(1)</script> | a pipe",
            "fake",
            f"top={r['top']} low={r['low']}",
            r["top"] > 0 and r["low"] < 0 and math.isnan(r["series"][1]),
        )
    ]


ODD = Experiment("fake-odd", "Non-finite results and hostile strings (test fake)", "lm", OddConfig, odd_run,
                 odd_claims, lambda results, cfg, outdir: [], seeds=1, description="A fake.",
                 memory=lambda cfg: int(cfg.size_gb * 2**30))


@pytest.fixture(scope="module", autouse=True)
def _fakes():
    fakes.install()
    registry.register(ODD)
    yield
    registry._REGISTRY.pop(ODD.name, None)
    fakes.uninstall()


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------------------- two reports, one store
def _wait_for(predicate, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_two_concurrent_reports_run_each_run_once(tmp_path):
    """Process A's first run holds the store (it waits at a gate); B starts on the same store and must wait
    for it (not re-run it, not delete its directory), then re-use its result. Each run executes once."""
    gate = tmp_path / "gate"
    env = {**ENV, "ORACLERL_TEST_GATE": str(gate)}
    runs = tmp_path / "runs"
    cmd = [sys.executable, str(DRIVER), "report"]
    a = subprocess.Popen([*cmd, str(tmp_path / "rep-a"), str(runs)], env=env, cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    b = None
    entered = lambda: sorted(p.name for p in tmp_path.glob("entered-*"))  # noqa: E731
    try:
        _wait_for(lambda: len(entered()) >= 1)  # A's first run is in flight, holding its lock
        b = subprocess.Popen([*cmd, str(tmp_path / "rep-b"), str(runs)], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # B either waits for that run (fixed) or starts it a second time (the bug): either way, go on.
        _wait_for(lambda: list(tmp_path.glob("waiting-*")) or len(entered()) >= 2)
        gate.touch()
        out_a, err_a = a.communicate(timeout=120)
        out_b, err_b = b.communicate(timeout=120)
    finally:
        gate.touch()
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.kill()
    assert a.returncode == 0 and b.returncode == 0, err_a + err_b
    ra, rb = json.loads(out_a.splitlines()[-1]), json.loads(out_b.splitlines()[-1])
    assert len(entered()) == 2, entered()  # each of the two runs executed exactly once
    assert (ra["ran"] + rb["ran"], ra["reused"] + rb["reused"]) == (2, 2) and list(tmp_path.glob("waiting-*"))
    assert not ra["errors"] and not rb["errors"] and ra["results"] == rb["results"] == [0.0, 1.0]
    assert ra["untrusted"] == rb["untrusted"] == []  # a run in progress elsewhere is not reported as broken
    dirs = list((runs / "fake-gated").iterdir())
    assert len(dirs) == 2
    for d in dirs:  # metrics exactly once, every file intact, nothing temporary left
        assert RunDir(d, "?").status()["state"] == "done"
        lines = (d / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(x)["step"] for x in lines] == [0, 1, 2]
        assert not [p for p in d.iterdir() if ".tmp-" in p.name]


# ------------------------------------------------------------------------------------ a poisoned cwd
POISON = """import os, pathlib
pathlib.Path(os.environ["ORACLERL_TEST_GATE"]).parent.joinpath("IMPORTED-{name}-%d" % os.getpid()).touch()
raise ImportError("poisoned {name} imported from the working directory")
"""


def test_poisoned_working_directory_is_never_imported(tmp_path):
    """report and sweep run from a folder holding random.py, socket.py and concurrent.py: no process
    (driver, fork server, workers) imports them, and the runs complete."""
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    for name in ("random", "socket", "concurrent", "tempfile"):
        (cwd / f"{name}.py").write_text(POISON.format(name=name))
    gate = tmp_path / "gate"
    gate.touch()
    env = {**ENV, "ORACLERL_TEST_GATE": str(gate)}
    proc = subprocess.run(
        [sys.executable, str(DRIVER), "both", str(tmp_path / "out"), str(tmp_path / "runs")],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert not list(tmp_path.glob("IMPORTED-*")), proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The report's two runs (steps=3) are two of the sweep's four: the sweep re-used them.
    assert len(list((tmp_path / "runs" / "fake-gated").iterdir())) == 4


# ----------------------------------------------------------------------------- a damaged run store
def _damage(d: Path, how: str) -> None:
    status, result, metrics = d / "status.json", d / "result.json", d / "metrics.jsonl"
    if how == "status-not-utf8":
        status.write_bytes(b"\xff\xfe{\"state\": \"done\"}")
    elif how == "result-not-utf8":
        result.write_bytes(b"\x80" + result.read_bytes())
    elif how == "result-truncated":
        result.write_bytes(result.read_bytes()[:-7])
    elif how == "result-empty":
        result.write_bytes(b"")
    elif how == "status-empty":
        status.write_bytes(b"")
    elif how == "status-not-an-object":
        status.write_text("[1, 2]")
    elif how == "status-is-a-directory":
        status.unlink()
        status.mkdir()
    elif how == "result-is-a-directory":
        result.unlink()
        (result / "x").mkdir(parents=True)
    elif how == "metrics-truncated":
        metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:-1]))
    elif how == "metrics-missing":
        metrics.unlink()
    elif how == "metrics-not-utf8":
        metrics.write_bytes(metrics.read_bytes() + b"\xff\n")
    elif how == "run-dir-is-a-file":
        import shutil

        shutil.rmtree(d)
        d.write_bytes(b"\x00\xff")
    elif how == "result-unreadable":
        result.chmod(0)
    else:  # pragma: no cover
        raise AssertionError(how)


DAMAGE = ["status-not-utf8", "result-not-utf8", "result-truncated", "result-empty", "status-empty",
          "status-not-an-object", "status-is-a-directory", "result-is-a-directory", "metrics-truncated",
          "metrics-missing", "metrics-not-utf8", "run-dir-is-a-file", "result-unreadable"]


def test_store_seeded_with_every_kind_of_damage_is_rerun(tmp_path):
    specs = plan_sweep(fakes.FAKES[0], ["steps=3"], list(range(len(DAMAGE)))).specs()
    store = RunStore(tmp_path / "runs")
    first = execute_runs(specs, store, LocalExecutor(0))
    reference = [r.result for r in first.records]
    for rec, how in zip(first.records, DAMAGE):
        _damage(rec.run_dir.path, how)
    (tmp_path / "runs" / "fake-counter" / "progress.json").write_bytes(b"\xff")  # stray junk is ignored
    s = execute_runs(specs, store, LocalExecutor(0))  # must not raise
    root_can_read = os.geteuid() == 0  # root reads a mode-000 file: that run is intact and re-used
    expected = {i for i, how in enumerate(DAMAGE) if not (how == "result-unreadable" and root_can_read)}
    assert {i for i, r in enumerate(s.records) if r.state == "ran"} == expected
    assert all(s.records[i].previous.startswith("corrupted") for i in expected)
    assert not s.failed and [{k: v for k, v in r.result.items() if k != "elapsed_s"} for r in s.records] == \
        [{k: v for k, v in r.items() if k != "elapsed_s"} for r in reference]
    assert all(r.run_dir.state()[0] == "done" for r in s.records)


HOLDER = """import fcntl, os, sys, time
path = sys.argv[1]
os.makedirs(os.path.dirname(path), exist_ok=True)
fd = os.open(path, os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b"pid %d on %s" % (os.getpid(), os.uname().nodename.encode()))
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _holder(rd: RunDir, seconds: float) -> subprocess.Popen:
    """Another process holding ``rd``'s lock (a plain flock, as RunDir.lock takes it) for ``seconds``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(rd.lock_path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_dead_lock_holder_never_blocks(tmp_path):
    """A process holding a run's lock is SIGKILLed: the next process gets the lock at once."""
    rd = RunStore(tmp_path).run_dir("fake-counter", {"steps": 1}, 0)
    holder = _holder(rd, 120)
    try:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        t0 = time.monotonic()
        waits: list[str] = []
        with rd.lock(on_wait=waits.append) as waited:
            assert time.monotonic() - t0 < 5 and not waited and not waits
    finally:
        holder.kill()


def test_waiter_waits_for_a_live_holder_and_is_told_who(tmp_path):
    rd = RunStore(tmp_path).run_dir("fake-counter", {"steps": 1}, 0)
    holder = _holder(rd, 0.5)
    try:
        waits: list[str] = []
        with rd.lock(on_wait=waits.append) as waited:
            assert waited and holder.wait(timeout=30) == 0  # we got it only once the holder let go
        assert waits == [f"pid {holder.pid} on {os.uname().nodename}"]
    finally:
        holder.kill()


# ------------------------------------------------------------------ non-finite results, hostile strings
def test_non_finite_results_reach_claims_and_the_report_as_floats(tmp_path):
    rep = run_report(only=["fake-odd"], out=tmp_path / "rep", runs=tmp_path / "runs", quiet=True,
                     executor=LocalExecutor(0))
    (o,) = rep.outcomes
    assert o.error is None and [c.holds for c in o.claims] == [True]
    (rec,) = rep.summary.records
    assert rec.result["top"] == math.inf and math.isnan(rec.result["series"][1])
    text = (rec.run_dir.path / "result.json").read_text()

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    json.loads(text, parse_constant=no_constants)  # standard JSON: no Infinity/NaN tokens
    assert dict(o.metrics)["top"].startswith("n/a (1 of 1 seeds non-finite: inf)")
    again = run_report(only=["fake-odd"], out=tmp_path / "rep", runs=tmp_path / "runs", quiet=True,
                       executor=LocalExecutor(0))
    assert len(again.summary.reused) == 1 and [c.holds for c in again.outcomes[0].claims] == [True]


def _render(md: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(md)


def test_report_md_escapes_user_controlled_strings(tmp_path, monkeypatch):
    hostile = "x` <img src=x onerror=alert(1)> `y | [link](javascript:alert(1)) **bold**"
    monkeypatch.setitem(ODD.scales, "quick", {"text": hostile})
    rep = run_report(only=["fake-odd"], out=tmp_path / "rep", runs=tmp_path / "runs", quiet=True,
                     executor=LocalExecutor(0))
    page = _render(rep.md.read_text())
    assert "<img" not in page and "<a href" not in page and "<strong>bold" not in page
    assert "onerror=alert(1)&gt;" in page  # shown as text, verbatim
    monkeypatch.setitem(ODD.scales, "quick", {})
    ok = run_report(only=["fake-odd"], out=tmp_path / "rep2", runs=tmp_path / "runs", quiet=True,
                    executor=LocalExecutor(0))
    page = _render(ok.md.read_text())
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; | a pipe" in page


# --------------------------------------------------------------------- bad input stops before any work
@pytest.mark.parametrize("argv, field", [
    (["run", "fake-odd", "--set", "offset=inf"], "offset"),
    (["run", "fake-odd", "--set", "offset=-1e999"], "offset"),
    (["run", "fake-counter", "--set", "steps=1e400"], "steps"),
    (["run", "fake-counter", "--set", "steps=2", "--set", "steps=3"], "steps"),
    (["sweep", "fake-counter", "--set", "steps=2", "--set", "steps=3"], "steps"),
    (["run", "fake-counter", "--seed", str(2**40)], "--seed"),
    (["sweep", "fake-counter", "--seeds", "0-100000000000000"], "--seeds"),
    (["report", "--seeds", "0-100000000000000"], "--seeds"),
    (["report", "--scale", "huge"], "--scale"),
    (["run", "fake-odd", "--set", "size_gb=1e5"], "fake-odd"),
    (["run", "coverage-lower-bound", "--set", "betas=0.0001"], "coverage-lower-bound"),  # d = 10^12 features
    (["sweep", "lq-pretraining", "--set", "eval_size=100,4194304", "--set", "N=100000"],
     "lq-pretraining"),  # each field within its bound, together ~10 TB of contexts
    (["report", "--only", "fake-odd", "--executor", "ray", "--address", "127.0.0.1:1"], "--address"),
    (["sweep", "fake-counter", "--executor", "ray", "--address", "nonsense"], "--address"),
])
def test_bad_input_is_one_line_before_any_work(tmp_path, capsys, argv, field):
    dest = {"run": "--out", "sweep": "--runs", "report": "--runs"}[argv[0]]
    extra = ["--out", str(tmp_path / "rep")] if argv[0] == "report" else []
    t0 = time.monotonic()
    rc = main([*argv, dest, str(tmp_path / "runs"), *extra, *([] if argv[0] == "run" else ["-q"])])
    err = _one_error_line(capsys)
    assert rc == 2 and err.startswith(f"oraclerl: error: {field}"), err
    assert time.monotonic() - t0 < 20
    assert not (tmp_path / "runs").exists() and not (tmp_path / "rep").exists()


def test_memory_estimate_is_in_the_message(capsys, tmp_path):
    assert main(["run", "fake-odd", "--set", "size_gb=1e5", "--out", str(tmp_path)]) == 2
    assert "one run needs about 1e+05 GiB of memory" in _one_error_line(capsys)
    check_memory("x", 10, available=10)  # at the limit: accepted


def _output_targets(tmp_path: Path) -> dict[str, Path]:
    afile = tmp_path / "a-file"
    afile.write_text("x")
    return {"a file": afile, "under a file": afile / "sub" / "dir"}


@pytest.mark.parametrize("command", ["run", "sweep", "report"])
@pytest.mark.parametrize("target", ["a file", "under a file", "read-only"])
@pytest.mark.parametrize("which", ["runs", "out"])
def test_unwritable_output_folders_are_rejected_before_any_run(tmp_path, capsys, command, target, which):
    if command == "run" and which == "out":
        pytest.skip("run has one folder (--out, the run store)")
    if target == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        bad = tmp_path / "ro"
        bad.mkdir(mode=0o555)
    else:
        bad = _output_targets(tmp_path)[target]
    good = {"runs": tmp_path / "runs-ok", "out": tmp_path / "out-ok"}
    good[which] = bad
    base = {
        "run": ["run", "fake-counter", "--out", str(good["runs"])],
        "sweep": ["sweep", "fake-counter", "--runs", str(good["runs"]), "--out", str(good["out"]), "-q"],
        "report": [
            "report",
            "--only",
            "fake-counter",
            "--runs",
            str(good["runs"]),
            "--out",
            str(good["out"]),
            "-q",
        ],
    }[command]
    flag = "--out" if command == "run" else f"--{which}"
    assert main(base) == 2
    assert _one_error_line(capsys).startswith(f"oraclerl: error: {flag}")
    assert not (tmp_path / "runs-ok").exists() and not (tmp_path / "out-ok").exists()


def test_power_exceeds_matches_the_exact_power_and_never_builds_a_huge_one():
    from itertools import product

    from oraclerl.common.validation import power_exceeds

    for base, exponent, limit in product(range(12), range(30), [0, 1, 5, 1000, 999_999, 10**6]):
        assert power_exceeds(base, exponent, limit) == (base ** exponent > limit), (base, exponent, limit)
    t0 = time.monotonic()
    assert power_exceeds(2, 10**30, 10**6) and not power_exceeds(1, 10**30, 1)
    assert time.monotonic() - t0 < 0.1
