"""A run terminated from the UI: it ends CANCELED, has recorded only what it stored, and its intervals end complete.

Terminate is what the run page's button sends (the webserver's ``terminateRun`` mutation: the code
server interrupts the run worker). It is tried at the three points where the worker was killed
(``test_killed_run_worker.py``): while fetching from WattTime, once the InfluxDB write is stored but
before its intervals are recorded, and halfway through recording a year's backfill. Run retries do not
retry a run an operator terminated; what stores its intervals is the gap filler, for a gap-filling
run, and for a backfill the operator's "Re-execute -> From failure" on the backfill's page, which asks
only for the intervals the terminated run did not record.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import stored_points
from carbon_pipeline_tests.support.split_rig import (
    BACKFILL_TAG,
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
def test_run_terminated_while_fetching_from_watttime(
    rig: Rig,
    simulator: SimulatorServer,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
) -> None:
    simulator.state.inject(Fault("slow", delay_seconds=25, count=1, path="/v3/historical"))
    run = rig.first_gap_fill_run()
    rig.worker_pid(run["runId"])
    rig.dagster.poll(lambda: simulator.state.stats()["faults_applied"]["slow"], bool, TIMEOUT_SECONDS, "the slow fetch")
    rig.terminate(run["runId"])
    recovers(rig, influxdb_server, influxdb_database, run, time.monotonic(), ended="CANCELED")


@pytest.mark.slow
def test_run_terminated_after_its_write_is_stored_before_its_intervals_are_recorded(
    rig: Rig,
    influxdb_shim: InfluxDBShim,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
) -> None:
    influxdb_shim.inject("slow_reply", delay_seconds=8, measurement="carbon_intensity")
    run = rig.first_gap_fill_run()
    rig.worker_pid(run["runId"])
    rig.dagster.poll(
        lambda: stored_points(influxdb_server, influxdb_database, REGION), bool, TIMEOUT_SECONDS, "the stored write"
    )
    rig.terminate(run["runId"])
    recovers(rig, influxdb_server, influxdb_database, run, time.monotonic(), ended="CANCELED")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_backfill_terminated_halfway_through_recording_a_year_is_completed_by_re_executing_it_from_failure(
    tmp_path: Path,
    prod_env: dict[str, str],
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with year_rig(tmp_path, prod_env, monkeypatch) as rig:
        run = backfill_a_year(rig)
        rig.worker_pid(run["runId"])
        rig.dagster.poll(lambda: rig.recorded(run["runId"]), lambda n: n >= HALF_A_YEAR, TIMEOUT_SECONDS, "half")
        rig.terminate(run["runId"])
        terminated = time.monotonic()
        backfill_id = next(tag["value"] for tag in run["tags"] if tag["key"] == BACKFILL_TAG)

        def re_execute() -> None:
            rig.dagster.wait_for_backfill(backfill_id, TIMEOUT_SECONDS)
            rig.dagster.reexecute_backfill_from_failure(backfill_id)

        rig.wait_for_end(run["runId"])  # the worker records until the interrupt reaches it
        recorded = rig.recorded(run["runId"])
        assert HALF_A_YEAR <= recorded < YEAR_INTERVALS
        recovers(
            rig,
            influxdb_server,
            influxdb_database,
            run,
            terminated,
            ended="CANCELED",
            recorded=recorded,
            then=re_execute,
        )
