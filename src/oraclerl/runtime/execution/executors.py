"""Sweep executors: local worker processes (the default) and Ray, behind one code path.

A *task* is plain data (experiment name, the module that registers it, the resolved config as a dict,
the seed, the run store's root). Every executor runs the same :func:`execute_task` on it, which calls
:func:`~oraclerl.runtime.run.runner.run_one`: the worker writes the run directory itself (atomic files, a
status file per run), so a result is written once, by the one process that computed it.

Executors report :class:`Event` s to the caller (start, progress, done, failed, retry) and return one
payload per task. Fault model:

* :class:`LocalExecutor` keeps ``workers`` persistent processes (forked from a ``forkserver`` that has
  imported torch and the experiments once; ``spawn`` where there is none), each with its own pipe. A
  worker that dies (SIGKILL, out of memory) is detected through its process sentinel; only the task it
  was running is re-queued (``max_retries`` times) and a fresh worker replaces it. The other workers
  are not disturbed. ``workers=0`` runs tasks inline in the calling process (debugging).
* :class:`RayExecutor` submits one Ray task per run (``num_cpus=1``) and lets Ray re-try tasks whose
  worker died (``max_retries``). Live progress comes from ``progress.json`` in the run directory.

Every worker runs with one intra-op thread, so results do not depend on the executor or the number of
workers (floating-point reductions with a different thread count may round differently).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait as mp_wait

from ...common.threads import torch_threads
from ...errors import ConfigError
from .worker import _mark_worker, _throttled, execute_task, in_worker, resolve_experiment

__all__ = [
    "Event",
    "LocalExecutor",
    "RayExecutor",
    "make_executor",
    "require_ray",
    "start_local_ray",
    "execute_task",
    "in_worker",
    "resolve_experiment",
    "torch_threads",
    "EXECUTORS",
]

EXECUTORS = ("local", "ray")


@dataclass
class Event:
    """Something an executor reports about a task."""

    kind: str
    """"start", "progress", "done" (payload state done), "failed" (payload state failed) or "retry"."""
    task_id: int
    pid: int | None = None
    fraction: float | None = None
    message: str = ""
    step: int | None = None
    payload: dict | None = None


EventSink = Callable[[Event], None]


def _no_events(_: Event) -> None:
    return None


def _worker_main(conn, threads: int) -> None:
    """A local worker: receive tasks on ``conn`` until ``None``; report start, progress and the payload."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides what an interrupt means
    _mark_worker()
    import torch

    torch.set_num_threads(threads)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        tid = task["id"]
        try:
            conn.send(("start", tid, os.getpid()))
            send = _throttled(lambda f, m, s, _t=tid: conn.send(("progress", _t, f, m, s)), 0.1)
            payload = execute_task({**task, "threads": threads}, send)
            conn.send(("done", tid, payload))
        except (BrokenPipeError, EOFError, OSError):  # the driver went away
            return


# --------------------------------------------------------------------------------------------- local pool
class _Worker:
    def __init__(self, proc, conn):
        self.proc, self.conn, self.task = proc, conn, None
        self.alive_once = False  # it reported "start" for some task: it did come up


@contextlib.contextmanager
def _hide_unimportable_main():
    """New processes re-import ``__main__`` from its file; when there is no such file (``python -``, a REPL,
    a notebook) that fails in every worker, so hide the path while processes start."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    hide = (path is not None and getattr(getattr(main, "__spec__", None), "name", None) is None
            and not os.path.isfile(path))
    if hide:
        del main.__file__
    try:
        yield
    finally:
        if hide:
            main.__file__ = path


def _unsafe_path_entry(entry: str, cwd: str, package_root: str) -> bool:
    """True for a ``sys.path`` entry that is the current directory (``""``, ``"."`` or its absolute path),
    unless the oraclerl package itself is imported from there (a source checkout run in place)."""
    try:
        resolved = os.path.realpath(entry or ".")
    except (OSError, ValueError):
        return False
    return resolved == cwd and resolved != package_root


@contextlib.contextmanager
def _no_cwd_imports():
    """While worker processes start, keep the current directory out of their ``sys.path``.

    A new process is ``python -c ...`` (which would put the current directory first on ``sys.path``, so a
    ``random.py`` or ``socket.py`` lying there would be imported by the fork server itself) and then
    adopts the parent's ``sys.path``. ``PYTHONSAFEPATH=1`` stops the former, and the parent's
    ``sys.path`` is handed over without the current directory, so workers import only the installed
    package and its dependencies (see docs/architecture.md, "Security").
    """
    saved_path, saved_env = list(sys.path), os.environ.get("PYTHONSAFEPATH")
    cwd = os.path.realpath(os.getcwd())
    package_root = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    sys.path[:] = [p for p in sys.path if not _unsafe_path_entry(p, cwd, package_root)]
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        yield
    finally:
        sys.path[:] = saved_path
        if saved_env is None:
            os.environ.pop("PYTHONSAFEPATH", None)
        else:
            os.environ["PYTHONSAFEPATH"] = saved_env


class LocalExecutor:
    """Persistent local worker processes; a dead worker's task is re-queued, the others carry on."""

    name = "local"

    def __init__(self, workers: int | None = None, max_retries: int = 2, threads: int = 1,
                 start_method: str | None = None):
        if workers is None:
            workers = min(8, os.cpu_count() or 1)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ConfigError("--workers", f"must be an integer >= 0 (0 runs inline), got {workers!r}")
        if max_retries < 0:
            raise ConfigError("max_retries", f"must be >= 0, got {max_retries}")
        self.workers, self.max_retries, self.threads = workers, max_retries, threads
        if start_method is None:
            start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        self.start_method = start_method

    def describe(self) -> str:
        return (
            f"local ({self.workers} worker{'s' if self.workers != 1 else ''})" if self.workers else "inline"
        )

    def execute(self, tasks: list[dict], on_event: EventSink = _no_events) -> dict[int, dict]:
        if not tasks:
            return {}
        if self.workers == 0:
            return self._inline(tasks, on_event)
        return self._pool(tasks, on_event)

    def _inline(self, tasks, on_event):
        out = {}
        for t in tasks:
            on_event(Event("start", t["id"], pid=os.getpid()))
            send = _throttled(
                lambda f, m, s, _t=t["id"]: on_event(Event("progress", _t, fraction=f, message=m, step=s)),
                0.1,
            )
            payload = execute_task({**t, "threads": self.threads}, send)
            out[t["id"]] = payload
            on_event(Event("done" if payload["state"] == "done" else "failed", t["id"], payload=payload))
        return out

    def _spawn(self, ctx) -> _Worker:
        parent, child = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=_worker_main, args=(child, self.threads), daemon=True, name="oraclerl-worker"
        )
        with _hide_unimportable_main(), _no_cwd_imports():
            proc.start()
        child.close()
        return _Worker(proc, parent)

    def _pool(self, tasks, on_event):
        ctx = mp.get_context(self.start_method)
        if self.start_method == "forkserver":
            ctx.set_forkserver_preload(["oraclerl.runtime.execution._preload"])
        pending: deque = deque(tasks)
        deaths: dict[int, int] = {}
        startup_failures = 0
        out: dict[int, dict] = {}
        workers = [self._spawn(ctx) for _ in range(min(self.workers, len(tasks)))]
        clean = False
        try:
            while pending or any(w.task is not None for w in workers):
                for w in workers:
                    if w.task is None and pending and w.proc.is_alive():
                        w.task = pending.popleft()
                        try:
                            w.conn.send(w.task)
                        except OSError:  # died before it got the task: not the task's fault
                            pending.appendleft(w.task)
                            w.task = None
                ready = mp_wait([w.conn for w in workers] + [w.proc.sentinel for w in workers], timeout=0.5)
                for w in list(workers):
                    if w.conn in ready or w.proc.sentinel in ready:
                        self._drain(w, out, on_event)
                    if w.proc.exitcode is not None:  # dead: re-queue its task, replace it
                        self._drain(w, out, on_event)
                        if w.task is not None and not w.alive_once:  # never came up: not the task's fault
                            startup_failures += 1
                            if startup_failures >= 3:
                                raise RuntimeError(f"local worker processes exit during start-up (exit code "
                                                   f"{w.proc.exitcode}); try --workers 0 to run inline")
                            pending.appendleft(w.task)
                            w.task = None
                        if w.task is not None:
                            tid = w.task["id"]
                            deaths[tid] = deaths.get(tid, 0) + 1
                            if deaths[tid] <= self.max_retries:
                                pending.appendleft(w.task)
                                on_event(
                                    Event(
                                        "retry",
                                        tid,
                                        pid=w.proc.pid,
                                        message=f"worker {w.proc.pid} died (exit code {w.proc.exitcode})",
                                    )
                                )
                            else:
                                payload = {"state": "failed", "pid": w.proc.pid,
                                           "error": f"worker died {deaths[tid]} times "
                                                    f"(last exit code {w.proc.exitcode})"}
                                out[tid] = payload
                                on_event(Event("failed", tid, payload=payload))
                            w.task = None
                        w.conn.close()
                        workers.remove(w)
                        if pending:
                            workers.append(self._spawn(ctx))
            clean = True
        finally:
            for w in workers:
                if clean:
                    with contextlib.suppress(OSError):
                        w.conn.send(None)
                else:
                    w.proc.kill()
            for w in workers:
                w.proc.join(timeout=5)
                if w.proc.exitcode is None:
                    w.proc.kill()
                    w.proc.join()
                w.conn.close()
        return out

    @staticmethod
    def _drain(w: _Worker, out: dict, on_event: EventSink) -> None:
        while True:
            try:
                if not w.conn.poll():
                    return
                msg = w.conn.recv()
            except (EOFError, OSError):
                return
            kind, tid = msg[0], msg[1]
            if kind == "start":
                w.alive_once = True
                on_event(Event("start", tid, pid=msg[2]))
            elif kind == "progress":
                on_event(Event("progress", tid, fraction=msg[2], message=msg[3], step=msg[4]))
            elif kind == "done":
                out[tid] = msg[2]
                if w.task is not None and w.task["id"] == tid:
                    w.task = None
                on_event(Event("done" if msg[2]["state"] == "done" else "failed", tid, payload=msg[2]))


# --------------------------------------------------------------------------------------------- Ray
def require_ray():
    """Import Ray or raise a one-line :class:`ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--executor", "ray is not installed; install the extra: pip install 'oraclerl[ray]'"
        ) from None
    return ray


def _ray_task(task: dict) -> dict:
    from ..run.store import RunStore

    _mark_worker()
    rd = RunStore(task["store"]).run_dir(task["experiment"], task["config"], task["seed"])
    import torch

    torch.set_num_threads(int(task.get("threads", 1)))
    send = _throttled(lambda f, m, s: rd.write_progress(f, m, s), 0.25)
    return execute_task(task, send)


def _probe_ray_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast with a one-line :class:`ConfigError` when nothing answers at a Ray ``--address``.

    ``ray.init(address=...)`` waits a long time for a host that does not answer; a TCP connection with a
    timeout tells within ``timeout_s`` seconds. ``auto`` and ``local`` are left to Ray.
    """
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = hostport.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            "--address", f"must look like HOST:PORT or ray://HOST:PORT (or auto), got {address!r}"
        )
    import socket

    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise ConfigError(
            "--address", f"no Ray cluster answers at {address} ({why} within {timeout_s:g} s)"
        ) from None


@contextlib.contextmanager
def start_local_ray(num_cpus: int | None = None):
    """Start a private Ray instance on this machine for the block, and shut it down afterwards.

    Every server of the instance binds to 127.0.0.1: Ray's GCS, raylet (node and object manager) and core
    worker gRPC servers listen on loopback when the node address is ``127.0.0.1`` and on every interface
    otherwise (measured with ray 2.60, ``tests/test_sweep_ray.py``), and ``ray.init`` replaces a loopback
    ``_node_ip_address`` by the machine's address unless ``ray._private.ray_constants.ENABLE_RAY_CLUSTER`` is
    false (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, the single-machine mode Ray uses on macOS and Windows), so
    both are set for the start; the dashboard is off. Defence in depth, Ray's token authentication is on too,
    with a fresh random token that exists only in the environment of this process and of the Ray processes it
    starts (never on disk), and every request without it is refused (gRPC ``UNAUTHENTICATED``, HTTP 401).
    ``ray.init`` runs from an empty temporary directory, because Ray puts the driver's current directory on
    every worker's ``sys.path`` (see docs/architecture.md, "Security").
    """
    import secrets
    import tempfile

    ray = require_ray()
    try:
        from ray._raylet import Config, get_authentication_mode  # noqa: F401 - token authentication exists
    except ImportError:
        raise ConfigError(
            "--executor",
            f"ray {ray.__version__} has no token authentication, so oraclerl will not "
            "start an open Ray instance; upgrade ray or pass --address",
        ) from None
    saved = {
        k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    }
    # Forced even over RAY_AUTH_MODE=disabled, and a fresh token rather than Ray's default one, which it
    # keeps in ~/.ray/auth_token and shares between every cluster of the user.
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read by the Ray processes started below
    Config.initialize("")  # this process reads the settings again
    from ray._private import ray_constants

    cluster_mode = ray_constants.ENABLE_RAY_CLUSTER  # read when ray was imported: set for the start
    ray_constants.ENABLE_RAY_CLUSTER = False
    cwd = os.getcwd()
    empty = tempfile.mkdtemp(prefix="oraclerl-ray-")
    try:
        os.chdir(empty)
        try:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                     _node_ip_address="127.0.0.1")
        finally:
            os.chdir(cwd)
            ray_constants.ENABLE_RAY_CLUSTER = cluster_mode
        yield ray
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        with contextlib.suppress(OSError):
            os.rmdir(empty)


class RayExecutor:
    """One Ray task per run (``num_cpus=1``); Ray re-tries a task whose worker died (``max_retries``).

    Uses the running Ray instance if there is one (e.g. one a test started), otherwise starts a private
    one on this machine (:func:`start_local_ray`, ``num_cpus``) or connects to ``address`` (then the run
    store must live on a filesystem the cluster's workers share). An ``address`` where nothing answers
    is rejected here, before any run starts.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, max_retries: int = 2,
                 threads: int = 1):
        self.ray = require_ray()
        if num_cpus is not None and num_cpus < 1:
            raise ConfigError("--workers", f"must be >= 1 for Ray, got {num_cpus}")
        if address:
            _probe_ray_address(address)
        self.address, self.num_cpus, self.max_retries, self.threads = address, num_cpus, max_retries, threads

    def describe(self) -> str:
        return f"ray ({self.address or 'local'}{f', {self.num_cpus} CPUs' if self.num_cpus else ''})"

    def execute(self, tasks: list[dict], on_event: EventSink = _no_events) -> dict[int, dict]:
        if not tasks:
            return {}
        ray = self.ray
        if ray.is_initialized():
            return self._run(ray, tasks, on_event)
        if self.address:
            ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
            try:
                return self._run(ray, tasks, on_event)
            finally:
                ray.shutdown()
        with start_local_ray(self.num_cpus):
            return self._run(ray, tasks, on_event)

    def _run(self, ray, tasks, on_event):
        from ..run.store import RunStore

        remote = ray.remote(num_cpus=1, max_retries=self.max_retries)(_ray_task)
        refs = {remote.remote({**t, "threads": self.threads}): t for t in tasks}
        dirs = {t["id"]: RunStore(t["store"]).run_dir(t["experiment"], t["config"], t["seed"]) for t in tasks}
        seen: dict[int, float] = {}
        out: dict[int, dict] = {}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0.3)
            for ref in ready:
                t = refs.pop(ref)
                try:
                    payload = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - worker crashed more than max_retries times, etc.
                    payload = {
                        "state": "failed",
                        "error": f"ray: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                    }
                out[t["id"]] = payload
                if t["id"] not in seen:
                    on_event(Event("start", t["id"], pid=payload.get("pid")))
                on_event(Event("done" if payload["state"] == "done" else "failed", t["id"], payload=payload))
            for t in refs.values():
                prog = dirs[t["id"]].read_progress()
                if prog and prog.get("time", 0) > seen.get(t["id"], 0):
                    if t["id"] not in seen:
                        on_event(Event("start", t["id"]))
                    seen[t["id"]] = prog["time"]
                    on_event(Event("progress", t["id"], fraction=prog["fraction"], message=prog["message"],
                                   step=prog.get("step")))
        return out


def make_executor(kind: str = "local", workers: int | None = None, address: str | None = None):
    """Build an executor from CLI options; unknown or uninstalled executors raise :class:`ConfigError`."""
    if kind not in EXECUTORS:
        raise ConfigError("--executor", f"must be one of {list(EXECUTORS)}, got {kind!r}")
    if kind == "local":
        if address:
            raise ConfigError("--address", "only applies to --executor ray")
        return LocalExecutor(workers)
    return RayExecutor(address=address, num_cpus=workers)
