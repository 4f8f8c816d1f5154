"""The checks every Electricity Maps point passes before it is written (no server: points are built here)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from carbon_pipeline.average_validation import validate_average
from carbon_pipeline.electricitymaps.replies import IntensityPoint
from carbon_pipeline.partitions import HOUR, RegionWindow
from carbon_pipeline.validation import DataIncomplete, DataRejected

START = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = RegionWindow("DE", START, START + 3 * HOUR, HOUR, "zone")
POINT = IntensityPoint("DE", START, 400.0, "lifecycle", False, None, None, None)


def _day(**changes: object) -> list[IntensityPoint]:
    """Three hourly points; the second one changed as given."""
    points = [replace(POINT, time=START + index * HOUR, carbon_intensity=400.0 + index) for index in range(3)]
    points[1] = replace(points[1], **changes)  # type: ignore[arg-type]
    return points


def test_valid_points_pass_with_their_estimate_fields() -> None:
    frame = validate_average(WINDOW, _day(is_estimated=True, estimation_method="TIME_SLICER_AVERAGE"))

    assert frame["gco2eq_per_kwh"].tolist() == [400.0, 401.0, 402.0]
    assert frame["is_estimated"].tolist() == [False, True, False]
    assert frame["estimation_method"].tolist() == [None, "TIME_SLICER_AVERAGE", None]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"carbon_intensity": 0.0}, "gco2eq_per_kwh 0.0 at 2026-01-01T01:00:00Z fails greater_than(0)"),
        ({"carbon_intensity": 2000.0}, "gco2eq_per_kwh 2000.0 at 2026-01-01T01:00:00Z fails less_than(2000.0)"),
        ({"carbon_intensity": float("nan")}, "gco2eq_per_kwh nan at 2026-01-01T01:00:00Z"),
        ({"zone": "FR"}, "zone 'FR' at 2026-01-01T01:00:00Z fails isin(['DE'])"),
        ({"time": START + HOUR / 2}, "point_time"),
    ],
)
def test_a_bad_point_refuses_the_window_naming_value_zone_and_interval(changes: dict[str, object], named: str) -> None:
    with pytest.raises(DataRejected) as refused:
        validate_average(WINDOW, _day(**changes))

    message = str(refused.value)
    assert message.startswith(
        "zone DE, interval 2026-01-01T00:00Z..2026-01-01T03:00Z: Electricity Maps data rejected, nothing written"
    )
    assert named in message


def test_an_hour_without_its_point_is_not_written() -> None:
    points = _day()
    with pytest.raises(DataIncomplete, match=r"zone DE, interval .*: not yet published: 2 of 3 points"):
        validate_average(WINDOW, [points[0], points[2]])


def test_two_points_for_one_hour_are_refused() -> None:
    with pytest.raises(DataRejected, match="zone DE"):
        validate_average(WINDOW, [*_day(), POINT])
