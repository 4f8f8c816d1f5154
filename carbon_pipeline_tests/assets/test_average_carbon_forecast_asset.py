"""The Electricity Maps forecast asset end to end: simulator over loopback HTTP -> checks -> windows -> InfluxDB.

The simulator and the asset both place "the hour under way" on the real clock (``hour_under_way``).
"""

from __future__ import annotations

import re
from datetime import datetime

import dagster as dg
import pytest

from carbon_pipeline.assets.average_carbon_forecast import VALID_FORECAST_CHECK, build_average_forecast_asset
from carbon_pipeline.average_validation import validate_average_forecast
from carbon_pipeline.electricitymaps.endpoints import FORECAST_PATH
from carbon_pipeline.electricitymaps.replies import IntensityForecast, IntensityPoint
from carbon_pipeline.electricitymaps.simulator import (
    FREE_TOKEN,
    PAID_TOKEN,
    Fault,
)
from carbon_pipeline.electricitymaps.simulator.values import ZONES, intensity
from carbon_pipeline.partitions import (
    HOUR,
    RegionWindow,
    build_zone_partitions,
    format_window,
)
from carbon_pipeline.partitions import region_partition_key as zone_key
from carbon_pipeline.sinks.average_lines import average_forecast_lines
from carbon_pipeline_tests.support.electricitymaps_rig import ElectricityMapsRig
from carbon_pipeline_tests.support.hours import hour_under_way
from carbon_pipeline_tests.support.pipeline_harness import REPO, check_evaluation, failure_message, influxdb_resource

HORIZON = 24
LENGTHS = (1, 2, 4)
WINDOWS = "SELECT * FROM carbon_cleanest_window"
FORECASTS = "SELECT * FROM average_carbon_forecast"
# The README's query of the coming hour ("Electricity Maps' forecast and its cleanest windows"), as written there.
COMING_HOUR = (
    """SELECT "gco2eq_per_kwh", "generated_at" FROM "average_carbon_forecast"\n"""
    """WHERE "zone" = 'DE' AND "signal_type" = 'average_lifecycle' AND "horizon_hours" = '1'\n"""
    "ORDER BY time DESC LIMIT 1"
)


def materialize(
    rig: ElectricityMapsRig, token: str, first: tuple[str, datetime], last: tuple[str, datetime]
) -> dg.ExecuteInProcessResult:
    """Zones x issue hours from ``first`` to ``last`` as one run, as the hourly schedule or a backfill asks."""
    partitions = build_zone_partitions(["DE", "FR"], first[1] - 48 * HOUR, HOUR, end_offset=1)
    return rig.materialize(build_average_forecast_asset(partitions, HORIZON, LENGTHS), token, first, last)


def brute_force(values: list[float], hours: int) -> tuple[int, float, float]:
    """Every start tried in turn in exact hundredths: (first cleanest start, its mean, the mean starting now)."""
    cents = [round(value * 100) for value in values]
    sums = [sum(cents[start : start + hours]) for start in range(len(cents) - hours + 1)]
    best = sums.index(min(sums))
    return best, round(sums[best] / hours / 100, 4), round(sums[0] / hours / 100, 4)


def test_stored_windows_equal_a_brute_force_over_the_simulators_forecast_and_every_point_names_its_source(
    rig: ElectricityMapsRig,
) -> None:
    issue = hour_under_way()

    result = materialize(rig, PAID_TOKEN, ("DE", issue), ("FR", issue))

    assert result.success, failure_message(result)
    points = [issue + hour * HOUR for hour in range(1, HORIZON + 1)]
    windows = {(row["region"], row["window_hours"]): row for row in rig.rows(WINDOWS)}
    assert sorted(windows) == [(zone, str(hours)) for zone in ("DE", "FR") for hours in LENGTHS]
    for zone in ("DE", "FR"):
        values = [intensity(zone, ZONES[zone], point, "lifecycle") for point in points]
        for hours in LENGTHS:
            row, (start, mean, now) = windows[(zone, str(hours))], brute_force(values, hours)
            assert row["time"] == int(issue.timestamp())
            assert (row["window_start"], row["window_end"]) == (
                int(points[start].timestamp()),
                int((points[start] + hours * HOUR).timestamp()),
            )
            assert (row["mean_gco2_kwh"], row["now_gco2_kwh"]) == (mean, now)
            assert row["generated_at"] == int(issue.timestamp())
        forecast = sorted(
            (row["time"], row["gco2eq_per_kwh"], row["horizon_hours"])
            for row in rig.rows(FORECASTS)
            if row["zone"] == zone
        )
        assert forecast == [
            (int(p.timestamp()), v, str(h)) for h, (p, v) in enumerate(zip(points, values, strict=True), 1)
        ]
    for row in [*rig.rows(WINDOWS), *rig.rows(FORECASTS)]:
        assert (row["signal_type"], row["source"]) == ("average_lifecycle", "electricitymaps")
    assert rig.influxdb.query("SELECT count(moer_lbs_per_mwh) FROM carbon_forecast", rig.database) == []
    assert rig.requests() == {FORECAST_PATH: 2}
    materialized = {event.partition: event for event in result.get_asset_materialization_events()}
    assert set(materialized) == {str(zone_key(zone, issue)) for zone in ("DE", "FR")}
    assert check_evaluation(result, VALID_FORECAST_CHECK).passed


def test_the_readmes_query_reads_the_newest_issues_coming_hour(rig: ElectricityMapsRig) -> None:
    assert f"```sql\n{COMING_HOUR}\n```" in (REPO / "README.md").read_text(encoding="utf-8")
    issue = hour_under_way()
    older = RegionWindow("DE", issue - HOUR, issue, HOUR, "zone")
    points = tuple(
        IntensityPoint("DE", issue + hours * HOUR, 999.0, "lifecycle", False, None, None, None) for hours in range(24)
    )
    frame = validate_average_forecast(older, IntensityForecast("DE", older.start, points), HORIZON)
    lines = average_forecast_lines(frame, emission_factor_type="lifecycle", source="electricitymaps")
    influxdb_resource(rig.shim.url, rig.database).write_lines(lines)  # its 2 h point is the newest's 1 h one

    assert materialize(rig, PAID_TOKEN, ("DE", issue), ("DE", issue)).success

    (row,) = rig.rows(COMING_HOUR)
    coming = issue + HOUR
    assert row == {
        "time": int(coming.timestamp()),
        "gco2eq_per_kwh": intensity("DE", ZONES["DE"], coming, "lifecycle"),
        "generated_at": int(issue.timestamp()),
    }


def test_a_free_token_is_refused_naming_the_zone_and_nothing_is_written(rig: ElectricityMapsRig) -> None:
    issue = hour_under_way()

    result = materialize(rig, FREE_TOKEN, ("DE", issue), ("DE", issue))

    assert not result.success
    assert (
        f"zone DE, interval {format_window(issue, issue + HOUR)}: Electricity Maps GET {FORECAST_PATH}, zone DE: "
        "HTTP 403"
    ) in failure_message(result)
    assert rig.rows(WINDOWS) == [] and rig.rows(FORECASTS) == []
    assert result.get_asset_materialization_events() == []


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("nulls", "carbonIntensity None is not a number"),
        ("truncated", f"point_time {HORIZON - 1} h at .* fails forecast reaches {HORIZON} h ahead"),
    ],
)
def test_a_bad_forecast_is_refused_naming_zone_and_issue_and_nothing_is_written(
    rig: ElectricityMapsRig, kind: str, said: str
) -> None:
    issue = hour_under_way()
    rig.simulator.state.inject(Fault(kind, path=FORECAST_PATH))

    result = materialize(rig, PAID_TOKEN, ("DE", issue), ("DE", issue))

    assert not result.success
    message = failure_message(result)
    assert f"zone DE, interval {format_window(issue, issue + HOUR)}" in message
    assert re.search(said, message), message
    assert rig.rows(WINDOWS) == [] and rig.rows(FORECASTS) == []
    assert result.get_asset_materialization_events() == []


def test_an_issue_hour_that_is_over_fails_as_not_available_without_a_request(rig: ElectricityMapsRig) -> None:
    issue = hour_under_way()

    result = materialize(rig, PAID_TOKEN, ("DE", issue - 2 * HOUR), ("DE", issue))

    assert not result.success
    assert (
        f"zone DE, interval {format_window(issue - 2 * HOUR, issue)}: not available from this source"
    ) in failure_message(result)
    assert rig.requests() == {FORECAST_PATH: 1}
    assert {row["time"] for row in rig.rows(WINDOWS)} == {int(issue.timestamp())}
    assert [event.partition for event in result.get_asset_materialization_events()] == [str(zone_key("DE", issue))]
