"""The accuracy asset end to end: a day of stored forecasts and measurements, judged and written to real InfluxDB."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from carbon_pipeline.assets.carbon_forecast_accuracy import (
    ACCURACY_ASSET_NAME,
    build_day_partitions,
    build_forecast_accuracy_asset,
)
from carbon_pipeline.partitions import INTERVAL, interval_starts
from carbon_pipeline.sinks.line_protocol import LBS_PER_MWH_TO_G_PER_KWH
from carbon_pipeline.validation import GCO2_KWH_DECIMALS
from carbon_pipeline.watttime.simulator import issued_forecast, moer_value
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.pipeline_harness import (
    ASSET,
    FORECAST_ASSET,
    FORECAST_HORIZON_HOURS,
    PARTITIONS_START,
    REGIONS,
    WINDOW_HOURS,
    failure_message,
    materialize,
    materialize_forecasts,
)

# Recent enough for the automation's look-back, old enough that every value it covers is published.
DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
KEY = dg.MultiPartitionKey({"region": "CAISO_NORTH", "day": DAY.strftime("%Y-%m-%d")})
ACCURACY = build_forecast_accuracy_asset(
    build_day_partitions(REGIONS, PARTITIONS_START, FORECAST_HORIZON_HOURS), FORECAST_HORIZON_HOURS, WINDOW_HOURS
)


def _judge(resources: dict[str, object], instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [ACCURACY, ASSET, FORECAST_ASSET],
        selection=[ACCURACY],
        resources=resources,
        partition_key=str(KEY),
        instance=instance,
        raise_on_error=False,
    )


def _store_the_day(resources: dict[str, object], instance: dg.DagsterInstance) -> None:
    forecasts = materialize_forecasts(
        resources, ("CAISO_NORTH", "CAISO_NORTH"), DAY, DAY + timedelta(hours=23, minutes=45), instance
    )
    measured = materialize(resources, "CAISO_NORTH", DAY, DAY + timedelta(days=2) - INTERVAL, instance)
    assert forecasts.success and measured.success


def _grams(moer: float) -> float:
    return round(moer * LBS_PER_MWH_TO_G_PER_KWH, GCO2_KWH_DECIMALS)


def _expected_errors() -> dict[str, tuple[int, float, float, float]]:
    """Per lead-time bucket: points, MAE, RMSE, bias, worked out from the simulator's own series."""
    errors: dict[str, list[float]] = {"0-1h": [], "1-6h": [], "6-24h": []}
    for issue in interval_starts(DAY, DAY + timedelta(days=1)):
        generated_at = int(issue.timestamp())
        for index, moer in enumerate(issued_forecast("CAISO_NORTH", generated_at, FORECAST_HORIZON_HOURS)):
            minutes = index * 5
            actual = moer_value("CAISO_NORTH", issue + timedelta(minutes=minutes))
            bucket = "0-1h" if minutes < 60 else "1-6h" if minutes < 360 else "6-24h"
            errors[bucket].append(_grams(moer) - _grams(actual))
    return {
        bucket: (
            len(values),
            sum(abs(value) for value in values) / len(values),
            math.sqrt(sum(value * value for value in values) / len(values)),
            sum(values) / len(values),
        )
        for bucket, values in errors.items()
    }


def test_a_day_waits_for_its_forecasts_and_measurements_and_says_so(
    resources: dict[str, object], instance: dg.DagsterInstance, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    result = _judge(resources, instance)

    assert not result.success
    message = failure_message(result)
    day = DAY.strftime("%Y-%m-%d")
    assert f"region CAISO_NORTH, day {day}: waiting for 96 carbon_forecast interval(s)" in message
    end = (DAY + timedelta(days=2)).strftime("%Y-%m-%d")
    assert f"192 carbon_intensity interval(s) in {day}T00:00Z..{end}T00:00Z" in message
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_failure_data.user_failure_data.metadata["failure_kind"].value == "data_incomplete"
    assert influxdb_server.query("SHOW MEASUREMENTS", influxdb_database) == []


def test_a_stored_day_is_judged_against_what_was_published(
    resources: dict[str, object], instance: dg.DagsterInstance, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    _store_the_day(resources, instance)

    result = _judge(resources, instance)

    assert result.success, failure_message(result)
    rows = influxdb_server.query(
        "SELECT mae_gco2_kwh, rmse_gco2_kwh, bias_gco2_kwh, points FROM carbon_forecast_accuracy "
        "WHERE region = 'CAISO_NORTH' AND horizon_bucket != '' GROUP BY horizon_bucket",
        influxdb_database,
    )
    stored = {
        row["horizon_bucket"]: (row["points"], row["mae_gco2_kwh"], row["rmse_gco2_kwh"], row["bias_gco2_kwh"])
        for row in rows
    }
    expected = _expected_errors()
    assert set(stored) == set(expected)
    for bucket, (points, mae, rmse, bias) in expected.items():
        assert stored[bucket][0] == points
        assert stored[bucket][1:] == pytest.approx((mae, rmse, bias), abs=1e-4)
    assert all(row["time"] == int(DAY.timestamp()) for row in rows)
    metadata = result.asset_materializations_for_node(ACCURACY_ASSET_NAME)[0].metadata
    assert metadata["mae_0_to_1h_gco2_kwh"].value == pytest.approx(expected["0-1h"][1], abs=1e-4)
    assert 0 < metadata["mae_0_to_1h_gco2_kwh"].value < metadata["mae_6_to_24h_gco2_kwh"].value
    shares = [metadata[f"cleanest_{hours}h_within_5_percent_share"].value for hours in WINDOW_HOURS]
    assert all(0 <= share <= 1 for share in shares)


def test_the_automation_judges_a_day_only_once_all_it_depends_on_is_stored(
    resources: dict[str, object], instance: dg.DagsterInstance
) -> None:
    defs = dg.Definitions(assets=[ASSET, FORECAST_ASSET, ACCURACY], resources=resources)

    early = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    _store_the_day(resources, instance)
    later = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=early.cursor)

    assert early.get_requested_partitions(dg.AssetKey(ACCURACY_ASSET_NAME)) == set()
    assert later.get_requested_partitions(dg.AssetKey(ACCURACY_ASSET_NAME)) == {str(KEY)}
