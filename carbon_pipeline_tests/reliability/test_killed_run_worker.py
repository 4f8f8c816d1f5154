"""A killed run worker: its run ends FAILURE, and its intervals are stored again, complete and correct.

The production layout (``support/split_rig.py``) runs the gap filler's first run, or a year's
backfill launched as the asset page does. The run worker is killed with SIGKILL while it waits for
WattTime, once its write is stored in InfluxDB but before its intervals are recorded, halfway through
recording a year's 35,040 intervals, or together with its code server (a host restart). Each time the
run must end FAILURE, nothing may be marked materialized without its points, and in the end every
interval of the run is stored exactly as the simulator published it, once: the run's retry
(``run_retries``) or the gap filler stores what the killed run did not record.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import stored_points
from carbon_pipeline_tests.support.split_rig import (
    HALF_A_YEAR,
    REGION,
    TIMEOUT_SECONDS,
    YEAR_INTERVALS,
    Rig,
    backfill_a_year,
    recovers,
    year_rig,
)


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
    recovers(rig, influxdb_server, influxdb_database, run, time.monotonic(), ended="FAILURE")


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
    recovers(rig, influxdb_server, influxdb_database, run, time.monotonic(), ended="FAILURE")


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
    recovers(rig, influxdb_server, influxdb_database, run, killed, ended="FAILURE")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_run_worker_killed_halfway_through_recording_a_years_intervals(
    tmp_path: Path,
    prod_env: dict[str, str],
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The killed run recorded part of the year; its retry rewrites the year and records every interval."""
    with year_rig(tmp_path, prod_env, monkeypatch) as rig:
        run = backfill_a_year(rig)
        pid = rig.worker_pid(run["runId"])
        rig.dagster.poll(lambda: rig.recorded(run["runId"]), lambda n: n >= HALF_A_YEAR, TIMEOUT_SECONDS, "half")
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        recorded = rig.recorded(run["runId"])
        assert HALF_A_YEAR <= recorded < YEAR_INTERVALS
        recovers(rig, influxdb_server, influxdb_database, run, killed, ended="FAILURE", recorded=recorded)
