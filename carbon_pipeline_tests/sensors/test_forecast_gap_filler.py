"""Gap filling of the forecasts: past issue intervals are requested once due and filled from the archive, and
each asset's gap filler sees only its own runs in flight (the job's ``carbon/asset`` tag tells them apart).

The sensors are the deployment's own, built from ``CARBON_FORECAST_DELAY_MINUTES=2``, and evaluated now on a
real instance; the runs they request are real runs against the simulator over HTTP and a real InfluxDB
server behind the shim.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from carbon_pipeline.coverage import floor_interval
from carbon_pipeline.definitions import FORECAST_GAP_FILLER, FORECAST_JOB_NAME, JOB_NAME
from carbon_pipeline.notifier import AlertNotifier
from carbon_pipeline.partitions import (
    INTERVAL,
    RANGE_END_TAG,
    RANGE_START_TAG,
    RegionWindow,
    interval_start,
    interval_starts,
    region_range_tags,
)
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.watttime.simulator import SimulatorServer
from carbon_pipeline_tests.support.daemon_harness import InProcessDaemon
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import (
    forecast_truth,
    influxdb_resource,
    stored_forecasts,
    stored_windows,
    watttime_resource,
    window_truth,
)
from carbon_pipeline_tests.support.tick_logs import evaluate_logged

REGION = "CAISO_NORTH"
ENVIRONMENT = {
    "CARBON_REGIONS": REGION,
    "CARBON_PARTITIONS_START": "2d",
    "CARBON_FORECAST_DELAY_MINUTES": "2",
    "CARBON_GAP_FILL_HOURS": "2",
    "CARBON_GAP_FILL_MAX_RUNS": "10",
}
LOOKBACK = timedelta(hours=2)
# An issue interval is due once its scheduled run (2 minutes in) and the settling margin (15 minutes) have passed.
DUE_AFTER = timedelta(minutes=17)
# What is due changes as an interval begins and 2 minutes later: a test needs this long before the next change.
ROOM = timedelta(seconds=30)


def clear_of_changes() -> datetime:
    """Now, once the next change of what is due is at least ``ROOM`` away, so the tick sees what the test set up."""
    while True:
        now = datetime.now(UTC)
        offset = now - floor_interval(now)
        changes = (DUE_AFTER - INTERVAL, INTERVAL)
        wait = min(change - offset for change in changes if change > offset)
        if wait >= ROOM:
            return now
        time.sleep(wait.total_seconds() + 1)


def single(start: datetime) -> dg.RunRequest:
    return dg.RunRequest(tags=region_range_tags(REGION, start, start))


def requested(result: dg.SensorResult) -> list[RegionWindow]:
    windows = []
    for request in result.run_requests or []:
        (region, first), (_, last) = (request.tags[tag].split("|") for tag in (RANGE_START_TAG, RANGE_END_TAG))
        windows.append(RegionWindow(region, interval_start(first), interval_start(last) + INTERVAL))
    return windows


def requested_starts(daemon: InProcessDaemon, sensor: str) -> set[datetime]:
    """The interval starts a tick of ``sensor`` requests, without launching them."""
    tick = evaluate_logged(daemon.definitions.resolve_sensor_def(sensor), daemon.instance)
    return {start for window in requested(tick.result) for start in window.starts()}


@pytest.fixture
def daemon(
    simulator: SimulatorServer, influxdb_shim: InfluxDBShim, influxdb_database: str
) -> Iterator[InProcessDaemon]:
    resources = {
        "watttime": watttime_resource(simulator.base_url),
        "point_sink": influxdb_resource(influxdb_shim.url, influxdb_database),
        "alert_notifier": AlertNotifier(),
    }
    with dg.instance_for_test() as instance:
        yield InProcessDaemon(PipelineSettings.from_env(ENVIRONMENT), resources, instance)


@pytest.mark.slow
def test_missing_issue_intervals_are_requested_17_minutes_after_they_began_and_filled_from_the_archive(
    daemon: InProcessDaemon, simulator: SimulatorServer, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    now = clear_of_changes()
    due = interval_starts(floor_interval(now - LOOKBACK), floor_interval(now - DUE_AFTER) + INTERVAL)
    stored, in_flight = due[0], due[2]
    assert daemon.launch(single(stored), FORECAST_JOB_NAME).success
    daemon.start(single(in_flight), FORECAST_JOB_NAME)

    result, runs = daemon.sensor_tick(FORECAST_GAP_FILLER)

    windows = requested(result)
    newest = windows[0].end - INTERVAL
    assert now - newest >= DUE_AFTER > now - (newest + INTERVAL)
    assert floor_interval(now) not in {start for window in windows for start in window.starts()}
    assert windows == [RegionWindow(REGION, due[3], due[-1] + INTERVAL), RegionWindow(REGION, due[1], due[2])]
    assert runs and all(run.success for run in runs)
    assert all(run.dagster_run.job_name == FORECAST_JOB_NAME for run in runs)
    filled = [start for start in due if start != in_flight]
    assert stored_forecasts(influxdb_server, influxdb_database, REGION) == forecast_truth(REGION, filled)
    assert stored_windows(influxdb_server, influxdb_database, REGION) == window_truth(REGION, filled)
    requests = simulator.state.stats()["requests"]
    assert (requests["/v3/forecast/historical"], requests["/v3/forecast"]) == (1 + len(runs), 0)

    again, more = daemon.sensor_tick(FORECAST_GAP_FILLER)
    assert more == [] and again.skip_reason is not None
    assert again.skip_reason.skip_message == "1 interval(s) missing, all already queued or running"


def test_each_gap_filler_ignores_the_other_assets_runs_in_flight(daemon: InProcessDaemon) -> None:
    forecasting = floor_interval(datetime.now(UTC) - timedelta(hours=1))
    measuring = forecasting - INTERVAL  # both due for both assets: the measurement's are due 20 minutes after they end
    daemon.start(single(forecasting), FORECAST_JOB_NAME)
    daemon.start(single(measuring), JOB_NAME)

    forecasts = requested_starts(daemon, FORECAST_GAP_FILLER)
    measurements = requested_starts(daemon, GAP_FILLER)

    assert measuring in forecasts and forecasting not in forecasts
    assert forecasting in measurements and measuring not in measurements
