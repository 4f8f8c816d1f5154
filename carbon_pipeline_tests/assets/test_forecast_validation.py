"""Forecast validation on its own: each rule refuses its issue whole and says why, the others pass untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from carbon_pipeline.forecast_validation import CheckedForecasts, check_forecasts, expected_points, forecast_frame
from carbon_pipeline.watttime.forecasts import Forecast

ISSUE = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)
HOURS = 1


def _forecast(
    generated_at: datetime = ISSUE,
    times: list[datetime] | None = None,
    values: list[object] | None = None,
    period: int | None = 300,
    units: str | None = "lbs_co2_per_mwh",
) -> Forecast:
    first = generated_at - timedelta(seconds=generated_at.timestamp() % 300)
    times = times if times is not None else [first + index * STEP for index in range(12)]
    values = values if values is not None else [800.0 + index for index in range(len(times))]
    frame = pd.DataFrame(
        {
            "point_time": pd.to_datetime(times, utc=True),
            "value": pd.to_numeric(pd.Series(values), errors="coerce"),
            "raw_value": values,
            "imputed": pd.array([pd.NA] * len(times), dtype="boolean"),
        }
    )
    return Forecast(
        region="CAISO_NORTH",
        signal_type="co2_moer",
        generated_at=generated_at,
        units=units,
        period_seconds=period,
        model_date="2023-03-01",
        warnings=(),
        request_id=None,
        frame=frame,
    )


def _checked(*issued: tuple[datetime, Forecast]) -> CheckedForecasts:
    return check_forecasts("CAISO_NORTH", forecast_frame("CAISO_NORTH", list(issued)), HOURS)


def test_a_whole_forecast_passes_converted_with_its_horizons() -> None:
    checked = _checked((ISSUE, _forecast()))
    assert checked.rejected == ()
    assert checked.frame["horizon_minutes"].tolist() == list(range(0, 60, 5))
    assert checked.frame["carbon_intensity_gco2_kwh"].iloc[0] == round(800.0 * 0.45359237, 4)
    assert checked.issue_starts == [ISSUE]


def test_an_issue_later_in_its_interval_starts_at_its_own_period() -> None:
    later = ISSUE + timedelta(minutes=7, seconds=30)
    checked = _checked((ISSUE, _forecast(later)))
    assert checked.rejected == ()
    assert checked.frame["point_time"].iloc[0] == ISSUE + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("forecast", "rule"),
    [
        (_forecast(times=[ISSUE + index * STEP for index in range(11)]), "horizon complete: 12 points over 1 h"),
        (_forecast(times=[ISSUE + index * STEP for index in range(13) if index != 6]), "horizon complete"),
        (_forecast(times=[ISSUE + STEP + index * STEP for index in range(12)]), "first point at the issue's period"),
        (_forecast(times=[ISSUE + index * STEP + timedelta(minutes=1) for index in range(12)]), "grid"),
        (_forecast(times=[ISSUE + index * STEP for index in (0, 2, 1, *range(3, 12))]), "strictly increasing"),
        (_forecast(ISSUE - timedelta(minutes=15)), "inside the issue interval"),
        (_forecast(period=None), "WattTime must state the data period"),
        (_forecast(values=[800.0] * 11 + [None]), "not_nullable"),
        (_forecast(values=[800.0] * 11 + ["n/a"]), "not_nullable"),
        (_forecast(values=[800.0] * 11 + [float("inf")]), "finite"),
        (_forecast(values=[800.0] * 11 + [4000.5]), "less_than_or_equal_to(4000.0)"),
        (_forecast(units="percentile"), "isin(['lbs_co2_per_mwh'])"),
    ],
)
def test_each_rule_refuses_its_issue_alone_naming_region_issue_and_rule(forecast: Forecast, rule: str) -> None:
    neighbour = ISSUE + timedelta(minutes=15)
    checked = _checked((ISSUE, forecast), (neighbour, _forecast(neighbour)))
    (rejected,) = checked.rejected
    assert str(rejected).startswith("region CAISO_NORTH, forecast issued in 2025-06-01T12:00Z..2025-06-01T12:15Z")
    assert rule in str(rejected)
    assert checked.issue_starts == [neighbour]


def test_a_24_hour_forecast_at_five_minutes_is_288_points() -> None:
    assert expected_points(24, 300) == 288
    assert expected_points(72, 300) == 864
    assert expected_points(1, 3600) == 1


def test_a_point_sent_twice_identically_is_kept_once_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    times = [ISSUE + index * STEP for index in range(12)]
    values = [800.0 + index for index in range(12)]
    twice = _forecast(times=[*times[:6], times[5], *times[6:]], values=[*values[:6], values[5], *values[6:]])
    neighbour = ISSUE + timedelta(minutes=15)

    checked = _checked((ISSUE, twice), (neighbour, _forecast(neighbour)))

    assert checked.rejected == ()
    assert checked.issue_starts == [ISSUE, neighbour]
    issue = checked.frame[checked.frame["issue_time"] == ISSUE]
    assert issue["point_time"].tolist() == times and issue["moer_lbs_per_mwh"].tolist() == values
    (warning,) = [record.getMessage() for record in caplog.records if "more than once" in record.getMessage()]
    assert warning == (
        "region CAISO_NORTH, forecasts issued in 2025-06-01T12:00Z..2025-06-01T12:30Z: WattTime sent 1 point(s) more "
        "than once with the same value; kept one of each: issue_time 2025-06-01T12:00:00Z point_time "
        "2025-06-01T12:25:00Z (2 copies)"
    )


def test_a_point_sent_twice_with_different_values_refuses_its_issue() -> None:
    times = [ISSUE + index * STEP for index in range(12)]
    values = [800.0 + index for index in range(12)]
    conflicting = _forecast(times=[*times[:6], times[5], *times[6:]], values=[*values[:6], 900.0, *values[6:]])
    neighbour = ISSUE + timedelta(minutes=15)

    checked = _checked((ISSUE, conflicting), (neighbour, _forecast(neighbour)))

    (rejected,) = checked.rejected
    assert str(rejected).startswith("region CAISO_NORTH, forecast issued in 2025-06-01T12:00Z..2025-06-01T12:15Z")
    assert "multiple_fields_uniqueness" in str(rejected)
    assert checked.issue_starts == [neighbour]
