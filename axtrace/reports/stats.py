"""Pure statistics of the report: medians, percentiles, rates, spread.

Definitions:

- **median**: the middle value of the sorted values; for an even count, the mean of the two
  middle values (``median([1, 2, 3, 10]) == 2.5``).
- **nearest-rank percentile** ``p`` (0 < p <= 100): the value at 1-based rank
  ``ceil(p / 100 * n)`` of the sorted values; always one of the values. ``p90`` of 1..10 is 9,
  of five values the largest. Box plots use it for the quartiles q1 (p25) and q3 (p75).
- **rate**: ``count / of`` as a percentage rounded to 0.1; None when ``of`` is 0 (nothing was
  due, which is not the same as 0%).
- **coefficient of variation**: population standard deviation / mean of the sites' values;
  None for fewer than two values or a zero mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from axtrace.reports.model import Durations, Rate

SECONDS_DECIMALS = 3


def median(ordered: Sequence[float]) -> float:
    """The median of already sorted values (see the module docstring)."""
    if not ordered:
        raise ValueError("median of no values")
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def nearest_rank(ordered: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of already sorted values."""
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def summarize(ordered: Sequence[float]) -> Durations:
    """Min, quartiles, median, p90 and max of durations in seconds, already sorted."""
    if not ordered:
        return Durations()

    def r(x: float) -> float:
        return round(x, SECONDS_DECIMALS)

    return Durations(
        n=len(ordered), min_s=r(ordered[0]), q1_s=r(nearest_rank(ordered, 25)),
        median_s=r(median(ordered)), q3_s=r(nearest_rank(ordered, 75)),
        p90_s=r(nearest_rank(ordered, 90)), max_s=r(ordered[-1]),
    )


def rate(count: int, of: int) -> Rate:
    """``count`` of ``of`` as a :class:`Rate`."""
    return Rate(count=count, of=of, pct=round(100 * count / of, 1) if of else None)


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    """Population standard deviation / mean, rounded to 0.001."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    if mean == 0:
        return None
    variance = sum((v - mean) ** 2 for v in values) / len(values)
    return round(math.sqrt(variance) / abs(mean), 3)
