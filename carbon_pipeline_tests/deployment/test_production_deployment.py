"""The production layout on a real PostgreSQL: code server, webserver and daemon as separate processes.

Each process reads ``deploy/dagster.yaml`` from a DAGSTER_HOME of its own and the instance lives in
one PostgreSQL server; only the code server holds the pipeline's settings, against the WattTime
simulator and a real InfluxDB. Through that deployment: a backfill launched as the asset page does,
a schedule tick evaluated by the daemon at its cron time, and a gap-filling sensor tick all run to
success, and what they recorded is read back from PostgreSQL by a fresh instance and by SQL.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.tags import SCHEDULED_EXECUTION_TIME_TAG

from carbon_pipeline.partitions import (
    INTERVAL,
    RANGE_END_TAG,
    RANGE_START_TAG,
    interval_start,
    interval_starts,
    region_partition_key,
)
from carbon_pipeline.schedules import INTERVAL_TAG, SCHEDULE_NAME
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline.storage.batching import EVENT_BATCH_SIZE_VARIABLE
from carbon_pipeline_tests.support.dagster_dev import SENSOR_TAG
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.postgres_server import PostgresServer
from carbon_pipeline_tests.support.split_deployment import INSTANCE_FILE, SplitDeployment

ASSET = "carbon_intensity"
REGION = "CAISO_NORTH"
POINTS_PER_INTERVAL = 3  # CAISO_NORTH publishes every 5 minutes
# The schedule's tick is put on the first whole minute at least this long after the deployment starts
# (it is up in about 10 s), so the daemon is running when the tick falls due.
START_UP_SECONDS = 30
TIMEOUT_SECONDS = 180
SETTING_PREFIXES = ("CARBON_", "WATTTIME_", "INFLUXDB_")


@dataclass(frozen=True)
class Deployment:
    processes: SplitDeployment
    postgres: PostgresServer
    backfill_day: datetime
    tick: datetime
    tick_interval: datetime


def next_tick(after: datetime) -> datetime:
    """The first whole minute at or after ``after``."""
    minute = after.replace(second=0, microsecond=0)
    return minute if minute == after else minute + timedelta(minutes=1)


def instance_env(postgres: PostgresServer) -> dict[str, str]:
    """The variables ``deploy/dagster.yaml`` reads."""
    return {
        "DAGSTER_PG_HOST": postgres.host,
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_USERNAME": postgres.user,
        "DAGSTER_PG_PASSWORD": postgres.password,
        "DAGSTER_PG_DB": postgres.database,
    }


def keys_between(first: datetime, last: datetime) -> list[str]:
    return [str(region_partition_key(REGION, start)) for start in interval_starts(first, last + INTERVAL)]


def tags_of(run: dict[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["tags"]}


@contextmanager
def fresh_instance(
    home: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    """An instance loaded from ``deploy/dagster.yaml`` in a home of its own, as another machine would load it."""
    for name, value in instance_env(postgres).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(EVENT_BATCH_SIZE_VARIABLE, raising=False)  # the batching storage sets it when it loads
    home.mkdir()
    shutil.copy(INSTANCE_FILE, home / "dagster.yaml")
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        yield instance


def materialization_rows(postgres: PostgresServer, run_ids: list[str]) -> list[tuple[str, str]]:
    """(run id, partition) of every ASSET_MATERIALIZATION row of the asset in ``event_logs`` for ``run_ids``."""
    connection = psycopg2.connect(postgres.url())
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT run_id, partition FROM event_logs"
                " WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = %s AND run_id = ANY(%s)",
                (dg.AssetKey(ASSET).to_string(), run_ids),
            )
            return list(cursor.fetchall())
    finally:
        connection.close()


def points(influxdb: InfluxDBServer, database: str, first: datetime, end: datetime) -> int:
    window = f"time >= '{first:%Y-%m-%dT%H:%M:%SZ}' AND time < '{end:%Y-%m-%dT%H:%M:%SZ}'"
    rows = influxdb.query(f"SELECT count(moer_lbs_per_mwh) FROM carbon_intensity WHERE {window}", database)
    return int(rows[0]["count"]) if rows else 0


# ##### FIXTURES


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
def deployment(tmp_path: Path, postgres: PostgresServer, prod_env: dict[str, str]) -> Iterator[Deployment]:
    """The three processes, with the schedule's delay chosen so that its next tick falls soon after start-up."""
    tick = next_tick(datetime.now(UTC) + timedelta(seconds=START_UP_SECONDS))
    delay_minutes = tick.minute % 15
    backfill_day = (tick - timedelta(days=2)).replace(hour=0, minute=0)
    settings = {key: value for key, value in prod_env.items() if key.startswith(SETTING_PREFIXES)} | {
        "DAGSTER_DEPLOYMENT": "prod",
        "CARBON_REGIONS": REGION,
        "CARBON_PARTITIONS_START": f"{backfill_day:%Y-%m-%d}",
        "CARBON_SCHEDULE_DELAY_MINUTES": str(delay_minutes),
        "CARBON_GAP_FILL_HOURS": "1",
    }
    with SplitDeployment(tmp_path / "deployment", instance_env(postgres), settings) as processes:
        if datetime.now(UTC) >= tick:
            raise AssertionError(f"the deployment took longer than {START_UP_SECONDS} s to start; tick missed")
        tick_interval = tick - timedelta(minutes=delay_minutes) - INTERVAL
        yield Deployment(processes, postgres, backfill_day, tick, tick_interval)
        print(processes.logs())  # captured: pytest shows it when the test failed


# ##### TESTS


@pytest.mark.slow
def test_backfill_schedule_tick_and_sensor_tick_run_on_the_split_deployment_and_land_in_postgres(
    deployment: Deployment,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dagster = deployment.processes
    # The daemon evaluates the sensor as it starts; the backfill comes second, or the sensor would stand aside.
    dagster.poll(
        lambda: dagster.runs_tagged(SENSOR_TAG, GAP_FILLER),
        bool,
        TIMEOUT_SECONDS,
        "the gap-filling sensor's run",
    )
    day_start = deployment.backfill_day
    backfill_keys = keys_between(day_start, day_start + timedelta(days=1) - INTERVAL)
    backfill_id = dagster.launch_backfill(ASSET, backfill_keys)

    # (1) A UI-style backfill of one region for one day: one run.
    backfill = dagster.wait_for_backfill(backfill_id, TIMEOUT_SECONDS)
    assert backfill["partitionBackfillOrError"]["status"] == "COMPLETED_SUCCESS"
    (backfill_run,) = backfill["runsOrError"]["results"]
    assert backfill_run["status"] == "SUCCESS"

    # (2) The schedule's tick, evaluated by the daemon at its cron time, requests the interval that just closed.
    tick_run = dagster.wait_for_finished_run("dagster/schedule_name", SCHEDULE_NAME, TIMEOUT_SECONDS)
    assert tick_run["status"] == "SUCCESS"
    tick_key = str(region_partition_key(REGION, deployment.tick_interval))
    tick_tags = tags_of(tick_run)
    assert tick_tags[INTERVAL_TAG] == f"{deployment.tick_interval:%Y-%m-%d-%H:%M}"
    assert tick_tags[RANGE_START_TAG] == tick_tags[RANGE_END_TAG] == tick_key
    assert deployment.tick.timestamp() <= tick_run["creationTime"] < deployment.tick.timestamp() + 30

    # (3) The gap-filling sensor's run fills what is missing from the last hour.
    gap_fill_run = dagster.wait_for_finished_run(SENSOR_TAG, GAP_FILLER, TIMEOUT_SECONDS)
    assert gap_fill_run["status"] == "SUCCESS"
    gap_fill_tags = tags_of(gap_fill_run)
    first_gap, last_gap = (interval_start(gap_fill_tags[tag].split("|")[1]) for tag in (RANGE_START_TAG, RANGE_END_TAG))
    assert deployment.tick - timedelta(hours=1, minutes=30) <= first_gap <= last_gap < deployment.tick_interval
    gap_keys = keys_between(first_gap, last_gap)

    # (4) Read back from PostgreSQL: a fresh instance sees every partition materialized...
    expected = {backfill_run["runId"]: backfill_keys, tick_run["runId"]: [tick_key], gap_fill_run["runId"]: gap_keys}
    with fresh_instance(tmp_path / "reader_home", deployment.postgres, monkeypatch) as reader:
        materialized = set(reader.get_materialized_partitions(dg.AssetKey(ASSET)))
        run = reader.get_run_by_id(tick_run["runId"])
    assert {key for keys in expected.values() for key in keys} <= materialized
    assert run is not None and run.tags[SCHEDULED_EXECUTION_TIME_TAG] == deployment.tick.isoformat()
    # ...and the event log holds one ASSET_MATERIALIZATION row per partition of each run.
    rows = materialization_rows(deployment.postgres, list(expected))
    recorded: dict[str, list[str]] = {}
    for run_id, partition in rows:
        recorded.setdefault(run_id, []).append(partition)
    assert {run_id: sorted(keys) for run_id, keys in recorded.items()} == expected
    assert len(rows) == len(backfill_keys) + 1 + len(gap_keys)

    # The points are in InfluxDB.
    def stored(first: datetime, end: datetime) -> int:
        return points(influxdb_server, influxdb_database, first, end)

    assert stored(day_start, day_start + timedelta(days=1)) == POINTS_PER_INTERVAL * len(backfill_keys)
    assert stored(deployment.tick_interval, deployment.tick_interval + INTERVAL) == POINTS_PER_INTERVAL
    assert stored(first_gap, last_gap + INTERVAL) == POINTS_PER_INTERVAL * len(gap_keys)
