"""Load levels and the advice Gitter's adjuster gives at each, in a fleet's time unit.

`adjuster_advice` is the one statement of the adjuster's rule, and `Level` one
load level with its advice; `TIME_UNITS` is here because the adjuster is the
one part of the model that converts between units. They stand apart from
`Params` because scenarios, the storm tuner and reports compute advice without
a fleet; `stormcheck.model.params` re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = ["TIME_UNITS", "adjuster_advice", "Level"]

# The time units a fleet may count in, and how many of each make a second.
TIME_UNITS = {"s": 1, "ms": 1000}


def _round_half_up(x: Fraction) -> int:
    # Gitter's adjuster is JavaScript: Math.round rounds halves up, unlike
    # Python's round(), which rounds them to even.
    return int((x + Fraction(1, 2)).__floor__())


def adjuster_advice(avg_ms: int, t0: int, i0: int, threshold_ms: int = 5000, unit: str = "s") -> tuple[int, int]:
    """The (T, I) Gitter's advice adjuster chose for a mean subscribe latency.

    ``T = T0 + round(1.6 * max(0, avg - 5000) / 1000)`` and
    ``I = I0 + round(max(0, avg - 5000) / 2500)``, with JavaScript rounding.
    The latency is in milliseconds whatever the fleet's time unit; the
    adjuster moves T and I by whole seconds, so with ``unit = "ms"`` (T0, I0
    and the result in milliseconds) each step is 1000.

    Examples
    --------
    >>> adjuster_advice(10_000, 45, 1)
    (53, 3)
    >>> adjuster_advice(40_000, 45, 1)
    (101, 15)
    >>> adjuster_advice(160_000, 45, 1)
    (293, 63)
    >>> adjuster_advice(3_000, 45, 1)
    (45, 1)
    >>> adjuster_advice(40_000, 45_000, 1_000, unit="ms")
    (101000, 15000)
    """
    per = TIME_UNITS[unit]
    over = Fraction(max(0, avg_ms - threshold_ms))
    return t0 + per * _round_half_up(Fraction(8, 5) * over / 1000), i0 + per * _round_half_up(over / 2500)


@dataclass(frozen=True)
class Level:
    """One load level a server's adjuster can see, and the advice it gives."""

    avg_ms: int
    timeout: int
    interval: int
