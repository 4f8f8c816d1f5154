"""Signal index failures are alerted per region like the measurements', and a past interval is no outage.

WattTime serves the signal index for the interval under way only, so runs use the real clock: a run for the
current interval reaches WattTime and InfluxDB, one for an interval that is over fails as not available
without asking anyone. The alert sensor is the deployment's own, evaluated as the daemon evaluates it with
its cursor carried, on an instance holding real runs of the job; InfluxDB is a real server that is really
stopped, and alerts go to a real HTTP receiver on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from carbon_pipeline.definitions import INDEX_ALERTS, INDEX_JOB_NAME
from carbon_pipeline.partitions import INTERVAL, format_window, region_range_tags
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.watttime.simulator import SimulatorServer
from carbon_pipeline_tests.support.daemon_harness import InProcessDaemon
from carbon_pipeline_tests.support.outage_rig import OutageRig, outage_rig
from carbon_pipeline_tests.support.pipeline_harness import interval_under_way

REGION = "CAISO_NORTH"
SUBJECT = f"signal index of region {REGION}"
WRITES_ALERT = f"carbon-pipeline ALERT: InfluxDB writes failing for {SUBJECT} (3 failed run(s) in a row)"
PAST_ALERT = (
    f"carbon-pipeline ALERT: intervals no longer available from the source for {SUBJECT} (3 failed run(s) in a row)"
)


def recovered(failures: int) -> str:
    return f"carbon-pipeline RECOVERED: {SUBJECT} succeeded again after {failures} failed run(s)"


@dataclass
class Rig:
    """The deployment's definitions on an outage rig: runs of the signal index job, each followed by a tick."""

    daemon: InProcessDaemon
    outage: OutageRig

    def run(self, start: datetime, *, succeeds: bool) -> None:
        """One run of the interval from ``start``, then a tick of the alert sensor, as the daemon would make them."""
        result = self.daemon.launch(dg.RunRequest(tags=region_range_tags(REGION, start, start)), INDEX_JOB_NAME)
        assert result.success is succeeds
        self.daemon.sensor_tick(INDEX_ALERTS)

    def run_current(self, *, succeeds: bool) -> datetime:
        start = interval_under_way()
        self.run(start, succeeds=succeeds)
        return start

    def run_past(self) -> None:
        """A run for an interval that is over: it always fails, as not available from this source."""
        self.run(interval_under_way() - 4 * INTERVAL, succeeds=False)

    def failures(self) -> dict[str, int]:
        return self.daemon.streak_failures(INDEX_ALERTS, REGION)

    def titles(self) -> list[str]:
        return self.outage.receiver.titles()


@pytest.fixture
def rig(simulator: SimulatorServer) -> Iterator[Rig]:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    settings = PipelineSettings(deployment="prod", regions=(REGION,), partitions_start=today - timedelta(days=1))
    with outage_rig(simulator) as outage:
        rig = Rig(InProcessDaemon(settings, outage.resources, outage.instance), outage)
        rig.daemon.sensor_tick(INDEX_ALERTS)
        yield rig


def test_index_write_failures_alert_once_and_recover_once_and_past_intervals_never_count_toward_them(
    rig: Rig,
) -> None:
    rig.outage.influxdb.stop()
    for _ in range(2):
        rig.run_current(succeeds=False)
        rig.run_past()
    assert rig.titles() == []
    assert rig.failures() == {"influxdb_write": 2, "not_available": 2}

    last = rig.run_current(succeeds=False)
    assert rig.titles() == [WRITES_ALERT]
    rig.run_current(succeeds=False)
    assert rig.titles() == [WRITES_ALERT]
    rig.outage.influxdb.start()
    rig.run_current(succeeds=True)

    assert rig.titles() == [WRITES_ALERT, recovered(4)]
    alert, recovery = rig.outage.receiver.payloads
    assert alert["subject"] == recovery["subject"] == "signal index"
    assert alert["kind"] == "influxdb_write"
    assert format_window(last, last + INTERVAL) in " ".join(alert["intervals"])
    assert rig.failures() == {}


def test_runs_of_intervals_already_over_alert_under_their_own_kind_once_per_streak(rig: Rig) -> None:
    for _ in range(4):
        rig.run_past()
    assert rig.titles() == [PAST_ALERT]
    (alert,) = rig.outage.receiver.payloads
    assert alert["kind"] == "not_available"
    assert "not available from this source" in alert["last_error"]
    assert rig.failures() == {"not_available": 4}

    rig.run_current(succeeds=True)
    assert rig.titles() == [PAST_ALERT, recovered(4)]
    assert rig.failures() == {}
