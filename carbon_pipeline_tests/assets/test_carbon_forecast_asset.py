"""The forecast asset end to end: simulator over loopback HTTP -> pandera -> real InfluxDB, on a real instance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from carbon_pipeline.assets.carbon_forecast import ASSET_NAME, VALID_FORECAST_CHECK, WINDOW_ASSET_NAME
from carbon_pipeline.partitions import INTERVAL, interval_starts, region_partition_key
from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import (
    FORECAST_POINTS,
    check_evaluation,
    declared_failure,
    failure_message,
    forecast_truth,
    materialize_forecasts,
    stored_forecasts,
    stored_windows,
    window_truth,
)

DAY = datetime(2025, 6, 1, tzinfo=UTC)
POINTS = FORECAST_POINTS
CAISO = ("CAISO_NORTH", "CAISO_NORTH")


def _current_interval() -> datetime:
    now = datetime.now(UTC)
    return now - (now - datetime(1970, 1, 1, tzinfo=UTC)) % INTERVAL


def _materialized(instance: dg.DagsterInstance, asset: str = ASSET_NAME) -> set[str]:
    return set(instance.get_materialized_partitions(dg.AssetKey(asset)))


def _metadata(result: dg.ExecuteInProcessResult, asset: str = ASSET_NAME) -> dict[str, dict[str, object]]:
    """Each partition's metadata for ``asset``, in the order the run recorded them."""
    return {
        str(event.partition): {key: value.value for key, value in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey(asset)
    }


def test_the_interval_under_way_stores_its_first_issue_live_for_every_region(
    resources: dict[str, object], influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    issue = _current_interval()

    result = materialize_forecasts(resources, ("CAISO_NORTH", "PJM_DC"), issue)

    assert result.success, failure_message(result)
    for region in ("CAISO_NORTH", "PJM_DC"):
        assert stored_forecasts(influxdb_server, influxdb_database, region) == forecast_truth(region, [issue])
    metadata = _metadata(result)
    assert set(metadata) == {str(region_partition_key(region, issue)) for region in ("CAISO_NORTH", "PJM_DC")}
    own = metadata[str(region_partition_key("CAISO_NORTH", issue))]
    assert own["points"] == POINTS
    assert own["generated_at"] == issue.timestamp()
    assert own["forecast_1h_gco2_kwh"] == pytest.approx(
        forecast_truth("CAISO_NORTH", [issue])[(int(issue.timestamp()), int(issue.timestamp()) + 3600)][2], abs=1e-3
    )
    assert check_evaluation(result, VALID_FORECAST_CHECK).passed


def test_a_backfill_stores_the_first_issue_of_every_interval_a_day_per_call(
    resources: dict[str, object],
    simulator: SimulatorServer,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    instance: dg.DagsterInstance,
) -> None:
    last = DAY + timedelta(days=1, hours=1)
    issues = interval_starts(DAY, last + INTERVAL)

    result = materialize_forecasts(resources, CAISO, DAY, last, instance)

    assert result.success, failure_message(result)
    assert stored_forecasts(influxdb_server, influxdb_database, "CAISO_NORTH") == forecast_truth("CAISO_NORTH", issues)
    assert _materialized(instance) == {str(region_partition_key("CAISO_NORTH", issue)) for issue in issues}
    summary = check_evaluation(result, VALID_FORECAST_CHECK).metadata
    assert summary["watttime_forecast_calls"].value == 2
    assert len(simulator.state.stats()["forecast_historical_queries"]) == 2
    assert summary["points_written"].value == len(issues) * POINTS
    assert list(_metadata(result)) == [str(region_partition_key("CAISO_NORTH", i)) for i in issues]


def test_rematerializing_an_issue_rewrites_the_same_points(
    resources: dict[str, object], influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    first = materialize_forecasts(resources, CAISO, DAY, DAY + timedelta(hours=1))
    stored = stored_forecasts(influxdb_server, influxdb_database, "CAISO_NORTH")

    again = materialize_forecasts(resources, CAISO, DAY, DAY + timedelta(hours=1))

    assert first.success and again.success
    assert stored_forecasts(influxdb_server, influxdb_database, "CAISO_NORTH") == stored
    (count,) = influxdb_server.query("SELECT count(moer_lbs_per_mwh) FROM carbon_forecast", influxdb_database)
    assert count["count"] == 5 * POINTS


def test_a_short_forecast_is_refused_naming_region_issue_and_points_and_heals_once_fixed(
    resources: dict[str, object],
    simulator: SimulatorServer,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    instance: dg.DagsterInstance,
) -> None:
    simulator.state.inject(Fault(kind="short_horizon", path="/v3/forecast/historical"))

    refused = materialize_forecasts(resources, CAISO, DAY, instance=instance)

    assert not refused.success
    message = failure_message(refused)
    assert "region CAISO_NORTH, forecast issued in 2025-06-01T00:00Z..2025-06-01T00:15Z" in message
    assert f"{POINTS // 2} points" in message and f"{POINTS} points over 24 h" in message
    assert not check_evaluation(refused, VALID_FORECAST_CHECK).passed
    assert stored_forecasts(influxdb_server, influxdb_database, "CAISO_NORTH") == {}
    assert _materialized(instance) == _materialized(instance, WINDOW_ASSET_NAME) == set()

    healed = materialize_forecasts(resources, CAISO, DAY, instance=instance)

    assert healed.success, failure_message(healed)
    assert stored_forecasts(influxdb_server, influxdb_database, "CAISO_NORTH") == forecast_truth("CAISO_NORTH", [DAY])


@pytest.mark.parametrize(
    ("kind", "rule"),
    [
        ("nulls", "not_nullable"),
        ("out_of_range", "less_than_or_equal_to(4000.0)"),
        ("wrong_units", "isin(['lbs_co2_per_mwh'])"),
        ("missing_point", "horizon complete"),
        ("non_numeric", "not_nullable"),
    ],
)
def test_bad_forecast_data_writes_nothing_and_names_the_rule(
    resources: dict[str, object],
    simulator: SimulatorServer,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    kind: str,
    rule: str,
) -> None:
    simulator.state.inject(Fault(kind=kind, path="/v3/forecast/historical"))

    result = materialize_forecasts(resources, CAISO, DAY)

    assert not result.success
    assert "region CAISO_NORTH, forecast issued in 2025-06-01T00:00Z..2025-06-01T00:15Z" in failure_message(result)
    assert rule in failure_message(result)
    assert stored_forecasts(influxdb_server, influxdb_database, "CAISO_NORTH") == {}


def test_a_stale_live_forecast_is_not_issued_yet_and_retryable(
    resources: dict[str, object], simulator: SimulatorServer, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    issue = _current_interval()
    simulator.state.inject(Fault(kind="stale_generated_at", path="/v3/forecast"))

    result = materialize_forecasts(resources, CAISO, issue)

    assert not result.success
    message = failure_message(result)
    assert "has not issued a forecast in this interval" in message and "CAISO_NORTH" in message
    assert declared_failure(result)["failure_kind"] == "data_incomplete"
    assert stored_forecasts(influxdb_server, influxdb_database, "CAISO_NORTH") == {}


def test_a_region_without_forecast_access_fails_alone(
    resources: dict[str, object],
    simulator: SimulatorServer,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    instance: dg.DagsterInstance,
) -> None:
    simulator.state.inject(Fault(kind="invalid_scope", path="/v3/forecast/historical", region="PJM_DC"))

    result = materialize_forecasts(resources, ("CAISO_NORTH", "PJM_DC"), DAY, instance=instance)

    assert not result.success
    assert "region PJM_DC, forecast issued in" in failure_message(result)
    assert _materialized(instance) == {str(region_partition_key("CAISO_NORTH", DAY))}
    assert stored_forecasts(influxdb_server, influxdb_database, "PJM_DC") == {}


def test_an_issue_outside_the_archive_fails_with_wattime_reason(
    resources: dict[str, object], simulator: SimulatorServer, instance: dg.DagsterInstance
) -> None:
    simulator.state.inject(Fault(kind="outside_archive", path="/v3/forecast/historical"))

    result = materialize_forecasts(resources, CAISO, DAY, instance=instance)

    assert not result.success
    assert "region CAISO_NORTH, forecast issued in 2025-06-01T00:00Z..2025-06-01T00:15Z" in failure_message(result)
    assert _materialized(instance) == set()


def test_a_failed_write_marks_nothing_and_names_each_region_and_issue(
    resources: dict[str, object], influxdb_shim: InfluxDBShim, instance: dg.DagsterInstance
) -> None:
    influxdb_shim.inject("status", count=10, status=400)

    result = materialize_forecasts(resources, ("CAISO_NORTH", "PJM_DC"), DAY, instance=instance)

    assert not result.success
    assert (
        "region CAISO_NORTH, forecast issued in 2025-06-01T00:00Z..2025-06-01T00:15Z; "
        "region PJM_DC, forecast issued in 2025-06-01T00:00Z..2025-06-01T00:15Z: forecasts not stored"
    ) in failure_message(result)
    assert declared_failure(result)["failure_kind"] == "influxdb_write"
    assert _materialized(instance) == set()


def test_every_stored_forecast_gets_its_cleanest_windows_in_influxdb_and_the_ui(
    resources: dict[str, object],
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    instance: dg.DagsterInstance,
) -> None:
    issues = interval_starts(DAY, DAY + timedelta(hours=1))

    result = materialize_forecasts(resources, CAISO, issues[0], issues[-1], instance)

    assert result.success, failure_message(result)
    expected = window_truth("CAISO_NORTH", issues)
    assert stored_windows(influxdb_server, influxdb_database, "CAISO_NORTH") == expected
    assert (
        _materialized(instance, WINDOW_ASSET_NAME)
        == _materialized(instance)
        == {str(region_partition_key("CAISO_NORTH", issue)) for issue in issues}
    )
    own = _metadata(result, WINDOW_ASSET_NAME)[str(region_partition_key("CAISO_NORTH", issues[0]))]
    assert own["cleanest_2h_start"] == expected[(int(issues[0].timestamp()), 2)][0]
    assert own["cleanest_2h_gco2_kwh"] == expected[(int(issues[0].timestamp()), 2)][1]
    assert 0 <= own["current_percentile"] <= 100
