"""Figures over repeats and samples: quantiles, medians and the min-max spread.

Every scenario reports a figure as the median over its repeats with the
min-max spread beside it, and a distribution by its quantiles; the helpers
that compute and print them live here, so each scenario says the same thing
the same way.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

import attrs

__all__ = ["Figure", "p50_p95", "percentiles", "quantile", "spread", "spread_text"]


@attrs.frozen
class Figure:
    """One figure over the repeats: the median and the min-max spread."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Figure:
        numbers = [v for v in values if not math.isnan(v)]
        if not numbers:
            return cls(math.nan, math.nan, math.nan)
        return cls(statistics.median(numbers), min(numbers), max(numbers))

    def format(self, spec: str) -> str:
        if math.isnan(self.median):
            return "-"
        if self.low == self.high:
            return format(self.median, spec)
        return f"{self.median:{spec}} [{self.low:{spec}}-{self.high:{spec}}]"


def p50_p95(values: list[float]) -> tuple[float, float]:
    """The median and the 95th percentile of ``values`` (NaN for none, the value for one)."""
    if not values:
        return math.nan, math.nan
    if len(values) == 1:
        return values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94]


def percentiles(values: list[float]) -> list[float]:
    """The 99 cut points of ``values`` (``[49]`` the median, ``[94]`` the 95th percentile).

    One value is every cut point; none, no cut point.
    """
    return (
        statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    )


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (``q`` in hundredths: 0.5, 0.95); the value for one."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """``(median, min, max)`` of ``values``."""
    return statistics.median(values), min(values), max(values)


def spread_text(values: Sequence[float], fmt: str) -> str:
    """``median [min-max]`` of ``values``, each formatted by ``fmt``; the value alone for one."""
    if len(values) == 1:
        return format(values[0], fmt)
    median = statistics.median(values)
    return f"{median:{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"
