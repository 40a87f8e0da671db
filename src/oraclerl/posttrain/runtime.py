"""Run-time helpers for the post-training experiments: device choice and CPU thread count."""

from __future__ import annotations

import contextlib

import torch

from ..errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """"auto" → CUDA when present, else CPU; "cpu" / "cuda" as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "cuda requested but no CUDA device is available; use auto or cpu")
    if name not in ("cpu", "cuda"):
        raise ConfigError("device", f"must be one of ['auto', 'cpu', 'cuda'], got {name!r}")
    return torch.device(name)


@contextlib.contextmanager
def cpu_threads(n: int):
    """Temporarily set torch's intra-op CPU threads (0 = leave unchanged); restored on exit.

    The linear AR model's tensors are small ([B, k] rows per position), so one thread avoids the
    synchronisation cost that dominates on a shared 2-core machine.
    """
    old = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
