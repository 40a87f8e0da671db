"""The one validation system: checks that fail fast with a one-line :class:`~oraclerl.errors.ConfigError`
naming the field and what is allowed (used by :func:`oraclerl.common.config.validate` for config fields,
and directly by models, oracles and the command line), and the memory check run before any run starts."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import ConfigError


def check_finite(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number, got {value!r}")
    return float(value)


def check_positive(name: str, value: float) -> float:
    value = check_finite(name, value)
    if value <= 0:
        raise ConfigError(name, f"must be > 0, got {value!r}")
    return value


def check_nonneg(name: str, value: float) -> float:
    value = check_finite(name, value)
    if value < 0:
        raise ConfigError(name, f"must be >= 0, got {value!r}")
    return value


def check_int(name: str, value: int, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
        isinstance(value, float) and value.is_integer()
    ):
        raise ConfigError(name, f"must be an integer, got {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ConfigError(name, f"must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ConfigError(name, f"must be <= {high}, got {value}")
    return value


def interval(
    low: float | None, high: float | None, *, low_open: bool = False, high_open: bool = False
) -> str:
    """An interval as text, e.g. ``[0, inf)``: the one wording every range error uses."""
    return f"{'(' if low_open else '['}{'-inf' if low is None else low}, {'inf' if high is None else high}" \
           f"{')' if high_open else ']'}"


def in_interval(value: float, low: float | None, high: float | None, *, low_open: bool = False,
                high_open: bool = False) -> bool:
    """Whether ``value`` lies in the interval (``None`` = unbounded on that side)."""
    lo_bad = low is not None and (value < low or (low_open and value == low))
    hi_bad = high is not None and (value > high or (high_open and value == high))
    return not (lo_bad or hi_bad)


def check_range(
    name: str, value: float, low: float | None = None, high: float | None = None, *,
    low_open: bool = False, high_open: bool = False,
) -> float:
    value = check_finite(name, value)
    if not in_interval(value, low, high, low_open=low_open, high_open=high_open):
        raise ConfigError(name, f"must be in {interval(low, high, low_open=low_open, high_open=high_open)}, "
                                f"got {value!r}")
    return value


def require_hf_extra(experiment: str) -> None:
    """Raise :class:`ConfigError` naming ``experiment`` unless the [hf] extra (transformers, tokenizers) is
    installed; checked by the configs of experiments that run a causal LM, before any work."""
    import importlib.util

    missing = [m for m in ("transformers", "tokenizers") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError("experiment", f"{experiment} needs the [hf] extra ({', '.join(missing)} missing): "
                          "pip install -e '.[hf]'")


def check_choice(name: str, value, choices: Sequence) -> object:
    if value not in choices:
        raise ConfigError(name, f"must be one of {list(choices)}, got {value!r}")
    return value


def check_probabilities(name: str, p: torch.Tensor, dim: int = -1, atol: float = 1e-6) -> torch.Tensor:
    """Check that ``p`` is a (batch of) probability vector(s) along ``dim``."""
    p = torch.as_tensor(p)
    if not torch.is_floating_point(p):
        p = p.double()
    if p.numel() == 0:
        raise ConfigError(name, "must be non-empty")
    if not torch.isfinite(p).all():
        raise ConfigError(name, "must be finite (found NaN or inf)")
    if (p < 0).any():
        raise ConfigError(name, f"must be non-negative (min {p.min().item():.3g})")
    s = p.sum(dim)
    if not torch.allclose(s, torch.ones_like(s), atol=atol, rtol=0):
        bad = (s - 1).abs().max().item()
        raise ConfigError(name, f"must sum to 1 along dim {dim} (max deviation {bad:.3g}, tolerance {atol})")
    return p


def check_log_probabilities(name: str, logp: torch.Tensor, dim: int = -1, atol: float = 1e-6) -> torch.Tensor:
    """Check that ``logp`` holds normalised log-probabilities (``-inf`` allowed for zero mass)."""
    logp = torch.as_tensor(logp)
    if torch.isnan(logp).any() or (logp == float("inf")).any():
        raise ConfigError(name, "log-probabilities must not be NaN or +inf")
    if (logp > atol).any():
        raise ConfigError(name, "log-probabilities must be <= 0")
    s = torch.logsumexp(logp, dim)
    if not torch.allclose(s, torch.zeros_like(s), atol=atol, rtol=0):
        raise ConfigError(
            name, f"must be normalised along dim {dim} (max |logsumexp| {s.abs().max().item():.3g})"
        )
    return logp


def check_shape(name: str, t: torch.Tensor, shape: Sequence[int | None]) -> torch.Tensor:
    """Check ``t.shape`` against ``shape`` (``None`` = any size)."""
    if t.dim() != len(shape) or any(s is not None and s != ts for s, ts in zip(shape, t.shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ConfigError(name, f"must have shape {want}, got {tuple(t.shape)}")
    return t


def check_output_dir(name: str, path: str | os.PathLike) -> Path:
    """Check, without creating anything, that ``path`` is (or can be created as) a writable directory.

    The command-line checks its output and run-store folders with this before any run starts, so a
    folder that is a file, is read-only or cannot be created fails with one line instead of after the
    work. Writability is probed by creating and removing a temporary file in the nearest existing folder
    (permission bits alone do not say what a read-only filesystem or root can do).
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(name, f"{str(p)!r} exists and is not a directory")
    probe = p
    while not probe.exists():
        if probe.is_symlink():
            raise ConfigError(name, f"{str(probe)!r} is a broken symbolic link")
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(name, f"cannot create {str(p)!r}: {str(probe)!r} is not a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".oraclerl-write-test-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        what = "is not writable" if probe == p else f"cannot be created ({str(probe)!r} is not writable)"
        raise ConfigError(name, f"{str(p)!r} {what}: {exc.strerror or type(exc).__name__}") from None
    return p


def available_memory() -> int | None:
    """Bytes of memory available to a new run on this machine (``MemAvailable``), None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil missing or unsupported here: no check
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def check_memory(name: str, estimate: int, available: int | None = None) -> None:
    """Raise a one-line :class:`ConfigError` when one run of ``name`` would need more memory than is
    available.

    ``estimate`` comes from the experiment's ``memory(config)`` hook (bytes); ``available`` defaults to
    :func:`available_memory`. Checked before any run starts, so the sizes are reduced before allocating.
    """
    available = available_memory() if available is None else available
    if available is not None and estimate > available:
        raise ConfigError(
            name,
            f"one run needs about {_gib(estimate)} of memory at this config, more than the "
            f"{_gib(available)} available on this machine; reduce its size fields",
        )


def power_exceeds(base: int, exponent: int, limit: int) -> bool:
    """``base ** exponent > limit`` for non-negative integers, without building a huge power (a config
    check on an enumeration size must not itself hang on ``--set exponent=1e30``)."""
    if base <= 1 or exponent <= 0:
        return (1 if exponent <= 0 else base) > limit
    if exponent * math.log2(base) > math.log2(max(limit, 1)) + 1:
        return True
    return base ** exponent > limit
