"""The forecast asset end to end: a month of one region's issues backfilled from the UI, and one scheduled tick.

Both go through ``dagster dev`` with the repository's instance file (embedded SQLite), the WattTime
simulator as a process of its own and a real InfluxDB, as the MOER benchmarks do (``backfill.py``,
``tick.py``). What a run stores is read back from InfluxDB, output by output (``FORECAST_OUTPUTS``):
the backfill must leave every point of every issue and every issue materialized, the tick is timed
to the moment the last output's points of every region are in.

    python -m benchmarks.forecast --days 30 --regions 100
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import dagster as dg

from benchmarks.backfill import FIRST_INTERVAL, INTERVALS_PER_DAY, LaunchFigures, historical_calls, ui_backfill
from benchmarks.data_path import REGION, simulator_stats, table
from benchmarks.stack import Services, instance_in
from benchmarks.tick import (
    FORECAST_DELAYS,
    MOER_DELAYS,
    busiest_second,
    deployment_before_tick,
    quiet_delay,
    wait_for_points,
)
from carbon_pipeline.assets.carbon_forecast import ASSET_NAME, WINDOW_ASSET_NAME
from carbon_pipeline.partitions import INTERVAL, region_partition_key
from carbon_pipeline.settings import DEFAULT_WINDOW_HOURS
from carbon_pipeline.sinks.derived_lines import CLEANEST_WINDOW_MEASUREMENT
from carbon_pipeline.sinks.forecast_lines import FORECAST_MEASUREMENT, HORIZON_STEP_MINUTES

FORECAST_DAYS = 30
HORIZON = timedelta(hours=24)  # CARBON_FORECAST_HORIZON_HOURS's default
POINTS_PER_ISSUE = HORIZON // timedelta(minutes=HORIZON_STEP_MINUTES)
FORECAST_PATHS = ("/v3/forecast", "/v3/forecast/historical")
ARCHIVED = "forecast_historical_queries"  # what the simulator records of each /v3/forecast/historical call


@dataclass(frozen=True)
class StoredOutput:
    """An asset the forecast run stores: the measurement its points go to, a field every point has, and how
    many points each issue makes."""

    asset: str
    measurement: str
    field: str
    points_per_issue: int


# What "points in InfluxDB" means for the forecast run: every point of each of these outputs.
FORECAST_OUTPUTS = (
    StoredOutput(ASSET_NAME, FORECAST_MEASUREMENT, "moer_lbs_per_mwh", POINTS_PER_ISSUE),
    StoredOutput(WINDOW_ASSET_NAME, CLEANEST_WINDOW_MEASUREMENT, "mean_gco2_kwh", len(DEFAULT_WINDOW_HOURS)),
)


@dataclass(frozen=True)
class ForecastBackfillFigures:
    days: int
    issues: int
    points: dict[str, int]  # per output asset, counted in InfluxDB
    materialized: dict[str, int]  # per output asset, issue partitions the instance records as materialized
    watttime_calls: int
    launch: LaunchFigures

    @property
    def forecast_points(self) -> int:
        return self.points[ASSET_NAME]

    def rows(self) -> list[tuple[str, str]]:
        stored = [
            (f"{asset}: issues materialized / points in InfluxDB", f"{self.materialized[asset]:,} / {points:,}")
            for asset, points in self.points.items()
        ]
        return [
            ("issue intervals", f"{self.issues:,} ({self.days} day(s) of {REGION})"),
            *stored,
            ("WattTime archived-forecast calls for these issues", str(self.watttime_calls)),
            *self.launch.rows(),
        ]


@dataclass(frozen=True)
class ForecastTickFigures:
    regions: int
    points: dict[str, int]  # per output asset
    tick_to_points_seconds: dict[str, float]  # per output asset: tick -> every region's points in
    watttime_calls: int
    peak_requests_per_second: int

    @property
    def tick_to_all_points_seconds(self) -> float:
        return max(self.tick_to_points_seconds.values())

    def rows(self) -> list[tuple[str, str]]:
        outputs = [
            (f"{asset}: points / tick -> every region's in InfluxDB (s)", f"{points:,} / {seconds:.1f}")
            for (asset, points), seconds in zip(self.points.items(), self.tick_to_points_seconds.values(), strict=True)
        ]
        return [
            ("regions", str(self.regions)),
            *outputs,
            ("WattTime forecast calls", str(self.watttime_calls)),
            ("WattTime requests in the busiest second", str(self.peak_requests_per_second)),
        ]


def issue_keys(days: int) -> list[str]:
    return [str(region_partition_key(REGION, FIRST_INTERVAL + n * INTERVAL)) for n in range(days * INTERVALS_PER_DAY)]


def measure_forecast_backfill(days: int, latency_seconds: float) -> ForecastBackfillFigures:
    """Launch ``days`` days of one region's forecast issues from the UI; check and count what was stored."""
    keys = issue_keys(days)
    with ui_backfill("sqlite", [output.asset for output in FORECAST_OUTPUTS], keys, latency_seconds) as backfill:
        where = _issues_where(FIRST_INTERVAL, FIRST_INTERVAL + days * timedelta(days=1))
        points = {output.asset: _count(backfill.services, output, where) for output in FORECAST_OUTPUTS}
        calls = historical_calls(
            backfill.services.watttime_url, FIRST_INTERVAL, FIRST_INTERVAL + days * timedelta(days=1), ARCHIVED
        )
        with instance_in(backfill.home, backfill.instance_env) as instance:
            materialized = {
                output.asset: len(instance.get_materialized_partitions(dg.AssetKey(output.asset)) & set(keys))
                for output in FORECAST_OUTPUTS
            }
    figures = ForecastBackfillFigures(days, len(keys), points, materialized, calls, backfill.launch)
    _require_complete(figures)
    return figures


def _require_complete(figures: ForecastBackfillFigures) -> None:
    """Every issue materialized and every point stored, for each output, or the figures mean nothing."""
    for output in FORECAST_OUTPUTS:
        expected = (figures.issues, figures.issues * output.points_per_issue)
        found = (figures.materialized[output.asset], figures.points[output.asset])
        if found != expected:
            raise RuntimeError(f"{output.asset}: {found} issues materialized / points stored, expected {expected}")


def measure_forecast_tick(regions: int, latency_seconds: float) -> ForecastTickFigures:
    """The forecast schedule's tick for the interval under way, to every region's points of every output."""
    with deployment_before_tick(regions, latency_seconds, FORECAST_DELAYS, _forecast_tick_settings) as deployment:
        stack, tick = deployment.services, deployment.tick
        issue = tick - timedelta(minutes=tick.minute % 15)
        where = _issues_where(issue, issue + INTERVAL)
        points, seconds = {}, {}
        for output in FORECAST_OUTPUTS:
            expected = regions * output.points_per_issue
            points[output.asset], stored_at = wait_for_points(partial(_count, stack, output, where), expected, tick)
            seconds[output.asset] = (stored_at - tick).total_seconds()
        calls = forecast_calls(stack.watttime_url)
        peak = busiest_second(stack.watttime_url)
    return ForecastTickFigures(regions, points, seconds, calls, peak)


def _forecast_tick_settings(tick: datetime) -> dict[str, str]:
    return {
        "CARBON_FORECAST_DELAY_MINUTES": str(tick.minute % 15),
        "CARBON_SCHEDULE_DELAY_MINUTES": str(quiet_delay(tick, MOER_DELAYS)),
    }


def forecast_calls(watttime_url: str) -> int:
    """Live and archived forecast calls the simulator answered."""
    requests = simulator_stats(watttime_url)["requests"]
    return sum(requests.get(path, 0) for path in FORECAST_PATHS)


def _issues_where(first: datetime, end: datetime) -> str:
    """Every point of the issues from ``first`` to ``end``: at their issue times and up to a horizon later."""
    return f"time >= '{first:%Y-%m-%dT%H:%M:%SZ}' AND time < '{end + HORIZON:%Y-%m-%dT%H:%M:%SZ}'"


def _count(stack: Services, output: StoredOutput, where: str) -> int:
    return stack.points(where, output.measurement, output.field)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.forecast", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=FORECAST_DAYS, help="days of issues to backfill (default 30)")
    parser.add_argument("--regions", type=int, default=100, help="regions in the many-region tick (default 100)")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="simulator latency per call (default 200)")
    args = parser.parse_args(argv)
    latency = args.latency_ms / 1000
    print(f"forecast backfill, {args.days} day(s) of {REGION}, simulator latency {args.latency_ms:g} ms")
    print(table(measure_forecast_backfill(args.days, latency).rows()))
    for regions in (1, args.regions):
        print(f"\nforecast tick, {regions} region(s)")
        print(table(measure_forecast_tick(regions, latency).rows()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
