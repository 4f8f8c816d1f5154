"""A scheduled tick, the gap filler's runs and a UI backfill of the same intervals, at once, on one WattTime account.

One ``dagster dev`` with the real schedule, the real gap-filling sensor (an empty instance: the last
hours are missing) and a backfill launched through the UI's GraphQL mutation over the gap filler's
intervals up to the tick's. All three are held in the real run queue (the ``watttime_api`` pool at 0,
set as an operator sets it) until every one of them is queued, then released together (the pool back
at 2, the instance's default), so their WattTime calls overlap whatever the timing. Read from the
simulator's arrival log: the busiest second of requests and the busiest five minutes of logins, the
account's two budgets; from InfluxDB and the instance: every point stored once and true, every
interval materialized once by each run that covered it.

    python -m benchmarks.overlap --regions 100
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import perf_counter
from typing import Any

from benchmarks.data_path import simulator_counts, simulator_stats, table
from benchmarks.stack import DATABASE, set_pool_limit, stop_gap_fillers
from benchmarks.tick import (
    MOER_DELAYS,
    TickDeployment,
    busiest_window,
    deployment_before_tick,
    moer_tick_settings,
    region_names,
    tick_interval,
)
from carbon_pipeline.assets.carbon_intensity import ASSET_NAME
from carbon_pipeline.definitions import FORECAST_GAP_FILLER
from carbon_pipeline.partitions import (
    INTERVAL,
    RANGE_START_TAG,
    build_carbon_partitions,
    interval_start,
    interval_starts,
    region_partition_key,
)
from carbon_pipeline.run_outcomes import run_windows
from carbon_pipeline.schedules import SCHEDULE_NAME
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline_tests.support.dagster_dev import BACKFILL_TAG, FINISHED_RUN, SCHEDULE_TAG, SENSOR_TAG, DagsterDev
from carbon_pipeline_tests.support.moer_truth import StoredPoint, truth

GAP_FILL_HOURS = 1
# The gap filler's limit of runs in flight (CARBON_GAP_FILL_MAX_RUNS's default): its first tick requests this many.
GAP_FILL_RUNS = 2
RELEASED_POOL_LIMIT = 2  # dagster.yaml's concurrency.pools.default_limit
QUEUE_TIMEOUT_SECONDS = 300
RUNS_TIMEOUT_SECONDS = 1200
LOGIN_WINDOW_SECONDS = 300
TICK, GAP_FILL, BACKFILL = "scheduled tick", "gap fill", "UI backfill"


@dataclass(frozen=True)
class OverlappingRuns:
    """What the deployment ran: each source's runs as they stood queued together, then finished."""

    deployment: TickDeployment
    regions: tuple[str, ...]
    first: datetime
    end: datetime
    queued: Mapping[str, list[dict[str, Any]]]
    finished: Mapping[str, list[dict[str, Any]]]
    backfill_status: str
    release_to_done_seconds: float

    def requested_keys(self, run: Mapping[str, Any]) -> list[str]:
        """The partitions a run was asked for, from the range tags Dagster put on it."""
        return requested_keys(run, self.regions, self.deployment.tick)

    def materialized(self, run: Mapping[str, Any]) -> list[str]:
        """The partitions the run recorded a materialization of, sorted, each as often as it was recorded."""
        return sorted(self.deployment.dagster_dev.materialized_partitions(run["runId"]))

    def runs(self) -> list[dict[str, Any]]:
        """Every run of the three sources, finished."""
        return [run for runs in self.finished.values() for run in runs]

    def stored(self) -> dict[str, list[StoredPoint]]:
        """Every point in InfluxDB from ``first`` to ``end``, per region, in time order (duplicates included)."""
        span = f"time >= '{self.first:%Y-%m-%dT%H:%M:%SZ}' AND time < '{self.end:%Y-%m-%dT%H:%M:%SZ}'"
        rows = self.deployment.services.influxdb.query(
            f"SELECT moer_lbs_per_mwh, carbon_intensity_gco2_kwh FROM carbon_intensity WHERE {span} GROUP BY region",
            DATABASE,
        )
        points: dict[str, list[StoredPoint]] = {}
        for row in rows:
            point = StoredPoint(row["time"], row["moer_lbs_per_mwh"], row["carbon_intensity_gco2_kwh"])
            points.setdefault(row["region"], []).append(point)
        return points

    def true_points(self) -> int:
        """Points of the regions whose stored points are exactly the simulator's, each once."""
        stored = self.stored()
        return sum(
            len(stored[region]) for region in self.regions if stored.get(region) == truth(region, self.first, self.end)
        )


@dataclass(frozen=True)
class OverlapFigures:
    regions: int
    runs: Mapping[str, int]
    expected_points: int
    stored_points: int
    true_points: int
    materialized_once: bool
    watttime_calls: int
    logins: int
    peak_requests_per_second: int
    peak_logins_per_5_minutes: int
    release_to_done_seconds: float

    @property
    def all_true(self) -> bool:
        return self.stored_points == self.true_points == self.expected_points and self.materialized_once

    def rows(self) -> list[tuple[str, str]]:
        runs = ", ".join(f"{source} {count}" for source, count in self.runs.items())
        return [
            ("regions / runs queued together, all succeeded", f"{self.regions} / {runs}"),
            ("points stored / true / expected", f"{self.stored_points} / {self.true_points} / {self.expected_points}"),
            ("every interval materialized once by each run", "yes" if self.materialized_once else "NO"),
            ("WattTime data calls / logins", f"{self.watttime_calls} / {self.logins}"),
            ("WattTime requests in the busiest second", str(self.peak_requests_per_second)),
            ("WattTime logins in the busiest 5 minutes", str(self.peak_logins_per_5_minutes)),
            ("queue released -> every run done (s)", f"{self.release_to_done_seconds:.1f}"),
        ]


def measure_overlap(regions: int, latency_seconds: float) -> OverlapFigures:
    with overlapping_runs(regions, latency_seconds) as overlap:
        intervals = len(interval_starts(overlap.first, overlap.end))
        stored = sum(len(points) for points in overlap.stored().values())
        materialized_once = all(overlap.materialized(run) == overlap.requested_keys(run) for run in overlap.runs())
        watttime_url = overlap.deployment.services.watttime_url
        calls, logins = simulator_counts(watttime_url)
        arrivals = simulator_stats(watttime_url)["arrivals"]
        return OverlapFigures(
            regions=regions,
            runs={source: len(runs) for source, runs in overlap.finished.items()},
            expected_points=regions * intervals * 3,
            stored_points=stored,
            true_points=overlap.true_points(),
            materialized_once=materialized_once,
            watttime_calls=calls,
            logins=logins,
            peak_requests_per_second=busiest_window([t for moments in arrivals.values() for t in moments], 1.0),
            peak_logins_per_5_minutes=busiest_window(arrivals.get("/login", []), LOGIN_WINDOW_SECONDS),
            release_to_done_seconds=overlap.release_to_done_seconds,
        )


@contextmanager
def overlapping_runs(regions: int, latency_seconds: float) -> Iterator[OverlappingRuns]:
    """The three sources' runs for overlapping intervals, queued together, released together, all finished.

    Raises if any run or the backfill did not succeed; ``dagster dev`` is still up inside the block.
    """
    with deployment_before_tick(regions, latency_seconds, MOER_DELAYS, _settings, _hold_the_queue) as deployment:
        dagster_dev = deployment.dagster_dev
        sources = {TICK: (SCHEDULE_TAG, SCHEDULE_NAME), GAP_FILL: (SENSOR_TAG, GAP_FILLER)}
        gap_fills = _wait_for_runs(
            dagster_dev, sources[GAP_FILL], lambda runs: len(runs) >= min(regions, GAP_FILL_RUNS)
        )
        _wait_for_runs(dagster_dev, sources[TICK], bool)
        first = min(_first_interval(run) for run in gap_fills)
        end = tick_interval(deployment.tick) + INTERVAL
        names = tuple(region_names(regions).split(","))
        keys = [str(region_partition_key(region, start)) for region in names for start in interval_starts(first, end)]
        dagster_dev.wait_for_daemon("BACKFILL", QUEUE_TIMEOUT_SECONDS)
        backfill_id = dagster_dev.launch_backfill(ASSET_NAME, keys)
        sources[BACKFILL] = (BACKFILL_TAG, backfill_id)
        # Dagster splits a backfill of many regions into several runs, by region or by interval.
        _wait_for_runs(
            dagster_dev,
            sources[BACKFILL],
            lambda runs: sum(len(requested_keys(run, names, deployment.tick)) for run in runs) >= len(keys),
        )
        queued = {source: dagster_dev.runs_tagged(*tag) for source, tag in sources.items()}
        not_queued = [run for runs in queued.values() for run in runs if run["status"] != "QUEUED"]
        if not_queued:
            raise RuntimeError(f"runs left the queue while it was held: {not_queued}")
        released = perf_counter()
        set_pool_limit(deployment.env, RELEASED_POOL_LIMIT)
        finished = {source: _wait_until_finished(dagster_dev, sources[source], queued[source]) for source in sources}
        status = dagster_dev.wait_for_backfill(backfill_id, RUNS_TIMEOUT_SECONDS)["partitionBackfillOrError"]["status"]
        done = perf_counter() - released
        overlap = OverlappingRuns(deployment, names, first, end, queued, finished, status, done)
        failed = [run for run in overlap.runs() if run["status"] != "SUCCESS"]
        if failed or status != "COMPLETED_SUCCESS":
            raise RuntimeError(f"backfill {status}, runs not succeeded: {failed}; {dagster_dev.logs()}")
        yield overlap


def _settings(tick: datetime) -> dict[str, str]:
    return moer_tick_settings(tick) | {
        "CARBON_GAP_FILL_HOURS": str(GAP_FILL_HOURS),
        "CARBON_PARTITIONS_START": f"{partitions_start(tick):%Y-%m-%d}",
    }


def partitions_start(tick: datetime) -> datetime:
    """The day before the tick's: from the benchmarks' 2025 start a hundred regions are millions of partitions,
    and the webserver took over a minute (GraphQL's timeout here) to accept a backfill of them; the deployment
    itself warns to move the start later for so many."""
    return (tick - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def _hold_the_queue(env: Mapping[str, str]) -> None:
    """Before the daemon starts: only the forecasts' gap filler stopped, and no WattTime step may start."""
    stop_gap_fillers(env, [FORECAST_GAP_FILLER])
    set_pool_limit(env, 0)


def _wait_for_runs(
    dagster_dev: DagsterDev, tag: tuple[str, str], enough: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """The runs carrying ``tag`` once they are ``enough``, all in the run queue."""
    return dagster_dev.poll(
        lambda: dagster_dev.runs_tagged(*tag),
        lambda runs: enough(runs) and all(run["status"] == "QUEUED" for run in runs),
        QUEUE_TIMEOUT_SECONDS,
        f"the runs tagged {tag[0]}={tag[1]} in the queue",
    )


def requested_keys(run: Mapping[str, Any], regions: Sequence[str], tick: datetime) -> list[str]:
    """The partitions a run of the deployment of ``regions`` before ``tick`` was asked for, from its range tags."""
    partitions = build_carbon_partitions(regions, partitions_start(tick))
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    windows = run_windows(tags, partitions)
    return sorted(str(region_partition_key(window.region, start)) for window in windows for start in window.starts())


def _wait_until_finished(
    dagster_dev: DagsterDev, tag: tuple[str, str], runs: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """``runs`` (all tagged ``tag``) once every one of them has finished."""
    ids = {run["runId"] for run in runs}
    return dagster_dev.poll(
        lambda: [run for run in dagster_dev.runs_tagged(*tag) if run["runId"] in ids],
        lambda now: all(run["status"] in FINISHED_RUN for run in now),
        RUNS_TIMEOUT_SECONDS,
        f"{len(runs)} run(s) tagged {tag[0]}={tag[1]} to finish",
    )


def _first_interval(run: Mapping[str, Any]) -> datetime:
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    return interval_start(tags[RANGE_START_TAG].split("|")[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overlap", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--regions", type=int, default=100, help="configured regions (default 100)")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="simulator latency per call (default 200)")
    args = parser.parse_args(argv)
    figures = measure_overlap(args.regions, args.latency_ms / 1000)
    print(f"tick, gap fill and UI backfill at once, {args.regions} region(s), simulator latency {args.latency_ms:g} ms")
    print(table(figures.rows()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
