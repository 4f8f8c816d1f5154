"""The production layout with runs cut short, and the checks that nothing was lost when they were.

A run is cut short the way an operator meets it: its worker killed with SIGKILL (out of memory, a host
restart), or terminated from its page in the UI (the webserver's ``terminateRun`` mutation, which
interrupts the worker through its code server). The deployment is ``deploy/dagster.yaml`` on a real
PostgreSQL with run monitoring checking every second, the WattTime simulator over HTTP and a real InfluxDB
behind the v3 shim. Afterwards InfluxDB is compared point by point with the simulator's truth, and every
interval Dagster marks materialized must have all of its points.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest
import yaml

from carbon_pipeline.partitions import INTERVAL, RANGE_END_TAG, RANGE_START_TAG, interval_start
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline_tests.deployment.test_production_deployment import (
    fresh_instance,
    instance_env,
    materialization_rows,
)
from carbon_pipeline_tests.support.dagster_dev import FINISHED_RUN, SENSOR_TAG
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.pipeline_harness import StoredPoint, stored_points, truth
from carbon_pipeline_tests.support.postgres_server import PostgresServer
from carbon_pipeline_tests.support.split_deployment import INSTANCE_FILE, SplitDeployment

ASSET = dg.AssetKey("carbon_intensity")
REGION = "CAISO_NORTH"
TIMEOUT_SECONDS = 240
SETTING_PREFIXES = ("CARBON_", "WATTTIME_", "INFLUXDB_")
# A run silent for 20 s counts as dead to the gap filler (30 minutes in production).
STALLED_RUN_SECONDS = 20
YEAR = timedelta(days=365)
YEAR_INTERVALS = 35_040
HALF_A_YEAR = YEAR_INTERVALS // 2
BACKFILL_TAG = "dagster/backfill"
RUN = """
query ($id: ID!) {
  runOrError(runId: $id) { ... on Run { runId status tags { key value } } }
}"""
TERMINATE_RUN = """
mutation ($id: String!) {
  terminateRun(runId: $id) { __typename ... on TerminateRunFailure { message } ... on PythonError { message } }
}"""
WORKER_PID = re.compile(r"Started process for run \(pid: (\d+)\)")


class Rig:
    """The deployment, and what a test reads of it while and after a run is cut short."""

    def __init__(self, dagster: SplitDeployment, postgres: PostgresServer, home: Path) -> None:
        self.dagster = dagster
        self.postgres = postgres
        self.home = home
        home.mkdir()

    def first_run_tagged(self, key: str, value: str) -> dict[str, Any]:
        runs = self.dagster.poll(lambda: self.dagster.runs_tagged(key, value), bool, TIMEOUT_SECONDS, f"a run {value}")
        return min(runs, key=lambda run: run["creationTime"])

    def first_gap_fill_run(self) -> dict[str, Any]:
        return self.first_run_tagged(SENSOR_TAG, GAP_FILLER)

    def worker_pid(self, run_id: str) -> int:
        """Read from the run's engine events in PostgreSQL: a year's run logs 35,040 planned materializations first."""

        def pid() -> int:
            connection = psycopg2.connect(self.postgres.url())
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT event FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ENGINE_EVENT'",
                        (run_id,),
                    )
                    found = [WORKER_PID.search(event) for (event,) in cursor.fetchall()]
            finally:
                connection.close()
            return next((int(match.group(1)) for match in found if match), 0)

        return self.dagster.poll(pid, bool, TIMEOUT_SECONDS, f"the run worker of {run_id}")

    def run(self, run_id: str) -> dict[str, Any]:
        return dict(self.dagster.graphql(RUN, {"id": run_id})["runOrError"])

    def wait_for_end(self, run_id: str) -> dict[str, Any]:
        return self.dagster.poll(
            lambda: self.run(run_id), lambda run: run["status"] in FINISHED_RUN, TIMEOUT_SECONDS, "the run's end"
        )

    def terminate(self, run_id: str) -> None:
        """What the run page's Terminate button sends."""
        answer = self.dagster.graphql(TERMINATE_RUN, {"id": run_id})["terminateRun"]
        assert answer["__typename"] == "TerminateRunSuccess", answer

    def recorded(self, run_id: str) -> int:
        """How many intervals the run has recorded so far, read from PostgreSQL."""
        return len(materialization_rows(self.postgres, [run_id]))

    def materialized(self, monkeypatch: pytest.MonkeyPatch) -> set[str]:
        with (
            monkeypatch.context() as patch,
            fresh_instance(self.home / str(time.monotonic_ns()), self.postgres, patch) as reader,
        ):
            return set(reader.get_materialized_partitions(ASSET))


@contextmanager
def deployment(
    tmp_path: Path, prod_env: Mapping[str, str], history: timedelta, max_runtime_seconds: int
) -> Iterator[Rig]:
    """The split deployment of one region with ``history`` of partitions and a gap filler looking back an hour.

    Run monitoring is ``deploy/dagster.yaml``'s, but checking every second and ending a run after
    ``max_runtime_seconds``.
    """
    instance_file = tmp_path / "dagster.yaml"
    config = yaml.safe_load(INSTANCE_FILE.read_text())
    config.setdefault("run_monitoring", {}).update(
        {"poll_interval_seconds": 1, "max_runtime_seconds": max_runtime_seconds}
    )
    instance_file.write_text(yaml.safe_dump(config))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    settings = {key: value for key, value in prod_env.items() if key.startswith(SETTING_PREFIXES)} | {
        "DAGSTER_DEPLOYMENT": "prod",
        "CARBON_REGIONS": REGION,
        "CARBON_PARTITIONS_START": f"{today - history:%Y-%m-%d}",
        "CARBON_GAP_FILL_HOURS": "1",
        "CARBON_STALLED_RUN_SECONDS": str(STALLED_RUN_SECONDS),
    }
    with (
        PostgresServer() as postgres,
        SplitDeployment(tmp_path / "deployment", instance_env(postgres), settings, instance_file) as dagster,
    ):
        yield Rig(dagster, postgres, tmp_path / "readers")
        print(dagster.logs())


@contextmanager
def gap_fill_deployment(tmp_path: Path, prod_env: Mapping[str, str]) -> Iterator[Rig]:
    """A gap-filling run of an hour takes a few seconds: run monitoring ends it after 30 s."""
    with deployment(tmp_path, prod_env, timedelta(days=1), max_runtime_seconds=30) as rig:
        yield rig


@contextmanager
def year_deployment(tmp_path: Path, prod_env: Mapping[str, str]) -> Iterator[Rig]:
    """Room for a year's backfill, which runs for about a minute on this layout."""
    with deployment(tmp_path, prod_env, YEAR + timedelta(days=1), max_runtime_seconds=600) as rig:
        yield rig


def backfill_a_year(rig: Rig) -> dict[str, Any]:
    """Launch a backfill of the year that ended yesterday, as the asset page does; its one run."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    keys = sorted(keys_of(today - YEAR - timedelta(days=1), today - timedelta(days=1)))
    assert len(keys) == YEAR_INTERVALS
    backfill_id = rig.dagster.launch_backfill(ASSET.path[-1], keys)
    return rig.first_run_tagged(BACKFILL_TAG, backfill_id)


def window_of(run: Mapping[str, Any]) -> tuple[datetime, datetime]:
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    first, last = (interval_start(tags[tag].split("|")[1]) for tag in (RANGE_START_TAG, RANGE_END_TAG))
    return first, last + INTERVAL


def keys_of(first: datetime, end: datetime) -> set[str]:
    return {f"{REGION}|{first + index * INTERVAL:%Y-%m-%d-%H:%M}" for index in range(int((end - first) / INTERVAL))}


def marked_without_points(keys: Iterable[str], points: Iterable[StoredPoint]) -> list[str]:
    """The intervals among ``keys`` that miss any of the points the simulator published for them."""
    stored = set(points)
    missing = []
    for key in keys:
        start = interval_start(key.split("|")[1])
        if not all(point in stored for point in truth(REGION, start, start + INTERVAL)):
            missing.append(key)
    return sorted(missing)


def recovers(
    rig: Rig,
    influxdb: InfluxDBServer,
    database: str,
    run: Mapping[str, Any],
    cut: float,
    monkeypatch: pytest.MonkeyPatch,
    *,
    ended: str,
    recorded: int = 0,
    then: Callable[[], object] | None = None,
) -> None:
    """The cut run ends ``ended`` having recorded ``recorded`` intervals; then its window is stored in full.

    What stores the rest is the deployment's own (a retry, or the gap filler), after what the operator
    does once the run has ended, ``then``. Until then, as after, no interval may be marked materialized
    without its points, and no point may be stored twice.
    """
    finished = rig.wait_for_end(run["runId"])
    ended_after = time.monotonic() - cut
    assert finished["status"] == ended
    assert rig.recorded(run["runId"]) == recorded
    if then is not None:
        then()
    first, end = window_of(run)
    expected = truth(REGION, first, end)
    keys = keys_of(first, end)

    def stored() -> list[StoredPoint]:
        return [
            point
            for point in stored_points(influxdb, database, REGION)
            if first.timestamp() <= point.time < end.timestamp()
        ]

    def complete() -> bool:
        materialized = rig.materialized(monkeypatch) & keys
        points = stored()
        assert marked_without_points(materialized, points) == [], "intervals marked materialized without their points"
        return materialized == keys and points == expected

    rig.dagster.poll(complete, bool, TIMEOUT_SECONDS, "the cut run's intervals, stored and materialized")
    completed_after = time.monotonic() - cut
    points = stored()
    assert points == expected  # one point per timestamp: nothing written twice
    print(
        f"run {ended} {ended_after:.1f} s after the cut, {recorded} interval(s) recorded by it; data complete"
        f" {completed_after:.1f} s after it: intervals expected / materialized {len(keys)} / {len(keys)},"
        f" points expected / stored / correct {len(expected)} / {len(points)} / {len(set(points) & set(expected))}"
    )
