"""Small statistics helpers for claims: means with 95% intervals, log-log slopes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval over ``values`` (a single value gives a zero-width interval)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(x.mean())
    if x.size == 1:
        return m, m, m
    from scipy import stats as _st  # imported lazily: scipy.stats costs ~1 s at CLI start-up

    half = float(_st.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - half, m + half


def fmt_ci(values: Sequence[float], digits: int = 3) -> str:
    m, lo, hi = mean_ci(values)
    if len(values) <= 1 or lo == hi:
        return f"{m:.{digits}g}"
    return f"{m:.{digits}g} ± {(hi - lo) / 2:.2g}"


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of log y against log x."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    return float(np.polyfit(lx, ly, 1)[0])
