"""Run directories: one per (experiment, resolved config, seed), written so that nothing half-written is
ever mistaken for a result.

Layout of a run directory::

    config.json      resolved config, seed, experiment name, package version (written first)
    status.json      {"state": "running" | "done" | "failed", ...}; "done" is written last and carries
                     the SHA-256 of result.json
    metrics.jsonl    one JSON object per logged step
    progress.json    the latest {"fraction", "message", "step"} (written by remote workers, for live display)
    result.json      the run's result (plain JSON), written atomically before status becomes "done"
    figures/         per-run figures, if any

Every file is written to a temporary name and moved into place with ``os.replace`` (atomic on POSIX).
A run counts as finished only if ``status.json`` says "done", ``result.json`` parses, its key matches the
run's key and its SHA-256 matches the one recorded in the status; anything else (killed mid-way,
corrupted, edited) is classified by :meth:`RunDir.state` so callers can report it, and re-run. A finished
run made by different oraclerl sources (see :func:`code_fingerprint`) is "stale" and re-run as well, so
re-using a run never means re-using the output of code that has since changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

from .config import config_hash


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


def _sanitize(o: Any):
    """Replace non-finite floats by strings so the JSON stays standard ("inf", "-inf", "nan")."""
    if isinstance(o, float) and not math.isfinite(o):
        return "nan" if math.isnan(o) else ("inf" if o > 0 else "-inf")
    if isinstance(o, dict):
        return {k: _sanitize(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_sanitize(v) for v in o]
    return o


def dumps(obj: Any) -> str:
    return json.dumps(_sanitize(json.loads(json.dumps(obj, default=_json_default, allow_nan=True))),
                      sort_keys=True, indent=1)


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
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
        root = Path(__file__).resolve().parents[1]
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
    from .. import __version__

    return config_hash({"experiment": experiment, "config": config, "seed": int(seed), "version": __version__})


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

    def status(self) -> dict | None:
        try:
            return json.loads((self.path / "status.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def state(self, check_code: bool = True) -> tuple[str, str]:
        """(state, reason) with state one of "missing", "done", "running", "failed", "corrupted", "stale".

        "running" is what a killed run leaves behind (or a run in progress elsewhere); "corrupted" means
        the directory claims to be finished but its files do not check out (or cannot be read at all);
        "stale" means it is intact but was made by other oraclerl sources (only if ``check_code``).
        """
        if not self.path.exists():
            return "missing", "not run yet"
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
            text = (self.path / "result.json").read_text()
        except OSError as exc:
            return "corrupted", f"result.json unreadable ({exc.__class__.__name__})"
        if st.get("sha256") != hashlib.sha256(text.encode()).hexdigest():
            return "corrupted", "result.json does not match the checksum in status.json"
        try:
            res = json.loads(text)
        except json.JSONDecodeError as exc:  # pragma: no cover - the checksum catches this first
            return "corrupted", f"result.json does not parse ({exc.__class__.__name__})"
        if not isinstance(res, dict) or res.get("_key") != self.key:
            return "corrupted", "result.json belongs to another run"
        if check_code and st.get("code") != code_fingerprint():
            return "stale", "made by other oraclerl sources (the code changed since)"
        return "done", "done"

    def check(self) -> tuple[bool, str]:
        """(finished, reason): finished iff :meth:`state` is "done"."""
        state, reason = self.state()
        return state == "done", reason

    def load_result(self) -> dict:
        res = json.loads((self.path / "result.json").read_text())
        res.pop("_key", None)
        return res

    def start(self, config: dict) -> None:
        """Clear any previous (unfinished) content and mark the run as running."""
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        atomic_write_json(self.path / "config.json", config)
        atomic_write_json(self.path / "status.json", {"state": "running", "pid": os.getpid(), "started": time.time()})

    def log_metrics(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(_sanitize(json.loads(json.dumps(record, default=_json_default))), sort_keys=True) + "\n")

    def write_progress(self, fraction: float, message: str = "", step: int | None = None) -> None:
        atomic_write_json(self.path / "progress.json", {"fraction": float(fraction), "message": str(message),
                                                        "step": step, "time": time.time()})

    def read_progress(self) -> dict | None:
        try:
            return json.loads((self.path / "progress.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def finish(self, result: dict, elapsed: float) -> None:
        text = dumps({**result, "_key": self.key})
        atomic_write_text(self.path / "result.json", text)
        atomic_write_json(self.path / "status.json", {"state": "done", "elapsed_s": elapsed, "finished": time.time(),
                                                      "sha256": hashlib.sha256(text.encode()).hexdigest(),
                                                      "code": code_fingerprint()})

    def fail(self, error: str) -> None:
        atomic_write_json(self.path / "status.json", {"state": "failed", "error": error, "finished": time.time()})


class RunStore:
    """The root folder of all runs: ``<root>/<experiment>/<key>/``."""

    def __init__(self, root: Path | str = "runs"):
        self.root = Path(root)

    def run_dir(self, experiment: str, config: dict, seed: int) -> RunDir:
        key = run_key(experiment, config, seed)
        return RunDir(self.root / experiment / f"{key}-seed{seed}", key)
