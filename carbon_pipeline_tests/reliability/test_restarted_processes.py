"""The daemon or the code server killed and started again mid-work: nothing asked twice at once, nothing lost.

The production layout (``support/split_rig.py``: code server, webserver and daemon as processes on a
real PostgreSQL, the WattTime simulator over HTTP, a real InfluxDB behind the shim) has its daemon
killed with SIGKILL and restarted while a backfill launched from the UI is fetching, and while a
gap-filling run is fetching with an InfluxDB alert open; and its code server restarted while a run
waits in the queue. Afterwards no two runs were queued or running at once over a common interval,
every interval is stored exactly as the simulator published it and marked materialized, and the
webhook got each alert and recovery notice once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carbon_pipeline.definitions import JOB_NAME
from carbon_pipeline.partitions import INTERVAL, region_range_tags
from carbon_pipeline.sensors.failure_alerts import SENSOR_NAME as ALERTS
from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.split_rig import (
    ASSET,
    REGION,
    TIMEOUT_SECONDS,
    Rig,
    gap_fill_window,
    keys_of,
    overlapping_runs,
    split_rig,
)
from carbon_pipeline_tests.support.webhook_receiver import WebhookReceiver

# A fetch slow enough that the kill surely falls inside the run that makes it.
SLOW_FETCH = Fault("slow", delay_seconds=15, count=1, path="/v3/historical")
# The runs queue holds one run at a time, so a second one waits in the queue.
ONE_RUN_AT_A_TIME = {"concurrency": {"runs": {"max_concurrent_runs": 1}}}


def backfill_window() -> tuple[datetime, datetime]:
    """Four intervals of yesterday morning, long before the gap filler's look-back of an hour."""
    start = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0) - timedelta(days=1)
    return start, start + 4 * INTERVAL


def launch_backfill(rig: Rig) -> str:
    return rig.dagster.launch_backfill(ASSET.to_user_string(), sorted(keys_of(*backfill_window())))


def backfilled(rig: Rig, backfill_id: str) -> None:
    """The backfill succeeded with a single run: none was launched again after the restart."""
    status = rig.dagster.wait_for_backfill(backfill_id, TIMEOUT_SECONDS)
    assert status["partitionBackfillOrError"]["status"] == "COMPLETED_SUCCESS"
    assert [run["status"] for run in status["runsOrError"]["results"]] == ["SUCCESS"]


def write_events(receiver: WebhookReceiver) -> list[str]:
    """The InfluxDB notices received (the freshness sensor alerts too, as the hour is missing at first)."""
    return [payload["event"] for payload in receiver.payloads if payload["kind"] == "influxdb_write"]


@dataclass
class Backends:
    """What every deployment of this module runs against: the simulator over HTTP, InfluxDB, prod settings."""

    workdir: Path
    prod_env: dict[str, str]
    monkeypatch: pytest.MonkeyPatch
    simulator: SimulatorServer
    influxdb: InfluxDBServer
    database: str

    def deployment(
        self, settings: Mapping[str, str] | None = None, instance: Mapping[str, Mapping[str, Any]] | None = None
    ) -> AbstractContextManager[Rig]:
        return split_rig(self.workdir, self.prod_env, self.monkeypatch, settings, instance)

    def wait_for_slow_fetch(self, rig: Rig) -> None:
        stats = self.simulator.state.stats
        rig.dagster.poll(lambda: stats()["faults_applied"]["slow"], bool, TIMEOUT_SECONDS, "the slow fetch")

    def nothing_twice_nothing_lost(self, rig: Rig, windows: list[tuple[datetime, datetime]]) -> None:
        """Every interval of ``windows`` stored exactly and materialized; no interval asked twice at once."""
        for first, end in windows:
            counts = rig.wait_until_stored(self.influxdb, self.database, first, end)
            print(f"{first:%Y-%m-%d %H:%M}..{end:%H:%M}: {counts}")
        assert overlapping_runs(rig.run_records()) == []


@pytest.fixture
def backends(
    tmp_path: Path,
    prod_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: SimulatorServer,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
) -> Backends:
    return Backends(tmp_path, prod_env, monkeypatch, simulator, influxdb_server, influxdb_database)


@pytest.mark.integration
@pytest.mark.slow
def test_daemon_killed_and_restarted_during_a_ui_backfill(backends: Backends) -> None:
    """The backfill's run goes on while the daemon is down; the restarted daemon finishes the backfill
    without launching its range again, and the gap filler asks for nothing the backfill covers."""
    recent = gap_fill_window()
    with backends.deployment() as rig:
        assert rig.wait_for_end(rig.first_gap_fill_run()["runId"]) == "SUCCESS"
        backends.simulator.state.inject(SLOW_FETCH)
        backfill = launch_backfill(rig)
        backends.wait_for_slow_fetch(rig)
        rig.dagster.kill_daemon()

        backfilled(rig, backfill)
        backends.nothing_twice_nothing_lost(rig, [recent, backfill_window()])


@pytest.mark.integration
@pytest.mark.slow
def test_daemon_killed_and_restarted_during_a_gap_filling_run_with_an_alert_open(
    backends: Backends, influxdb_shim: InfluxDBShim
) -> None:
    """The alert of the InfluxDB streak open when the daemon dies is neither sent again nor forgotten, and
    its recovery notice comes once, when the run in flight across the restart has stored the hour."""
    recent = gap_fill_window()
    influxdb_shim.inject("status", count=1000, measurement="carbon_intensity")
    alerting = {"CARBON_ALERT_AFTER_FAILURES": "1"}
    with (
        WebhookReceiver() as receiver,
        backends.deployment(alerting | {"ALERT_WEBHOOK_URL": receiver.url}) as rig,
    ):
        assert rig.wait_for_end(rig.first_gap_fill_run()["runId"]) == "FAILURE"
        rig.dagster.poll(lambda: write_events(receiver), bool, TIMEOUT_SECONDS, "the InfluxDB alert")
        influxdb_shim.reset()
        backends.simulator.state.inject(SLOW_FETCH)
        backends.wait_for_slow_fetch(rig)
        rig.dagster.kill_daemon()

        backends.nothing_twice_nothing_lost(rig, [recent])
        rig.dagster.poll(lambda: len(write_events(receiver)) > 1, bool, TIMEOUT_SECONDS, "the recovery notice")
        recovered = time.time()
        rig.dagster.poll(
            lambda: rig.dagster.sensor_ticks(ALERTS)[0],
            lambda tick: tick["timestamp"] > recovered and tick["status"] != "STARTED",
            TIMEOUT_SECONDS,
            "an alert-sensor tick after the recovery notice",
        )
        assert write_events(receiver) == ["alert", "recovery"]


@pytest.mark.integration
@pytest.mark.slow
def test_code_server_restarted_while_a_run_is_queued(backends: Backends) -> None:
    """A run launched from the UI, queued behind a gap-filling run when the code server goes down (killing
    that run's worker with it), starts once the code server is back and succeeds; the killed run's hour
    is stored too."""
    recent = gap_fill_window()
    backends.simulator.state.inject(SLOW_FETCH)
    with backends.deployment(instance=ONE_RUN_AT_A_TIME) as rig:
        backends.wait_for_slow_fetch(rig)
        first, end = backfill_window()
        queued = rig.dagster.launch_run(JOB_NAME, region_range_tags(REGION, first, end - INTERVAL))
        assert rig.dagster.run_status(queued) == "QUEUED"
        rig.dagster.kill_code_server()

        assert rig.wait_for_end(queued) == "SUCCESS"
        backends.nothing_twice_nothing_lost(rig, [recent, backfill_window()])
