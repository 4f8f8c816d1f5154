"""The consumers' InfluxQL queries of the README, run on the real server against written forecasts.

Each query is kept here as a template and the README shows it filled in with its example values, so
what the README promises is what runs here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carbon_pipeline.sinks.forecast_lines import forecast_headline_lines, forecast_lines
from carbon_pipeline_tests.support.forecast_frames import PERIOD, POINTS_PER_HOUR, ForecastIssue, forecast_frame
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import REPO, influxdb_resource

NEWEST_CURVE = (
    "SELECT max(generated_at) AS generated_at, carbon_intensity_gco2_kwh FROM carbon_forecast "
    "WHERE region = '{region}' AND time > now() - 5m AND time < now() + {hours}h GROUP BY time(5m) fill(none)"
)
ISSUED_AT = (
    "SELECT carbon_intensity_gco2_kwh, horizon_minutes FROM carbon_forecast "
    "WHERE region = '{region}' AND generated_at = {seconds} AND time > {seconds}s - 5m AND time <= {seconds}s + 72h"
)
AHEAD = (
    "SELECT carbon_intensity_gco2_kwh, generated_at FROM carbon_forecast "
    "WHERE region = '{region}' AND horizon_minutes = '{minutes}' AND time = '{point}'"
)
HEADLINES = (
    "SELECT forecast_1h, forecast_24h FROM carbon_forecast_headline "
    "WHERE region = '{region}' AND time >= now() - {hours}h"
)
README_EXAMPLES = [
    NEWEST_CURVE.format(region="CAISO_NORTH", hours=6),
    ISSUED_AT.format(region="CAISO_NORTH", seconds=1735690050),
    AHEAD.format(region="CAISO_NORTH", minutes=360, point="2025-01-01T12:00:00Z"),
    HEADLINES.format(region="CAISO_NORTH", hours=24),
]
REGION = "CAISO_NORTH"
# 2025-01-01T00:07:30Z: first point 00:05.
ISSUED = datetime(2025, 1, 1, 0, 7, 30, tzinfo=UTC)

Writer = Callable[[Sequence[ForecastIssue]], None]


@pytest.fixture
def write(influxdb_shim: InfluxDBShim, influxdb_database: str) -> Writer:
    """Serialize and write forecasts (their points and headlines) as the pipeline does."""
    resource = influxdb_resource(influxdb_shim.url, influxdb_database)

    def write_issues(issues: Sequence[ForecastIssue]) -> None:
        frame = forecast_frame(issues)
        options = {"signal_type": "co2_moer", "source": "watttime"}
        resource.write_lines(forecast_lines(frame, **options) + forecast_headline_lines(frame, **options))

    return write_issues


@pytest.fixture
def query(influxdb_server: InfluxDBServer, influxdb_database: str) -> Callable[[str], list[dict[str, Any]]]:
    return lambda influxql: influxdb_server.query(influxql, influxdb_database)


def _curve(start: float, count: int, step: float) -> list[float]:
    return [round(start + step * index, 1) for index in range(count)]


def _grams(issue: ForecastIssue, point: datetime) -> float:
    frame = forecast_frame([issue])
    return float(frame.loc[frame["point_time"] == point, "carbon_intensity_gco2_kwh"].iloc[0])


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def _newest_covering(issues: Sequence[ForecastIssue], now: float, hours: int) -> list[dict[str, Any]]:
    """What the newest-curve query must return at ``now``: per point, the newest forecast's value."""
    frame = forecast_frame(issues)
    seconds = frame["point_time"].astype("int64") // 1_000_000_000
    window = frame[(seconds > now - 300) & (seconds < now + hours * 3600)]
    newest = window.sort_values("generated_at").drop_duplicates("point_time", keep="last").sort_values("point_time")
    return [
        {"time": _seconds(point), "generated_at": _seconds(generated), "carbon_intensity_gco2_kwh": grams}
        for point, generated, grams in zip(
            newest["point_time"], newest["generated_at"], newest["carbon_intensity_gco2_kwh"], strict=True
        )
    ]


def test_the_readme_shows_each_query_tested_here() -> None:
    readme = (REPO / "README.md").read_text()
    assert [example for example in README_EXAMPLES if example not in readme] == []


def test_the_newest_curve_takes_each_point_from_the_newest_forecast_that_has_it(
    write: Writer, query: Callable[[str], list[dict[str, Any]]]
) -> None:
    period = int(PERIOD.total_seconds())
    now = datetime.fromtimestamp(time.time() // period * period, UTC)
    # The newer a forecast, the shorter: past its end an older one is the newest there is, so all three
    # show. The middle one has the lowest values and the oldest the highest: max() or min() of the
    # value would pick the wrong forecast. A newer forecast of another region must not count.
    newest = ForecastIssue(now - timedelta(minutes=15) + timedelta(seconds=200), _curve(500.0, 12, 1.5))
    middle = ForecastIssue(now - timedelta(minutes=30) + timedelta(seconds=100), _curve(100.0, 36, 2.5))
    oldest = ForecastIssue(now - timedelta(minutes=45) + timedelta(seconds=40), _curve(900.0, 96, -3.0))
    elsewhere = ForecastIssue(now - timedelta(seconds=10), _curve(2000.0, 96, 1.0), region="PJM_DC")
    issues = [newest, middle, oldest]
    write([*issues, elsewhere])

    before = time.time()
    rows = query(NEWEST_CURVE.format(region=REGION, hours=6))
    after = time.time()

    assert rows in (_newest_covering(issues, before, 6), _newest_covering(issues, after, 6))
    assert {row["generated_at"] for row in rows} == {_seconds(issue.generated_at) for issue in issues}
    assert len(rows) >= 6 * POINTS_PER_HOUR


def test_a_forecast_is_read_back_whole_by_its_issue_time(
    write: Writer, query: Callable[[str], list[dict[str, Any]]]
) -> None:
    wanted = ForecastIssue(ISSUED + timedelta(minutes=15), _curve(300.0, 72 * POINTS_PER_HOUR, 0.5))
    write([ForecastIssue(ISSUED, _curve(400.0, 72 * POINTS_PER_HOUR, 0.5)), wanted])
    write([ForecastIssue(ISSUED + timedelta(minutes=30), _curve(200.0, 72 * POINTS_PER_HOUR, 0.5))])

    rows = query(ISSUED_AT.format(region=REGION, seconds=_seconds(wanted.generated_at)))

    frame = forecast_frame([wanted])
    assert [(row["time"], row["horizon_minutes"], row["carbon_intensity_gco2_kwh"]) for row in rows] == [
        (_seconds(point), str(horizon), grams)
        for point, horizon, grams in zip(
            frame["point_time"], frame["horizon_minutes"], frame["carbon_intensity_gco2_kwh"], strict=True
        )
    ]


def test_the_forecast_of_a_point_made_hours_ahead_is_one_point(
    write: Writer, query: Callable[[str], list[dict[str, Any]]]
) -> None:
    issues = [
        ForecastIssue(ISSUED + timedelta(minutes=15 * step), _curve(100.0 * (step + 1), 4 * POINTS_PER_HOUR, 1.0))
        for step in range(4)
    ]
    write(issues)
    point = issues[1].point_time(120)
    assert [issue.first_point for issue in issues if point - issue.first_point == timedelta(hours=2)] == [
        issues[1].first_point
    ]

    rows = query(AHEAD.format(region=REGION, minutes=120, point=point.isoformat().replace("+00:00", "Z")))

    assert rows == [
        {
            "time": _seconds(point),
            "carbon_intensity_gco2_kwh": _grams(issues[1], point),
            "generated_at": _seconds(issues[1].generated_at),
        }
    ]
    assert len(query(f"SELECT carbon_intensity_gco2_kwh FROM carbon_forecast WHERE time = {_seconds(point)}s")) == 4


def test_rewriting_a_forecast_leaves_the_points_as_they_were(
    write: Writer, query: Callable[[str], list[dict[str, Any]]]
) -> None:
    issues = [ForecastIssue(ISSUED + timedelta(minutes=15 * step), _curve(300.0, 288, 0.5)) for step in range(3)]
    write(issues)
    everything = "SELECT * FROM carbon_forecast"
    stored = query(everything)

    write(issues[1:2])

    assert query(everything) == stored
    assert len(stored) == 3 * 288


def test_the_horizon_tag_stays_within_865_values_however_many_72_hour_forecasts(
    write: Writer, query: Callable[[str], list[dict[str, Any]]]
) -> None:
    write([ForecastIssue(ISSUED + timedelta(minutes=15 * step), [250.0] * (72 * POINTS_PER_HOUR)) for step in range(6)])

    (cardinality,) = query('SHOW TAG VALUES CARDINALITY FROM carbon_forecast WITH KEY = "horizon_minutes"')
    values = [row["value"] for row in query('SHOW TAG VALUES FROM carbon_forecast WITH KEY = "horizon_minutes"')]

    assert cardinality["count"] == 864
    assert sorted(map(int, values)) == list(range(0, 72 * 60, 5))
    assert query("SELECT count(carbon_intensity_gco2_kwh) FROM carbon_forecast")[0]["count"] == 6 * 864


def test_headlines_read_back_per_issue_interval(write: Writer, query: Callable[[str], list[dict[str, Any]]]) -> None:
    now = datetime.fromtimestamp(int(time.time()), UTC)
    day_ahead = ForecastIssue(now - timedelta(hours=3), _curve(800.0, 24 * POINTS_PER_HOUR, -1.0))
    short = ForecastIssue(now - timedelta(hours=2), _curve(600.0, 23 * POINTS_PER_HOUR, 1.0))
    write([day_ahead, short])

    rows = query(HEADLINES.format(region=REGION, hours=24))

    assert rows == [
        {
            "time": _seconds(day_ahead.issue_time),
            "forecast_1h": _grams(day_ahead, day_ahead.point_time(60)),
            "forecast_24h": _grams(day_ahead, day_ahead.point_time(1435)),
        },
        {
            "time": _seconds(short.issue_time),
            "forecast_1h": _grams(short, short.point_time(60)),
            "forecast_24h": None,
        },
    ]
    assert query("SHOW TAG KEYS FROM carbon_forecast_headline") == [
        {"tagKey": key} for key in ("grid_operator", "region", "signal_type", "source")
    ]
