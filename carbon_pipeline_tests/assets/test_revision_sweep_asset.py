"""The revision sweep end to end: a stored day, WattTime's revisions coming due, the sweep, real InfluxDB.

The simulator runs on a clock of its own, three days behind ours while the day is stored (no revision due
yet) and moved two days on before the sweep, when every revision of the day has come due. The sweep itself
runs on the real clock, as in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from carbon_pipeline.assets.revision_sweep import CLOCK_OVERLAP, build_revision_sweep_asset
from carbon_pipeline.sinks.line_protocol import LBS_PER_MWH_TO_G_PER_KWH
from carbon_pipeline.watttime.simulator import Fault, SimulatorConfig, SimulatorServer, moer_value
from carbon_pipeline.watttime.simulator.signal import is_revised, revised_value
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import (
    check_evaluation,
    declared_failure,
    failure_message,
    materialization_metadata,
    materialize,
)
from carbon_pipeline_tests.support.simulator_session import FakeClock

REGION = "CAISO_NORTH"
SHARE = 0.05
DELAY = timedelta(days=2)
QUARTER = timedelta(minutes=15)
SWEEP = build_revision_sweep_asset((REGION,), revision_days=7)
NOW = datetime.now(UTC)
# The stored day ends two hours before the simulator's clock, whatever the time of day the tests run.
DAY_END = datetime.fromtimestamp(int((NOW - timedelta(days=3, hours=2)).timestamp()) // 900 * 900, UTC)
DAY_START = DAY_END - timedelta(days=1)


@pytest.fixture
def clock() -> FakeClock:
    clock = FakeClock()
    clock.now = NOW - timedelta(days=3)
    return clock


@pytest.fixture
def simulator(clock: FakeClock) -> Iterator[SimulatorServer]:
    """The simulator the assets' shared ``resources`` use: revising, on the test's clock."""
    config = SimulatorConfig(
        publication_lag_seconds=0, revision_share=SHARE, revision_delay_seconds=DELAY.total_seconds(), clock=clock
    )
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture
def stored_day(resources: dict[str, object], clock: FakeClock, instance: dg.DagsterInstance) -> FakeClock:
    """The day stored as first published, then the simulator's clock moved on until its revisions are due."""
    assert materialize(resources, REGION, DAY_START, DAY_END - QUARTER, instance=instance).success
    clock.advance(DELAY.total_seconds())
    return clock


def _sweep(resources: dict[str, object], instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize([SWEEP], resources=resources, instance=instance, raise_on_error=False)


def _epochs() -> range:
    return range(int(DAY_START.timestamp()), int(DAY_END.timestamp()), 300)


def _published(epoch: int) -> float:
    return moer_value(REGION, datetime.fromtimestamp(epoch, UTC))


def _revised_epochs() -> list[int]:
    return [epoch for epoch in _epochs() if is_revised("co2_moer", REGION, epoch, SHARE)]


def _stored(server: InfluxDBServer, database: str) -> dict[int, tuple[float, int | None]]:
    rows = server.query(
        f"SELECT moer_lbs_per_mwh, last_updated FROM carbon_intensity WHERE region = '{REGION}'", database
    )
    return {row["time"]: (row["moer_lbs_per_mwh"], row["last_updated"]) for row in rows}


def test_the_sweep_stores_the_revised_truth_with_last_updated_and_says_how_much_changed(
    resources: dict[str, object],
    stored_day: FakeClock,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    instance: dg.DagsterInstance,
) -> None:
    revised = _revised_epochs()
    assert revised, "the seeded share revises some points of the day"

    result = _sweep(resources, instance)

    assert result.success
    expected = {
        epoch: (revised_value("co2_moer", _published(epoch)), epoch + int(DELAY.total_seconds()))
        if epoch in revised
        else (_published(epoch), None)
        for epoch in _epochs()
    }
    assert _stored(influxdb_server, influxdb_database) == expected
    metadata = materialization_metadata(result)
    changes = [abs(revised_value("co2_moer", _published(epoch)) - _published(epoch)) for epoch in revised]
    assert metadata["points_revised"] == metadata[f"points_revised/{REGION}"] == len(revised)
    assert metadata["max_change_gco2_kwh"] == round(max(changes) * LBS_PER_MWH_TO_G_PER_KWH, 4)
    assert metadata["mean_change_gco2_kwh"] == pytest.approx(
        sum(changes) / len(changes) * LBS_PER_MWH_TO_G_PER_KWH, abs=1e-4
    )


def test_a_second_sweep_asks_from_the_first_finds_nothing_and_still_records_the_sweep(
    resources: dict[str, object], stored_day: FakeClock, simulator: SimulatorServer, instance: dg.DagsterInstance
) -> None:
    first = _sweep(resources, instance)
    second = _sweep(resources, instance)

    assert first.success and second.success
    metadata = materialization_metadata(second)
    assert metadata["points_revised"] == metadata[f"points_revised/{REGION}"] == 0
    assert metadata["max_change_gco2_kwh"] == metadata["mean_change_gco2_kwh"] == 0.0
    swept_at = datetime.fromtimestamp(materialization_metadata(first)[f"swept_at/{REGION}"], UTC)
    asked = [
        query["updated_since"] for query in simulator.state.stats()["historical_queries"] if "updated_since" in query
    ]
    assert asked[-1] == (swept_at - CLOCK_OVERLAP).isoformat()


def test_a_revision_out_of_range_is_refused_by_name_and_nothing_is_written(
    resources: dict[str, object],
    stored_day: FakeClock,
    simulator: SimulatorServer,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    instance: dg.DagsterInstance,
) -> None:
    before = _stored(influxdb_server, influxdb_database)
    assert _revised_epochs() and all(updated is None for _, updated in before.values())  # revisions are due
    simulator.state.inject(Fault(kind="out_of_range", path="/v3/historical"))

    result = _sweep(resources, instance)

    assert not result.success
    message = failure_message(result)
    assert f"revision refused: region {REGION}, interval " in message
    assert "moer_lbs_per_mwh 99999.0 at " in message and "moer_lbs_per_mwh -5.0 at " in message
    assert _stored(influxdb_server, influxdb_database) == before
    metadata = materialization_metadata(result)
    assert metadata["regions_refused"] == 1 and f"swept_at/{REGION}" not in metadata
    evaluation = check_evaluation(result)
    assert not evaluation.passed and "99999.0" in evaluation.metadata["failure_cases"].value


def test_an_influxdb_that_cannot_be_read_fails_the_region_as_a_sink_failure_and_keeps_its_sweep_time(
    resources: dict[str, object], stored_day: FakeClock, influxdb_shim: InfluxDBShim, instance: dg.DagsterInstance
) -> None:
    first = _sweep(resources, instance)
    assert first.success
    influxdb_shim.refuse_connections()

    result = _sweep(resources, instance)

    assert not result.success
    assert f"region {REGION}, interval " in failure_message(result)
    assert f"revision sweep: InfluxDB read from InfluxDB {influxdb_shim.url}" in failure_message(result)
    assert declared_failure(result)["failure_kind"] == "influxdb_write"
    metadata = materialization_metadata(result)
    assert metadata["regions_refused"] == 1
    assert metadata[f"swept_at/{REGION}"] == materialization_metadata(first)[f"swept_at/{REGION}"]
