"""One scheduled tick, from its cron time to every region's points in InfluxDB, under ``dagster dev``.

The real schedule, daemon, queued run coordinator and default run launcher do the work; the
benchmark only picks ``CARBON_SCHEDULE_DELAY_MINUTES`` so that the schedule's next tick falls soon
after the deployment is up, then waits for that tick's points.

    python -m benchmarks.tick --regions 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.data_path import REGION, simulator_counts, simulator_stats, table
from benchmarks.stack import dagster_home, deployment_env, services, stop_sensor
from carbon_pipeline.partitions import INTERVAL
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline.watttime.simulator.catalogue import synthetic_regions
from carbon_pipeline_tests.support.dagster_dev import DagsterDev

# Time for the sensor CLI and `dagster dev` to start before the tick the benchmark waits for.
START_UP_SECONDS = 75
POINTS_TIMEOUT_SECONDS = 240
POLL_SECONDS = 0.1
POINTS_PER_INTERVAL = 3


@dataclass(frozen=True)
class TickFigures:
    regions: int
    points: int
    watttime_calls: int
    peak_requests_per_second: int
    tick_to_points_seconds: float

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("regions / points stored", f"{self.regions} / {self.points}"),
            ("WattTime data calls", str(self.watttime_calls)),
            ("tick -> every region's points in InfluxDB (s)", f"{self.tick_to_points_seconds:.1f}"),
            ("WattTime requests in the busiest second", str(self.peak_requests_per_second)),
        ]


def region_names(count: int) -> str:
    """One real region, or as many of the simulator's synthetic regions."""
    return REGION if count == 1 else ",".join(synthetic_regions(count))


def next_tick(after: datetime) -> datetime:
    """The first whole minute at or after ``after``: the tick the schedule will be offset to."""
    minute = after.replace(second=0, microsecond=0)
    return minute if minute == after else minute + timedelta(minutes=1)


def measure_tick(regions: int, latency_seconds: float) -> TickFigures:
    tick = next_tick(datetime.now(UTC) + timedelta(seconds=START_UP_SECONDS))
    delay_minutes = tick.minute % 15
    interval = tick - timedelta(minutes=delay_minutes) - INTERVAL
    where = f"time >= '{interval:%Y-%m-%dT%H:%M:%SZ}' AND time < '{interval + INTERVAL:%Y-%m-%dT%H:%M:%SZ}'"
    expected = regions * POINTS_PER_INTERVAL
    with (
        tempfile.TemporaryDirectory(prefix="carbon-bench-") as workdir,
        services(latency_seconds, synthetic_regions=regions) as stack,
        dagster_home(Path(workdir), "sqlite") as (home, instance_env),
    ):
        env = deployment_env(
            stack, home, instance_env, region_names(regions), CARBON_SCHEDULE_DELAY_MINUTES=str(delay_minutes)
        )
        stop_sensor(GAP_FILLER, env)
        with DagsterDev(home, env, Path(workdir) / "dagster_dev.log"):
            if datetime.now(UTC) >= tick:
                raise RuntimeError(f"the deployment took longer than {START_UP_SECONDS} s to start; tick missed")
            points = _wait_for_points(stack.points, where, expected, tick)
            stored_at = datetime.now(UTC)
        calls, _ = simulator_counts(stack.watttime_url)
        peak = busiest_second(stack.watttime_url)
    return TickFigures(regions, points, calls, peak, (stored_at - tick).total_seconds())


def busiest_second(watttime_url: str) -> int:
    """The most WattTime requests (data calls and logins) that arrived within one second, as the simulator saw them."""
    arrivals = simulator_stats(watttime_url)["arrivals"]
    times = sorted(moment for moments in arrivals.values() for moment in moments)
    return max((bisect_left(times, moment + 1.0) - index for index, moment in enumerate(times)), default=0)


def _wait_for_points(count: Callable[[str], int], where: str, expected: int, tick: datetime) -> int:
    deadline = tick + timedelta(seconds=POINTS_TIMEOUT_SECONDS)
    points = 0
    while datetime.now(UTC) < deadline:
        points = count(where)
        if points >= expected:
            return points
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"{points} of {expected} points {POINTS_TIMEOUT_SECONDS} s after the {tick:%H:%M} tick")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tick", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--regions", type=int, default=1, help="configured regions (default 1)")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="simulator latency per call (default 200)")
    args = parser.parse_args(argv)
    figures = measure_tick(args.regions, args.latency_ms / 1000)
    print(f"scheduled tick, {args.regions} region(s), simulator latency {args.latency_ms:g} ms")
    print(table(figures.rows()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
