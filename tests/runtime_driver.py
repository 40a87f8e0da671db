"""A stand-alone oraclerl driver for the fault tests in ``test_runtime_faults.py`` (run as a separate
process).

It registers ``fake-gated``: each run marks that it started (``entered-<seed>-<pid>`` next to the gate file),
logs one metric line per step and, after its first step, waits until the gate file exists (at most 60 s).
Worker processes import this file to find the experiment (it registered it from ``__main__``).

Usage (the gate file is ``$ORACLERL_TEST_GATE``): ``python runtime_driver.py report OUT RUNS`` runs the
report inline, prints one JSON line with what it did and flags, with a ``waiting-<task>`` file next to the
gate, any run that had to wait for another process holding the same run; ``python runtime_driver.py both
OUT RUNS`` runs ``oraclerl report`` and then ``oraclerl sweep`` on local worker processes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from oraclerl.common.config import param
from oraclerl.runtime.execution.executors import LocalExecutor
from oraclerl.runtime.run import registry
from oraclerl.runtime.run.registry import Experiment

GATE = Path(os.environ["ORACLERL_TEST_GATE"])
STEPS = 3


@dataclass
class GatedConfig:
    steps: int = param(STEPS, "metric lines logged by each run", low=1, high=10)


def gated_run(cfg: GatedConfig, ctx) -> dict:
    (GATE.parent / f"entered-{ctx.seed}-{os.getpid()}").touch()
    for t in range(cfg.steps):
        ctx.log(t, value=float(10 * ctx.seed + t))
        if t == 0:
            deadline = time.monotonic() + 60
            while not GATE.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
    return {"value": float(ctx.seed), "steps": cfg.steps}


EXPERIMENT = registry.register(Experiment(
    "fake-gated", "Runs that wait at a gate (fault-test fake)", "yang_bon", GatedConfig, gated_run,
    lambda results, cfg: [], lambda results, cfg, outdir: [], seeds=2, description="A gated fake."))


class WatchedExecutor(LocalExecutor):
    """Local workers; a run that reports waiting for another process's lock leaves a ``waiting-<id>`` file."""

    def execute(self, tasks, on_event=lambda ev: None):
        def sink(ev):
            if ev.kind == "progress" and ev.message.startswith("waiting for the same run"):
                (GATE.parent / f"waiting-{ev.task_id}").touch()
            on_event(ev)

        return super().execute(tasks, sink)


def main(argv: list[str]) -> int:
    command, out, runs = argv
    if command == "report":  # runs inline: the two processes of the concurrency test are the drivers
        from oraclerl.runtime.reporting.report_runner import run_report

        rep = run_report(
            only=["fake-gated"], out=Path(out), runs=Path(runs), quiet=True, executor=WatchedExecutor(0)
        )
        print(json.dumps({"ran": len(rep.summary.ran), "reused": len(rep.summary.reused),
                          "untrusted": [r.previous for r in rep.summary.untrusted],
                          "errors": [o.error for o in rep.outcomes if o.error],
                          "results": [r.result["value"] for r in rep.summary.records]}))
        return 0
    # "both": the command-line report, then a sweep, on local worker processes (the poisoned-cwd test)
    from oraclerl.cli import main as cli

    common = ["--workers", "2", "--runs", runs, "-q"]
    rc = cli(["report", "--only", "fake-gated", "--out", f"{out}/report", *common])
    return rc or cli(
        ["sweep", "fake-gated", "--seeds", "0-1", "--set", "steps=2,3", "--out", f"{out}/sweep", *common]
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
