"""Cleanest windows: exact agreement with a brute force over every start, ties, percentiles and refusals."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from carbon_pipeline.cleanest_windows import (
    CleanestWindow,
    WindowLongerThanForecast,
    cleaner_than_now_percent,
    cleanest_windows,
    window_points,
)
from carbon_pipeline_tests.support.gco2_frames import ISSUE_TIME, forecast_issue, stacked

PERIOD = timedelta(minutes=5)
HOUR = timedelta(hours=1)
UNITS = 10_000  # 1e-4 gCO2/kWh


@dataclass(frozen=True)
class Expected:
    start_index: int
    mean: Fraction
    now_mean: Fraction
    cleaner_percent: Fraction
    percentile: Fraction


def brute_force(units: list[int], points: int, day: int = 288) -> Expected:
    """Every start tried in turn, in exact integers and fractions; the first strictly smaller sum wins.

    ``day`` is how many points the next 24 hours hold (288 of 5 minutes, 24 of an hour)."""
    best_start, best_sum = 0, sum(units[:points])
    for start in range(1, len(units) - points + 1):
        total = sum(units[start : start + points])
        if total < best_sum:
            best_start, best_sum = start, total
    now_sum = sum(units[:points])
    ahead = units[1:day]
    return Expected(
        start_index=best_start,
        mean=Fraction(best_sum, points * UNITS),
        now_mean=Fraction(now_sum, points * UNITS),
        cleaner_percent=Fraction(100 * (now_sum - best_sum), now_sum) if now_sum else Fraction(0),
        percentile=Fraction(100 * sum(value < units[0] for value in ahead), len(ahead)) if ahead else Fraction(0),
    )


def assert_matches(
    window: CleanestWindow, units: list[int], points: int, first_point: datetime, period: timedelta = PERIOD
) -> None:
    expected = brute_force(units, points, timedelta(hours=24) // period)
    assert window.start == first_point + expected.start_index * period
    assert window.end == window.start + points * period
    assert window.window_hours == points * period / timedelta(hours=1)
    assert window.mean_gco2_kwh == round(float(expected.mean), 4)
    assert window.now_mean_gco2_kwh == round(float(expected.now_mean), 4)
    assert window.cleaner_than_now_percent == round(float(expected.cleaner_percent), 2)
    assert window.current_percentile == round(float(expected.percentile), 2)


def random_units(rng: np.random.Generator, length: int) -> list[int]:
    """Curves of four kinds: wide random values, a few levels (many exact ties), constant, and a repeated block."""
    kind = rng.integers(4)
    if kind == 0:
        return rng.integers(0, 18_144_000, length).tolist()
    if kind == 1:
        return rng.choice([1_000_000, 1_000_001, 2_000_000], length).tolist()
    if kind == 2:
        return [int(rng.integers(0, 18_144_000))] * length
    block = rng.integers(0, 3, int(rng.integers(1, 6))).tolist()
    return (block * length)[:length]


@pytest.mark.parametrize("seed", range(40))
def test_every_issue_of_a_frame_agrees_exactly_with_the_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = sorted({int(k) for k in rng.integers(1, 40, 3)})
    issues = []
    for index in range(int(rng.integers(1, 8))):
        length = int(rng.integers(max(points), 320))
        issue_time = ISSUE_TIME + index * timedelta(minutes=15)
        issues.append((f"R{index % 3}", issue_time, random_units(rng, length)))
    frame = stacked(
        [forecast_issue(np.array(units) / UNITS, region=region, issue_time=when) for region, when, units in issues]
    )
    windows = cleanest_windows(frame, [k / 12 for k in points])

    ordered = sorted(issues, key=lambda issue: (issue[0], issue[1]))
    assert [(w.region, w.issue_time, w.window_hours) for w in windows] == [
        (region, when, k / 12) for region, when, _ in ordered for k in points
    ]
    for position, window in enumerate(windows):
        _, when, units = ordered[position // len(points)]
        assert_matches(window, units, points[position % len(points)], when)


def test_a_72_hour_forecast_agrees_for_the_default_lengths() -> None:
    units = np.random.default_rng(7).integers(0, 18_144_000, 864).tolist()
    windows = cleanest_windows(forecast_issue(np.array(units) / UNITS), [1, 2, 4])
    for window, points in zip(windows, (12, 24, 48), strict=True):
        assert_matches(window, units, points, ISSUE_TIME)


@pytest.mark.parametrize("seed", range(6))
def test_an_hourly_forecast_agrees_with_the_brute_force_over_its_hours(seed: int) -> None:
    rng = np.random.default_rng(seed)
    units = random_units(rng, int(rng.integers(4, 73)))
    frame = forecast_issue(np.array(units) / UNITS, period=HOUR)
    windows = cleanest_windows(frame, [1, 2, 4], HOUR)
    for window, points in zip(windows, (1, 2, 4), strict=True):
        assert_matches(window, units, points, ISSUE_TIME, HOUR)


def test_an_hourly_forecast_is_refused_where_its_hours_are_not_consecutive() -> None:
    frame = forecast_issue([1.0, 2.0, 3.0], period=HOUR).drop(index=1)
    with pytest.raises(ValueError, match="consecutive 60-minute periods"):
        cleanest_windows(frame, [1], HOUR)
    with pytest.raises(WindowLongerThanForecast, match=r"span of 2 h \(2 points\)"):
        cleanest_windows(forecast_issue([1.0, 2.0], period=HOUR), [3], HOUR)


def test_equal_windows_are_a_tie_won_by_the_earliest_start() -> None:
    (window,) = cleanest_windows(forecast_issue([5, 1, 1, 5, 1, 1, 9]), [10 / 60])
    assert window.start == ISSUE_TIME + PERIOD
    assert window.mean_gco2_kwh == 1.0


def test_ties_are_exact_where_float_sums_are_not() -> None:
    # 0.1 + 0.2 is 0.30000000000000004 in floats, more than 0.3 + 0.0: only exact sums see the tie.
    (window,) = cleanest_windows(forecast_issue([0.1, 0.2, 5.0, 0.3, 0.0]), [10 / 60])
    assert window.start == ISSUE_TIME
    assert window.mean_gco2_kwh == 0.15


def test_a_constant_forecast_says_start_now_and_nothing_is_cleaner() -> None:
    windows = cleanest_windows(forecast_issue([250.5] * 300), [1, 2, 4])
    assert {(w.start, w.cleaner_than_now_percent, w.current_percentile) for w in windows} == {(ISSUE_TIME, 0.0, 0.0)}
    assert {w.mean_gco2_kwh for w in windows} == {w.now_mean_gco2_kwh for w in windows} == {250.5}


def test_a_single_point_window_is_the_cleanest_point() -> None:
    (window,) = cleanest_windows(forecast_issue([300, 200, 100.0001, 100, 400]), [1 / 12])
    assert (window.start, window.end) == (ISSUE_TIME + 3 * PERIOD, ISSUE_TIME + 4 * PERIOD)
    assert (window.mean_gco2_kwh, window.now_mean_gco2_kwh, window.cleaner_than_now_percent) == (100.0, 300.0, 66.67)


def test_a_window_as_long_as_the_forecast_is_the_whole_forecast() -> None:
    (window,) = cleanest_windows(forecast_issue([4, 2, 3] * 12), [3])
    assert (window.start, window.end) == (ISSUE_TIME, ISSUE_TIME + timedelta(hours=3))
    assert (window.mean_gco2_kwh, window.cleaner_than_now_percent) == (3.0, 0.0)


def test_a_window_longer_than_the_forecast_is_refused_naming_issue_length_and_span() -> None:
    short = forecast_issue([100.0] * 36, region="PJM_DC", issue_time=datetime(2025, 3, 1, 12, 15, tzinfo=UTC))
    frame = stacked([forecast_issue([100.0] * 288), short])
    with pytest.raises(WindowLongerThanForecast) as raised:
        cleanest_windows(frame, [1, 4])
    assert isinstance(raised.value, ValueError)
    assert str(raised.value) == (
        "PJM_DC forecast issued 2025-03-01T12:15:00Z: a 4 h window does not fit in the forecast's span of 3 h "
        "(36 points)"
    )
    assert (raised.value.region, raised.value.window_hours, raised.value.span) == ("PJM_DC", 4, timedelta(hours=3))


def test_a_frame_without_issues_has_no_windows() -> None:
    assert cleanest_windows(forecast_issue([]), [1, 2, 4]) == []


def test_the_refusal_counts_the_other_issues_that_are_too_short() -> None:
    frame = stacked([forecast_issue([1.0] * 6, issue_time=ISSUE_TIME + k * timedelta(minutes=15)) for k in range(3)])
    with pytest.raises(WindowLongerThanForecast, match=r"\(6 points\); 2 more issue\(s\) are too short as well"):
        cleanest_windows(frame, [1])


@pytest.mark.parametrize(
    ("values", "percentile"),
    [
        ([1, 5, 5, 5], 0.0),  # now is the cleanest
        ([9, 5, 5, 5], 100.0),  # everything ahead is cleaner
        ([5, 5, 5, 1], 33.33),  # points as clean as now do not count
        ([5], 0.0),  # no other point
        ([5, 5], 0.0),
        ([5, 4], 100.0),
    ],
)
def test_the_current_percentile_counts_other_points_strictly_cleaner(values: list[float], percentile: float) -> None:
    (window,) = cleanest_windows(forecast_issue(values), [1 / 12])
    assert window.current_percentile == percentile


def test_the_current_percentile_looks_24_hours_ahead_and_no_further() -> None:
    values = [10.0] + [20.0] * 287 + [0.0] * 12  # 24 h of points dirtier than now, then cleaner ones
    (window,) = cleanest_windows(forecast_issue(values), [1 / 12])
    assert window.current_percentile == 0.0
    values[287] = 0.0  # the last point inside the 24 hours
    (window,) = cleanest_windows(forecast_issue(values), [1 / 12])
    assert window.current_percentile == round(100 / 287, 2)


def test_cleaner_than_now_is_relative_to_now_and_zero_when_now_emits_nothing() -> None:
    (window,) = cleanest_windows(forecast_issue([200, 200, 50, 50]), [10 / 60])
    assert window.cleaner_than_now_percent == 75.0
    (window,) = cleanest_windows(forecast_issue([0, 0, 0]), [1 / 12])
    assert window.cleaner_than_now_percent == 0.0
    assert cleaner_than_now_percent(0, 0) == 0.0


@pytest.mark.parametrize(("hours", "points"), [(1, 12), (2.0, 24), (0.25, 3), (1 / 12, 1), (72, 864), (1.5, 18)])
def test_window_lengths_are_counted_in_5_minute_points(hours: float, points: int) -> None:
    assert window_points(hours) == points


@pytest.mark.parametrize("hours", [0, -1, 0.1, 1.01, float("nan"), float("inf"), True])
def test_window_lengths_off_the_5_minute_grid_are_refused(hours: float) -> None:
    with pytest.raises(ValueError, match="not a positive whole number of 5-minute periods"):
        window_points(hours)


@pytest.mark.parametrize(
    ("drop", "duplicate", "found"),
    [(2, None, "2025-01-01T00:15:00Z comes 0 days 00:10:00"), (None, 2, "2025-01-01T00:10:00Z comes 0 days 00:00:00")],
)
def test_points_that_are_not_consecutive_periods_are_refused(
    drop: int | None, duplicate: int | None, found: str
) -> None:
    frame = forecast_issue([1.0, 2.0, 3.0, 4.0, 5.0])
    if drop is not None:
        frame = frame.drop(index=drop)
    if duplicate is not None:
        frame = pd.concat([frame.iloc[: duplicate + 1], frame.iloc[duplicate:]], ignore_index=True)
    with pytest.raises(ValueError, match=f"CAISO_NORTH forecast issued 2025-01-01T00:00:00Z: .*{found}"):
        cleanest_windows(frame, [1 / 12])


def test_a_hundred_regions_of_72_hours_cost_well_under_a_second() -> None:
    rng = np.random.default_rng(11)
    frame = stacked([forecast_issue(rng.uniform(0, 1800, 864), region=f"R{index}") for index in range(100)])
    started = time.perf_counter()
    windows = cleanest_windows(frame, [1, 2, 4])
    elapsed = time.perf_counter() - started
    assert len(windows) == 300
    assert elapsed < 1.0, f"{elapsed:.3f} s"
