"""The forecast asset end to end: simulator over loopback HTTP -> pandera -> real InfluxDB, on a real instance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from carbon_pipeline.assets.carbon_forecast import ASSET_NAME, VALID_FORECAST_CHECK, WINDOW_ASSET_NAME
from carbon_pipeline.partitions import INTERVAL, interval_starts, region_partition_key
from carbon_pipeline.sinks.line_protocol import LBS_PER_MWH_TO_G_PER_KWH
from carbon_pipeline.validation import GCO2_KWH_DECIMALS
from carbon_pipeline.watttime.simulator import Fault, SimulatorServer, issued_forecast
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import (
    FORECAST_HORIZON_HOURS,
    WINDOW_HOURS,
    check_evaluation,
    failure_message,
    materialize_forecasts,
)

DAY = datetime(2025, 6, 1, tzinfo=UTC)
POINTS = FORECAST_HORIZON_HOURS * 12
CAISO = ("CAISO_NORTH", "CAISO_NORTH")


def _current_interval() -> datetime:
    now = datetime.now(UTC)
    return now - (now - datetime(1970, 1, 1, tzinfo=UTC)) % INTERVAL


def _stored(server: InfluxDBServer, database: str, region: str) -> dict[tuple[int, int], tuple[int, float, float]]:
    """(generated_at, point time) -> (horizon minutes, MOER, gCO2/kWh) of every forecast point of ``region``."""
    rows = server.query(
        "SELECT generated_at, horizon_minutes, moer_lbs_per_mwh, carbon_intensity_gco2_kwh FROM carbon_forecast "
        f"WHERE region = '{region}'",
        database,
    )
    return {
        (row["generated_at"], row["time"]): (
            int(row["horizon_minutes"]),
            row["moer_lbs_per_mwh"],
            row["carbon_intensity_gco2_kwh"],
        )
        for row in rows
    }


def _truth(region: str, issues: list[datetime]) -> dict[tuple[int, int], tuple[int, float, float]]:
    """What the pipeline must store for these issues: the simulator's forecast issued at each interval's start."""
    expected = {}
    for issue in issues:
        generated_at = int(issue.timestamp())
        for index, moer in enumerate(issued_forecast(region, generated_at, FORECAST_HORIZON_HOURS)):
            grams = round(moer * LBS_PER_MWH_TO_G_PER_KWH, GCO2_KWH_DECIMALS)
            expected[(generated_at, generated_at + index * 300)] = (index * 5, moer, grams)
    return expected


def _check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    return check_evaluation(result, VALID_FORECAST_CHECK)


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
        assert _stored(influxdb_server, influxdb_database, region) == _truth(region, [issue])
    metadata = _metadata(result)
    assert set(metadata) == {str(region_partition_key(region, issue)) for region in ("CAISO_NORTH", "PJM_DC")}
    own = metadata[str(region_partition_key("CAISO_NORTH", issue))]
    assert own["points"] == POINTS
    assert own["generated_at"] == issue.timestamp()
    assert own["forecast_1h_gco2_kwh"] == pytest.approx(
        _truth("CAISO_NORTH", [issue])[(int(issue.timestamp()), int(issue.timestamp()) + 3600)][2], abs=1e-3
    )
    assert _check(result).passed


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
    assert _stored(influxdb_server, influxdb_database, "CAISO_NORTH") == _truth("CAISO_NORTH", issues)
    assert _materialized(instance) == {str(region_partition_key("CAISO_NORTH", issue)) for issue in issues}
    summary = _check(result).metadata
    assert summary["watttime_forecast_calls"].value == 2
    assert len(simulator.state.stats()["forecast_historical_queries"]) == 2
    assert summary["points_written"].value == len(issues) * POINTS
    assert list(_metadata(result)) == [str(region_partition_key("CAISO_NORTH", i)) for i in issues]


def test_rematerializing_an_issue_rewrites_the_same_points(
    resources: dict[str, object], influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    first = materialize_forecasts(resources, CAISO, DAY, DAY + timedelta(hours=1))
    stored = _stored(influxdb_server, influxdb_database, "CAISO_NORTH")

    again = materialize_forecasts(resources, CAISO, DAY, DAY + timedelta(hours=1))

    assert first.success and again.success
    assert _stored(influxdb_server, influxdb_database, "CAISO_NORTH") == stored
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
    assert not _check(refused).passed
    assert _stored(influxdb_server, influxdb_database, "CAISO_NORTH") == {}
    assert _materialized(instance) == _materialized(instance, WINDOW_ASSET_NAME) == set()

    healed = materialize_forecasts(resources, CAISO, DAY, instance=instance)

    assert healed.success, failure_message(healed)
    assert _stored(influxdb_server, influxdb_database, "CAISO_NORTH") == _truth("CAISO_NORTH", [DAY])


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
    assert _stored(influxdb_server, influxdb_database, "CAISO_NORTH") == {}


def test_a_stale_live_forecast_is_not_issued_yet_and_retryable(
    resources: dict[str, object], simulator: SimulatorServer, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    issue = _current_interval()
    simulator.state.inject(Fault(kind="stale_generated_at", path="/v3/forecast"))

    result = materialize_forecasts(resources, CAISO, issue)

    assert not result.success
    message = failure_message(result)
    assert "has not issued a forecast in this interval" in message and "CAISO_NORTH" in message
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_failure_data.user_failure_data.metadata["failure_kind"].value == "data_incomplete"
    assert _stored(influxdb_server, influxdb_database, "CAISO_NORTH") == {}


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
    assert _stored(influxdb_server, influxdb_database, "PJM_DC") == {}


def test_an_issue_outside_the_archive_fails_with_wattime_reason(
    resources: dict[str, object], simulator: SimulatorServer, instance: dg.DagsterInstance
) -> None:
    simulator.state.inject(Fault(kind="outside_archive", path="/v3/forecast/historical"))

    result = materialize_forecasts(resources, CAISO, DAY, instance=instance)

    assert not result.success
    assert "region CAISO_NORTH, forecast issued in 2025-06-01T00:00Z..2025-06-01T00:15Z" in failure_message(result)
    assert _materialized(instance) == set()


def test_a_failed_write_marks_nothing_and_names_the_regions(
    resources: dict[str, object], influxdb_shim: InfluxDBShim, instance: dg.DagsterInstance
) -> None:
    influxdb_shim.inject("status", count=10, status=400)

    result = materialize_forecasts(resources, ("CAISO_NORTH", "PJM_DC"), DAY, instance=instance)

    assert not result.success
    assert "regions CAISO_NORTH, PJM_DC: forecasts not stored" in failure_message(result)
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_failure_data.user_failure_data.metadata["failure_kind"].value == "influxdb_write"
    assert _materialized(instance) == set()


def _brute_force_window(grams: list[float], points: int) -> tuple[int, float]:
    """Index and mean of the earliest cleanest run of ``points`` values, summed exactly in 1e-4 g units."""
    units = [round(value * 10**GCO2_KWH_DECIMALS) for value in grams]
    sums = [sum(units[start : start + points]) for start in range(len(units) - points + 1)]
    best = min(sums)
    return sums.index(best), round(best / points / 10**GCO2_KWH_DECIMALS, GCO2_KWH_DECIMALS)


def test_every_stored_forecast_gets_its_cleanest_windows_in_influxdb_and_the_ui(
    resources: dict[str, object],
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    instance: dg.DagsterInstance,
) -> None:
    issues = interval_starts(DAY, DAY + timedelta(hours=1))

    result = materialize_forecasts(resources, CAISO, issues[0], issues[-1], instance)

    assert result.success, failure_message(result)
    rows = influxdb_server.query(
        "SELECT window_start, mean_gco2_kwh, current_percentile FROM carbon_cleanest_window "
        "WHERE region = 'CAISO_NORTH' GROUP BY window_hours",
        influxdb_database,
    )
    stored = {(row["time"], int(row["window_hours"])): (row["window_start"], row["mean_gco2_kwh"]) for row in rows}
    expected = {}
    truth = _truth("CAISO_NORTH", issues)
    for issue in issues:
        first = int(issue.timestamp())
        grams = [truth[(first, first + index * 300)][2] for index in range(POINTS)]
        for hours in WINDOW_HOURS:
            start, mean = _brute_force_window(grams, hours * 12)
            expected[(first, hours)] = (first + start * 300, mean)
    assert stored == expected
    assert (
        _materialized(instance, WINDOW_ASSET_NAME)
        == _materialized(instance)
        == {str(region_partition_key("CAISO_NORTH", issue)) for issue in issues}
    )
    own = _metadata(result, WINDOW_ASSET_NAME)[str(region_partition_key("CAISO_NORTH", issues[0]))]
    assert own["cleanest_2h_start"] == expected[(int(issues[0].timestamp()), 2)][0]
    assert own["cleanest_2h_gco2_kwh"] == expected[(int(issues[0].timestamp()), 2)][1]
    assert 0 <= own["current_percentile"] <= 100
