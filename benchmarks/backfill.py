"""A year's backfill of one region launched as the Dagster UI launches it, and one run per interval as the baseline.

The backfill goes through ``dagster dev`` (webserver, daemon, code server) with the instance file a
deployment uses: ``dagster.yaml`` (embedded SQLite) or ``deploy/dagster.yaml`` (PostgreSQL, on a
server the benchmark starts). Launch is the UI's GraphQL mutation; the daemon's backfill loop
submits the single run, the queued run coordinator starts it with the default run launcher.

    python -m benchmarks.backfill --days 365 --storage sqlite
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter

import dagster as dg

from benchmarks.data_path import REGION, simulator_stats, table
from benchmarks.event_log import EventLogFigures, measure_event_log
from benchmarks.stack import (
    PARTITIONS_START,
    Services,
    Storage,
    dagster_home,
    deployment_env,
    instance_in,
    services,
    stop_gap_fillers,
)
from carbon_pipeline.assets.carbon_intensity import build_carbon_intensity_asset
from carbon_pipeline.demo import QUIET_LOGS
from carbon_pipeline.partitions import INTERVAL, build_carbon_partitions, region_partition_key
from carbon_pipeline.sinks.files import LineProtocolFileSink
from carbon_pipeline.watttime.resource import WattTimeResource
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME
from carbon_pipeline_tests.support.dagster_dev import DagsterDev

ASSET_NAME = "carbon_intensity"
FIRST_INTERVAL = datetime.fromisoformat(PARTITIONS_START).replace(tzinfo=UTC)
INTERVALS_PER_DAY = 96
BACKFILL_TIMEOUT_SECONDS = 1800
RSS_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class LaunchFigures:
    """What any backfill launched from the UI takes: the daemon, the queue, the run, and the run worker's memory."""

    run_id: str
    launch_to_run_created_seconds: float
    run_created_to_started_seconds: float
    run_seconds: float
    launch_to_points_seconds: float
    launch_to_completed_seconds: float
    peak_rss_mb: float

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("launch -> run created by the backfill daemon (s)", f"{self.launch_to_run_created_seconds:.1f}"),
            ("run created -> started (queue, run worker) (s)", f"{self.run_created_to_started_seconds:.1f}"),
            ("run start -> end (s)", f"{self.run_seconds:.1f}"),
            ("launch -> run succeeded, points stored (s)", f"{self.launch_to_points_seconds:.1f}"),
            ("launch -> backfill marked complete (s)", f"{self.launch_to_completed_seconds:.1f}"),
            ("peak RSS of the run worker (MB)", f"{self.peak_rss_mb:.0f}"),
        ]


@dataclass(frozen=True)
class LaunchedBackfill:
    """A finished UI backfill: ``dagster dev`` has stopped, its simulator and InfluxDB still answer."""

    services: Services
    home: Path
    instance_env: Mapping[str, str]
    launch: LaunchFigures


@dataclass(frozen=True)
class BackfillFigures:
    storage: Storage
    intervals: int
    points: int
    watttime_calls: int
    launch: LaunchFigures
    event_log: EventLogFigures

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("intervals / points in InfluxDB", f"{self.intervals:,} / {self.points:,}"),
            ("WattTime data calls", str(self.watttime_calls)),
            *self.launch.rows(),
            *self.event_log.rows(),
        ]


@dataclass(frozen=True)
class RunPerIntervalFigures:
    intervals: int
    seconds: float

    @property
    def year_seconds(self) -> float:
        return self.seconds / self.intervals * 365 * INTERVALS_PER_DAY

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("intervals, one run each (s)", f"{self.intervals} in {self.seconds:.1f}"),
            ("per run (s)", f"{self.seconds / self.intervals:.2f}"),
            ("a year, extrapolated (h)", f"{self.year_seconds / 3600:.1f}"),
        ]


def partition_keys(days: int) -> list[str]:
    return [str(region_partition_key(REGION, FIRST_INTERVAL + n * INTERVAL)) for n in range(days * INTERVALS_PER_DAY)]


def measure_ui_backfill(storage: Storage, days: int, latency_seconds: float) -> BackfillFigures:
    """Launch ``days`` days of one region as the asset page's "Launch backfill" does, and time it."""
    keys = partition_keys(days)
    end = FIRST_INTERVAL + days * timedelta(days=1)
    with ui_backfill(storage, (ASSET_NAME,), keys, latency_seconds) as backfill:
        stack = backfill.services
        points = stack.points(f"time >= '{FIRST_INTERVAL:%Y-%m-%dT%H:%M:%SZ}' AND time < '{end:%Y-%m-%dT%H:%M:%SZ}'")
        calls = historical_calls(stack.watttime_url, FIRST_INTERVAL, end)
        event_log = measure_event_log(storage, backfill.home, backfill.instance_env, backfill.launch.run_id)
    return BackfillFigures(storage, len(keys), points, calls, backfill.launch, event_log)


@contextmanager
def ui_backfill(
    storage: Storage, assets: Sequence[str], keys: Sequence[str], latency_seconds: float
) -> Iterator[LaunchedBackfill]:
    """Launch a backfill of ``assets``' ``keys`` (all of ``REGION``) from the UI, wait for it, and time it.

    Both gap fillers are stopped so that the backfill's run is the only one; the run worker is whichever
    process ``dagster dev`` starts while the backfill is under way. The launch waits for the backfill
    daemon's first heartbeat, as a user's click meets a daemon that has been running, so what is timed
    is the daemon's own loops (every 30 s, fixed by Dagster), not its start-up.
    """
    with (
        tempfile.TemporaryDirectory(prefix="carbon-bench-") as workdir,
        services(latency_seconds) as stack,
        dagster_home(Path(workdir), storage) as (home, instance_env),
    ):
        env = deployment_env(stack, home, instance_env, REGION, CARBON_GAP_FILL_HOURS="1")
        stop_gap_fillers(env)
        log = Path(workdir) / "dagster_dev.log"
        with DagsterDev(home, env, log) as dagster_dev, RunWorkerMemory(dagster_dev.pid) as memory:
            dagster_dev.wait_for_daemon("BACKFILL", BACKFILL_TIMEOUT_SECONDS)
            launched_at = time.time()
            started = perf_counter()
            backfill_id = dagster_dev.launch_backfill(assets, keys)
            run = dagster_dev.wait_for_finished_run("dagster/backfill", backfill_id, BACKFILL_TIMEOUT_SECONDS)
            run_done = perf_counter() - started
            status = dagster_dev.wait_for_backfill(backfill_id, BACKFILL_TIMEOUT_SECONDS)
            completed = perf_counter() - started
        if run["status"] != "SUCCESS" or status["partitionBackfillOrError"]["status"] != "COMPLETED_SUCCESS":
            raise RuntimeError(f"backfill did not succeed: {status}; see {log}")
        launch = LaunchFigures(
            run_id=run["runId"],
            launch_to_run_created_seconds=float(run["creationTime"]) - launched_at,
            run_created_to_started_seconds=float(run["startTime"]) - float(run["creationTime"]),
            run_seconds=float(run["endTime"]) - float(run["startTime"]),
            launch_to_points_seconds=run_done,
            launch_to_completed_seconds=completed,
            peak_rss_mb=memory.peak_mb,
        )
        yield LaunchedBackfill(stack, home, instance_env, launch)


def historical_calls(watttime_url: str, first: datetime, end: datetime, recorded: str = "historical_queries") -> int:
    """Calls the simulator answered for [first, end), of the kind it records under ``recorded``.

    The schedules keep running during a backfill; their calls are for the interval under way, not for
    [first, end), so they are not counted.
    """
    queries = simulator_stats(watttime_url)[recorded]
    return sum(1 for query in queries if first <= datetime.fromisoformat(query["start"]) < end)


def measure_run_per_interval(hours: int, latency_seconds: float) -> RunPerIntervalFigures:
    """One run per interval for ``hours`` hours, on the embedded instance, in one process.

    Runs are executed in-process (no run-worker start-up, no queue), so this is a floor for what
    one run per interval costs; under the daemon each run also pays a new process (seconds).
    """
    intervals = hours * 4
    with (
        tempfile.TemporaryDirectory(prefix="carbon-bench-") as workdir,
        services(latency_seconds) as stack,
        dagster_home(Path(workdir), "sqlite") as (home, _),
        instance_in(home) as instance,
    ):
        asset = build_carbon_intensity_asset(build_carbon_partitions((REGION,), FIRST_INTERVAL))
        watttime = WattTimeResource(
            username=SIMULATOR_USERNAME, password=SIMULATOR_PASSWORD, base_url=stack.watttime_url
        )
        resources = {
            "watttime": watttime,
            "point_sink": LineProtocolFileSink(directory=str(Path(workdir) / "points")),
        }
        started = perf_counter()
        for n in range(intervals):
            key = region_partition_key(REGION, FIRST_INTERVAL + n * INTERVAL)
            result = dg.materialize(
                [asset], resources=resources, instance=instance, partition_key=str(key), run_config=QUIET_LOGS
            )
            if not result.success:
                raise RuntimeError(f"run for {key} failed")
        seconds = perf_counter() - started
    return RunPerIntervalFigures(intervals, seconds)


class RunWorkerMemory:
    """Peak resident memory (VmHWM) of the processes ``dagster dev`` starts while this is open: the run workers.

    Processes already running when it opens (webserver, daemon, code server) are not counted.
    """

    def __init__(self, root_pid: int) -> None:
        self._root_pid = root_pid
        self._peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="run-worker-memory", daemon=True)

    @property
    def peak_mb(self) -> float:
        return self._peak_kb / 1024

    def __enter__(self) -> RunWorkerMemory:
        self._existing = _descendants(self._root_pid)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(RSS_POLL_SECONDS):
            for pid in _descendants(self._root_pid) - self._existing:
                self._peak_kb = max(self._peak_kb, _high_water_kb(pid))


def _descendants(root_pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    pending = [root_pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def _high_water_kb(pid: int) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith("VmHWM:")), 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backfill", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="span of one region to backfill (default 365)")
    parser.add_argument("--storage", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="simulator latency per call (default 200)")
    args = parser.parse_args(argv)
    figures = measure_ui_backfill(args.storage, args.days, args.latency_ms / 1000)
    print(f"UI backfill, {args.storage}, region {REGION}, {args.days} day(s), simulator latency {args.latency_ms:g} ms")
    print(table(figures.rows()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
