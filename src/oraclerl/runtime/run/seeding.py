"""Explicit seeding: one run seed fans out to independent, named generators (no global RNG state)."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

MAX_SEED = 2**32 - 1
"""The largest run seed accepted by the CLI (``--seed``, ``--seeds``)."""
MAX_SEEDS = 10_000
"""The most seeds one command may name (``--seeds 0-9999``)."""


def check_seed(name: str, seed: int) -> int:
    """``seed`` if it is an integer in [0, MAX_SEED], else a one-line :class:`ConfigError` naming ``name``."""
    from ...errors import ConfigError

    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(name, f"must be an integer in [0, {MAX_SEED}], got {seed!r}")
    return seed


def derive_seed(seed: int, *names: str) -> int:
    """A 63-bit seed derived from ``seed`` and a path of names (stable across runs and platforms)."""
    h = hashlib.sha256(("/".join([str(int(seed)), *names])).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


class SeedTree:
    """Named generators derived from one run seed: ``SeedTree(0).torch("oracle")``.

    The same (seed, name) always gives the same stream; different names give independent streams, so
    adding a new consumer of randomness never shifts the streams of the others.
    """

    def __init__(self, seed: int, *path: str):
        self.seed = int(seed)
        self.path = path

    def child(self, name: str) -> SeedTree:
        return SeedTree(self.seed, *self.path, name)

    def int(self, name: str) -> int:
        return derive_seed(self.seed, *self.path, name)

    def torch(self, name: str, device: str | torch.device = "cpu") -> torch.Generator:
        return torch.Generator(device=device).manual_seed(self.int(name))

    def numpy(self, name: str) -> np.random.Generator:
        return np.random.default_rng(self.int(name))
