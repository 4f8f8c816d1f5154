"""The production layout with short run-monitoring intervals, and what tests read back from it.

Code server, webserver and daemon run as processes on ``deploy/dagster.yaml`` with a real PostgreSQL
(``split_deployment.py``); the pipeline reads the WattTime simulator and writes to InfluxDB behind the
shim as ``prod_env`` says. Run monitoring checks every second and ends a run after 30 s (a gap-filling
run of an hour takes a few seconds; ``year_rig`` gives a year's backfill room), and a run silent for
20 s counts as dead, so a lost run worker is dealt with within a test. What the deployment recorded is
read as another machine would: from an instance of its own on the same database, or from PostgreSQL's
event log. ``recovers`` is the check on a run cut short (killed or terminated): nothing marked
materialized without its points, and in the end its window stored exactly, once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest
import yaml

from carbon_pipeline.coverage import due_intervals
from carbon_pipeline.partitions import INTERVAL, RANGE_END_TAG, RANGE_START_TAG, build_carbon_partitions, interval_start
from carbon_pipeline.run_outcomes import run_covers
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline_tests.deployment.test_production_deployment import fresh_instance, instance_env
from carbon_pipeline_tests.support.dagster_dev import BACKFILL_TAG, FINISHED_RUN, SENSOR_TAG
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
WORKER_PID = re.compile(r"Started process for run \(pid: (\d+)\)")
TERMINATE_RUN = """
mutation ($id: String!) {
  terminateRun(runId: $id) { __typename ... on TerminateRunFailure { message } ... on PythonError { message } }
}"""
YEAR = timedelta(days=365)
YEAR_INTERVALS = 35_040
HALF_A_YEAR = YEAR_INTERVALS // 2


class Rig:
    def __init__(
        self, dagster: SplitDeployment, postgres: PostgresServer, home: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.dagster = dagster
        self.postgres = postgres
        self.home = home
        self.monkeypatch = monkeypatch
        home.mkdir()

    def first_run_tagged(self, key: str, value: str) -> dict[str, Any]:
        runs = self.dagster.poll(lambda: self.dagster.runs_tagged(key, value), bool, TIMEOUT_SECONDS, f"a run {value}")
        return min(runs, key=lambda run: run["creationTime"])

    def first_gap_fill_run(self) -> dict[str, Any]:
        return self.first_run_tagged(SENSOR_TAG, GAP_FILLER)

    def worker_pid(self, run_id: str) -> int:
        """Read from the run's engine events in PostgreSQL: a year's run logs 35,040 planned materializations first."""

        def pid() -> int:
            found = [WORKER_PID.search(event) for event in self._events(run_id, "ENGINE_EVENT")]
            return next((int(match.group(1)) for match in found if match), 0)

        return self.dagster.poll(pid, bool, TIMEOUT_SECONDS, f"the run worker of {run_id}")

    def recorded(self, run_id: str) -> int:
        """How many intervals the run has recorded so far."""
        return len(self._events(run_id, "ASSET_MATERIALIZATION"))

    def terminate(self, run_id: str) -> None:
        """What the run page's Terminate button sends: the code server interrupts the run worker."""
        answer = self.dagster.graphql(TERMINATE_RUN, {"id": run_id})["terminateRun"]
        assert answer["__typename"] == "TerminateRunSuccess", answer

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

    def wait_until_stored(self, influxdb: InfluxDBServer, database: str, first: datetime, end: datetime) -> str:
        """Until every interval of [first, end) is stored exactly as the simulator published it, once, and
        marked materialized; never an interval marked materialized whose points are not all stored. What
        was expected and found, counted."""
        expected = truth(REGION, first, end)
        keys = keys_of(first, end)

        def complete() -> bool:
            materialized = self.materialized() & keys
            points = stored_between(influxdb, database, first, end)
            assert marked_without_points(materialized, points) == [], "intervals marked materialized without points"
            return materialized == keys and points == expected

        what = f"intervals {first:%Y-%m-%d %H:%M}-{end:%Y-%m-%d %H:%M}, stored and materialized"
        self.dagster.poll(complete, bool, TIMEOUT_SECONDS, what)
        points = stored_between(influxdb, database, first, end)
        assert points == expected  # one point per timestamp
        correct = len(set(points) & set(expected))
        return (
            f"intervals expected / materialized {len(keys)} / {len(self.materialized() & keys)},"
            f" points expected / stored / correct {len(expected)} / {len(points)} / {correct}"
        )

    def _events(self, run_id: str, event_type: str) -> list[str]:
        connection = psycopg2.connect(self.postgres.url())
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT event FROM event_logs WHERE run_id = %s AND dagster_event_type = %s", (run_id, event_type)
                )
                return [event for (event,) in cursor.fetchall()]
        finally:
            connection.close()

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


def marked_without_points(keys: Iterable[str], points: Iterable[StoredPoint]) -> list[str]:
    """The intervals among ``keys`` that miss any of the points the simulator published for them."""
    stored = set(points)
    missing = []
    for key in keys:
        start = interval_start(key.split("|")[1])
        if not all(point in stored for point in truth(REGION, start, start + INTERVAL)):
            missing.append(key)
    return sorted(missing)


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


@contextmanager
def year_rig(workdir: Path, prod_env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """Partitioned from a year and a day ago, with room for a year's run (about a minute on this layout)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    settings = {"CARBON_PARTITIONS_START": f"{today - YEAR - timedelta(days=1):%Y-%m-%d}"}
    instance = {"run_monitoring": {"max_runtime_seconds": 600}}
    with split_rig(workdir, prod_env, monkeypatch, settings, instance) as rig:
        yield rig


def backfill_a_year(rig: Rig) -> dict[str, Any]:
    """Launch a backfill of the year that ended yesterday, as the asset page does; its one run."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    keys = sorted(keys_of(today - YEAR - timedelta(days=1), today - timedelta(days=1)))
    assert len(keys) == YEAR_INTERVALS
    backfill_id = rig.dagster.launch_backfill(ASSET.to_user_string(), keys)
    return rig.first_run_tagged(BACKFILL_TAG, backfill_id)


def recovers(
    rig: Rig,
    influxdb: InfluxDBServer,
    database: str,
    run: dict[str, Any],
    cut: float,
    *,
    ended: str,
    recorded: int = 0,
    then: Callable[[], object] | None = None,
) -> None:
    """A run cut short (killed or terminated) ends ``ended`` having recorded ``recorded`` intervals; then its
    window is stored in full, by the deployment's own means (a retry, or the gap filler) after what the
    operator does once the run has ended, ``then``."""
    status = rig.wait_for_end(run["runId"])
    ended_after = time.monotonic() - cut
    assert status == ended
    assert rig.recorded(run["runId"]) == recorded
    if then is not None:
        then()
    counts = rig.wait_until_stored(influxdb, database, *window_of(run))
    print(
        f"run {ended} {ended_after:.1f} s after the cut, {recorded} interval(s) recorded by it; data complete"
        f" {time.monotonic() - cut:.1f} s after it: {counts}"
    )
