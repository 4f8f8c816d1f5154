"""Line-protocol injection against a real InfluxDB: hostile region names never get past the load, escaped tag
and field values come back exactly as sent, and values no escape can make safe stop the write before any
line is sent.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from carbon_pipeline.definitions import build_definitions
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.sinks.line_protocol import LineProtocolError, carbon_intensity_lines
from carbon_pipeline.watttime.simulator import SimulatorConfig, SimulatorServer
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import REPO, influxdb_resource, materialize, watttime_resource

DAY = datetime(2025, 1, 1, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
HOSTILE_REGIONS = {
    "space": "CAISO_NORTH region=EVIL",
    "equals": "CAISO_NORTH=EVIL",
    "extra tag after a comma": "CAISO_NORTH,source=watttime",
    "newline with a smuggled point": "CAISO_NORTH\ncarbon_intensity,region=EVIL moer_lbs_per_mwh=0 0",
    "carriage return": "CAISO\rNORTH",
    "double quotes": 'CAISO_"NORTH"',
    "single quotes": "CAISO_'NORTH'",
    "backslash": "CAISO\\NORTH",
    "trailing backslash": "CAISO_NORTH\\",
    "terminal escape": "\x1b[2JCAISO_NORTH",
    "unicode line separator": "CAISO\u2028NORTH",
    "query string": "CAISO_NORTH&signal_type=health_damage",
    "path": "../CAISO_NORTH",
}
SMUGGLED = "carbon_intensity,region=EVIL"


@pytest.mark.parametrize("region", HOSTILE_REGIONS.values(), ids=HOSTILE_REGIONS.keys())
def test_hostile_regions_fail_the_load_without_echoing_control_characters(region: str) -> None:
    """Regions become URL parameters, tags and partition keys; the message lands in logs, so it stays one line."""
    with pytest.raises(ValueError) as raised:
        build_definitions(PipelineSettings.from_env({"DAGSTER_DEPLOYMENT": "local", "CARBON_REGIONS": region}))
    message = str(raised.value)
    assert message.startswith("CARBON_REGIONS: Invalid WattTime region"), message
    assert "expected upper-case letters, digits and underscores" in message
    assert message.isprintable(), f"raw control characters in {message!r}"


def test_hostile_region_output_of_the_dagster_loader_carries_no_smuggled_line(prod_env: dict[str, str]) -> None:
    """What an operator sees when the real loader refuses the value: no forged line in the console."""
    env = prod_env | {"CARBON_REGIONS": HOSTILE_REGIONS["newline with a smuggled point"]}
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "definitions",
        "validate",
        "-m",
        "carbon_pipeline.definitions",
    ]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "CARBON_REGIONS: Invalid WattTime region" in output
    assert not [line for line in output.splitlines() if line.lstrip().startswith(SMUGGLED)]


HOSTILE_VALUES = {
    "backslash before comma": "a\\,b",
    "backslash before space": "a\\ b",
    "backslash before equals": "a\\=b",
    "leading backslash": "\\lead",
    "double backslash": "two\\\\slashes",
    "quotes in a tag": 'say "hi", ok',
    "tag smuggling": "x\\,evil\\=1",
    "field breakout": '" ,evil=1 ',
    "escaped quote breakout": '\\" ,evil=1 x="',
    "escaped comma after backslashes": "a\\\\,b=c d",
    "lone separators": " ,= ",
    "tab": "tab\there",
    "comment marker": "#not a comment",
    "non-ASCII": "Übertragung ⚡ grid",
}
SCHEMA_COLUMNS = {
    "time",
    "region",
    "grid_operator",
    "signal_type",
    "source",
    "moer_lbs_per_mwh",
    "carbon_intensity_gco2_kwh",
    "model_date",
}


def _frame(model_dates: list[str]) -> pd.DataFrame:
    """Points 5 minutes apart from 2025-01-01, one per model date, in MoerFrame's columns."""
    count = len(model_dates)
    return pd.DataFrame(
        {
            "region": ["CAISO_NORTH"] * count,
            "point_time": pd.date_range(DAY, periods=count, freq="5min").as_unit("ns"),
            "moer_lbs_per_mwh": [1000.0] * count,
            "carbon_intensity_gco2_kwh": [453.5924] * count,
            "units": ["lbs_co2_per_mwh"] * count,
            "model_date": model_dates,
            "imputed": pd.array([None] * count, dtype="boolean"),
        }
    )


@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_escaped_tags_and_fields_round_trip_exactly_as_one_point(
    value: str, influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    """Escapes that InfluxDB reads differently from how they were meant would add tags, fields or points."""
    lines = carbon_intensity_lines(_frame([value]), signal_type=value, source=value)
    influxdb_resource(influxdb_shim.url, influxdb_database).write_lines(lines)

    (row,) = influxdb_server.query("SELECT * FROM carbon_intensity", influxdb_database)
    assert set(row) == SCHEMA_COLUMNS  # no smuggled tag or field
    assert (row["signal_type"], row["source"], row["model_date"]) == (value, value, value)
    assert (row["region"], row["time"], row["moer_lbs_per_mwh"]) == ("CAISO_NORTH", 1735689600, 1000.0)


def test_one_unsafe_value_refuses_the_whole_batch() -> None:
    """The serializer returns every line or none, so the sinks can never write the lines before a bad one."""
    with pytest.raises(LineProtocolError, match="line break"):
        carbon_intensity_lines(_frame(["2023-03-01", "2023-03-01", "2023-03-01\nx"]), signal_type="co2", source="w")


def _failure_chain(result: dg.ExecuteInProcessResult) -> str:
    """The step failure's message and those of its causes, as the run's event log records them."""
    (event,) = [event for event in result.all_events if event.is_step_failure]
    messages, error = [], event.step_failure_data.error
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "".join(messages)


@pytest.mark.parametrize("separator", ["\n", "\r"], ids=["newline", "carriage return"])
def test_watttime_value_with_a_line_break_fails_the_run_before_any_write(
    separator: str, influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    """WattTime's model date reaches a field unchecked; a line break in it must not become a second point."""
    model_date = f"2023-03-01{separator}{SMUGGLED} moer_lbs_per_mwh=0 0"
    with SimulatorServer(SimulatorConfig(publication_lag_seconds=0, model_date=model_date)) as hostile:
        resources = {
            "watttime": watttime_resource(hostile.base_url),
            "point_sink": influxdb_resource(influxdb_shim.url, influxdb_database),
        }
        result = materialize(resources, "CAISO_NORTH", DAY, DAY + 3 * QUARTER)
    message = _failure_chain(result)
    assert not result.success and "cannot be stored safely" in message and "contains a line break" in message
    assert "region CAISO_NORTH, interval" in message
    assert f"{separator}{SMUGGLED}" not in message
    assert influxdb_shim.requests == []
    assert influxdb_server.query("SHOW MEASUREMENTS", influxdb_database) == []
