"""The asset end to end: simulator over loopback HTTP -> pandera -> real InfluxDB, on a real Dagster instance."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from carbon_pipeline.partitions import interval_key, interval_starts, region_partition_key
from carbon_pipeline.watttime.simulator import Fault, SimulatorConfig, SimulatorServer
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import (
    ASSET,
    REGIONS,
    check_evaluation,
    failure_message,
    influxdb_resource,
    materialization_metadata,
    materialize,
    materialize_regions,
    metadata_by_partition,
    own_figures,
    stored_points,
    truth,
    watttime_resource,
)

DAY = datetime(2025, 1, 1, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
INTERVAL_TEXT = "region CAISO_NORTH, interval 2025-01-01T00:00Z..2025-01-01T00:15Z"
MODEL_DATE = "2023-03-01"


def _materialized(instance: dg.DagsterInstance) -> set[str]:
    return set(instance.get_materialized_partitions(ASSET.key))


def _stored_figures(
    server: InfluxDBServer, database: str, regions: Sequence[str], end: datetime, data_source: str
) -> dict[str, dict[str, object]]:
    """Each interval of ``regions`` from DAY to ``end``, with the figures its points in InfluxDB have."""
    return {
        key: figures
        for region in regions
        for key, figures in own_figures(
            region, stored_points(server, database, region), DAY, end, data_source, MODEL_DATE
        ).items()
    }


def _in_time_order(regions: Sequence[str], end: datetime) -> list[str]:
    """The partition keys of ``regions`` from DAY to ``end``: oldest interval first, then regions by name."""
    starts = interval_starts(DAY, end)
    return [str(region_partition_key(region, start)) for start in starts for region in sorted(regions)]


# ##### TESTS


def test_single_interval_writes_exact_points_and_metadata(
    resources: dict[str, object], influxdb_server: InfluxDBServer, influxdb_database: str, instance: dg.DagsterInstance
) -> None:
    result = materialize(resources, "CAISO_NORTH", DAY, instance=instance)

    assert result.success
    assert stored_points(influxdb_server, influxdb_database, "CAISO_NORTH") == truth("CAISO_NORTH", DAY, DAY + QUARTER)
    metadata = materialization_metadata(result)
    assert metadata["points_written"] == 3
    assert metadata["watttime_data_calls"] == 1
    assert metadata["gco2_kwh_min"] <= metadata["gco2_kwh_mean"] <= metadata["gco2_kwh_max"]
    assert metadata["watttime_model_date"] == "2023-03-01"
    assert metadata["first_point_time"] == DAY.timestamp()
    assert metadata["last_point_time"] == (DAY + timedelta(minutes=10)).timestamp()
    assert "| region" in metadata["preview"]
    assert check_evaluation(result).passed
    assert _materialized(instance) == {"CAISO_NORTH|2025-01-01-00:00"}


def test_a_range_gives_each_interval_its_own_figures_and_keeps_the_run_totals_on_the_check(
    resources: dict[str, object], influxdb_server: InfluxDBServer, influxdb_database: str, instance: dg.DagsterInstance
) -> None:
    result = materialize(resources, "CAISO_NORTH", DAY, DAY + 7 * QUARTER, instance=instance)

    assert result.success
    summary = {key: value.value for key, value in check_evaluation(result).metadata.items()}
    stored = stored_points(influxdb_server, influxdb_database, "CAISO_NORTH")
    expected = own_figures("CAISO_NORTH", stored, DAY, DAY + 8 * QUARTER, str(summary["data_source"]), MODEL_DATE)
    per_interval = metadata_by_partition(result)
    assert per_interval == expected
    assert len({metadata["gco2_kwh_mean"] for metadata in per_interval.values()}) > 1
    assert (summary["points_checked"], summary["points_written"], summary["intervals"]) == (24, 24, 8)
    assert summary["gco2_kwh_min"] <= summary["gco2_kwh_mean"] <= summary["gco2_kwh_max"]
    assert summary["first_point_time"] == DAY.timestamp() and "| region" in summary["preview"]


def test_every_region_and_interval_of_a_range_carries_the_figures_of_its_own_stored_points(
    resources: dict[str, object], influxdb_server: InfluxDBServer, influxdb_database: str, instance: dg.DagsterInstance
) -> None:
    """Three regions, one of them hourly (three of its four intervals have no point of their own)."""
    end = DAY + 8 * QUARTER
    result = materialize_regions(resources, (REGIONS[0], REGIONS[-1]), DAY, end - QUARTER, instance=instance)

    assert result.success, failure_message(result)
    data_source = str(check_evaluation(result).metadata["data_source"].value)
    expected = _stored_figures(influxdb_server, influxdb_database, REGIONS, end, data_source)
    assert metadata_by_partition(result) == expected
    assert sum(figures["points"] == 0 for figures in expected.values()) == 6  # type: ignore[misc]


def test_a_range_is_recorded_in_time_order_so_the_latest_materialization_is_its_newest_interval(
    resources: dict[str, object], instance: dg.DagsterInstance
) -> None:
    end = DAY + 8 * QUARTER
    result = materialize_regions(resources, (REGIONS[0], REGIONS[-1]), DAY, end - QUARTER, instance=instance)

    assert result.success
    in_time_order = _in_time_order(REGIONS, end)
    assert list(metadata_by_partition(result)) == in_time_order
    stored = instance.fetch_materializations(ASSET.key, limit=len(in_time_order) + 1, ascending=True).records
    assert [record.partition_key for record in stored] == in_time_order
    latest = instance.get_latest_materialization_event(ASSET.key)
    assert latest is not None and latest.dagster_event is not None
    assert latest.dagster_event.partition == in_time_order[-1] == f"PJM_DC|{interval_key(end - QUARTER)}"


def test_a_region_rejected_in_a_range_leaves_only_the_others_intervals_each_with_its_own_figures(
    resources: dict[str, object],
    simulator: SimulatorServer,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    instance: dg.DagsterInstance,
) -> None:
    """The fault damages whichever region's reply is built first; the check names it."""
    end = DAY + 8 * QUARTER
    simulator.state.inject(Fault(kind="out_of_range", path="/v3/historical"))
    result = materialize_regions(resources, (REGIONS[0], REGIONS[-1]), DAY, end - QUARTER, instance=instance)

    assert not result.success
    rejected = check_evaluation(result).metadata["region"].value
    written = sorted(set(REGIONS) - {rejected})
    assert stored_points(influxdb_server, influxdb_database, rejected) == []
    data_source = watttime_resource(simulator.base_url).data_source_label()
    expected = _stored_figures(influxdb_server, influxdb_database, written, end, data_source)
    recorded = metadata_by_partition(result)
    assert recorded == expected
    assert list(recorded) == _in_time_order(written, end)
    assert _materialized(instance) == set(expected)


def test_points_carry_the_schema_tags_and_provenance(
    resources: dict[str, object], influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    assert materialize(resources, "CAISO_NORTH", DAY).success
    rows = influxdb_server.query("SELECT * FROM carbon_intensity", influxdb_database)
    assert {(row["region"], row["grid_operator"], row["signal_type"], row["source"]) for row in rows} == {
        ("CAISO_NORTH", "CAISO", "co2_moer", "watttime")
    }
    assert {row["model_date"] for row in rows} == {"2023-03-01"}
    assert all(isinstance(row["imputed"], bool) for row in rows)


@pytest.mark.slow
def test_month_backfill_is_one_run_two_watttime_calls_and_batched_writes(
    resources: dict[str, object],
    simulator: SimulatorServer,
    influxdb_shim: InfluxDBShim,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    instance: dg.DagsterInstance,
) -> None:
    end = datetime(2025, 2, 1, tzinfo=UTC)
    result = materialize(resources, "CAISO_NORTH", DAY, end - QUARTER, instance=instance)

    assert result.success
    stats = simulator.state.stats()
    assert stats["requests"]["/v3/historical"] == 2
    assert stats["logins"] == 1
    bounds = sorted((call["start"], call["end"]) for call in stats["historical_queries"])
    assert bounds == [
        ("2025-01-01T00:00:00+00:00", "2025-01-30T23:59:59+00:00"),
        ("2025-01-31T00:00:00+00:00", "2025-01-31T23:59:59+00:00"),
    ]
    assert [write.line_count for write in influxdb_shim.requests] == [5000, 3928]
    assert stored_points(influxdb_server, influxdb_database, "CAISO_NORTH") == truth("CAISO_NORTH", DAY, end)
    assert len(_materialized(instance)) == 31 * 96


def test_rematerializing_writes_identical_points_without_duplicates(
    resources: dict[str, object], influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    assert materialize(resources, "CAISO_NORTH", DAY, DAY + QUARTER).success
    first = stored_points(influxdb_server, influxdb_database, "CAISO_NORTH")
    assert materialize(resources, "CAISO_NORTH", DAY).success
    assert stored_points(influxdb_server, influxdb_database, "CAISO_NORTH") == first
    assert len(first) == 6


def test_hourly_region_stores_one_point_per_hour(
    resources: dict[str, object], influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    result = materialize(resources, "IE", DAY, DAY + 7 * QUARTER)
    assert result.success, failure_message(result)
    assert stored_points(influxdb_server, influxdb_database, "IE") == truth("IE", DAY, DAY + 8 * QUARTER, 3600)


@pytest.mark.parametrize(
    ("kind", "shown"),
    [
        ("out_of_range", "99999.0"),
        ("nulls", "None"),
        ("conflicting_duplicates", "multiple_fields_uniqueness"),
        ("outside_window", "in_range"),
        ("wrong_units", "'percentile'"),
        ("non_numeric", "'n/a'"),
    ],
)
def test_invalid_data_fails_the_blocking_check_and_writes_nothing(
    kind: str,
    shown: str,
    resources: dict[str, object],
    simulator: SimulatorServer,
    influxdb_shim: InfluxDBShim,
    instance: dg.DagsterInstance,
) -> None:
    simulator.state.inject(Fault(kind=kind, path="/v3/historical"))
    result = materialize(resources, "CAISO_NORTH", DAY, instance=instance)

    assert not result.success
    message = failure_message(result)
    assert INTERVAL_TEXT in message and "nothing written" in message and shown in message
    evaluation = check_evaluation(result)
    assert not evaluation.passed
    assert evaluation.metadata["num_failures"].value >= 1
    assert shown in evaluation.metadata["failure_cases"].value
    assert influxdb_shim.requests == []
    assert _materialized(instance) == set()


def test_interval_not_fully_published_fails_retryably_and_stays_missing(
    influxdb_shim: InfluxDBShim, influxdb_database: str, instance: dg.DagsterInstance
) -> None:
    seven_past = DAY + timedelta(minutes=7)
    with SimulatorServer(SimulatorConfig(publication_lag_seconds=0, clock=lambda: seven_past)) as early:
        resources = {
            "watttime": watttime_resource(early.base_url),
            "point_sink": influxdb_resource(influxdb_shim.url, influxdb_database),
        }
        result = materialize(resources, "CAISO_NORTH", DAY, instance=instance)

    assert not result.success
    message = failure_message(result)
    assert "not yet published: 2 of 3 points" in message and INTERVAL_TEXT in message
    assert influxdb_shim.requests == []
    assert _materialized(instance) == set()


def test_empty_reply_for_an_interval_published_long_ago_says_so(
    resources: dict[str, object], simulator: SimulatorServer, influxdb_shim: InfluxDBShim
) -> None:
    simulator.state.inject(Fault(kind="empty", path="/v3/historical"))
    result = materialize(resources, "CAISO_NORTH", DAY)
    message = failure_message(result)
    expected_by = (DAY + QUARTER + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"WattTime returned no points for {INTERVAL_TEXT}, published long ago (expected by {expected_by})" in message
    assert "not yet published" not in message
    assert influxdb_shim.requests == []


@pytest.mark.slow
def test_token_rejected_mid_backfill_relogs_once_and_completes(
    resources: dict[str, object], simulator: SimulatorServer, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    end = DAY + timedelta(days=40)
    simulator.state.inject(Fault(kind="unauthorized", path="/v3/historical"))
    result = materialize(resources, "CAISO_NORTH", DAY, end - QUARTER)

    assert result.success
    assert simulator.state.stats()["logins"] == 2
    assert len(stored_points(influxdb_server, influxdb_database, "CAISO_NORTH")) == 40 * 288


def test_transient_watttime_errors_are_retried_within_the_run(
    resources: dict[str, object], simulator: SimulatorServer, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    simulator.state.inject(Fault(kind="status", status=503, path="/v3/historical"))
    simulator.state.inject(Fault(kind="status", status=429, retry_after=1, path="/v3/historical"))
    assert materialize(resources, "CAISO_NORTH", DAY).success
    assert len(stored_points(influxdb_server, influxdb_database, "CAISO_NORTH")) == 3


def test_region_outside_the_plan_names_region_and_free_region(
    influxdb_shim: InfluxDBShim, influxdb_database: str
) -> None:
    with SimulatorServer(SimulatorConfig(publication_lag_seconds=0, plan_regions=frozenset({"CAISO_NORTH"}))) as free:
        resources = {
            "watttime": watttime_resource(free.base_url),
            "point_sink": influxdb_resource(influxdb_shim.url, influxdb_database),
        }
        message = failure_message(materialize(resources, "PJM_DC", DAY))
    assert "region PJM_DC, interval 2025-01-01T00:00Z..2025-01-01T00:15Z" in message
    assert "CAISO_NORTH" in message


@pytest.mark.parametrize(
    ("fault", "shown"),
    [
        ({"kind": "status", "status": 500, "count": 10}, "HTTP 500"),
        ({"kind": "status", "status": 401, "count": 10}, "HTTP 401"),
        ({"kind": "reset", "count": 10}, "ProtocolError"),
    ],
)
def test_influxdb_failures_fail_the_run_naming_region_and_interval(
    fault: dict[str, object],
    shown: str,
    resources: dict[str, object],
    influxdb_shim: InfluxDBShim,
    instance: dg.DagsterInstance,
) -> None:
    influxdb_shim.inject(**fault)  # type: ignore[arg-type]
    result = materialize(resources, "CAISO_NORTH", DAY, instance=instance)
    message = failure_message(result)
    assert INTERVAL_TEXT in message and "InfluxDB write" in message and shown in message
    assert _materialized(instance) == set()


def test_influxdb_down_then_back_completes_on_rerun(
    resources: dict[str, object], influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    influxdb_shim.refuse_connections()
    message = failure_message(materialize(resources, "CAISO_NORTH", DAY))
    assert "failed after 3 attempt(s)" in message and INTERVAL_TEXT in message
    influxdb_shim.accept_connections()
    assert materialize(resources, "CAISO_NORTH", DAY).success
    assert stored_points(influxdb_server, influxdb_database, "CAISO_NORTH") == truth("CAISO_NORTH", DAY, DAY + QUARTER)


def test_influxdb_503_with_retry_after_is_retried(
    resources: dict[str, object], influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    influxdb_shim.inject("status", status=503, retry_after=1)
    assert materialize(resources, "CAISO_NORTH", DAY).success
    assert len(influxdb_shim.requests) == 2
    assert len(stored_points(influxdb_server, influxdb_database, "CAISO_NORTH")) == 3


def test_partial_write_is_reported_with_line_details(resources: dict[str, object], influxdb_shim: InfluxDBShim) -> None:
    influxdb_shim.inject("partial_write")
    message = failure_message(materialize(resources, "CAISO_NORTH", DAY))
    assert "partial write" in message and "line 2" in message and INTERVAL_TEXT in message


def test_v2_write_api_stores_the_same_points(
    simulator: SimulatorServer, influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    resources = {
        "watttime": watttime_resource(simulator.base_url),
        "point_sink": influxdb_resource(influxdb_shim.url, influxdb_database, write_api="v2"),
    }
    assert materialize(resources, "CAISO_NORTH", DAY).success
    assert [write.path for write in influxdb_shim.requests] == ["/api/v2/write"]
    assert stored_points(influxdb_server, influxdb_database, "CAISO_NORTH") == truth("CAISO_NORTH", DAY, DAY + QUARTER)


def test_missing_point_in_the_middle_is_a_gap_and_writes_nothing(
    resources: dict[str, object], simulator: SimulatorServer, influxdb_shim: InfluxDBShim
) -> None:
    simulator.state.inject(Fault(kind="missing_point", path="/v3/historical"))
    message = failure_message(materialize(resources, "CAISO_NORTH", DAY))
    assert "gap in WattTime's data: 2 of 3 points (missing 2025-01-01T00:05:00Z)" in message
    assert influxdb_shim.requests == []


def test_influxdb_429_is_retried(
    resources: dict[str, object], influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    influxdb_shim.inject("status", status=429)
    assert materialize(resources, "CAISO_NORTH", DAY).success
    assert len(influxdb_shim.requests) == 2
    assert len(stored_points(influxdb_server, influxdb_database, "CAISO_NORTH")) == 3


@pytest.mark.parametrize(("slow_requests", "succeeds"), [(1, True), (10, False)])
def test_slow_influxdb_writes_time_out_and_are_retried(
    slow_requests: int,
    succeeds: bool,
    simulator: SimulatorServer,
    influxdb_shim: InfluxDBShim,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
) -> None:
    resources = {
        "watttime": watttime_resource(simulator.base_url),
        "point_sink": influxdb_resource(influxdb_shim.url, influxdb_database, write_timeout_seconds=0.3),
    }
    influxdb_shim.inject("delay", count=slow_requests, delay_seconds=1.0)
    result = materialize(resources, "CAISO_NORTH", DAY)
    assert result.success is succeeds
    if not succeeds:
        assert "ReadTimeoutError" in failure_message(result)
