"""The worker side of the executors: what runs one task in whatever process an executor chose.

:func:`execute_task` resolves the experiment (importing the module that registered it when this process
lacks it), rebuilds and validates the config, and calls :func:`~oraclerl.runtime.run.runner.run_one` with one
torch intra-op thread, so a run's result does not depend on the executor or the number of workers.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from ...common.threads import torch_threads

_IN_WORKER = False


def in_worker() -> bool:
    """True in a process started by an executor to run tasks (test modules use it to register fakes)."""
    return _IN_WORKER


def _mark_worker() -> None:
    global _IN_WORKER
    _IN_WORKER = True


def resolve_experiment(name: str, module: str | None = None, module_file: str | None = None):
    """Find a registered experiment, importing the module that registers it if this process lacks it.

    Built-in experiments are found by the registry; experiments registered elsewhere (a test module, a
    benchmark script) are imported by module name, falling back to the module's file path.
    """
    from ..run import registry

    registry._load()
    if name not in registry._REGISTRY and module:
        if module == "__main__" or module.endswith("__mp_main__"):
            if module_file:
                spec = importlib.util.spec_from_file_location("_oraclerl_user_main", module_file)
                mod = importlib.util.module_from_spec(spec)
                sys.modules["_oraclerl_user_main"] = mod
                spec.loader.exec_module(mod)
        else:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError:
                if not module_file:
                    raise
                root = Path(module_file).resolve().parent
                for _ in range(module.count(".")):
                    root = root.parent
                sys.path.insert(0, str(root))
                importlib.import_module(module)
    return registry.get_experiment(name)


class _StepTap:
    """A metric sink that remembers the last logged step and forwards progress with it."""

    def __init__(self, send: Callable[[float, str, int | None], None] | None):
        self.send = send
        self.step: int | None = None
        self.fraction = 0.0
        self.message = ""

    def log(self, step: int, metrics: dict) -> None:
        self.step = int(step)
        self.progress(self.fraction, self.message)

    def progress(self, fraction: float, message: str = "") -> None:
        self.fraction, self.message = fraction, message
        if self.send is not None:
            self.send(fraction, message, self.step)


def execute_task(task: dict, progress: Callable[[float, str, int | None], None] | None = None) -> dict:
    """Run one task (one experiment, config and seed) into the run store; returns a plain-data payload.

    The payload is ``{"state": "done", "result", "reused", "elapsed_s", "pid"}`` or
    ``{"state": "failed", "error", "traceback", "pid"}``. Exceptions raised by the experiment are
    caught here (a failed run is recorded, not retried: it would fail again).
    """
    from ...common.config import from_dict, validate
    from ..reporting.tracking import make_loggers
    from ..run.runner import run_one
    from ..run.store import RunStore, set_code_fingerprint

    t0 = time.perf_counter()
    loggers: list = []
    try:
        exp = resolve_experiment(task["experiment"], task.get("module"), task.get("module_file"))
        cfg = validate(from_dict(exp.config, task["config"]))
        if task.get("code"):
            set_code_fingerprint(task["code"])
        store = RunStore(task["store"])
        rd = store.run_dir(exp.name, task["config"], task["seed"])
        loggers = make_loggers(task.get("log", ()), rd.path, f"{exp.name}-{rd.path.name}", task["config"])
        tap = _StepTap(progress)
        with torch_threads(int(task.get("threads", 1))):
            result, reused = run_one(exp, cfg, task["seed"], store, force=bool(task.get("force")),
                                     progress=tap.progress, loggers=[tap, *loggers])
    except Exception as exc:  # noqa: BLE001 - reported to the driver as a failed run
        return {"state": "failed", "error": "".join(traceback.format_exception_only(type(exc), exc)).strip(),
                "traceback": traceback.format_exc(), "pid": os.getpid()}
    finally:
        for lg in loggers:
            with contextlib.suppress(Exception):
                lg.close()
    return {"state": "done", "result": result, "reused": reused, "elapsed_s": time.perf_counter() - t0,
            "pid": os.getpid()}


def _throttled(send: Callable[..., None], interval: float) -> Callable[[float, str, int | None], None]:
    last = [0.0]

    def progress(fraction: float, message: str, step: int | None) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - last[0] < interval:
            return
        last[0] = now
        send(fraction, message, step)

    return progress
