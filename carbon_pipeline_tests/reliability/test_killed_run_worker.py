"""A killed run worker: its run ends FAILURE, and its intervals are stored again, complete and correct.

The production layout (``support/split_rig.py``: code server, webserver and daemon as processes,
``deploy/dagster.yaml`` on a real PostgreSQL, with run monitoring's intervals shortened) runs the gap
filler's first run against the WattTime simulator over HTTP and a real InfluxDB behind the v3 shim.
The run worker is killed with SIGKILL while it waits for WattTime, or once its write is stored in
InfluxDB but before its intervals are recorded, or together with its code server (a host restart).
Each time the run must end FAILURE, nothing may be marked materialized without its points, and in
the end every interval of the run is stored exactly as the simulator published it, once.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import stored_points
from carbon_pipeline_tests.support.split_rig import REGION, TIMEOUT_SECONDS, Rig, split_rig, window_of


@pytest.fixture
def rig(tmp_path: Path, prod_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    with split_rig(tmp_path, prod_env, monkeypatch) as rig:
        yield rig


def recovers(rig: Rig, influxdb: InfluxDBServer, database: str, run: dict[str, Any], killed: float) -> None:
    """The killed run ends FAILURE with nothing recorded, then its window is stored in full, point by point."""
    ended = rig.wait_for_end(run["runId"])
    failed_after = time.monotonic() - killed
    assert ended == "FAILURE"
    assert rig.dagster.materialized_partitions(run["runId"]) == []
    rig.wait_until_stored(influxdb, database, *window_of(run))
    print(f"run FAILURE {failed_after:.1f} s after the kill; data complete {time.monotonic() - killed:.1f} s after it")


@pytest.mark.slow
def test_run_worker_killed_while_fetching_from_watttime(
    rig: Rig,
    simulator: SimulatorServer,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
) -> None:
    simulator.state.inject(Fault("slow", delay_seconds=25, count=1, path="/v3/historical"))
    run = rig.first_gap_fill_run()
    pid = rig.worker_pid(run["runId"])
    rig.dagster.poll(lambda: simulator.state.stats()["faults_applied"]["slow"], bool, TIMEOUT_SECONDS, "the slow fetch")
    os.kill(pid, signal.SIGKILL)
    recovers(rig, influxdb_server, influxdb_database, run, time.monotonic())


@pytest.mark.slow
def test_run_worker_killed_after_its_write_is_stored_before_its_intervals_are_recorded(
    rig: Rig,
    influxdb_shim: InfluxDBShim,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
) -> None:
    influxdb_shim.inject("slow_reply", delay_seconds=8, measurement="carbon_intensity")
    run = rig.first_gap_fill_run()
    pid = rig.worker_pid(run["runId"])
    rig.dagster.poll(
        lambda: stored_points(influxdb_server, influxdb_database, REGION), bool, TIMEOUT_SECONDS, "the stored write"
    )
    os.kill(pid, signal.SIGKILL)
    recovers(rig, influxdb_server, influxdb_database, run, time.monotonic())


@pytest.mark.slow
def test_run_worker_killed_with_its_code_server(
    rig: Rig,
    simulator: SimulatorServer,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
) -> None:
    """Nobody is left to report the run: run monitoring ends it, and the gap filler stops waiting for it."""
    simulator.state.inject(Fault("slow", delay_seconds=25, count=1, path="/v3/historical"))
    run = rig.first_gap_fill_run()
    rig.worker_pid(run["runId"])
    rig.dagster.poll(lambda: simulator.state.stats()["faults_applied"]["slow"], bool, TIMEOUT_SECONDS, "the slow fetch")
    killed = time.monotonic()
    rig.dagster.kill_code_server()
    recovers(rig, influxdb_server, influxdb_database, run, killed)
