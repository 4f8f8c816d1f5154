"""InfluxDBResource against the real server: URL forms, escaping and batching."""

from __future__ import annotations

import pandas as pd
import pytest

from carbon_pipeline.sinks.influxdb import InfluxDBResource, validate_host_url
from carbon_pipeline.sinks.line_protocol import carbon_intensity_lines
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import influxdb_resource


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("http://influxdb:8086", "http://influxdb:8086"),
        ("https://host:8181", "https://host:8181"),
        ("https://host:8181/", "https://host:8181"),
        (" http://127.0.0.1:8181 ", "http://127.0.0.1:8181"),
    ],
)
def test_full_urls_are_accepted(given: str, used: str) -> None:
    assert validate_host_url(given) == used


@pytest.mark.parametrize(
    "given",
    [
        "influxdb:8086",
        "localhost",
        "http://influxdb",
        "ftp://host:21",
        "http://host:8086/prefix",
        "http://host:8086?db=x",
        "http://host:notaport",
    ],
)
def test_anything_else_fails_saying_what_is_expected(given: str) -> None:
    with pytest.raises(ValueError, match="INFLUXDB_HOST must be a full URL with scheme, host and port"):
        validate_host_url(given)


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(ValueError) as raised:
        InfluxDBResource(host="http://admin:hunter2@influxdb:8086", token="t", database="d")
    assert "hunter2" not in str(raised.value)


def test_tag_values_with_spaces_commas_and_equals_round_trip(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    frame = pd.DataFrame(
        {
            "region": ["CAISO_NORTH"],
            "point_time": pd.to_datetime(["2025-01-01T00:00:00Z"], utc=True).as_unit("ns"),
            "moer_lbs_per_mwh": [1000.0],
            "carbon_intensity_gco2_kwh": [453.5924],
            "units": ["lbs_co2_per_mwh"],
            "model_date": ['2023 "v1", x=1'],
            "imputed": pd.array([None], dtype="boolean"),
        }
    )
    source = "lab sim, run=1 a\\b"
    lines = carbon_intensity_lines(frame, signal_type="co2 moer=x", source=source)
    influxdb_resource(influxdb_shim.url, influxdb_database).write_lines(lines)

    (row,) = influxdb_server.query("SELECT * FROM carbon_intensity", influxdb_database)
    assert (row["source"], row["signal_type"], row["model_date"]) == (source, "co2 moer=x", '2023 "v1", x=1')
    assert row["moer_lbs_per_mwh"] == 1000.0


def test_writes_are_batched_at_5000_lines(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    lines = [
        f"carbon_intensity,region=X moer_lbs_per_mwh={index}.0 {1735689600 + index * 300}" for index in range(12_001)
    ]
    report = influxdb_resource(influxdb_shim.url, influxdb_database).write_lines(lines)
    assert [write.line_count for write in influxdb_shim.requests] == [5000, 5000, 2001]
    assert report.lines == 12_001 and report.requests == 3
    assert (
        influxdb_server.query("SELECT count(moer_lbs_per_mwh) FROM carbon_intensity", influxdb_database)[0]["count"]
        == 12_001
    )
