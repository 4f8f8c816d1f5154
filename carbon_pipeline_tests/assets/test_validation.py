"""pandera rules and completeness: every bad value is named with its timestamp and rule; nothing passes half-checked."""

import logging
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from carbon_pipeline.partitions import RegionWindow
from carbon_pipeline.validation import (
    DataIncomplete,
    DataLongOverdue,
    DataRejected,
    data_period,
    expected_point_times,
    moer_frame,
    require_complete,
    validate_moer_frame,
)
from carbon_pipeline.watttime.replies import HistoricalChunk

START = datetime(2025, 1, 1, tzinfo=UTC)
WINDOW = RegionWindow("CAISO_NORTH", START, START + timedelta(minutes=15))


def _chunk(
    values: list[object], minutes: list[int] | None = None, units: str = "lbs_co2_per_mwh", period: int | None = 300
) -> HistoricalChunk:
    minutes = [0, 5, 10][: len(values)] if minutes is None else minutes
    frame = pd.DataFrame(
        {
            "point_time": pd.DatetimeIndex([START + timedelta(minutes=m) for m in minutes]).as_unit("ns"),
            "value": [float(v) if isinstance(v, (int, float)) else float("nan") for v in values],
            "raw_value": pd.array(values, dtype=object),
            "imputed": pd.array([False] * len(values), dtype="boolean"),
        }
    )
    return HistoricalChunk(
        region="CAISO_NORTH",
        signal_type="co2_moer",
        start=WINDOW.start,
        end=WINDOW.end,
        units=units,
        period_seconds=period,
        model_date="2023-03-01",
        warnings=(),
        request_id="req-1",
        frame=frame,
    )


def _validate(chunk: HistoricalChunk) -> pd.DataFrame:
    return validate_moer_frame(WINDOW, moer_frame(WINDOW, [chunk]))


def test_valid_frame_gains_the_gco2_per_kwh_conversion() -> None:
    frame = _validate(_chunk([1000.0, 0.0, 812.3]))
    assert frame["carbon_intensity_gco2_kwh"].tolist() == [453.5924, 0.0, 368.4531]
    assert len(frame) == 3


@pytest.mark.parametrize(
    ("values", "minutes", "units", "column", "shown", "rule"),
    [
        ([1.0, None, 3.0], None, "lbs_co2_per_mwh", "moer_lbs_per_mwh", "None", "not_nullable"),
        ([1.0, "n/a", 3.0], None, "lbs_co2_per_mwh", "moer_lbs_per_mwh", "'n/a'", "not_nullable"),
        ([1.0, 99999.0, 3.0], None, "lbs_co2_per_mwh", "moer_lbs_per_mwh", "99999.0", "less_than_or_equal_to(4000.0)"),
        ([1.0, -5.0, 3.0], None, "lbs_co2_per_mwh", "moer_lbs_per_mwh", "-5.0", "greater_than_or_equal_to(0.0)"),
        ([1.0, float("inf"), 3.0], None, "lbs_co2_per_mwh", "moer_lbs_per_mwh", "inf", "finite"),
        ([1.0, 2.0, 3.0], [0, 5, 5], "lbs_co2_per_mwh", "point_time", "2025-01-01T00:05:00Z", "unique"),
        ([1.0, 2.0, 3.0], [0, 5, 15], "lbs_co2_per_mwh", "point_time", "2025-01-01T00:15:00Z", "in_range"),
        ([1.0, 2.0, 3.0], None, "percentile", "units", "'percentile'", "isin"),
    ],
)
def test_each_rule_rejects_with_value_timestamp_and_rule(
    values: list[object], minutes: list[int] | None, units: str, column: str, shown: str, rule: str
) -> None:
    with pytest.raises(DataRejected) as raised:
        _validate(_chunk(values, minutes, units))
    cases = raised.value.failure_cases
    offending = cases[cases["column"] == column]
    assert not offending.empty
    assert any(shown in value for value in offending["value"]), offending
    assert any(rule in check for check in offending["rule"]), offending
    message = str(raised.value)
    assert "region CAISO_NORTH, interval 2025-01-01T00:00Z..2025-01-01T00:15Z" in message
    assert "nothing written" in message


def test_every_failure_is_reported_at_once() -> None:
    with pytest.raises(DataRejected) as raised:
        _validate(_chunk([None, 99999.0, -1.0]))
    assert len(raised.value.failure_cases) == 3


def test_incomplete_interval_is_not_yet_published_with_counts() -> None:
    frame = _validate(_chunk([1.0, 2.0]))
    with pytest.raises(DataIncomplete, match=r"not yet published: 2 of 3 points \(missing 2025-01-01T00:10:00Z\)"):
        require_complete(WINDOW, frame, 300)


# Without a data period the expected count is the window's intervals: here one.
PERIODS_AND_POINTS = [(300, 3), (None, 1)]


@pytest.mark.parametrize(("period", "points"), PERIODS_AND_POINTS)
def test_empty_reply_for_a_fresh_interval_is_not_yet_published(period: int | None, points: int) -> None:
    frame = _validate(_chunk([]))
    just_before_overdue = WINDOW.end + timedelta(hours=6) - timedelta(seconds=1)
    with pytest.raises(DataIncomplete, match=f"not yet published: 0 of {points} points") as raised:
        require_complete(WINDOW, frame, period, now=just_before_overdue)
    assert not isinstance(raised.value, DataLongOverdue)


@pytest.mark.parametrize(("period", "points"), PERIODS_AND_POINTS)
def test_empty_reply_for_an_interval_published_long_ago_says_so(period: int | None, points: int) -> None:
    frame = _validate(_chunk([]))
    with pytest.raises(DataLongOverdue) as raised:
        require_complete(WINDOW, frame, period, now=WINDOW.end + timedelta(hours=6))
    assert str(raised.value) == (
        "WattTime returned no points for region CAISO_NORTH, interval 2025-01-01T00:00Z..2025-01-01T00:15Z, "
        f"published long ago (expected by 2025-01-01T06:15:00Z): 0 of {points} points; nothing written, retry later"
    )
    assert isinstance(raised.value, DataIncomplete)  # still retryable: WattTime may fill it late


def test_a_partly_published_interval_long_ago_is_still_a_gap_not_an_empty_reply() -> None:
    frame = _validate(_chunk([1.0, 2.0]))
    with pytest.raises(DataIncomplete, match="not yet published: 2 of 3 points") as raised:
        require_complete(WINDOW, frame, 300, now=WINDOW.end + timedelta(days=30))
    assert not isinstance(raised.value, DataLongOverdue)


def test_hourly_region_expects_one_point_on_the_hour_and_none_at_quarter_past() -> None:
    assert len(expected_point_times(WINDOW, 3600)) == 1
    later = RegionWindow("IE", START + timedelta(minutes=15), START + timedelta(minutes=30))
    assert len(expected_point_times(later, 3600)) == 0
    require_complete(later, _validate(_chunk([])), 3600)


def test_mixed_data_periods_are_rejected() -> None:
    with pytest.raises(DataRejected, match="one data period per region"):
        data_period(WINDOW, [_chunk([1.0]), _chunk([1.0], period=3600)])


def test_missing_period_with_points_is_rejected() -> None:
    chunk = _chunk([1.0, 2.0, 3.0], period=None)
    with pytest.raises(DataRejected, match="data period"):
        require_complete(WINDOW, _validate(chunk), data_period(WINDOW, [chunk]))


def test_hole_before_published_points_is_reported_as_a_gap() -> None:
    frame = _validate(_chunk([1.0, 3.0], minutes=[0, 10]))
    with pytest.raises(DataIncomplete, match=r"gap in WattTime's data: 2 of 3 points \(missing 2025-01-01T00:05:00Z\)"):
        require_complete(WINDOW, frame, 300)


def test_points_off_the_period_grid_are_rejected() -> None:
    frame = _validate(_chunk([1.0, 2.0, 3.0], minutes=[0, 5, 7]))
    with pytest.raises(
        DataRejected,
        match=r"point_time 2025-01-01T00:07:00Z at 2025-01-01T00:07:00Z fails on the 300 s data period grid",
    ):
        require_complete(WINDOW, frame, 300)


@pytest.mark.parametrize("repeated", [[2.0, 2.0, 2.0], [2.0, 2, 2.0]], ids=["floats", "an-integer-among-floats"])
def test_exact_repeats_are_kept_once_with_a_warning_naming_region_interval_time_and_count(
    repeated: list[object], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        frame = _validate(_chunk([1.0, *repeated, 3.0], minutes=[0, 5, 5, 5, 10]))
    assert frame["point_time"].tolist() == list(expected_point_times(WINDOW, 300))
    assert frame["moer_lbs_per_mwh"].tolist() == [1.0, 2.0, 3.0]
    require_complete(WINDOW, frame, 300)
    (warning,) = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warning == (
        "region CAISO_NORTH, interval 2025-01-01T00:00Z..2025-01-01T00:15Z: WattTime sent 1 point(s) more than "
        "once with the same value; kept one of each: 2025-01-01T00:05:00Z (3 copies)"
    )


@pytest.mark.parametrize("other", [2.5, "n/a"], ids=["another-value", "a-non-numeric-value"])
def test_repeats_that_differ_are_rejected_as_before(other: object) -> None:
    rejected = "point_time 2025-01-01T00:05:00Z at 2025-01-01T00:05:00Z fails multiple_fields_uniqueness"
    with pytest.raises(DataRejected, match=rejected):
        _validate(_chunk([1.0, 2.0, other, 3.0], minutes=[0, 5, 5, 10]))
