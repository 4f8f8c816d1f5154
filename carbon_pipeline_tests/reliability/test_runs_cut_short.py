"""A run cut short: its worker killed, or the run terminated from the UI; its intervals end complete and correct.

The production layout (``support/split_rig.py``) runs the gap filler's first run, or a year's backfill
launched as the asset page does. The run is cut while it waits for WattTime, once its write is stored
in InfluxDB but before its intervals are recorded, or halfway through recording a year's 35,040
intervals: its worker killed with SIGKILL (out of memory, a crash), or terminated as the run page's
Terminate button does (the webserver's ``terminateRun`` mutation: the code server interrupts the
worker). A killed run ends FAILURE and ``run_retries`` retries it; a terminated run ends CANCELED and is
not retried: the gap filler requests a gap-filling run's intervals again, and for a backfill the
operator's "Re-execute -> From failure" on its page asks for what the run did not record. Each time
nothing may be marked materialized without its points, the run records nothing after the cut, and in
the end every interval of the run is stored exactly as the simulator published it, once.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.dagster_dev import BACKFILL_TAG
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


@dataclass(frozen=True)
class Cut:
    """How a run is cut short, and the status it must end with."""

    name: str
    ended: str
    cut: Callable[[Rig, str, int], None]

    def __call__(self, rig: Rig, run_id: str, worker_pid: int) -> float:
        self.cut(rig, run_id, worker_pid)
        return time.monotonic()


KILLED = Cut("killed", "FAILURE", lambda rig, run_id, pid: os.kill(pid, signal.SIGKILL))
TERMINATED = Cut("terminated", "CANCELED", lambda rig, run_id, pid: rig.terminate(run_id))
CUTS = pytest.mark.parametrize("cut", [KILLED, TERMINATED], ids=lambda cut: cut.name)


def slow_fetch(simulator: SimulatorServer) -> Callable[[Rig], None]:
    simulator.state.inject(Fault("slow", delay_seconds=25, count=1, path="/v3/historical"))
    stats = simulator.state.stats
    return lambda rig: rig.dagster.poll(lambda: stats()["faults_applied"]["slow"], bool, TIMEOUT_SECONDS, "the fetch")


@pytest.mark.slow
@CUTS
def test_run_cut_while_fetching_from_watttime(
    rig: Rig, cut: Cut, simulator: SimulatorServer, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    fetching = slow_fetch(simulator)
    run = rig.first_gap_fill_run()
    pid = rig.worker_pid(run["runId"])
    fetching(rig)
    recovers(rig, influxdb_server, influxdb_database, run, cut(rig, run["runId"], pid), ended=cut.ended)


@pytest.mark.slow
@CUTS
def test_run_cut_after_its_write_is_stored_before_its_intervals_are_recorded(
    rig: Rig, cut: Cut, influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    influxdb_shim.inject("slow_reply", delay_seconds=8, measurement="carbon_intensity")
    run = rig.first_gap_fill_run()
    pid = rig.worker_pid(run["runId"])
    rig.dagster.poll(
        lambda: stored_points(influxdb_server, influxdb_database, REGION), bool, TIMEOUT_SECONDS, "the stored write"
    )
    recovers(rig, influxdb_server, influxdb_database, run, cut(rig, run["runId"], pid), ended=cut.ended)


@pytest.mark.slow
def test_run_worker_killed_with_its_code_server(
    rig: Rig, simulator: SimulatorServer, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    """Nobody is left to report the run: run monitoring ends it, and the gap filler stops waiting for it."""
    fetching = slow_fetch(simulator)
    run = rig.first_gap_fill_run()
    rig.worker_pid(run["runId"])
    fetching(rig)
    killed = time.monotonic()
    rig.dagster.kill_code_server()
    recovers(rig, influxdb_server, influxdb_database, run, killed, ended="FAILURE")


@pytest.mark.slow
@pytest.mark.timeout(600)
@CUTS
def test_a_years_backfill_cut_halfway_through_recording_ends_complete(
    cut: Cut,
    tmp_path: Path,
    prod_env: dict[str, str],
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed, its retry rewrites the year and records every interval; terminated, its re-execution from
    failure records the rest."""
    with year_rig(tmp_path, prod_env, monkeypatch) as rig:
        run = backfill_a_year(rig)
        pid = rig.worker_pid(run["runId"])
        rig.dagster.poll(lambda: rig.recorded(run["runId"]), lambda n: n >= HALF_A_YEAR, TIMEOUT_SECONDS, "half")
        cut_at = cut(rig, run["runId"], pid)
        rig.wait_for_end(run["runId"])  # a terminated worker records until the interrupt reaches it
        recorded = rig.recorded(run["runId"])
        assert HALF_A_YEAR <= recorded < YEAR_INTERVALS
        then = re_execution(rig, run) if cut is TERMINATED else None
        recovers(rig, influxdb_server, influxdb_database, run, cut_at, ended=cut.ended, recorded=recorded, then=then)


def re_execution(rig: Rig, run: dict[str, Any]) -> Callable[[], None]:
    """What an operator does on the page of a backfill whose run was terminated."""
    backfill_id = next(tag["value"] for tag in run["tags"] if tag["key"] == BACKFILL_TAG)

    def re_execute() -> None:
        rig.dagster.wait_for_backfill(backfill_id, TIMEOUT_SECONDS)
        rig.dagster.reexecute_backfill_from_failure(backfill_id)

    return re_execute
