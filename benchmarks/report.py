"""Every benchmark in one run, printed as the table of targets with the baselines measured beside them.

python -m benchmarks                                          # a year, 200 ms latency (make bench)
python -m benchmarks --days 1 --regions 3 --history-days 8 10 # the smoke version the test suite runs
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.backfill import FIRST_INTERVAL, BackfillFigures, measure_run_per_interval, measure_ui_backfill
from benchmarks.data_path import REGION, DataPathFigures, measure_data_path, simulator_process
from benchmarks.electricitymaps_tick import ElectricityMapsTickFigures, measure_electricitymaps_tick
from benchmarks.forecast import (
    FORECAST_DAYS,
    ForecastBackfillFigures,
    ForecastTickFigures,
    measure_forecast_backfill,
    measure_forecast_tick,
)
from benchmarks.history import HISTORY_DAYS, HistoryFigures, add_history_days_option, measure_history
from benchmarks.official_client import OfficialClientFigures, measure_official_client
from benchmarks.overlap import OverlapFigures, measure_overlap
from benchmarks.tick import TickFigures, forecast_ticks_catchable, measure_tick
from carbon_pipeline.electricitymaps.endpoints import FREE_TIER_REQUESTS_PER_HOUR

BASELINE_HOURS = 24


@dataclass(frozen=True)
class Target:
    measure: str
    target: str
    measured: str
    met: bool


@dataclass(frozen=True)
class Results:
    days: int
    latency_ms: float
    data_path: DataPathFigures
    data_path_with_latency: DataPathFigures
    sqlite: BackfillFigures
    postgres: BackfillFigures
    one_region_tick: TickFigures
    many_regions_tick: TickFigures
    history: HistoryFigures
    forecast_backfill: ForecastBackfillFigures
    one_region_forecast_tick: ForecastTickFigures
    many_regions_forecast_tick: ForecastTickFigures
    overlap: OverlapFigures
    one_zone_electricitymaps_tick: ElectricityMapsTickFigures
    many_zones_electricitymaps_tick: ElectricityMapsTickFigures

    def targets(self) -> list[Target]:
        year = self.days == 365
        many = self.many_regions_tick
        peak = max(self.sqlite.launch.peak_rss_mb, self.postgres.launch.peak_rss_mb)
        return [
            Target("WattTime data calls", "<= 13", str(self.sqlite.watttime_calls), self.sqlite.watttime_calls <= 13),
            _seconds("end to end, UI backfill, PostgreSQL", 60, self.postgres.launch.launch_to_points_seconds, year),
            _seconds(
                "end to end, UI backfill, embedded SQLite", 180, self.sqlite.launch.launch_to_points_seconds, year
            ),
            Target(
                "data path points/s (simulator without latency)",
                ">= 100,000",
                f"{self.data_path.points_per_second:,.0f}",
                self.data_path.points_per_second >= 100_000,
            ),
            Target(
                "our write path / raw HTTP POST",
                "<= 1.5x",
                f"{self.data_path.write_vs_raw_post:.2f}x",
                self.data_path.write_vs_raw_post <= 1.5,
            ),
            Target("peak RSS of the run worker", "<= 400 MB", f"{peak:.0f} MB", peak <= 400),
            _seconds("one scheduled tick: tick to points", 6, self.one_region_tick.tick_to_points_seconds, True),
            Target(
                f"{many.regions} regions in one tick, within 10 requests/s",
                "<= 60 s",
                f"{many.tick_to_points_seconds:.1f} s, at most {many.peak_requests_per_second} requests in a second",
                many.tick_to_points_seconds <= 60 and many.peak_requests_per_second <= 10,
            ),
            *self.forecast_targets(),
            *self.overlap_targets(),
            *self.electricitymaps_targets(),
        ]

    def forecast_targets(self) -> list[Target]:
        backfill, many = self.forecast_backfill, self.many_regions_forecast_tick
        month = backfill.days == FORECAST_DAYS
        return [
            Target(
                "forecast backfill: WattTime archived-forecast calls",
                f"<= {backfill.days} (one a day)",
                str(backfill.watttime_calls),
                backfill.watttime_calls <= backfill.days,
            ),
            _seconds(
                "forecast backfill end to end, embedded SQLite", 60, backfill.launch.launch_to_points_seconds, month
            ),
            Target(
                "forecast backfill: peak RSS of the run worker",
                "<= 500 MB",
                f"{backfill.launch.peak_rss_mb:.0f} MB",
                backfill.launch.peak_rss_mb <= 500,
            ),
            _seconds(
                "forecast tick: tick to points", 6, self.one_region_forecast_tick.tick_to_all_points_seconds, True
            ),
            Target(
                f"forecast tick, {many.regions} regions, within 10 requests/s",
                "<= 60 s",
                f"{many.tick_to_all_points_seconds:.1f} s, at most {many.peak_requests_per_second} requests a second",
                many.tick_to_all_points_seconds <= 60 and many.peak_requests_per_second <= 10,
            ),
        ]

    def overlap_targets(self) -> list[Target]:
        overlap = self.overlap
        at_once = f"tick, gap fill and UI backfill at once, {overlap.regions} regions"
        return [
            Target(
                f"{at_once}: WattTime requests in the busiest second",
                "<= 10",
                str(overlap.peak_requests_per_second),
                overlap.peak_requests_per_second <= 10,
            ),
            Target(
                f"{at_once}: WattTime logins in the busiest 5 minutes",
                "<= 100",
                str(overlap.peak_logins_per_5_minutes),
                overlap.peak_logins_per_5_minutes <= 100,
            ),
            Target(
                f"{at_once}: points stored once and true, intervals materialized once per run",
                "all",
                f"{overlap.true_points:,} of {overlap.expected_points:,} points",
                overlap.all_true,
            ),
        ]

    def electricitymaps_targets(self) -> list[Target]:
        """Within the source's published rate limit: the free tier's 30 an hour, and the 1 a second the client
        keeps to by default. A tick of more zones than the hour allows is a finding, printed as MISSED."""
        free, free_rate = f"<= {FREE_TIER_REQUESTS_PER_HOUR} (free tier)", f"{FREE_TIER_REQUESTS_PER_HOUR}/h"
        rows = []
        for tick in (self.one_zone_electricitymaps_tick, self.many_zones_electricitymaps_tick):
            name = f"Electricity Maps tick, {tick.zones} zone(s)"
            rows += [
                Target(
                    f"{name}: requests in the busiest second, 429s",
                    f"<= {tick.requests_per_second:g}, no 429",
                    f"{tick.peak_requests_per_second}, {tick.rate_limited} 429s in {tick.wall_seconds:.1f} s",
                    tick.peak_requests_per_second <= tick.requests_per_second and tick.rate_limited == 0,
                ),
                Target(
                    f"{name}: requests in the busiest hour",
                    free,
                    f"{tick.peak_requests_per_hour} (a tick at {free_rate}: {tick.free_tier_seconds / 3600:.1f} h)",
                    tick.fits_free_tier,
                ),
            ]
        return rows


def _seconds(measure: str, limit: float, seconds: float, applies: bool) -> Target:
    return Target(measure, f"<= {limit:g} s", f"{seconds:.1f} s", seconds <= limit or not applies)


def run(
    days: int,
    regions: int,
    latency_ms: float,
    history_days: Sequence[int] = HISTORY_DAYS,
    forecast_days: int = FORECAST_DAYS,
) -> tuple[Results, list[tuple[str, str]]]:
    latency = latency_ms / 1000
    clock_free: dict[str, Callable[[], object]] = {
        "data_path": lambda: measure_data_path(days, latency_seconds=0.0),
        "data_path_with_latency": lambda: measure_data_path(days, latency_seconds=latency),
        "sqlite": lambda: measure_ui_backfill("sqlite", days, latency),
        "postgres": lambda: measure_ui_backfill("postgres", days, latency),
        "one_region_tick": lambda: measure_tick(1, latency),
        "many_regions_tick": lambda: measure_tick(regions, latency),
        "history": lambda: measure_history(history_days),
        "forecast_backfill": lambda: measure_forecast_backfill(forecast_days, latency),
        "overlap": lambda: measure_overlap(regions, latency),
        "one_zone_electricitymaps_tick": lambda: measure_electricitymaps_tick(1),
        "many_zones_electricitymaps_tick": lambda: measure_electricitymaps_tick(regions),
    }
    forecast_ticks = {
        "one_region_forecast_tick": lambda: measure_forecast_tick(1, latency),
        "many_regions_forecast_tick": lambda: measure_forecast_tick(regions, latency),
    }
    figures = measured_around_forecast_window(clock_free, forecast_ticks)
    results = Results(days=days, latency_ms=latency_ms, **figures)
    return results, baselines(days, latency, results)


def measured_around_forecast_window(
    clock_free: Mapping[str, Callable[[], object]],
    forecast_ticks: Mapping[str, Callable[[], object]],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """Every measure, the forecast ticks run back to back as soon as they can catch the schedule's window.

    The other scenarios (a minute's tick schedule accepts any minute) fill the time before the window, so
    the forecast ticks cost no idle wait unless they are all that is left.
    """
    pending = list(clock_free.items())
    figures: dict[str, Any] = {}
    while pending and not forecast_ticks_catchable(now(), len(forecast_ticks)):
        name, measure = pending.pop(0)
        figures[name] = measure()
    figures |= {name: measure() for name, measure in forecast_ticks.items()}
    figures |= {name: measure() for name, measure in pending}
    return figures


def baselines(days: int, latency: float, results: Results) -> list[tuple[str, str]]:
    per_interval = measure_run_per_interval(BASELINE_HOURS, latency)
    official = [_official_client(days, seconds) for seconds in (0.0, latency)]
    ours = [results.data_path, results.data_path_with_latency]
    per_call = f"simulator 0 / {latency * 1000:g} ms per call"
    return [
        (
            f"one run per interval ({per_interval.intervals} runs measured, in-process; a year extrapolated)",
            f"{per_interval.seconds:.1f} s -> {per_interval.year_seconds / 3600:.1f} h a year",
        ),
        (
            f"official watttime client, same span from the same simulator ({per_call})",
            f"{official[0].seconds:.2f} s / {official[1].seconds:.2f} s, {official[0].data_calls} data calls",
        ),
        (
            f"our client, same span, fetch only ({per_call})",
            f"{ours[0].fetch_seconds:.2f} s / {ours[1].fetch_seconds:.2f} s, {ours[0].watttime_calls} data calls",
        ),
        (
            "raw HTTP POST of the same line protocol (the write floor)",
            f"{ours[0].raw_post_seconds:.2f} s (our write path {ours[0].write_seconds:.2f} s)",
        ),
    ]


def _official_client(days: int, latency: float) -> OfficialClientFigures:
    with simulator_process(latency) as watttime_url:
        return measure_official_client(watttime_url, REGION, FIRST_INTERVAL, FIRST_INTERVAL + timedelta(days=days))


def render(results: Results, baseline_rows: Sequence[tuple[str, str]]) -> str:
    header = (
        f"{results.days} day(s) of one region ({results.sqlite.intervals:,} intervals, "
        f"{results.sqlite.points:,} points); simulator latency {results.latency_ms:g} ms per call; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n"
        f"forecasts: {results.forecast_backfill.days} day(s) of one region's issues "
        f"({results.forecast_backfill.issues:,} issues, {results.forecast_backfill.forecast_points:,} points)"
    )
    rows = [("measure", "target", "measured", "")] + [
        (t.measure, t.target, t.measured, "met" if t.met else "MISSED") for t in results.targets()
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = [header, ""]
    lines += [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[3]]) for row in rows
    ]
    history = results.history
    lines += ["", f"history costs, {history.regions} regions, embedded SQLite: {history.target}"]
    lines += [f"  {line}" for line in history.lines()]
    lines += ["", "baselines"]
    lines += [f"  {name}: {value}" for name, value in baseline_rows]
    lines += ["", "details"]
    for name, figures in (("UI backfill, SQLite", results.sqlite), ("UI backfill, PostgreSQL", results.postgres)):
        lines += [f"  {name}"] + [f"    {label}: {value}" for label, value in figures.rows()]
    for name, tick in (("one tick, 1 region", results.one_region_tick), ("one tick, many", results.many_regions_tick)):
        lines += [f"  {name}"] + [f"    {label}: {value}" for label, value in tick.rows()]
    forecasts = (
        ("forecast backfill, SQLite", results.forecast_backfill),
        ("forecast tick, 1 region", results.one_region_forecast_tick),
        ("forecast tick, many", results.many_regions_forecast_tick),
    )
    for name, forecast in forecasts:
        lines += [f"  {name}"] + [f"    {label}: {value}" for label, value in forecast.rows()]
    for zones_tick in (results.one_zone_electricitymaps_tick, results.many_zones_electricitymaps_tick):
        lines += [f"  Electricity Maps tick, {zones_tick.zones} zone(s)"]
        lines += [f"    {label}: {value}" for label, value in zones_tick.rows()]
    lines += ["  tick, gap fill and UI backfill at once"] + [f"    {label}: {v}" for label, v in results.overlap.rows()]
    latency = f"data path, simulator latency {results.latency_ms:g} ms"
    for name, path in (("data path, no latency", results.data_path), (latency, results.data_path_with_latency)):
        lines += [f"  {name}"] + [f"    {label}: {value}" for label, value in path.rows()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="span of one region to backfill (default 365)")
    parser.add_argument("--regions", type=int, default=100, help="regions in the many-region tick (default 100)")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="simulator latency per call (default 200)")
    parser.add_argument(
        "--forecast-days", type=int, default=FORECAST_DAYS, help="days of forecast issues to backfill (default 30)"
    )
    add_history_days_option(parser)
    args = parser.parse_args(argv)
    results, baseline_rows = run(args.days, args.regions, args.latency_ms, args.history_days, args.forecast_days)
    print(render(results, baseline_rows))
    return 0
