"""Multi-seed sweeps, the plan: ``oraclerl sweep EXPERIMENT --seeds 0-9 --set key=v1,v2 ...``.

A sweep is a grid of configs (the cartesian product of the ``--set`` values) times a list of seeds. It
is planned and validated completely before anything runs (unknown key, out-of-range value: one-line
:class:`~oraclerl.errors.ConfigError`); :func:`oraclerl.runtime.reporting.sweep_tables.run_sweep` executes the
plan resumably on any executor and aggregates it into tables.
"""

from __future__ import annotations

import itertools
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from ...common.config import config_hash, field_names, to_dict
from ...errors import ConfigError
from ..run.registry import Experiment
from ..run.seeding import MAX_SEED, MAX_SEEDS
from .engine import RunSpec


def parse_seeds(text: str | None) -> list[int] | None:
    """``"0-9"``, ``"0,3,7"`` or ``"0-2,10"`` -> a list of distinct non-negative seeds (None stays None)."""
    if text is None:
        return None
    ranges: list[tuple[int, int]] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
            else:
                lo = hi = int(part)
            ranges.append((lo, hi))
    except ValueError:
        raise ConfigError("--seeds", f"must look like 0-9 or 0,1,5; got {text!r}") from None
    if not ranges or min(lo for lo, _ in ranges) < 0 or max(hi for _, hi in ranges) > MAX_SEED:
        raise ConfigError("--seeds", f"must name seeds in [0, {MAX_SEED}]; got {text!r}")
    count = sum(hi - lo + 1 for lo, hi in ranges)  # counted before anything is built
    if count > MAX_SEEDS:
        raise ConfigError("--seeds", f"names {count} seeds, more than the {MAX_SEEDS} one command may run; "
                                     f"got {text!r}")
    return list(dict.fromkeys(s for lo, hi in ranges for s in range(lo, hi + 1)))


MAX_GRID_POINTS = 10_000
"""The most grid points (configs) one sweep may have."""


def _is_list_field(tp: Any) -> bool:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    origin = typing.get_origin(tp)
    if origin is typing.Union or (origin is not None and str(origin) == "types.UnionType"):
        return any(_is_list_field(a) for a in args)
    return origin in (list, tuple)


def expand_grid(exp: Experiment, items: list[str] | None) -> tuple[list[str], list[dict[str, str]]]:
    """``["n=1,2", "beta=0.1"]`` -> (swept keys, [override dicts]): the cartesian product of the values.

    Scalar fields take comma-separated values; list-valued fields take ``;``-separated lists
    (``--set c_stars=4,16;64,256`` is two grid points). Unknown keys raise :class:`ConfigError`.
    """
    hints = typing.get_type_hints(exp.config)
    names = field_names(exp.config)
    axes: dict[str, list[str]] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError("--set", f"must look like key=v1,v2; got {item!r}")
        key, text = (s.strip() for s in item.split("=", 1))
        if key not in names:
            raise ConfigError(key, f"unknown key for {exp.name}; allowed: {', '.join(names)}")
        if key in axes:
            raise ConfigError(key, "given twice with --set; put all its values in one --set KEY=V1,V2")
        sep = ";" if _is_list_field(hints[key]) else ","
        values = [v.strip() for v in text.split(sep) if v.strip()]
        if not values:
            raise ConfigError(key, f"needs at least one value, got {text!r}")
        axes[key] = list(dict.fromkeys(values))
    keys = list(axes)
    points = math.prod(len(v) for v in axes.values())
    if points > MAX_GRID_POINTS:  # counted before the grid is built
        raise ConfigError(
            "--set", f"the grid has {points} points, more than the {MAX_GRID_POINTS} one sweep may run"
        )
    return keys, [dict(zip(keys, combo)) for combo in itertools.product(*axes.values())]


@dataclass
class SweepPlan:
    """A validated sweep: grid points (resolved configs) times seeds."""

    experiment: Experiment
    scale: str
    keys: list[str]
    configs: list[Any]
    seeds: list[int]
    overrides: list[dict[str, str]] = field(default_factory=list)

    def params(self, point: int) -> dict[str, Any]:
        return {k: getattr(self.configs[point], k) for k in self.keys}

    def specs(self) -> list[RunSpec]:
        return [RunSpec(self.experiment, cfg, s, p) for p, cfg in enumerate(self.configs) for s in self.seeds]

    def key(self) -> str:
        return config_hash({"experiment": self.experiment.name, "configs": [to_dict(c) for c in self.configs],
                            "seeds": self.seeds, "keys": self.keys})


def plan_sweep(exp: Experiment, set_items: list[str] | None = None, seeds: list[int] | None = None,
               scale: str = "quick") -> SweepPlan:
    """Expand and validate every grid point (raises :class:`ConfigError` before anything runs)."""
    keys, points = expand_grid(exp, set_items)
    configs = [exp.make_config(scale, pt) for pt in points]
    return SweepPlan(
        exp, scale, keys, configs, seeds if seeds is not None else list(range(exp.seeds)), points
    )
