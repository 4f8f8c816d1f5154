"""The average-carbon-intensity asset end to end: Electricity Maps simulator over loopback HTTP -> pandera -> InfluxDB.

The simulator and the asset both place "the last 24 hours" on the real clock, so each test starts well inside
an hour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import dagster as dg
import pytest

from carbon_pipeline.assets.average_carbon_intensity import VALID_DATA_CHECK, build_average_intensity_asset
from carbon_pipeline.electricitymaps.endpoints import HISTORY_PATH, PAST_RANGE_PATH
from carbon_pipeline.electricitymaps.resource import ElectricityMapsResource
from carbon_pipeline.electricitymaps.simulator import (
    FREE_TOKEN,
    PAID_TOKEN,
    ElectricityMapsSimulator,
    Fault,
    SimulatorConfig,
)
from carbon_pipeline.electricitymaps.simulator.api import ESTIMATION_METHOD
from carbon_pipeline.electricitymaps.simulator.values import ZONES, intensity
from carbon_pipeline.partitions import HOUR, RANGE_END_TAG, RANGE_START_TAG, build_zone_partitions, format_window
from carbon_pipeline.partitions import region_partition_key as zone_key
from carbon_pipeline_tests.support.hours import hour_under_way
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import check_evaluation, failure_message, influxdb_resource
from carbon_pipeline_tests.support.simulator_session import FAST

Materialize = Callable[..., dg.ExecuteInProcessResult]


@pytest.fixture
def simulator() -> Iterator[ElectricityMapsSimulator]:
    with ElectricityMapsSimulator(SimulatorConfig()) as server:
        yield server


@pytest.fixture
def materialize(
    simulator: ElectricityMapsSimulator, influxdb_shim: InfluxDBShim, influxdb_database: str
) -> Materialize:
    """Materialize DE from ``first`` to ``last`` (hour starts) as one run with a token and a plan depth."""

    def run(token: str, history_hours: int, first: datetime, last: datetime) -> dg.ExecuteInProcessResult:
        partitions = build_zone_partitions(["DE"], first - 48 * HOUR, HOUR)
        resources = {
            "electricitymaps": ElectricityMapsResource(api_token=token, base_url=simulator.api_url, **FAST),
            "point_sink": influxdb_resource(influxdb_shim.url, influxdb_database),
        }
        tags = {RANGE_START_TAG: str(zone_key("DE", first)), RANGE_END_TAG: str(zone_key("DE", last))}
        asset = build_average_intensity_asset(partitions, history_hours)
        return dg.materialize([asset], resources=resources, tags=tags, raise_on_error=False)

    return run


def _stored(server: InfluxDBServer, database: str) -> dict[int, dict[str, object]]:
    return {row["time"]: row for row in server.query("SELECT * FROM average_carbon_intensity", database)}


def _requests(simulator: ElectricityMapsSimulator) -> dict[str, int]:
    return dict(simulator.state.stats()["requests"])


def test_a_day_equals_the_simulators_truth_in_one_history_and_one_past_range_call(
    materialize: Materialize,
    simulator: ElectricityMapsSimulator,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
) -> None:
    newest = hour_under_way()
    first, last = newest - 24 * HOUR, newest - HOUR

    result = materialize(PAID_TOKEN, 48, first, last)

    assert result.success, failure_message(result)
    rows = _stored(influxdb_server, influxdb_database)
    hours = [first + index * HOUR for index in range(24)]
    assert sorted(rows) == [int(hour.timestamp()) for hour in hours]
    for hour in hours:
        row = rows[int(hour.timestamp())]
        estimated = newest - hour < timedelta(hours=SimulatorConfig().estimated_hours)
        assert row["gco2eq_per_kwh"] == intensity("DE", ZONES["DE"], hour, "lifecycle")
        assert row["is_estimated"] is estimated
        assert row.get("estimation_method") == (ESTIMATION_METHOD if estimated else None)
        assert (row["zone"], row["signal_type"], row["source"]) == ("DE", "average_lifecycle", "electricitymaps")
    assert _requests(simulator) == {HISTORY_PATH: 1, PAST_RANGE_PATH: 1}
    assert influxdb_server.query("SELECT count(moer_lbs_per_mwh) FROM carbon_intensity", influxdb_database) == []
    materialized = {event.partition for event in result.get_asset_materialization_events()}
    assert materialized == {str(zone_key("DE", hour)) for hour in hours}
    assert check_evaluation(result, VALID_DATA_CHECK).passed


def test_a_free_token_never_asks_for_what_is_older_than_24_hours_and_writes_nothing_for_it(
    materialize: Materialize,
    simulator: ElectricityMapsSimulator,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
) -> None:
    newest = hour_under_way()
    first, served = newest - 26 * HOUR, newest - 23 * HOUR

    result = materialize(FREE_TOKEN, 24, first, newest - HOUR)

    assert not result.success
    assert (
        f"zone DE, interval {format_window(first, served)}: not available from this source "
        "(Electricity Maps free tier serves the last 24 h); nothing written"
    ) in failure_message(result)
    assert sorted(_stored(influxdb_server, influxdb_database)) == [
        int((served + index * HOUR).timestamp()) for index in range(23)
    ]
    assert _requests(simulator) == {HISTORY_PATH: 1}
    materialized = {event.partition for event in result.get_asset_materialization_events()}
    assert str(zone_key("DE", first)) not in materialized
    assert len(materialized) == 23


@pytest.mark.parametrize(("kind", "said"), [("nulls", "carbonIntensity None"), ("out_of_range", "carbonIntensity -5")])
def test_a_bad_value_is_refused_naming_value_zone_and_interval_and_nothing_is_written(
    materialize: Materialize,
    simulator: ElectricityMapsSimulator,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    kind: str,
    said: str,
) -> None:
    newest = hour_under_way()
    first, last = newest - 3 * HOUR, newest - HOUR
    simulator.state.inject(Fault(kind))

    result = materialize(FREE_TOKEN, 24, first, last)

    assert not result.success
    message = failure_message(result)
    assert f"zone DE, interval {format_window(first, newest)}" in message
    assert said in message
    assert _stored(influxdb_server, influxdb_database) == {}
    assert result.get_asset_materialization_events() == []
