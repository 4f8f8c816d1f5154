"""The production layout with short run-monitoring intervals, and what tests read back from it.

Code server, webserver and daemon run as processes on ``deploy/dagster.yaml`` with a real PostgreSQL
(``split_deployment.py``); the pipeline reads the WattTime simulator and writes to InfluxDB behind the
shim as ``prod_env`` says. Run monitoring checks every second and ends a run after 30 s (a gap-filling
run of an hour takes a few seconds), and a run silent for 20 s counts as dead, so a lost run worker
is dealt with within a test. What the deployment recorded is read as another machine would: from an
instance of its own on the same database.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from carbon_pipeline.coverage import due_intervals
from carbon_pipeline.partitions import INTERVAL, RANGE_END_TAG, RANGE_START_TAG, build_carbon_partitions, interval_start
from carbon_pipeline.run_outcomes import run_covers
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline_tests.deployment.test_production_deployment import fresh_instance, instance_env
from carbon_pipeline_tests.support.dagster_dev import FINISHED_RUN, SENSOR_TAG
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.pipeline_harness import StoredPoint, stored_points, truth
from carbon_pipeline_tests.support.postgres_server import PostgresServer
from carbon_pipeline_tests.support.split_deployment import INSTANCE_FILE, SplitDeployment

ASSET = dg.AssetKey("carbon_intensity")
REGION = "CAISO_NORTH"
TIMEOUT_SECONDS = 240
SETTING_PREFIXES = ("CARBON_", "WATTTIME_", "INFLUXDB_")
MONITORING = {"poll_interval_seconds": 1, "max_runtime_seconds": 30}
STALLED_RUN_SECONDS = 20
SCHEDULE_DELAY = timedelta(minutes=5)  # CARBON_SCHEDULE_DELAY_MINUTES' default
RUN_EVENTS = """
query ($id: ID!) {
  logsForRun(runId: $id) { ... on EventConnection { events { ... on MessageEvent { message } } } }
}"""
WORKER_PID = re.compile(r"Started process for run \(pid: (\d+)\)")


class Rig:
    def __init__(
        self, dagster: SplitDeployment, postgres: PostgresServer, home: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.dagster = dagster
        self.postgres = postgres
        self.home = home
        self.monkeypatch = monkeypatch
        home.mkdir()

    def gap_fill_runs(self) -> list[dict[str, Any]]:
        """The gap filler's runs, oldest first."""
        return sorted(self.dagster.runs_tagged(SENSOR_TAG, GAP_FILLER), key=lambda run: run["creationTime"])

    def first_gap_fill_run(self) -> dict[str, Any]:
        return self.dagster.poll(self.gap_fill_runs, bool, TIMEOUT_SECONDS, "a gap-filling run")[0]

    def worker_pid(self, run_id: str) -> int:
        def pid() -> int:
            events = self.dagster.graphql(RUN_EVENTS, {"id": run_id})["logsForRun"]["events"]
            found = [WORKER_PID.search(event.get("message") or "") for event in events]
            return next((int(match.group(1)) for match in found if match), 0)

        return self.dagster.poll(pid, bool, TIMEOUT_SECONDS, f"the run worker of {run_id}")

    def wait_for_end(self, run_id: str) -> str:
        """The status the run ended with."""
        status = self.dagster.run_status
        return self.dagster.poll(
            lambda: status(run_id), lambda found: found in FINISHED_RUN, TIMEOUT_SECONDS, "the run's end"
        )

    def materialized(self) -> set[str]:
        with self._reader() as reader:
            return set(reader.get_materialized_partitions(ASSET))

    def run_records(self) -> list[dg.RunRecord]:
        """Every run the deployment recorded, with its tags and when it started and ended."""
        with self._reader() as reader:
            return list(reader.get_run_records())

    def wait_until_stored(self, influxdb: InfluxDBServer, database: str, first: datetime, end: datetime) -> None:
        """Until every interval of [first, end) is stored exactly as the simulator published it, once, and
        marked materialized; never an interval marked materialized whose points are not all stored."""
        expected = truth(REGION, first, end)
        keys = keys_of(first, end)

        def complete() -> bool:
            materialized = self.materialized() & keys
            points = stored_between(influxdb, database, first, end)
            for key in materialized:
                start = interval_start(key.split("|")[1])
                want = truth(REGION, start, start + INTERVAL)
                assert [point for point in points if point in want] == want, f"{key} materialized without its points"
            return materialized == keys and points == expected

        what = f"intervals {first:%H:%M}-{end:%H:%M}, stored and materialized"
        self.dagster.poll(complete, bool, TIMEOUT_SECONDS, what)
        assert stored_between(influxdb, database, first, end) == expected  # one point per timestamp

    @contextmanager
    def _reader(self) -> Iterator[dg.DagsterInstance]:
        with (
            self.monkeypatch.context() as patch,
            fresh_instance(self.home / str(time.monotonic_ns()), self.postgres, patch) as reader,
        ):
            yield reader


def stored_between(influxdb: InfluxDBServer, database: str, first: datetime, end: datetime) -> list[StoredPoint]:
    points = stored_points(influxdb, database, REGION)
    return [point for point in points if first.timestamp() <= point.time < end.timestamp()]


def window_of(run: dict[str, Any]) -> tuple[datetime, datetime]:
    """The intervals [first, end) of a run as the GraphQL API lists it."""
    return window_of_tags({tag["key"]: tag["value"] for tag in run["tags"]})


def window_of_tags(tags: Mapping[str, str]) -> tuple[datetime, datetime]:
    first, last = (interval_start(tags[tag].split("|")[1]) for tag in (RANGE_START_TAG, RANGE_END_TAG))
    return first, last + INTERVAL


def gap_fill_window() -> tuple[datetime, datetime]:
    """The intervals every gap-filler tick of the next quarter hour looks at: the last hour's due now, but
    the oldest, which drops out of the look-back when the quarter hour turns."""
    partitions = build_carbon_partitions((REGION,), datetime.now(UTC) - timedelta(days=1))
    due = due_intervals(partitions, datetime.now(UTC), timedelta(hours=1), SCHEDULE_DELAY)
    return due.first + INTERVAL, due.end


def overlapping_runs(records: Iterable[dg.RunRecord]) -> list[tuple[str, str]]:
    """Every two runs of the asset that were queued or running at the same time with an interval in common:
    an interval requested twice at once."""
    spans = []
    for record in records:
        run = record.dagster_run
        if run_covers(run, ASSET) and RANGE_START_TAG in run.tags:
            until = record.end_time or time.time()
            spans.append((run.run_id, keys_of(*window_of_tags(run.tags)), record.create_timestamp.timestamp(), until))
    return [
        (one, other)
        for (one, keys, since, until), (other, other_keys, other_since, other_until) in combinations(spans, 2)
        if keys & other_keys and since < other_until and other_since < until
    ]


def keys_of(first: datetime, end: datetime) -> set[str]:
    return {f"{REGION}|{first + index * INTERVAL:%Y-%m-%d-%H:%M}" for index in range(int((end - first) / INTERVAL))}


@contextmanager
def split_rig(
    workdir: Path,
    prod_env: Mapping[str, str],
    monkeypatch: pytest.MonkeyPatch,
    settings: Mapping[str, str] | None = None,
    instance: Mapping[str, Mapping[str, Any]] | None = None,
) -> Iterator[Rig]:
    """The deployment of one region, partitioned from yesterday, filling gaps of the last hour; ``settings``
    and ``instance`` (top-level sections of the instance file, merged into deploy/dagster.yaml's) add to it."""
    instance_file = workdir / "dagster.yaml"
    config = yaml.safe_load(INSTANCE_FILE.read_text())
    for section, values in ({"run_monitoring": MONITORING} | dict(instance or {})).items():
        config.setdefault(section, {}).update(values)
    instance_file.write_text(yaml.safe_dump(config))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    environment = {key: value for key, value in prod_env.items() if key.startswith(SETTING_PREFIXES)} | {
        "DAGSTER_DEPLOYMENT": "prod",
        "CARBON_REGIONS": REGION,
        "CARBON_PARTITIONS_START": f"{today - timedelta(days=1):%Y-%m-%d}",
        "CARBON_GAP_FILL_HOURS": "1",
        "CARBON_STALLED_RUN_SECONDS": str(STALLED_RUN_SECONDS),
    }
    with (
        PostgresServer() as postgres,
        SplitDeployment(
            workdir / "deployment", instance_env(postgres), environment | dict(settings or {}), instance_file
        ) as dagster,
    ):
        yield Rig(dagster, postgres, workdir / "readers", monkeypatch)
        print(dagster.logs())
