"""A killed run worker: its run ends FAILURE, and its intervals are stored again, complete and correct.

The production layout (code server, webserver and daemon as processes, ``deploy/dagster.yaml`` on a
real PostgreSQL, with run monitoring's intervals shortened) runs the gap filler's first run against
the WattTime simulator over HTTP and a real InfluxDB behind the v3 shim. The run worker is killed
with SIGKILL while it waits for WattTime, or once its write is stored in InfluxDB but before its
intervals are recorded, or together with its code server (a host restart). Each time the run must
end FAILURE, nothing may be marked materialized without its points, and in the end every interval
of the run is stored exactly as the simulator published it, once.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from carbon_pipeline.partitions import INTERVAL, RANGE_END_TAG, RANGE_START_TAG, interval_start
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.deployment.test_production_deployment import fresh_instance, instance_env
from carbon_pipeline_tests.support.dagster_dev import FINISHED_RUN, SENSOR_TAG
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import stored_points, truth
from carbon_pipeline_tests.support.postgres_server import PostgresServer
from carbon_pipeline_tests.support.split_deployment import INSTANCE_FILE, SplitDeployment

ASSET = dg.AssetKey("carbon_intensity")
REGION = "CAISO_NORTH"
TIMEOUT_SECONDS = 240
SETTING_PREFIXES = ("CARBON_", "WATTTIME_", "INFLUXDB_")
# Run monitoring as deploy/dagster.yaml sets it, but checking every second and ending a run after 30 s
# (a gap-filling run of an hour takes a few seconds); a run silent for 20 s counts as dead.
MONITORING = {"poll_interval_seconds": 1, "max_runtime_seconds": 30}
STALLED_RUN_SECONDS = 20
RUN_EVENTS = """
query ($id: ID!) {
  logsForRun(runId: $id) { ... on EventConnection { events { ... on MessageEvent { message } } } }
}"""
WORKER_PID = re.compile(r"Started process for run \(pid: (\d+)\)")


class Rig:
    def __init__(self, dagster: SplitDeployment, postgres: PostgresServer, home: Path) -> None:
        self.dagster = dagster
        self.postgres = postgres
        self.home = home
        home.mkdir()

    def first_gap_fill_run(self) -> dict[str, Any]:
        runs = self.dagster.poll(
            lambda: self.dagster.runs_tagged(SENSOR_TAG, GAP_FILLER), bool, TIMEOUT_SECONDS, "a gap-filling run"
        )
        return min(runs, key=lambda run: run["creationTime"])

    def worker_pid(self, run_id: str) -> int:
        def pid() -> int:
            events = self.dagster.graphql(RUN_EVENTS, {"id": run_id})["logsForRun"]["events"]
            found = [WORKER_PID.search(event.get("message") or "") for event in events]
            return next((int(match.group(1)) for match in found if match), 0)

        return self.dagster.poll(pid, bool, TIMEOUT_SECONDS, f"the run worker of {run_id}")

    def wait_for_end(self, run_id: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            return next(run for run in self.dagster.runs_tagged(SENSOR_TAG, GAP_FILLER) if run["runId"] == run_id)

        return self.dagster.poll(run, lambda found: found["status"] in FINISHED_RUN, TIMEOUT_SECONDS, "the run's end")

    def materialized(self, monkeypatch: pytest.MonkeyPatch) -> set[str]:
        with (
            monkeypatch.context() as patch,
            fresh_instance(self.home / str(time.monotonic_ns()), self.postgres, patch) as reader,
        ):
            return set(reader.get_materialized_partitions(ASSET))


def window_of(run: dict[str, Any]) -> tuple[datetime, datetime]:
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    first, last = (interval_start(tags[tag].split("|")[1]) for tag in (RANGE_START_TAG, RANGE_END_TAG))
    return first, last + INTERVAL


def keys_of(first: datetime, end: datetime) -> set[str]:
    return {f"{REGION}|{first + index * INTERVAL:%Y-%m-%d-%H:%M}" for index in range(int((end - first) / INTERVAL))}


@pytest.fixture
def rig(tmp_path: Path, prod_env: dict[str, str]) -> Iterator[Rig]:
    instance_file = tmp_path / "dagster.yaml"
    config = yaml.safe_load(INSTANCE_FILE.read_text())
    config.setdefault("run_monitoring", {}).update(MONITORING)
    instance_file.write_text(yaml.safe_dump(config))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    settings = {key: value for key, value in prod_env.items() if key.startswith(SETTING_PREFIXES)} | {
        "DAGSTER_DEPLOYMENT": "prod",
        "CARBON_REGIONS": REGION,
        "CARBON_PARTITIONS_START": f"{today - timedelta(days=1):%Y-%m-%d}",
        "CARBON_GAP_FILL_HOURS": "1",
        "CARBON_STALLED_RUN_SECONDS": str(STALLED_RUN_SECONDS),
    }
    with (
        PostgresServer() as postgres,
        SplitDeployment(tmp_path / "deployment", instance_env(postgres), settings, instance_file) as dagster,
    ):
        yield Rig(dagster, postgres, tmp_path / "readers")
        print(dagster.logs())


def recovers(
    rig: Rig,
    influxdb: InfluxDBServer,
    database: str,
    run: dict[str, Any],
    killed: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The killed run ends FAILURE with nothing recorded, then its window is stored in full, point by point."""
    ended = rig.wait_for_end(run["runId"])
    failed_after = time.monotonic() - killed
    assert ended["status"] == "FAILURE"
    assert rig.dagster.materialized_partitions(run["runId"]) == []
    first, end = window_of(run)
    expected = truth(REGION, first, end)
    keys = keys_of(first, end)

    def stored() -> list[Any]:
        return [
            point
            for point in stored_points(influxdb, database, REGION)
            if first.timestamp() <= point.time < end.timestamp()
        ]

    def complete() -> bool:
        materialized = rig.materialized(monkeypatch) & keys
        points = stored()
        # Never an interval marked materialized whose points are not all stored.
        for key in materialized:
            start = interval_start(key.split("|")[1])
            want = truth(REGION, start, start + INTERVAL)
            assert [point for point in points if point in want] == want, f"{key} materialized without its points"
        return materialized == keys and points == expected

    rig.dagster.poll(complete, bool, TIMEOUT_SECONDS, "the killed run's intervals, stored and materialized")
    print(f"run FAILURE {failed_after:.1f} s after the kill; data complete {time.monotonic() - killed:.1f} s after it")
    assert stored() == expected  # one point per timestamp: nothing written twice


@pytest.mark.slow
def test_run_worker_killed_while_fetching_from_watttime(
    rig: Rig,
    simulator: SimulatorServer,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    simulator.state.inject(Fault("slow", delay_seconds=25, count=1, path="/v3/historical"))
    run = rig.first_gap_fill_run()
    pid = rig.worker_pid(run["runId"])
    rig.dagster.poll(lambda: simulator.state.stats()["faults_applied"]["slow"], bool, TIMEOUT_SECONDS, "the slow fetch")
    os.kill(pid, signal.SIGKILL)
    recovers(rig, influxdb_server, influxdb_database, run, time.monotonic(), monkeypatch)


@pytest.mark.slow
def test_run_worker_killed_after_its_write_is_stored_before_its_intervals_are_recorded(
    rig: Rig,
    influxdb_shim: InfluxDBShim,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    influxdb_shim.inject("slow_reply", delay_seconds=8, measurement="carbon_intensity")
    run = rig.first_gap_fill_run()
    pid = rig.worker_pid(run["runId"])
    rig.dagster.poll(
        lambda: stored_points(influxdb_server, influxdb_database, REGION), bool, TIMEOUT_SECONDS, "the stored write"
    )
    os.kill(pid, signal.SIGKILL)
    recovers(rig, influxdb_server, influxdb_database, run, time.monotonic(), monkeypatch)


@pytest.mark.slow
def test_run_worker_killed_with_its_code_server(
    rig: Rig,
    simulator: SimulatorServer,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nobody is left to report the run: run monitoring ends it, and the gap filler stops waiting for it."""
    simulator.state.inject(Fault("slow", delay_seconds=25, count=1, path="/v3/historical"))
    run = rig.first_gap_fill_run()
    rig.worker_pid(run["runId"])
    rig.dagster.poll(lambda: simulator.state.stats()["faults_applied"]["slow"], bool, TIMEOUT_SECONDS, "the slow fetch")
    killed = time.monotonic()
    rig.dagster.kill_code_server()
    recovers(rig, influxdb_server, influxdb_database, run, killed, monkeypatch)
