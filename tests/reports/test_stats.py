"""The statistics of the report, as its docstring defines them."""

from __future__ import annotations

import pytest

from axtrace.reports.period import SEVERITIES
from axtrace.reports.stats import coefficient_of_variation, median, nearest_rank, rate, summarize


def test_the_median_of_an_odd_count_is_the_middle_value() -> None:
    assert median([60, 120, 180, 240, 400]) == 180


def test_the_median_of_an_even_count_is_the_mean_of_the_two_middle_values() -> None:
    assert median([600, 900, 1200, 4000]) == 1050


@pytest.mark.parametrize(("values", "p", "expected"), [
    (list(range(1, 11)), 90, 9),
    ([60, 120, 180, 240, 400], 90, 400),
    ([100, 200, 400, 500], 90, 500),
    ([7], 90, 7),
    ([60, 120, 180, 240, 400], 25, 120),
    ([60, 120, 180, 240, 400], 75, 240),
    (list(range(1, 101)), 90, 90),
])
def test_nearest_rank_takes_the_value_at_rank_ceil_p_n(
    values: list[float], p: float, expected: float,
) -> None:
    assert nearest_rank(values, p) == expected


def test_percentiles_of_nothing_are_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        nearest_rank([], 90)
    with pytest.raises(ValueError, match="no values"):
        median([])


def test_a_summary_of_no_durations_is_empty_not_zero() -> None:
    empty = summarize([])
    assert empty.n == 0
    assert empty.median_s is None
    assert empty.p90_s is None


def test_a_summary_gives_min_quartiles_median_p90_and_max() -> None:
    found = summarize([60, 120, 180, 240, 400])
    assert (found.n, found.min_s, found.q1_s, found.median_s, found.q3_s, found.p90_s,
            found.max_s) == (5, 60, 120, 180, 240, 400, 400)


def test_a_rate_with_nothing_due_is_unknown_rather_than_zero() -> None:
    assert rate(0, 0).pct is None
    assert rate(0, 3).pct == 0
    assert rate(2, 3).pct == 66.7
    assert rate(3, 4).model_dump() == {"count": 3, "of": 4, "pct": 75.0}


def test_the_coefficient_of_variation_is_population_sd_over_mean() -> None:
    assert coefficient_of_variation([80, 50, 0]) == 0.761
    assert coefficient_of_variation([5, 5, 5]) == 0
    assert coefficient_of_variation([0, 0]) is None
    assert coefficient_of_variation([42]) is None


def test_the_reports_severities_are_the_blocks_severities() -> None:
    from axtrace_blocks import SEVERITIES as BLOCK_SEVERITIES

    assert SEVERITIES == BLOCK_SEVERITIES
