"""Optional metric tracking: TensorBoard, Weights & Biases and Trackio (``--log tensorboard,wandb``).

Every run's ``ctx.log(step, **metrics)`` goes to ``metrics.jsonl`` in its run directory; with ``--log``
the same metrics also go to the named trackers, one tracker run per (experiment, config, seed). Metric
names are namespaced (``reward/``, ``kl/``, ``oracle/``, ``regret/``; see :func:`metric_name`) so the
dashboards group them the same way for every experiment. Trackers are created in the worker process
that runs the experiment, lazily on the first logged step (TensorBoard event files land in
``<run dir>/tensorboard``).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
from pathlib import Path
from typing import Any

from ...errors import ConfigError

TRACKERS = {
    "tensorboard": ("tensorboard", "track"),
    "wandb": ("wandb", "wandb"),
    "trackio": ("trackio", "trackio"),
}
"""tracker -> (module that must be importable, pip package / extra to suggest)."""

NAMESPACES = ("reward/", "kl/", "oracle/", "regret/")

_RULES = (
    ("regret", "regret/"),
    ("reward", "reward/"),
    ("kl", "kl/"),
    ("t_", "oracle/"),
    ("oracle", "oracle/"),
    ("prompts", "oracle/"),
    ("budget", "oracle/"),
)


def metric_name(name: str) -> str:
    """The namespaced name of a metric: names with a "/" are kept; bare names are put under ``regret/``,
    ``reward/``, ``kl/`` or ``oracle/`` by their prefix (``t_comp`` -> ``oracle/t_comp``), else
    ``metrics/``."""
    if "/" in name:
        return name
    low = name.lower()
    for prefix, ns in _RULES:
        if low.startswith(prefix):
            return ns + name
    return "metrics/" + name


def scalar_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Finite numeric leaves of ``metrics`` (nested dicts joined with "/"), as floats; the rest is skipped."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(scalar_metrics(v, key + "/"))
        elif isinstance(v, (bool, int, float)) and not (isinstance(v, float) and not math.isfinite(v)):
            out[key] = float(v)
        elif hasattr(v, "item") and getattr(v, "ndim", 1) == 0:  # numpy / torch scalars
            f = float(v.item())
            if math.isfinite(f):
                out[key] = f
    return out


def check_trackers(kinds) -> list[str]:
    """Validate ``--log`` values before any work: unknown or uninstalled trackers raise
    :class:`ConfigError`."""
    out = []
    for kind in kinds or ():
        for k in str(kind).split(","):
            k = k.strip().lower()
            if not k or k == "none":
                continue
            if k not in TRACKERS:
                raise ConfigError("--log", f"must be among {sorted(TRACKERS)}, got {k!r}")
            module, extra = TRACKERS[k]
            try:
                missing = importlib.util.find_spec(module) is None
            except (ImportError, ValueError):
                missing = True
            if missing:
                hint = f"pip install 'oraclerl[{extra}]'" if extra == "track" else f"pip install {extra}"
                raise ConfigError("--log", f"{k} is not installed; {hint}")
            if k not in out:
                out.append(k)
    return out


class TensorBoardLogger:
    """Scalars to ``<run dir>/tensorboard`` via ``torch.utils.tensorboard``."""

    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self._writer = None

    def log(self, step: int, metrics: dict) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir))
        for k, v in scalar_metrics(metrics).items():
            self._writer.add_scalar(metric_name(k), v, int(step))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class WandbLogger:
    """One W&B run per oraclerl run (project ``oraclerl``; ``WANDB_MODE=offline`` works as usual)."""

    def __init__(self, name: str, config: dict, run_dir: Path, project: str = "oraclerl"):
        self.name, self.config, self.run_dir, self.project = name, config, Path(run_dir), project
        self._run = None

    def log(self, step: int, metrics: dict) -> None:
        if self._run is None:
            import wandb

            self._run = wandb.init(
                project=self.project, name=self.name, config=self.config, dir=str(self.run_dir), reinit=True
            )
        self._run.log({metric_name(k): v for k, v in scalar_metrics(metrics).items()}, step=int(step))

    def close(self) -> None:
        if self._run is not None:
            self._run.finish()


class TrackioLogger:
    """One Trackio run per oraclerl run (project ``oraclerl``)."""

    def __init__(self, name: str, config: dict, project: str = "oraclerl"):
        self.name, self.config, self.project = name, config, project
        self._mod = None

    def log(self, step: int, metrics: dict) -> None:
        if self._mod is None:
            import trackio

            trackio.init(project=self.project, name=self.name, config=self.config)
            self._mod = trackio
        values = {metric_name(k): v for k, v in scalar_metrics(metrics).items()}
        if "step" in inspect.signature(self._mod.log).parameters:
            self._mod.log(values, step=int(step))
        else:  # older releases count steps themselves
            self._mod.log(values)

    def close(self) -> None:
        if self._mod is not None:
            self._mod.finish()


def make_loggers(kinds, run_dir: Path, name: str, config: dict) -> list:
    """The tracker objects for one run (each with ``log(step, metrics)`` and ``close()``)."""
    out: list = []
    for k in check_trackers(kinds):
        if k == "tensorboard":
            out.append(TensorBoardLogger(Path(run_dir) / "tensorboard"))
        elif k == "wandb":
            out.append(WandbLogger(name, config, run_dir))
        else:
            out.append(TrackioLogger(name, config))
    return out
