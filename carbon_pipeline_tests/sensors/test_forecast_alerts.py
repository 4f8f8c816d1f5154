"""Forecast failures are alerted per region like the measurements', and the two never share a streak.

Both alert sensors are the deployment's own, evaluated as the daemon evaluates them with their cursors
carried, on one instance holding real runs of both jobs; InfluxDB is a real server that is really stopped,
and alerts go to a real HTTP receiver on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from carbon_pipeline.definitions import FORECAST_ALERTS, FORECAST_JOB_NAME, JOB_NAME
from carbon_pipeline.forecast_validation import IssueWindow
from carbon_pipeline.partitions import INTERVAL, format_window, region_range_tags
from carbon_pipeline.sensors.failure_alerts import SENSOR_NAME as ALERTS
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.watttime.simulator import SimulatorServer
from carbon_pipeline_tests.support.daemon_harness import InProcessDaemon
from carbon_pipeline_tests.support.outage_rig import OutageRig, outage_rig

REGION = "CAISO_NORTH"
FIRST = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
MEASUREMENTS_ALERT = f"carbon-pipeline ALERT: InfluxDB writes failing for region {REGION} (3 failed run(s) in a row)"
FORECASTS_ALERT = (
    f"carbon-pipeline ALERT: InfluxDB writes failing for forecasts of region {REGION} (3 failed run(s) in a row)"
)


def recovered(failures: int, subject: str = "") -> str:
    return f"carbon-pipeline RECOVERED: {subject}region {REGION} succeeded again after {failures} failed run(s)"


@dataclass
class Rig:
    """The deployment's definitions on an outage rig; each run takes the next interval, whatever its job."""

    daemon: InProcessDaemon
    outage: OutageRig
    runs: int = 0

    def run(self, job_name: str, *, succeeds: bool) -> None:
        """One run of ``job_name``, then a tick of both alert sensors, as the daemon would make them."""
        start = FIRST + self.runs * INTERVAL
        self.runs += 1
        result = self.daemon.launch(dg.RunRequest(tags=region_range_tags(REGION, start, start)), job_name)
        assert result.success is succeeds, job_name
        self.tick()

    def tick(self) -> None:
        for sensor in (ALERTS, FORECAST_ALERTS):
            self.daemon.sensor_tick(sensor)

    def failures(self, sensor: str) -> dict[str, int]:
        return self.daemon.streak_failures(sensor, REGION)

    def titles(self) -> list[str]:
        return self.outage.receiver.titles()


@pytest.fixture
def rig(simulator: SimulatorServer) -> Iterator[Rig]:
    settings = PipelineSettings(
        deployment="prod", regions=(REGION,), partitions_start=FIRST.replace(hour=0) - timedelta(days=1)
    )
    with outage_rig(simulator) as outage:
        rig = Rig(InProcessDaemon(settings, outage.resources, outage.instance), outage)
        rig.tick()
        yield rig


@pytest.mark.slow
def test_forecast_write_failures_give_one_alert_for_forecasts_of_the_region_and_one_recovery(rig: Rig) -> None:
    rig.outage.influxdb.stop()
    for expected_alerts in (0, 0, 1, 1):
        rig.run(FORECAST_JOB_NAME, succeeds=False)
        assert len(rig.outage.receiver.payloads) == expected_alerts
    assert rig.failures(FORECAST_ALERTS) == {"influxdb_write": 4}
    rig.outage.influxdb.start()
    rig.run(FORECAST_JOB_NAME, succeeds=True)

    assert rig.titles() == [FORECASTS_ALERT, recovered(4, "forecasts of ")]
    alert, recovery = rig.outage.receiver.payloads
    assert alert["subject"] == recovery["subject"] == "forecasts"
    assert alert["kind"] == "influxdb_write" and alert["intervals"] == [format_window(FIRST, FIRST + 3 * INTERVAL)]
    third = IssueWindow(REGION, FIRST + 2 * INTERVAL, FIRST + 3 * INTERVAL)
    assert f"{third.describe()}: forecasts not stored" in alert["last_error"]
    assert recovery["intervals"] == [format_window(FIRST, FIRST + 4 * INTERVAL)]
    assert rig.failures(FORECAST_ALERTS) == rig.failures(ALERTS) == {}


@pytest.mark.slow
def test_forecast_and_measurement_failures_never_touch_each_others_streaks(rig: Rig) -> None:
    rig.outage.influxdb.stop()
    for job_name in (JOB_NAME, FORECAST_JOB_NAME, JOB_NAME, FORECAST_JOB_NAME):
        rig.run(job_name, succeeds=False)
    assert rig.titles() == []
    assert rig.failures(ALERTS) == rig.failures(FORECAST_ALERTS) == {"influxdb_write": 2}

    rig.run(JOB_NAME, succeeds=False)
    assert rig.titles() == [MEASUREMENTS_ALERT]
    assert rig.failures(FORECAST_ALERTS) == {"influxdb_write": 2}
    rig.run(FORECAST_JOB_NAME, succeeds=False)
    assert rig.titles() == [MEASUREMENTS_ALERT, FORECASTS_ALERT]

    rig.outage.influxdb.start()
    rig.run(JOB_NAME, succeeds=True)
    assert rig.titles() == [MEASUREMENTS_ALERT, FORECASTS_ALERT, recovered(3)]
    assert rig.failures(ALERTS) == {} and rig.failures(FORECAST_ALERTS) == {"influxdb_write": 3}
    rig.run(FORECAST_JOB_NAME, succeeds=True)
    assert rig.titles() == [MEASUREMENTS_ALERT, FORECASTS_ALERT, recovered(3), recovered(3, "forecasts of ")]
    assert rig.failures(FORECAST_ALERTS) == {}
