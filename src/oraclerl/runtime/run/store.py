"""Run directories: one per (experiment, resolved config, seed), written so that nothing half-written is
ever mistaken for a result.

Layout of a run directory::

    config.json      resolved config, seed, experiment name, package version (written first)
    status.json      {"state": "running" | "done" | "failed", ...}; "done" is written last and carries
                     the SHA-256 of result.json and of metrics.jsonl
    metrics.jsonl    one JSON object per logged step
    progress.json    the latest {"fraction", "message", "step"} (written by remote workers, for live display)
    result.json      the run's result (plain JSON), written atomically before status becomes "done"
    figures/         per-run figures, if any

Every file is written to a temporary name and moved into place with ``os.replace`` (atomic on POSIX).
A run counts as finished only if ``status.json`` says "done", ``result.json`` parses, its key matches the
run's key and the SHA-256 of ``result.json`` and of ``metrics.jsonl`` match the ones recorded in the
status; anything else (killed mid-way, truncated, edited, not UTF-8, a directory where a file should be,
unreadable) is classified by :meth:`RunDir.state` so callers can report it, and re-run: no byte in a run
directory makes planning raise. A finished run made by different oraclerl sources (see
:func:`code_fingerprint`) is "stale" and re-run as well, so re-using a run never means re-using the output
of code that has since changed.

Non-finite floats are stored as ``{"$float": "inf" | "-inf" | "nan"}`` (the files stay standard JSON) and
read back as floats by :func:`loads`, so claims see the numbers the run computed.

Concurrency: each run is executed under an exclusive OS lock (:meth:`RunDir.lock`, ``fcntl.flock`` on
``<root>/.locks/<experiment>/<run>.lock``). Two processes sharing a run store never execute the same run
at the same time: the second waits for the first and then re-uses its result. The kernel releases the
lock of a holder that dies (SIGKILL, out of memory), so a dead holder never leaves a stale lock; its
half-written directory is "running" and re-run by the next holder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ...common.config import config_hash


def _json_default(o: Any):
    import numpy as np
    import torch

    if isinstance(o, torch.Tensor):
        return o.detach().cpu().tolist()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _encode(o: Any):
    """Replace non-finite floats by ``{"$float": "inf" | "-inf" | "nan"}`` so the JSON stays standard."""
    if isinstance(o, float) and not math.isfinite(o):
        return {"$float": "nan" if math.isnan(o) else ("inf" if o > 0 else "-inf")}
    if isinstance(o, dict):
        return {k: _encode(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_encode(v) for v in o]
    return o


def _decode(d: dict):
    if len(d) == 1 and "$float" in d and d["$float"] in ("inf", "-inf", "nan"):
        return float(d["$float"])
    return d


def _plain(obj: Any):
    """``obj`` as plain JSON data (tensors, arrays and paths converted), non-finite floats encoded."""
    return _encode(json.loads(json.dumps(obj, default=_json_default, allow_nan=True)))


def dumps(obj: Any) -> str:
    return json.dumps(_plain(obj), sort_keys=True, indent=1, allow_nan=False)


def loads(text: str | bytes) -> Any:
    """Parse what :func:`dumps` wrote (non-finite floats come back as floats)."""
    return json.loads(text, object_hook=_decode)


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(3).hex()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, dumps(obj))


_CODE_FINGERPRINT: str | None = None


def code_fingerprint() -> str:
    """A hash of every ``.py`` file of the installed oraclerl package (computed once per process)."""
    global _CODE_FINGERPRINT
    if _CODE_FINGERPRINT is None:
        root = Path(__file__).resolve().parents[2]  # src/oraclerl
        h = hashlib.sha256()
        for p in sorted(root.rglob("*.py")):
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(p.read_bytes() + b"\0")
        _CODE_FINGERPRINT = h.hexdigest()[:16]
    return _CODE_FINGERPRINT


def set_code_fingerprint(fingerprint: str) -> None:
    """Adopt the driver's fingerprint in a worker process, so both sides agree on what "stale" means."""
    global _CODE_FINGERPRINT
    _CODE_FINGERPRINT = str(fingerprint)


def run_key(experiment: str, config: dict, seed: int) -> str:
    from ... import __version__

    return config_hash(
        {"experiment": experiment, "config": config, "seed": int(seed), "version": __version__}
    )


def _sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes; a missing file hashes as empty (a run that logged nothing)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    return hashlib.sha256(data).hexdigest()


class RunDir:
    """One run's directory (see module docstring)."""

    def __init__(self, path: Path, key: str):
        self.path = Path(path)
        self.key = key

    @property
    def figures(self) -> Path:
        p = self.path / "figures"
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def lock_path(self) -> Path:
        """``<root>/.locks/<experiment>/<run>.lock``: outside the run directory, which a re-run replaces."""
        return self.path.parent.parent / ".locks" / self.path.parent.name / f"{self.path.name}.lock"

    def status(self) -> dict | None:
        """The parsed ``status.json``, or None when it is missing or unreadable in any way."""
        try:
            st = json.loads((self.path / "status.json").read_bytes())
        except (OSError, ValueError):  # ValueError: not UTF-8 or not JSON
            return None
        return st if isinstance(st, dict) else None

    def state(self, check_code: bool = True) -> tuple[str, str]:
        """(state, reason) with state one of "missing", "done", "running", "failed", "corrupted", "stale".

        "running" is what a killed run leaves behind (or a run in progress elsewhere); "corrupted" means
        the directory claims to be finished but its files do not check out (or cannot be read at all);
        "stale" means it is intact but was made by other oraclerl sources (only if ``check_code``).
        Never raises for what is on disk: any unreadable file or directory is "corrupted".
        """
        try:
            return self._state(check_code)
        except OSError as exc:  # e.g. the run directory itself cannot be listed
            return "corrupted", f"unreadable run directory ({exc.__class__.__name__})"

    def _state(self, check_code: bool) -> tuple[str, str]:
        if not self.path.exists() and not self.path.is_symlink():
            return "missing", "not run yet"
        if not self.path.is_dir():
            return "corrupted", "the run directory is not a directory"
        st = self.status()
        if st is None:
            if (self.path / "status.json").exists():
                return "corrupted", "unreadable status.json"
            if not (self.path / "result.json").exists():  # killed between creating the folder and the status
                return "running", "interrupted while starting (no status.json yet)"
            return "corrupted", "result.json without status.json"
        state = st.get("state")
        if state == "running":
            return "running", f"left running (pid {st.get('pid')}): interrupted or in progress"
        if state == "failed":
            return "failed", str(st.get("error", "failed"))
        if state != "done":
            return "corrupted", f"unknown state {state!r} in status.json"
        try:
            data = (self.path / "result.json").read_bytes()
        except OSError as exc:
            return "corrupted", f"result.json unreadable ({exc.__class__.__name__})"
        if st.get("sha256") != hashlib.sha256(data).hexdigest():
            return "corrupted", "result.json does not match the checksum in status.json"
        try:
            res = loads(data)
        except ValueError as exc:  # pragma: no cover - the checksum catches this first
            return "corrupted", f"result.json does not parse ({exc.__class__.__name__})"
        if not isinstance(res, dict) or res.get("_key") != self.key:
            return "corrupted", "result.json belongs to another run"
        try:
            metrics = _sha256_file(self.path / "metrics.jsonl")
        except OSError as exc:
            return "corrupted", f"metrics.jsonl unreadable ({exc.__class__.__name__})"
        if st.get("metrics_sha256") != metrics:
            return (
                "corrupted",
                "metrics.jsonl does not match the checksum in status.json (truncated or edited)",
            )
        if check_code and st.get("code") != code_fingerprint():
            return "stale", "made by other oraclerl sources (the code changed since)"
        return "done", "done"

    def check(self) -> tuple[bool, str]:
        """(finished, reason): finished iff :meth:`state` is "done"."""
        state, reason = self.state()
        return state == "done", reason

    def load_result(self) -> dict:
        res = loads((self.path / "result.json").read_bytes())
        res.pop("_key", None)
        return res

    @contextlib.contextmanager
    def lock(self, on_wait: Callable[[str], None] | None = None) -> Iterator[bool]:
        """Hold this run's exclusive OS lock (``fcntl.flock``) for the block; yields whether it had to wait.

        A process that finds the lock held calls ``on_wait(holder)`` once and blocks until the holder
        releases it; the kernel releases the lock of a holder that died, so waiting never outlives the
        holder process.
        """
        import fcntl

        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            waited = False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                waited = True
                if on_wait is not None:
                    try:
                        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                    except OSError:
                        holder = "another process"
                    on_wait(holder)
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
            yield waited
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def lock_holder(self) -> str | None:
        """Who holds this run's lock right now ("pid N on HOST"), or None when nobody does."""
        import fcntl

        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            return None
        finally:
            os.close(fd)

    def start(self, config: dict) -> None:
        """Clear any previous (unfinished) content and mark the run as running (call under :meth:`lock`)."""
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_dir()):
            self.path.unlink()
        elif self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        atomic_write_json(self.path / "config.json", config)
        atomic_write_json(
            self.path / "status.json", {"state": "running", "pid": os.getpid(), "started": time.time()}
        )

    def log_metrics(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(_plain(record), sort_keys=True, allow_nan=False) + "\n")

    def write_progress(self, fraction: float, message: str = "", step: int | None = None) -> None:
        atomic_write_json(self.path / "progress.json", {"fraction": float(fraction), "message": str(message),
                                                        "step": step, "time": time.time()})

    def read_progress(self) -> dict | None:
        try:
            prog = json.loads((self.path / "progress.json").read_bytes())
        except (OSError, ValueError):
            return None
        return prog if isinstance(prog, dict) else None

    def finish(self, result: dict, elapsed: float) -> None:
        text = dumps({**result, "_key": self.key})
        atomic_write_text(self.path / "result.json", text)
        atomic_write_json(
            self.path / "status.json",
            {
                "state": "done",
                "elapsed_s": elapsed,
                "finished": time.time(),
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
                "metrics_sha256": _sha256_file(self.path / "metrics.jsonl"),
                "code": code_fingerprint(),
            },
        )

    def fail(self, error: str) -> None:
        atomic_write_json(
            self.path / "status.json", {"state": "failed", "error": error, "finished": time.time()}
        )


class RunStore:
    """The root folder of all runs: ``<root>/<experiment>/<key>/``."""

    def __init__(self, root: Path | str = "runs"):
        self.root = Path(root)

    def run_dir(self, experiment: str, config: dict, seed: int) -> RunDir:
        key = run_key(experiment, config, seed)
        return RunDir(self.root / experiment / f"{key}-seed{seed}", key)
