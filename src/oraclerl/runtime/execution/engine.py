"""Executing a set of runs resumably: what the report and sweeps share.

:func:`execute_runs` takes run specs (experiment, config, seed), looks each one up in the run store, re-uses
finished runs, reports every run directory it cannot trust (left running by a killed worker, failed,
corrupted, or made by code that has changed since) and re-runs it, sends the rest to an executor, and finally
reads every result back from the store, where each run's result exists exactly once. Results are only ever
loaded from run directories that pass :meth:`RunDir.state` (status "done", checksum and key verified).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...common.config import to_dict
from ..run.registry import Experiment
from ..run.store import RunDir, RunStore, code_fingerprint
from .executors import Event


@dataclass(frozen=True)
class RunSpec:
    """One run to have: an experiment, a resolved config and a seed (``point`` groups runs by config)."""

    experiment: Experiment
    config: Any
    seed: int
    point: int = 0


@dataclass
class RunRecord:
    """What happened to one run spec."""

    spec: RunSpec
    run_dir: RunDir
    state: str = "pending"
    """"reused" (finished earlier), "ran" (executed now), "failed" or "pending"."""
    result: dict | None = None
    error: str | None = None
    previous: str | None = None
    """Why an existing run directory was not trusted ("corrupted: ...", "running: ...", "failed: ...")."""
    retries: int = 0
    """How many times a worker died while running it."""
    same_as: int | None = None
    """Index of an identical spec (same run directory) that this one shares its execution with."""


@dataclass
class ExecutionSummary:
    records: list[RunRecord] = field(default_factory=list)

    def _with(self, state: str) -> list[RunRecord]:
        return [r for r in self.records if r.state == state]

    @property
    def ran(self) -> list[RunRecord]:
        return [r for r in self._with("ran") if r.same_as is None]

    @property
    def reused(self) -> list[RunRecord]:
        return self._with("reused")

    @property
    def failed(self) -> list[RunRecord]:
        return self._with("failed")

    @property
    def untrusted(self) -> list[RunRecord]:
        """Runs whose existing directory was reported and re-run (interrupted, failed or corrupted)."""
        return [r for r in self.records if r.previous]


class Listener:
    """Receives what happens during :func:`execute_runs` (the live progress display implements it)."""

    def planned(self, records: list[RunRecord]) -> None:
        return None

    def event(self, ev: Event, record: RunRecord) -> None:
        return None


def _module_of(exp: Experiment) -> tuple[str | None, str | None]:
    module = getattr(exp, "_registered_by", None) or getattr(exp.run, "__module__", None)
    mod = sys.modules.get(module) if module else None
    return module, getattr(mod, "__file__", None)


def execute_runs(specs: list[RunSpec], store: RunStore, executor, *, force: bool = False, log=(),
                 listener: Listener | None = None,
                 on_event: Callable[[Event, RunRecord], None] | None = None) -> ExecutionSummary:
    """Bring every spec to a finished (or failed) run in ``store`` and return the records.

    ``force`` re-runs finished runs too. ``log`` names trackers (see
    :mod:`oraclerl.runtime.reporting.tracking`). ``on_event(event, record)`` sees every executor event (used
    by tests to inject faults).
    """
    listener = listener or Listener()
    summary = ExecutionSummary()
    tasks: list[dict] = []
    first_by_path: dict[str, int] = {}
    for i, spec in enumerate(specs):
        cfg = to_dict(spec.config)
        rd = store.run_dir(spec.experiment.name, cfg, spec.seed)
        rec = RunRecord(spec, rd)
        summary.records.append(rec)
        key = str(rd.path)
        if key in first_by_path:  # the same run twice in one plan: run it once
            rec.same_as = first_by_path[key]
            continue
        first_by_path[key] = i
        state, reason = rd.state()
        if state == "done" and not force:
            rec.state, rec.result = "reused", rd.load_result()
            continue
        if state == "running" and rd.lock_holder():  # in progress in another process: wait for it, re-use it
            pass
        elif state not in ("missing", "done"):
            rec.previous = f"{state}: {reason}"
        module, module_file = _module_of(spec.experiment)
        tasks.append(
            {
                "id": i,
                "experiment": spec.experiment.name,
                "module": module,
                "module_file": module_file,
                "config": cfg,
                "seed": int(spec.seed),
                "store": str(store.root.resolve()),
                "force": bool(force),
                "log": list(log),
                "code": code_fingerprint(),
            }
        )
    listener.planned(summary.records)

    def sink(ev: Event) -> None:
        rec = summary.records[ev.task_id]
        if ev.kind == "retry":
            rec.retries += 1
        listener.event(ev, rec)
        if on_event is not None:
            on_event(ev, rec)

    payloads = executor.execute(tasks, sink)
    for t in tasks:
        rec = summary.records[t["id"]]
        payload = payloads.get(t["id"])
        if payload is None:
            rec.state, rec.error = "failed", "the executor returned no result"
            continue
        if payload["state"] != "done":
            rec.state, rec.error = "failed", payload.get("error", "failed")
            continue
        # Integrity only: a worker started after a source edit stamps its own code fingerprint.
        ok = rec.run_dir.state(check_code=False)[0] == "done"
        if not ok and "result" in payload:
            # The worker wrote to a filesystem we do not see (a remote Ray node): store what it returned.
            result = {k: v for k, v in payload["result"].items() if k != "elapsed_s"}
            with rec.run_dir.lock():
                if rec.run_dir.state(check_code=False)[0] != "done":
                    rec.run_dir.start(
                        {"experiment": t["experiment"], "seed": t["seed"], "config": t["config"]}
                    )
                    rec.run_dir.finish(result, float(payload["result"].get("elapsed_s",
                                                                            payload.get("elapsed_s", 0.0))))
        state, reason = rec.run_dir.state(check_code=False)
        if state == "done":
            rec.state = "reused" if payload.get("reused") else "ran"
            rec.result = rec.run_dir.load_result()
        else:
            rec.state, rec.error = "failed", f"run directory not finished after the run: {reason}"
    for rec in summary.records:
        if rec.same_as is not None:
            src = summary.records[rec.same_as]
            rec.state, rec.result, rec.error = src.state, src.result, src.error
    return summary
