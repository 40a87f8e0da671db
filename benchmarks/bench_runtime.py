"""Runtime benchmark: the report's wall time, and a sweep's throughput on each executor.

    .venv/bin/python benchmarks/bench_runtime.py              # sweep throughput + report wall time
    .venv/bin/python benchmarks/bench_runtime.py --no-report  # sweep throughput only

Sweep: coverage-lower-bound (the real experiment, quick configuration) on the grid trials ∈ {100, 200, 300}
× 4 seeds (12 runs), each executor in a fresh process with a fresh run store, so start-up (worker
processes, Ray) is included, as a user sees it. Runs per minute = 12 / wall time × 60. The results of
every executor are checked to be identical (same runs.csv).

Report: ``oraclerl report`` (every registered experiment, quick scale, default seeds, 2 local workers)
into a fresh run store, then again (everything re-used).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = ["trials=100,200,300"]
SEEDS = [0, 1, 2, 3]
EXECUTORS = ["inline", "local:1", "local:2", "ray:2"]


def one(kind: str, root: Path) -> dict:
    """Run the benchmark sweep on one executor in this process; returns timing and the table's text."""
    from oraclerl.runtime.execution.executors import LocalExecutor, RayExecutor
    from oraclerl.runtime.execution.sweep import plan_sweep
    from oraclerl.runtime.reporting.sweep_tables import run_sweep
    from oraclerl.runtime.run.registry import get_experiment
    from oraclerl.runtime.run.store import RunStore

    plan = plan_sweep(get_experiment("coverage-lower-bound"), GRID, SEEDS)
    if kind == "inline":
        ex = LocalExecutor(0)
    elif kind.startswith("local:"):
        ex = LocalExecutor(int(kind.split(":")[1]))
    else:
        ex = RayExecutor(num_cpus=int(kind.split(":")[1]))
    t0 = time.perf_counter()
    out = run_sweep(plan, RunStore(root / "runs"), ex, root / "out")
    wall = time.perf_counter() - t0
    assert out.ok, [r.error for r in out.summary.failed]
    compute = sum(r.result["elapsed_s"] for r in out.summary.records)
    return {"kind": kind, "runs": len(out.summary.ran), "wall_s": wall, "compute_s": compute,
            "table": (root / "out" / "runs.csv").read_text()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as d:
            print(json.dumps(one(args.one, Path(d))))
        return
    print(f"machine: {os.cpu_count()} CPUs (shared; timings are noisy), python {sys.version.split()[0]}")
    print(f"sweep: coverage-lower-bound, grid {GRID} x seeds {SEEDS[0]}-{SEEDS[-1]} = {3 * len(SEEDS)} runs")
    rows, tables = [], set()
    for kind in EXECUTORS:
        proc = subprocess.run([sys.executable, __file__, "--one", kind], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{kind}: failed\n{proc.stderr[-2000:]}")
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        tables.add(res.pop("table"))
        rows.append(res)
    print(f"{'executor':10s} {'runs':>5s} {'wall s':>8s} {'runs/min':>9s} {'run compute s':>14s}")
    for r in rows:
        print(f"{r['kind']:10s} {r['runs']:5d} {r['wall_s']:8.1f} {r['runs'] / r['wall_s'] * 60:9.1f} "
              f"{r['compute_s']:14.1f}")
    print(f"identical results across executors: {len(tables) == 1}")
    if args.no_report:
        return
    oraclerl = str(Path(sys.executable).with_name("oraclerl"))
    with tempfile.TemporaryDirectory() as d:
        for label in ("report (fresh run store)", "report (second call, re-used)"):
            t0 = time.perf_counter()
            proc = subprocess.run([oraclerl, "report", "--out", f"{d}/report", "--runs", f"{d}/runs", "-q"],
                                  capture_output=True, text=True)
            wall = time.perf_counter() - t0
            print(f"{label}: {wall:.1f} s (exit {proc.returncode}) {proc.stdout.strip().splitlines()[-1:]}")


if __name__ == "__main__":
    main()
