"""The README's queries and Home Assistant configuration, run as written against a real InfluxDB.

An automation must get the newest cleanest window of its region and length from one query, whatever else
the measurement holds (older issues, other regions and lengths, the simulator's series, the windows of the
other source's signal), and writing an issue again must replace its points rather than add to them.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import yaml

from carbon_pipeline.cleanest_windows import CleanestWindow, cleanest_windows
from carbon_pipeline.forecast_accuracy import forecast_accuracy
from carbon_pipeline.sinks.derived_lines import cleanest_window_lines, forecast_accuracy_lines
from carbon_pipeline_tests.support.gco2_frames import forecast_issue, published_series, stacked
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import REPO, influxdb_resource

SECTION = "## Cleanest windows and forecast accuracy"
QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)
MARGINAL, AVERAGE = "co2_moer", "average_lifecycle"


def readme_blocks(language: str) -> list[str]:
    text = Path(REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def home_assistant_config() -> dict[str, Any]:
    """The README's configuration.yaml, read as Home Assistant reads it (``!secret`` names a secrets entry)."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!secret", lambda loader, node: f"<secret {loader.construct_scalar(node)}>")
    (block,) = readme_blocks("yaml")
    config: dict[str, Any] = yaml.load(block, Loader=Loader)
    return config


def window_query(signal_type: str) -> str:
    """The README's SQL block reading the newest window of one kind of signal."""
    (sql,) = [block for block in readme_blocks("sql") if "carbon_cleanest_window" in block and signal_type in block]
    return sql


def sensor_query(signal_type: str) -> dict[str, str]:
    """The README's Home Assistant query of one kind of signal."""
    (sensor,) = home_assistant_config()["sensor"]
    (query,) = [query for query in sensor["queries"] if f"'{signal_type}'" in query["where"]]
    return dict(query)


def home_assistant_influxql(query: dict[str, str]) -> str:
    """What Home Assistant's influxdb sensor sends for one entry of ``queries`` (InfluxQLSensorData.update)."""
    selected = f"{query['group_function']}({query['field']})"
    return f"select {selected} as value from {query['measurement']} where {query['where']}"


def newest_issues() -> tuple[datetime, datetime]:
    """Two recent issue times, so the README's ``time > now() - 1h`` keeps both."""
    now = datetime.now(UTC)
    newest = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    return newest - QUARTER, newest


def windows_of(region: str, issue_time: datetime, seed: int) -> list[CleanestWindow]:
    values = np.random.default_rng(seed).uniform(50, 900, 288)
    return cleanest_windows(forecast_issue(values, region=region, issue_time=issue_time), [1, 2, 4])


def average_windows_of(zone: str, issue_time: datetime, seed: int) -> list[CleanestWindow]:
    """Electricity Maps' kind: an hourly forecast of a zone, issued on the hour."""
    values = np.random.default_rng(seed).uniform(50, 900, 24)
    frame = forecast_issue(values, region=zone, issue_time=issue_time, period=HOUR)
    return cleanest_windows(frame, [1, 2, 4], HOUR)


def newest_hours() -> tuple[datetime, datetime]:
    """Two recent issue hours, so the README's ``time > now() - 2h`` keeps both."""
    newest = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return newest - HOUR, newest


def two_hour(windows: list[CleanestWindow]) -> CleanestWindow:
    (window,) = [window for window in windows if window.window_hours == 2]
    return window


def write(shim: InfluxDBShim, database: str, lines: list[str]) -> None:
    influxdb_resource(shim.url, database).write_lines(lines)


def point_count(server: InfluxDBServer, database: str) -> int:
    return server.query('SELECT count("window_start") FROM "carbon_cleanest_window"', database)[0]["count"]


def test_one_query_reads_the_newest_two_hour_window_of_a_region(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    older, newest = newest_issues()
    expected = two_hour(windows_of("CAISO_NORTH", newest, seed=1))
    watttime = [
        *windows_of("CAISO_NORTH", older, seed=2),
        *windows_of("CAISO_NORTH", newest, seed=1),
        *windows_of("PJM_DC", newest, seed=3),
    ]
    simulated = windows_of("CAISO_NORTH", newest + QUARTER, seed=4)  # newer, but another source
    average = average_windows_of("DE", newest + QUARTER, seed=9)  # newer, but average intensity
    others = [two_hour(windows) for windows in (watttime[:3], watttime[6:], simulated)]
    assert expected.start not in {window.start for window in others}  # a wrong pick cannot pass
    write(influxdb_shim, influxdb_database, cleanest_window_lines(watttime, signal_type=MARGINAL, source="watttime"))
    write(influxdb_shim, influxdb_database, cleanest_window_lines(simulated, signal_type=MARGINAL, source="simulator"))
    write(
        influxdb_shim, influxdb_database, cleanest_window_lines(average, signal_type=AVERAGE, source="electricitymaps")
    )

    (row,) = influxdb_server.query(window_query(MARGINAL), influxdb_database)
    assert row["time"] == int(newest.timestamp())
    assert (row["window_start"], row["window_end"]) == (int(expected.start.timestamp()), int(expected.end.timestamp()))
    assert row["window_start_iso"] == expected.start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (row["mean_gco2_kwh"], row["cleaner_than_now_percent"]) == (
        expected.mean_gco2_kwh,
        expected.cleaner_than_now_percent,
    )

    (value,) = influxdb_server.query(home_assistant_influxql(sensor_query(MARGINAL)), influxdb_database)
    assert value["value"] == int(expected.start.timestamp())


def test_one_query_reads_the_newest_two_hour_window_of_a_zones_average_intensity(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    older, newest = newest_hours()
    expected = two_hour(average_windows_of("DE", newest, seed=1))
    average = [*average_windows_of("DE", older, seed=2), *average_windows_of("DE", newest, seed=1)]
    simulated = average_windows_of("DE", newest + QUARTER, seed=3)  # newer, but the simulator's
    # Newer, but direct factors: what a deployment stores after CARBON_ELECTRICITYMAPS_EMISSION_FACTOR changes.
    direct = average_windows_of("DE", newest + QUARTER, seed=4)
    others = [two_hour(windows) for windows in (average[:3], simulated, direct)]
    assert expected.start not in {window.start for window in others}  # a wrong pick cannot pass
    lines = [
        *cleanest_window_lines(average, signal_type=AVERAGE, source="electricitymaps"),
        *cleanest_window_lines(simulated, signal_type=AVERAGE, source="simulator"),
        *cleanest_window_lines(direct, signal_type="average_direct", source="electricitymaps"),
    ]
    write(influxdb_shim, influxdb_database, lines)

    (row,) = influxdb_server.query(window_query(AVERAGE), influxdb_database)
    assert row["time"] == int(newest.timestamp())
    assert (row["window_start"], row["window_end"]) == (int(expected.start.timestamp()), int(expected.end.timestamp()))
    assert row["mean_gco2_kwh"] == expected.mean_gco2_kwh
    (value,) = influxdb_server.query(home_assistant_influxql(sensor_query(AVERAGE)), influxdb_database)
    assert value["value"] == int(expected.start.timestamp())


def test_writing_an_issue_again_replaces_its_points(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    _, newest = newest_issues()
    first = windows_of("CAISO_NORTH", newest, seed=5)
    write(influxdb_shim, influxdb_database, cleanest_window_lines(first, signal_type=MARGINAL, source="watttime"))
    assert point_count(influxdb_server, influxdb_database) == 3

    again = windows_of("CAISO_NORTH", newest, seed=6)  # the same issue, fetched again with other values
    write(influxdb_shim, influxdb_database, cleanest_window_lines(again, signal_type=MARGINAL, source="watttime"))
    write(influxdb_shim, influxdb_database, cleanest_window_lines(again, signal_type=MARGINAL, source="watttime"))
    assert point_count(influxdb_server, influxdb_database) == 3
    assert influxdb_server.query(window_query(MARGINAL), influxdb_database)[0]["window_start"] == int(
        two_hour(again).start.timestamp()
    )


def test_accuracy_points_are_read_back_by_bucket_and_by_window_length(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    day = datetime.now(UTC).date() - timedelta(days=3)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    truth = np.random.default_rng(8).uniform(50, 900, 400)
    issues = [forecast_issue(truth[3 * k : 3 * k + 300] + 1.5, issue_time=start + k * QUARTER) for k in range(4)]
    accuracy = forecast_accuracy(
        stacked(issues),
        published_series(start, truth),
        region="CAISO_NORTH",
        day=date(day.year, day.month, day.day),
        window_hours=[2],
    )
    lines = forecast_accuracy_lines(accuracy, signal_type="co2_moer", source="watttime")
    write(influxdb_shim, influxdb_database, lines)
    write(influxdb_shim, influxdb_database, lines)

    (sql,) = [block for block in readme_blocks("sql") if "carbon_forecast_accuracy" in block]
    (row,) = influxdb_server.query(sql, influxdb_database)
    assert row == {"time": int(start.timestamp()), "mae_gco2_kwh": 1.5, "bias_gco2_kwh": 1.5, "points": 4 * 216}
    (share,) = influxdb_server.query(
        'SELECT "within_5_percent_share", "issues" FROM "carbon_forecast_accuracy" WHERE "window_hours" = \'2\'',
        influxdb_database,
    )
    assert (share["within_5_percent_share"], share["issues"]) == (1.0, 4)


def test_the_automation_fires_once_now_reaches_the_sensors_window_start() -> None:
    config = home_assistant_config()
    (sensor,) = config["sensor"]
    query = sensor_query(MARGINAL)
    entity = "sensor." + re.sub(r"[^a-z0-9]+", "_", query["name"].lower()).strip("_")
    (automation,) = config["automation"]
    (trigger,) = automation["triggers"]
    template = jinja2.Environment().from_string(trigger["value_template"])

    def fires(state: str, now: datetime) -> bool:
        states = {entity: state}
        rendered = template.render(
            states=lambda entity_id: states.get(entity_id, "unknown"), is_number=_is_number, now=lambda: now
        )
        return {"True": True, "False": False}[rendered.strip()]

    start = datetime(2025, 1, 1, 3, 0, tzinfo=UTC)
    state = str(int(start.timestamp()))
    assert not fires(state, start - timedelta(seconds=1))
    assert fires(state, start) and fires(state, start + timedelta(minutes=30))
    assert not fires("unknown", start) and not fires("unavailable", start)
    assert automation["actions"][0] == {"action": "switch.turn_on", "target": {"entity_id": "switch.dishwasher"}}
    assert (sensor["api_version"], config["influxdb"]["exclude"]) == (1, {"entity_globs": "*"})


def _is_number(value: object) -> bool:
    """Home Assistant's ``is_number``: a finite float can be read from it."""
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except ValueError:
        return False
