"""A schedule tick is one run over every region, and a region that fails holds back only itself (a failing
forecast holds back no measurement either).

The tick is evaluated as the daemon evaluates it and its run is a real run of the real job on a real
instance, against the WattTime simulator over HTTP and a real InfluxDB server behind the shim; the
alert sensor then reads the finished run with its cursor, as the daemon would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from carbon_pipeline.coverage import floor_interval
from carbon_pipeline.partitions import (
    INTERVAL,
    RANGE_END_TAG,
    RANGE_START_TAG,
    RegionWindow,
    interval_start,
    region_partition_key,
)
from carbon_pipeline.run_outcomes import FAILURE_KIND, FailedRegion, FailureKind, RunOutcome, run_outcome
from carbon_pipeline.schedules import FORECAST_SCHEDULE_NAME
from carbon_pipeline.sensors.failure_alerts import SENSOR_NAME as ALERTS
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.watttime.simulator import REGIONS as SIMULATED_REGIONS
from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.daemon_harness import InProcessDaemon
from carbon_pipeline_tests.support.outage_rig import DATABASE, OutageRig, outage_rig
from carbon_pipeline_tests.support.pipeline_harness import (
    ASSET,
    PARTITIONS,
    REGIONS,
    StoredPoint,
    check_evaluation,
    declared_failure,
    failure_message,
    stored_points,
    truth,
)

DELAY = timedelta(minutes=5)
FORECAST_PATHS = ("/v3/forecast", "/v3/forecast/historical")


@dataclass
class Tick:
    """A daemon for the three harness regions, and the interval its tick requests."""

    daemon: InProcessDaemon
    outage: OutageRig
    simulator: SimulatorServer
    interval: datetime

    def run(self) -> dg.ExecuteInProcessResult:
        (result,) = self.daemon.schedule_tick(self.interval + INTERVAL + DELAY)
        return result

    def stored(self, region: str) -> list[StoredPoint]:
        return stored_points(self.outage.influxdb, DATABASE, region)

    def truth(self, region: str) -> list[StoredPoint]:
        return truth(region, self.interval, self.interval + INTERVAL, SIMULATED_REGIONS[region].period_seconds)

    def keys(self, regions: list[str]) -> set[str]:
        return {str(region_partition_key(region, self.interval)) for region in regions}

    def materialized(self) -> set[str]:
        return set(self.outage.instance.get_materialized_partitions(ASSET.key))

    def outcome(self, result: dg.ExecuteInProcessResult) -> RunOutcome | None:
        run = result.dagster_run
        return run_outcome(self.outage.instance, run, datetime.now(UTC), ASSET.key, PARTITIONS)

    def gap_fill_requests(self) -> dict[str, list[tuple[datetime, datetime]]]:
        """The gap-filling sensor's next requests: per region, the first and last interval start of each."""
        result, _ = self.daemon.sensor_tick(GAP_FILLER)
        requested: dict[str, list[tuple[datetime, datetime]]] = {}
        for request in result.run_requests or []:
            (region, first), (_, last) = (request.tags[tag].split("|") for tag in (RANGE_START_TAG, RANGE_END_TAG))
            requested.setdefault(region, []).append((interval_start(first), interval_start(last)))
        return requested

    def streaks(self) -> dict[str, dict[str, object]]:
        self.daemon.sensor_tick(ALERTS)
        cursor = self.daemon.cursors[ALERTS]
        assert cursor is not None
        return json.loads(cursor)["streaks"]


@pytest.fixture
def tick(simulator: SimulatorServer) -> Iterator[Tick]:
    """An interval on the hour two hours ago: published, and one point of the hourly region falls in it."""
    interval = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    settings = PipelineSettings(
        deployment="prod",
        regions=REGIONS,
        partitions_start=datetime(interval.year, interval.month, interval.day, tzinfo=UTC),
        schedule_delay_minutes=int(DELAY.total_seconds() // 60),
        gap_fill_max_runs=10,
    )
    with outage_rig(simulator) as outage:
        daemon = InProcessDaemon(settings, outage.resources, outage.instance)
        daemon.sensor_tick(ALERTS)
        yield Tick(daemon, outage, simulator, interval)


def test_one_tick_is_one_run_that_writes_and_materializes_every_region(tick: Tick) -> None:
    result = tick.run()

    assert result.success
    assert {event.partition for event in result.get_asset_materialization_events()} == tick.keys(list(REGIONS))
    assert result.dagster_run.tags["carbon/interval"] == f"{tick.interval:%Y-%m-%d-%H:%M}"
    for region in REGIONS:
        assert tick.stored(region) == tick.truth(region), region
    assert tick.materialized() == tick.keys(list(REGIONS))
    assert tick.simulator.state.stats()["requests"]["/v3/historical"] == len(REGIONS)


def test_bad_data_in_one_region_fails_only_that_region_and_alerts_only_for_it(tick: Tick) -> None:
    """The fault damages whichever region's reply is built first; that region must be the only casualty."""
    tick.simulator.state.inject(Fault("out_of_range", path="/v3/historical"))
    result = tick.run()

    assert not result.success
    written = [region for region in REGIONS if tick.stored(region)]
    (failed,) = [region for region in REGIONS if region not in written]
    assert [tick.stored(region) for region in written] == [tick.truth(region) for region in written]
    assert tick.materialized() == tick.keys(written)
    message = failure_message(result)
    assert RegionWindow(failed, tick.interval, tick.interval + INTERVAL).describe() in message
    assert "WattTime data rejected" in message
    assert not any(f"region {region}," in message for region in written)
    check = check_evaluation(result)
    assert not check.passed and check.metadata["region"].value == failed

    outcome = tick.outcome(result)
    assert outcome is not None and outcome.failure == FailureKind.DATA_REJECTED and not outcome.retryable
    assert outcome.failed == {failed: FailedRegion(FailureKind.DATA_REJECTED, retryable=False)}
    assert set(tick.streaks()) == {failed}
    (alert,) = tick.outage.receiver.payloads
    assert alert["region"] == failed and alert["kind"] == "data_rejected" and alert["failures"] == 1
    assert f"region {failed}," in alert["last_error"]
    assert not any(f"region {region}," in alert["last_error"] for region in written)


def test_an_influxdb_failure_fails_every_region_of_the_tick(tick: Tick) -> None:
    tick.outage.influxdb.stop()
    result = tick.run()

    assert not result.success
    assert tick.materialized() == set()
    outcome = tick.outcome(result)
    assert outcome is not None and outcome.failure == FailureKind.INFLUXDB_WRITE
    assert outcome.failed_regions == set(REGIONS)
    assert all(outcome.failed[region].kind == FailureKind.INFLUXDB_WRITE for region in REGIONS)
    streaks = tick.streaks()
    assert set(streaks) == set(REGIONS)
    assert all(set(kinds) == {"influxdb_write"} for kinds in streaks.values())


@pytest.mark.slow
def test_a_region_that_is_only_late_is_filled_in_even_when_another_was_refused_in_the_same_run(tick: Tick) -> None:
    """Whichever replies the faults hit: one region rejected, one not yet published, one written."""
    tick.simulator.state.inject(Fault("out_of_range", path="/v3/historical"))
    tick.simulator.state.inject(Fault("empty", path="/v3/historical"))
    result = tick.run()

    assert not result.success
    rejected = check_evaluation(result).metadata["region"].value
    (written,) = [region for region in REGIONS if tick.stored(region)]
    (late,) = set(REGIONS) - {rejected, written}
    outcome = tick.outcome(result)
    assert outcome is not None and outcome.failure == FailureKind.DATA_REJECTED and not outcome.retryable
    assert outcome.failed[late] == FailedRegion(FailureKind.DATA_INCOMPLETE, retryable=True)
    assert {region: set(kinds) for region, kinds in tick.streaks().items()} == {
        rejected: {"data_rejected"},
        late: {"data_incomplete"},
    }

    requested = tick.gap_fill_requests()
    assert any(first <= tick.interval <= last for first, last in requested[late])
    for region in (rejected, written):
        assert not any(first <= tick.interval <= last for first, last in requested[region]), region


def test_a_forecast_outage_holds_back_no_measurement(tick: Tick) -> None:
    """Each asset has its own job and schedule: while every forecast request fails, live or archived, the
    measurement tick stores every region exactly and sends no forecast request."""
    for path in FORECAST_PATHS:
        tick.simulator.state.inject(Fault("status", status=503, count=1000, path=path))
    delay = timedelta(minutes=tick.daemon.settings.forecast_delay_minutes)
    forecasts = [
        run
        for start in (tick.interval, floor_interval(datetime.now(UTC)))
        for run in tick.daemon.schedule_tick(start + delay, FORECAST_SCHEDULE_NAME)
    ]
    before = tick.simulator.state.stats()["requests"]
    result = tick.run()
    after = tick.simulator.state.stats()["requests"]

    assert [declared_failure(run)[FAILURE_KIND] for run in forecasts] == [FailureKind.WATTTIME.value] * 2
    assert all(before[path] for path in FORECAST_PATHS)
    assert result.success, failure_message(result)
    for region in REGIONS:
        assert tick.stored(region) == tick.truth(region), region
    assert tick.materialized() == tick.keys(list(REGIONS))
    sent = {path: after[path] - before[path] for path in (*FORECAST_PATHS, "/v3/historical")}
    assert sent == {**dict.fromkeys(FORECAST_PATHS, 0), "/v3/historical": len(REGIONS)}
