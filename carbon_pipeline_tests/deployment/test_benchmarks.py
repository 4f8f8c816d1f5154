"""The benchmarks keep working: a one-day run of each, with its printed figures checked for sense."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from benchmarks.data_path import main, measure_data_path, rate_limit_floor_seconds, simulator_process
from benchmarks.electricitymaps_tick import main as electricitymaps_tick_main
from benchmarks.electricitymaps_tick import measure_electricitymaps_tick
from benchmarks.history import HistoryCosts, HistoryFigures
from benchmarks.overlap import BACKFILL, GAP_FILL, TICK
from benchmarks.report import measured_around_forecast_window, render, run
from benchmarks.tick import FORECAST_DELAYS, MOER_DELAYS, forecast_ticks_catchable, next_tick, quiet_delay


def test_data_path_benchmark_pushes_a_day_through_every_stage_and_both_writers() -> None:
    figures = measure_data_path(days=1, latency_seconds=0.0)
    assert figures.points == 288 and figures.watttime_calls == 1 and figures.watttime_logins == 1
    assert min(figures.fetch_seconds, figures.write_seconds, figures.raw_post_seconds) > 0
    assert figures.fetch_cpu_seconds > 0 and figures.rate_limit_floor_seconds == pytest.approx(0.11)  # login, call
    assert figures.points_per_second == pytest.approx(288 / figures.data_path_seconds)


def test_data_path_benchmark_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--days", "1", "--latency-ms", "5"]) == 0
    printed = capsys.readouterr().out
    assert "simulator latency 5 ms" in printed
    for figure in ("points                    288", "our write / raw POST", "data path points/s"):
        assert figure in printed


@pytest.mark.parametrize(
    ("requests", "per_second", "floor"),
    [
        (1, 10.0, 0.0),
        (2, 10.0, 0.11),
        (11, 10.0, 1.1),
        (14, 10.0, 1.43),
        (21, 10.0, 2.2),
        (3, 0.5, 4.4),
        (2, 7.0, 0.158),
    ],
)
def test_rate_limit_floor_counts_one_spacing_a_request(requests: int, per_second: float, floor: float) -> None:
    assert rate_limit_floor_seconds(requests, per_second) == pytest.approx(floor)


def test_simulator_runs_as_its_own_process_and_stops_with_the_benchmark() -> None:
    with simulator_process(latency_seconds=0.0) as base_url:
        assert httpx.get(f"{base_url}/_simulator/stats", timeout=5).json()["logins"] == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/_simulator/stats", timeout=5)


def test_electricitymaps_tick_benchmark_reads_each_zone_once_within_the_rate() -> None:
    """Three zones at 20 requests/s, which the simulator enforces: one history call each, none refused; the
    same three calls at the free tier's 30 an hour take a spacing of 132 s each after the first."""
    figures = measure_electricitymaps_tick(3, requests_per_second=20.0)
    assert (figures.calls, figures.points, figures.rate_limited) == (3, 72, 0)
    assert figures.peak_requests_per_hour == 3 and figures.fits_free_tier
    assert 1 <= figures.peak_requests_per_second <= 3
    assert figures.free_tier_seconds == pytest.approx(2 * 132)


def test_electricitymaps_tick_benchmark_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert electricitymaps_tick_main(["--zones", "1", "--requests-per-second", "20"]) == 0
    printed = capsys.readouterr().out
    assert "Electricity Maps tick, 1 zone(s), 20 request(s)/s" in printed
    for figure in ("zones / points read                           1 / 24", "429 replies seen", "busiest hour"):
        assert figure in printed


@pytest.mark.slow
# Each forecast tick may wait up to ten minutes for a minute its schedule accepts (0 to 4 into a quarter hour).
@pytest.mark.timeout(2700)
def test_the_full_benchmark_runs_a_day_through_every_scenario_and_prints_every_target() -> None:
    """The smoke version of `make bench`: real dagster dev, SQLite and PostgreSQL, real ticks, the overlap of a
    tick, gap fill and backfill for 3 regions, and the history costs with 8 and 10 days of 20 regions."""
    results, baseline_rows = run(days=1, regions=3, latency_ms=0.0, history_days=(8, 10), forecast_days=2)

    for backfill in (results.sqlite, results.postgres):
        assert (backfill.intervals, backfill.points, backfill.watttime_calls) == (96, 288, 1)
        assert (
            0
            < backfill.launch.run_seconds
            < backfill.launch.launch_to_points_seconds
            <= backfill.launch.launch_to_completed_seconds
        )
        assert backfill.launch.peak_rss_mb > 100  # the run worker was found and measured
        assert backfill.event_log.materializations == 96 < backfill.event_log.events
        assert 0 < backfill.event_log.bytes_per_materialization < backfill.event_log.disk_bytes
    assert (results.one_region_tick.points, results.one_region_tick.watttime_calls) == (3, 1)
    assert (results.many_regions_tick.regions, results.many_regions_tick.points) == (3, 9)
    assert 1 <= results.many_regions_tick.peak_requests_per_second <= 10
    for tick, zones in ((results.one_zone_electricitymaps_tick, 1), (results.many_zones_electricitymaps_tick, 3)):
        assert (tick.zones, tick.calls, tick.rate_limited) == (zones, zones, 0)
    printed = render(results, baseline_rows)
    for measure in [target.measure for target in results.targets()] + [name for name, _ in baseline_rows]:
        assert measure in printed
    assert len(results.targets()) == 20 and len(baseline_rows) == 4
    overlap = results.overlap
    assert overlap.runs == {TICK: 1, GAP_FILL: 2, BACKFILL: 3} and overlap.all_true
    assert 1 <= overlap.peak_requests_per_second <= 10 and 1 <= overlap.peak_logins_per_5_minutes <= overlap.logins
    forecasts = results.forecast_backfill
    assert (forecasts.issues, forecasts.forecast_points, forecasts.watttime_calls) == (192, 192 * 288, 2)
    assert forecasts.materialized == {"carbon_forecast": 192, "carbon_cleanest_window": 192}
    assert forecasts.launch.peak_rss_mb > 100
    assert results.one_region_forecast_tick.points == {"carbon_forecast": 288, "carbon_cleanest_window": 3}
    assert results.many_regions_forecast_tick.points == {"carbon_forecast": 3 * 288, "carbon_cleanest_window": 9}
    assert 1 <= results.many_regions_forecast_tick.peak_requests_per_second <= 10
    history = results.history
    assert (history.regions, history.short.days, history.long.days) == (20, 8, 10)
    assert 20 * 8 * 96 < history.short.events < history.long.events <= 20 * 11 * 96
    for flat in history.comparisons():
        assert min(flat.short_seconds, flat.long_seconds) > 0
        assert flat.measure in printed


def test_the_history_table_compares_each_measure_with_twice_the_shorter_history_plus_a_floor() -> None:
    short = HistoryCosts(28, 53_760, 3.0, 0.10, 0.30, 0.10, 6.0)
    long = HistoryCosts(730, 1_401_600, 60.0, 0.30, 9.00, 0.65, 12.6)
    figures = HistoryFigures(20, short, long)
    # Limits: 0.7, 1.1, 0.7 and 12.5 s.
    assert [flat.met for flat in figures.comparisons()] == [True, False, True, False]
    header, seeding, check, gap_filler, *_ = figures.lines()
    assert header.split()[:5] == ["measure", "28", "days", "730", "days"]
    assert "53,760 in 3.0" in seeding and "1,401,600 in 60.0" in seeding
    assert check.startswith("freshness check run on its own (s)") and check.endswith("met")
    assert gap_filler.split()[-5:] == ["0.30", "9.00", "<=", "1.10", "MISSED"]
    assert figures.target == "730 d <= 2x 28 d + 0.5 s"


def test_a_tick_falls_on_a_minute_the_schedule_accepts_and_the_other_schedule_ticks_far_from_it() -> None:
    after = datetime(2026, 1, 1, 10, 7, 30, tzinfo=UTC)
    assert next_tick(after) == datetime(2026, 1, 1, 10, 8, tzinfo=UTC)
    # The forecast schedule's delay is 0 to 4 minutes into the quarter hour: the next such minute is 10:15.
    assert next_tick(after, FORECAST_DELAYS) == datetime(2026, 1, 1, 10, 15, tzinfo=UTC)
    assert quiet_delay(datetime(2026, 1, 1, 10, 8, tzinfo=UTC), FORECAST_DELAYS) == 0
    assert quiet_delay(datetime(2026, 1, 1, 10, 16, tzinfo=UTC), MOER_DELAYS) == 8


@pytest.mark.parametrize(
    ("now", "catchable"),
    [
        # Started now, two deployments tick at 10:16 and about 10:18, both inside the 10:15-10:19 window.
        (datetime(2026, 1, 1, 10, 14, 50, tzinfo=UTC), True),
        # The first would tick at 10:18: the second could not start before the window closes.
        (datetime(2026, 1, 1, 10, 16, 30, tzinfo=UTC), False),
        # The window is over six minutes away: the deployment would idle.
        (datetime(2026, 1, 1, 10, 8, 0, tzinfo=UTC), False),
    ],
)
def test_forecast_ticks_are_catchable_only_early_in_the_schedules_window(now: datetime, catchable: bool) -> None:
    assert forecast_ticks_catchable(now) is catchable


def test_the_other_scenarios_run_until_the_forecast_window_comes_then_the_forecast_ticks_back_to_back() -> None:
    """Each scenario takes four minutes of a fake clock starting at 10:05. At 10:09 a deployment would idle
    until 10:15; at 10:13 the two forecast ticks can catch 10:15 and about 10:17."""
    clock = [datetime(2026, 1, 1, 10, 5, tzinfo=UTC)]
    order: list[str] = []

    def scenario(name: str) -> Callable[[], str]:
        def measure() -> str:
            order.append(name)
            clock[0] += timedelta(minutes=4)
            return name

        return measure

    figures = measured_around_forecast_window(
        {name: scenario(name) for name in ("backfill", "tick", "history", "overlap", "data path")},
        {name: scenario(name) for name in ("forecast tick 1", "forecast tick 3")},
        now=lambda: clock[0],
    )

    assert order == ["backfill", "tick", "forecast tick 1", "forecast tick 3", "history", "overlap", "data path"]
    assert figures == {name: name for name in order}
