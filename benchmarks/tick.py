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
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.data_path import REGION, simulator_counts, simulator_stats, table
from benchmarks.stack import Services, dagster_home, deployment_env, services, stop_gap_fillers
from carbon_pipeline.partitions import INTERVAL
from carbon_pipeline.settings import WHOLE_NUMBERS
from carbon_pipeline.watttime.simulator.catalogue import synthetic_regions
from carbon_pipeline_tests.support.dagster_dev import DagsterDev

# Time for `dagster dev` to start before the tick the benchmark waits for.
START_UP_SECONDS = 60

POINTS_TIMEOUT_SECONDS = 240
POLL_SECONDS = 0.1
POINTS_PER_INTERVAL = 3


@dataclass(frozen=True)
class TickDeployment:
    """``dagster dev`` up before ``tick``, with its services and the environment its processes read."""

    services: Services
    tick: datetime
    dagster_dev: DagsterDev
    env: Mapping[str, str]


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


def accepted_delays(setting: str) -> range:
    """The offsets, in minutes, a schedule's delay setting accepts."""
    lowest, highest, _ = WHOLE_NUMBERS[setting]
    return range(int(lowest), int(highest) + 1)


# CARBON_SCHEDULE_DELAY_MINUTES: any minute of the quarter; CARBON_FORECAST_DELAY_MINUTES: its first five.
MOER_DELAYS = accepted_delays("schedule_delay_minutes")
FORECAST_DELAYS = accepted_delays("forecast_delay_minutes")


def region_names(count: int) -> str:
    """One real region, or as many of the simulator's synthetic regions."""
    return REGION if count == 1 else ",".join(synthetic_regions(count))


def next_tick(after: datetime, delays: Collection[int] = MOER_DELAYS) -> datetime:
    """The first whole minute at or after ``after`` that is ``delays`` minutes into its quarter hour: the tick
    the schedule will be offset to."""
    minute = after.replace(second=0, microsecond=0)
    minute = minute if minute == after else minute + timedelta(minutes=1)
    while minute.minute % 15 not in delays:
        minute += timedelta(minutes=1)
    return minute


def forecast_ticks_catchable(now: datetime, ticks: int = 2) -> bool:
    """Whether ``ticks`` forecast-tick deployments started one after another from ``now`` would all catch
    an accepted minute of the coming window, without waiting for the next quarter hour.

    The forecast schedule accepts only its first minutes of each quarter hour, so a benchmark that starts
    at the wrong moment idles up to ten minutes; ``python -m benchmarks`` runs its other scenarios meanwhile.
    """
    first = next_tick(now + timedelta(seconds=START_UP_SECONDS), FORECAST_DELAYS)
    waits_for_window = first - now > timedelta(seconds=START_UP_SECONDS + 60)
    # Each later tick starts about two minutes after the one before it: that run, then a start-up.
    return not waits_for_window and first.minute % 15 + 2 * (ticks - 1) <= max(FORECAST_DELAYS)


def quiet_delay(tick: datetime, delays: Collection[int]) -> int:
    """Of ``delays``, the one whose ticks fall furthest from ``tick`` within the quarter hour: the other
    schedule's offset, so that its runs stay out of the measured tick."""
    return max(sorted(delays), key=lambda delay: min((delay - tick.minute) % 15, (tick.minute - delay) % 15))


@contextmanager
def deployment_before_tick(
    regions: int,
    latency_seconds: float,
    delays: Collection[int],
    settings: Callable[[datetime], dict[str, str]],
    prepare: Callable[[Mapping[str, str]], None] = stop_gap_fillers,
) -> Iterator[TickDeployment]:
    """``dagster dev`` for ``regions`` up before a tick ``delays`` minutes into a quarter hour.

    ``settings`` gives the deployment's schedule offsets for the tick. ``prepare`` acts on the instance
    before the daemon starts; by default it stops the gap fillers, so the schedule's run is the only one.
    """
    with (
        tempfile.TemporaryDirectory(prefix="carbon-bench-") as workdir,
        services(latency_seconds, synthetic_regions=regions) as stack,
        dagster_home(Path(workdir), "sqlite") as (home, instance_env),
    ):
        env = deployment_env(stack, home, instance_env, region_names(regions))
        prepare(env)
        tick = next_tick(datetime.now(UTC) + timedelta(seconds=START_UP_SECONDS), delays)
        env |= settings(tick)
        with DagsterDev(home, env, Path(workdir) / "dagster_dev.log") as dagster_dev:
            if datetime.now(UTC) >= tick:
                raise RuntimeError(f"the deployment took longer than {START_UP_SECONDS} s to start; tick missed")
            yield TickDeployment(stack, tick, dagster_dev, env)


def measure_tick(regions: int, latency_seconds: float) -> TickFigures:
    with deployment_before_tick(regions, latency_seconds, MOER_DELAYS, moer_tick_settings) as deployment:
        stack, tick = deployment.services, deployment.tick
        interval = tick_interval(tick)
        where = f"time >= '{interval:%Y-%m-%dT%H:%M:%SZ}' AND time < '{interval + INTERVAL:%Y-%m-%dT%H:%M:%SZ}'"
        points, stored_at = wait_for_points(lambda: stack.points(where), regions * POINTS_PER_INTERVAL, tick)
        calls, _ = simulator_counts(stack.watttime_url)
        peak = busiest_second(stack.watttime_url)
    return TickFigures(regions, points, calls, peak, (stored_at - tick).total_seconds())


def tick_interval(tick: datetime) -> datetime:
    """The start of the interval the schedule's run at ``tick`` stores: the quarter hour that closed before it."""
    return tick - timedelta(minutes=tick.minute % 15) - INTERVAL


def moer_tick_settings(tick: datetime) -> dict[str, str]:
    return {
        "CARBON_SCHEDULE_DELAY_MINUTES": str(tick.minute % 15),
        "CARBON_FORECAST_DELAY_MINUTES": str(quiet_delay(tick, FORECAST_DELAYS)),
    }


def busiest_second(watttime_url: str) -> int:
    """The most WattTime requests (data calls and logins) that arrived within one second, as the simulator saw them."""
    arrivals = simulator_stats(watttime_url)["arrivals"]
    return busiest_window([moment for moments in arrivals.values() for moment in moments], 1.0)


def busiest_window(moments: Iterable[float], seconds: float) -> int:
    """The most of ``moments`` (monotonic seconds) that fall within any ``seconds`` of one another."""
    times = sorted(moments)
    return max((bisect_left(times, moment + seconds) - index for index, moment in enumerate(times)), default=0)


def wait_for_points(count: Callable[[], int], expected: int, tick: datetime) -> tuple[int, datetime]:
    """Poll ``count`` until it reaches ``expected``; the count and when it was first seen there."""
    deadline = tick + timedelta(seconds=POINTS_TIMEOUT_SECONDS)
    points = 0
    while datetime.now(UTC) < deadline:
        points = count()
        if points >= expected:
            return points, datetime.now(UTC)
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
