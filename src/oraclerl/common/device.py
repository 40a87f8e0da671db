"""Device choice, in one place: what ``device="auto"`` means, and one clear error for a device that is not
there."""

from __future__ import annotations

import torch

from ..errors import ConfigError


def resolve_device(device: str | torch.device | None = "auto", *, field: str = "device") -> torch.device:
    """``None`` or ``"auto"`` → CUDA when present, else CPU; otherwise the device named (``cpu``, ``cuda``,
    ``cuda:N``, ``mps``), checked to exist here. A bad name raises a one-line :class:`ConfigError` on
    ``field``."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(field, f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                field, f"{str(device)!r} requested but no CUDA device is available; use auto or cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(field, f"{str(device)!r}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(field, f"{str(device)!r}: MPS is not available on this machine")
    elif dev.type != "cpu":
        raise ConfigError(field, f"unsupported device {str(device)!r} (use auto, cpu, cuda or cuda:N)")
    return dev
