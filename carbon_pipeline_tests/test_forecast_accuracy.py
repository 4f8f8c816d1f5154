"""Forecast accuracy: hand-computed errors, horizon buckets, the 5 % window share and missing published values."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from carbon_pipeline.cleanest_windows import WindowLongerThanForecast
from carbon_pipeline.forecast_accuracy import (
    ActualsMissing,
    ForecastAccuracy,
    HorizonError,
    WindowHitShare,
    forecast_accuracy,
    horizon_bucket_indices,
    missing_actuals,
)
from carbon_pipeline_tests.support.gco2_frames import ISSUE_TIME, forecast_issue, published_series, stacked

DAY = date(2025, 1, 1)
REGION = "CAISO_NORTH"
QUARTER = timedelta(minutes=15)


def accuracy(forecasts: pd.DataFrame, actuals: pd.DataFrame, window_hours: list[float]) -> ForecastAccuracy:
    return forecast_accuracy(forecasts, actuals, region=REGION, day=DAY, window_hours=window_hours)


def test_errors_of_a_small_case_computed_by_hand() -> None:
    forecasts = forecast_issue([10, 20, 30, 40])
    actuals = published_series(ISSUE_TIME, [12, 18, 30, 44])
    # errors -2, 2, 0, -4: MAE 8 / 4, bias -4 / 4, RMSE sqrt(24 / 4)
    assert accuracy(forecasts, actuals, []) == ForecastAccuracy(
        region=REGION,
        day=DAY,
        issues=1,
        horizon_errors=(HorizonError("0-1h", 4, 1, 2.0, round(math.sqrt(6), 4), -1.0),),
        window_hit_shares=(),
    )


def test_errors_are_split_by_horizon_bucket_and_count_the_issues_of_each() -> None:
    truth = [100.0] * 30
    early = forecast_issue([101.0] * 12 + [103.0], issue_time=ISSUE_TIME)  # horizons 0..55, then 60
    later = forecast_issue([99.5] * 3, issue_time=ISSUE_TIME + QUARTER)
    # 0-1h: twelve errors of +1 and three of -0.5; 1-6h: one of +3.
    result = accuracy(stacked([early, later]), published_series(ISSUE_TIME, truth), [])
    assert result.horizon_errors == (
        HorizonError("0-1h", 15, 2, 0.9, round(math.sqrt(12.75 / 15), 4), 0.7),
        HorizonError("1-6h", 1, 1, 3.0, 3.0, 3.0),
    )
    assert result.issues == 2


@pytest.mark.parametrize(
    ("horizon", "bucket"),
    [(0, 0), (55, 0), (60, 1), (355, 1), (360, 2), (1435, 2), (1440, 3), (4315, 3), (4320, 3)],
)
def test_bucket_boundaries_are_lo_inclusive_hi_exclusive_except_72_hours(horizon: int, bucket: int) -> None:
    assert horizon_bucket_indices(np.array([horizon])).tolist() == [bucket]


@pytest.mark.parametrize("horizon", [-5, 4325])
def test_horizons_outside_the_buckets_are_refused(horizon: int) -> None:
    with pytest.raises(ValueError, match=f"horizon_minutes {horizon} is outside 0..4320"):
        horizon_bucket_indices(np.array([0, horizon]))


def test_a_perfect_forecast_has_no_error_and_always_picks_the_cleanest_window() -> None:
    rng = np.random.default_rng(5)
    truth = rng.uniform(0, 1800, 600).round(4)
    issues = [forecast_issue(truth[3 * k : 3 * k + 300], issue_time=ISSUE_TIME + k * QUARTER) for k in range(96)]
    result = accuracy(stacked(issues), published_series(ISSUE_TIME, truth), [1, 2, 4])
    assert [error.bucket for error in result.horizon_errors] == ["0-1h", "1-6h", "6-24h", "24-72h"]
    assert {(e.mae_gco2_kwh, e.rmse_gco2_kwh, e.bias_gco2_kwh) for e in result.horizon_errors} == {(0.0, 0.0, 0.0)}
    assert [error.issues for error in result.horizon_errors] == [96, 96, 96, 96]
    assert result.window_hit_shares == tuple(WindowHitShare(hours, 96, 1.0) for hours in (1.0, 2.0, 4.0))


@pytest.mark.parametrize("offset", [7.5, -2.25])
def test_a_constant_offset_is_the_bias_and_the_absolute_error(offset: float) -> None:
    truth = np.random.default_rng(9).uniform(100, 900, 400).round(4)
    issues = [
        forecast_issue(truth[3 * k : 3 * k + 300] + offset, issue_time=ISSUE_TIME + k * QUARTER) for k in range(4)
    ]
    result = accuracy(stacked(issues), published_series(ISSUE_TIME, truth), [2])
    for error in result.horizon_errors:
        assert (error.bias_gco2_kwh, error.mae_gco2_kwh, error.rmse_gco2_kwh) == (offset, abs(offset), abs(offset))
    assert result.window_hit_shares == (WindowHitShare(2.0, 4, 1.0),)  # an offset moves no window


def test_a_window_within_5_percent_of_the_cleanest_counts_and_one_just_above_does_not() -> None:
    # Single-point windows: each forecast picks its second point, which really was 5 % (a hit) or a
    # hair more (a miss) above the truly cleanest first point.
    truth = [100.0, 105.0, 200.0, 100.0, 105.0001, 200.0]
    hit = forecast_issue([50, 10, 300], issue_time=ISSUE_TIME)
    miss = forecast_issue([50, 10, 300], issue_time=ISSUE_TIME + QUARTER)
    result = accuracy(stacked([hit, miss]), published_series(ISSUE_TIME, truth), [1 / 12])
    assert result.window_hit_shares == (WindowHitShare(1 / 12, 2, 0.5),)


def test_the_share_judges_windows_by_their_mean_over_the_forecast_span() -> None:
    # 10-minute windows over 4 points: the forecast picks points 2-3 (true mean 104), the truly cleanest
    # are points 0-1 (mean 100): within 5 %. Published values outside the forecast's points do not count.
    truth = [99.0, 101.0, 104.0, 104.0, 0.0, 0.0]
    forecasts = forecast_issue([9, 9, 1, 1])
    result = accuracy(forecasts, published_series(ISSUE_TIME, truth), [10 / 60])
    assert result.window_hit_shares == (WindowHitShare(10 / 60, 1, 1.0),)
    truth[2] = 106.0  # now the chosen window's mean is 105.0: still within
    assert (
        accuracy(forecasts, published_series(ISSUE_TIME, truth), [10 / 60]).window_hit_shares[0].within_5_percent_share
        == 1.0
    )
    truth[2] = 106.1  # 105.05: more than 5 % above
    assert (
        accuracy(forecasts, published_series(ISSUE_TIME, truth), [10 / 60]).window_hit_shares[0].within_5_percent_share
        == 0.0
    )


def test_missing_published_points_are_counted_once_and_bounded() -> None:
    forecasts = stacked([forecast_issue([1.0] * 6), forecast_issue([1.0] * 6, issue_time=ISSUE_TIME + QUARTER)])
    actuals = published_series(ISSUE_TIME, [1.0] * 5)  # 00:00..00:20 published; 00:25..00:40 not yet
    missing = missing_actuals(forecasts, actuals, region=REGION, day=DAY)
    assert missing is not None
    assert (missing.count, missing.first, missing.last) == (
        4,
        datetime(2025, 1, 1, 0, 25, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 40, tzinfo=UTC),
    )
    assert missing.message == (
        "CAISO_NORTH forecasts issued 2025-01-01: waiting for 4 published point(s) "
        "from 2025-01-01T00:25:00Z to 2025-01-01T00:40:00Z"
    )
    with pytest.raises(ActualsMissing) as raised:
        accuracy(forecasts, actuals, [1])
    assert str(raised.value) == missing.message and raised.value.missing == missing


def test_nothing_is_missing_once_every_point_is_published() -> None:
    forecasts = forecast_issue([1.0] * 6)
    assert missing_actuals(forecasts, published_series(ISSUE_TIME, [1.0] * 6), region=REGION, day=DAY) is None


def test_other_regions_published_values_are_not_used() -> None:
    forecasts = forecast_issue([50.0] * 4)
    actuals = stacked(
        [published_series(ISSUE_TIME, [999.0] * 4, region="PJM_DC"), published_series(ISSUE_TIME, [50.0] * 4)]
    )
    assert accuracy(forecasts, actuals, []).horizon_errors == (HorizonError("0-1h", 4, 1, 0.0, 0.0, 0.0),)
    only_other = published_series(ISSUE_TIME, [50.0] * 4, region="PJM_DC")
    missing = missing_actuals(forecasts, only_other, region=REGION, day=DAY)
    assert missing is not None and missing.count == 4


@pytest.mark.parametrize(
    ("forecasts", "found"),
    [
        (forecast_issue([1.0], region="PJM_DC"), "1 row(s) of other regions or days"),
        (forecast_issue([1.0], issue_time=datetime(2025, 1, 2, tzinfo=UTC)), "1 row(s) of other regions or days"),
        (forecast_issue([]), "none"),
    ],
)
def test_forecasts_of_another_region_or_day_are_refused(forecasts: pd.DataFrame, found: str) -> None:
    expected = f"expected the forecasts of CAISO_NORTH issued on 2025-01-01, found {found}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        accuracy(forecasts, published_series(ISSUE_TIME, [1.0] * 3), [])


def test_a_window_longer_than_a_forecast_is_refused() -> None:
    with pytest.raises(WindowLongerThanForecast, match="a 1 h window does not fit"):
        accuracy(forecast_issue([1.0] * 6), published_series(ISSUE_TIME, [1.0] * 6), [1])


def test_a_day_of_72_hour_issues_costs_well_under_a_second() -> None:
    rng = np.random.default_rng(13)
    truth = rng.uniform(0, 1800, 96 * 3 + 864).round(4)
    issues = [
        forecast_issue(truth[3 * k : 3 * k + 864] + rng.normal(0, 20, 864), issue_time=ISSUE_TIME + k * QUARTER)
        for k in range(96)
    ]
    forecasts, actuals = stacked(issues), published_series(ISSUE_TIME, truth)
    started = time.perf_counter()
    result = accuracy(forecasts, actuals, [1, 2, 4])
    elapsed = time.perf_counter() - started
    assert sum(error.points for error in result.horizon_errors) == 96 * 864
    assert elapsed < 1.0, f"{elapsed:.3f} s"
