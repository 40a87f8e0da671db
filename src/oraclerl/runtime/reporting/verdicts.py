"""Verdict helpers shared by the experiments' claims.

An empirical claim compares a measured quantity with the paper's prediction *and* with the alternative the
claim rules out (a slow rate, a flat curve, the competitor's behaviour). :func:`separates` puts the decision
boundary at the midpoint between the two (on the scale of the quantity, e.g. a log-log slope), so that the
verdict window never accepts the alternative, and reports "not informative at this scale" when the 95%
interval of the per-seed values straddles the boundary (the measurement cannot tell the two apart). The
negative controls in ``tests/test_claims_*.py`` feed the alternative's values to the same code and check "does
not hold". :func:`separation_claim` wraps one such decision into an empirical :class:`Claim`. See
docs/experiments/ for each window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..run.registry import EMPIRICAL, Claim
from .stats import mean_ci


@dataclass(frozen=True)
class Separation:
    holds: bool | None
    """True: the interval lies on the prediction's side of the boundary; False: on the alternative's side
    (or the mean does); None: no finite value."""
    informative: bool
    """False when the interval straddles the boundary."""
    boundary: float
    """Midpoint between prediction and alternative."""
    text: str
    """"prediction p vs alternative a: boundary b; mean m, 95% interval [lo, hi]"."""


def separates(values: Sequence[float], prediction: float, alternative: float) -> Separation:
    """Decide between ``prediction`` and ``alternative`` from per-seed ``values`` (boundary at their
    midpoint)."""
    if prediction == alternative:
        raise ValueError("prediction and alternative must differ")
    b = 0.5 * (prediction + alternative)
    m, lo, hi = mean_ci(values)
    text = f"prediction {prediction:.3g} vs alternative {alternative:.3g}: boundary {b:.3g}"
    if not math.isfinite(m):
        return Separation(None, True, b, text + "; no finite value")
    text += f"; mean {m:.3g}, 95% interval [{lo:.3g}, {hi:.3g}]"
    side = (lambda v: v > b) if prediction > alternative else (lambda v: v < b)
    if side(lo) and side(hi):
        return Separation(True, True, b, text)
    if not side(lo) and not side(hi):
        return Separation(False, True, b, text)
    return Separation(side(m), False, b, text + " (straddles the boundary)")


def separation_claim(
    statement: str,
    source: str,
    measured: str,
    values: Sequence[float],
    prediction: float,
    alternative: float,
    *,
    note_before: str,
    note_after: str = "",
    require: bool = True,
    informative: bool | None = None,
) -> Claim:
    """The empirical :class:`Claim` whose verdict is ``separates(values, prediction, alternative)``.

    ``holds`` is ``v.holds and require`` (Python's ``and``: None when no value is finite, so the claim is
    reported, not judged; False when ``require`` fails, e.g. censored points); ``detail`` is
    ``note_before + v.text + note_after``; ``informative`` is ``v.informative`` unless given."""
    v = separates(values, prediction, alternative)
    return Claim(
        statement,
        source,
        measured,
        v.holds and require,
        note_before + v.text + note_after,
        informative=v.informative if informative is None else informative,
        kind=EMPIRICAL,
    )
